//! Event ids make `RecordEvents` safe to retry: an event whose (customer, event id) was
//! already recorded is accepted, counted in `duplicates` and not stored again — also after
//! a stream cut mid-way and after a restart. Events without ids behave as before.

use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_test_support::TestServer;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

/// Records the server writes per store batch (`WRITE_BATCH` of the ingest service).
const SERVER_BATCH: usize = 1_000;

/// A server with customers `c1`, `c2` and item `i1`.
async fn server(dir: &std::path::Path) -> TestServer {
    let server = TestServer::start(dir).await;
    let customers = ["c1", "c2"]
        .map(|id| pb::Customer {
            id: id.into(),
            ..Default::default()
        })
        .to_vec();
    doppel_client::upload_customers(server.channel.clone(), customers, |_| {})
        .await
        .expect("customers");
    let item = pb::Item {
        id: "i1".into(),
        category: "hats".into(),
        price: 10.0,
        in_stock: true,
        ..Default::default()
    };
    doppel_client::upload_items(server.channel.clone(), vec![item], |_| {})
        .await
        .expect("items");
    server
}

/// A view of `i1` by `customer`, the `n`th of its kind, carrying `event_id`.
fn view(customer: &str, event_id: &str, n: i64) -> pb::Event {
    pb::Event {
        customer_id: customer.into(),
        item_id: "i1".into(),
        r#type: pb::EventType::View as i32,
        timestamp_ms: 1_700_000_000_000 + n,
        quantity: 1,
        event_id: event_id.into(),
        ..Default::default()
    }
}

/// Streams `events` and returns the summary (rejections included, unlike the client's
/// `upload_events`).
async fn record(channel: &Channel, events: Vec<pb::Event>) -> pb::WriteSummary {
    IngestClient::new(channel.clone())
        .record_events(tokio_stream::iter(events))
        .await
        .expect("RecordEvents")
        .into_inner()
}

/// The stored event count of `customer`.
async fn event_count(channel: &Channel, customer: &str) -> u64 {
    IngestClient::new(channel.clone())
        .get_customer(pb::GetCustomerRequest {
            customer_id: customer.into(),
        })
        .await
        .expect("GetCustomer")
        .into_inner()
        .event_count
}

/// A TCP forwarder to `target` (`http://host:port`); aborting the task cuts every
/// connection through it at once, as a failing load balancer or network would.
async fn cuttable_link(target: &str) -> (String, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("local addr"));
    let target = target.trim_start_matches("http://").to_owned();
    let link = tokio::spawn(async move {
        // Dropped with the task, which aborts every pipe and closes both of its sockets.
        let mut pipes = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            let target = target.clone();
            pipes.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(&target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, link)
}

#[tokio::test]
async fn recording_the_same_events_twice_stores_them_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path()).await;
    let ch = server.channel.clone();
    let three: Vec<pb::Event> = (0..3).map(|n| view("c1", &format!("ord-{n}"), n)).collect();

    let first = record(&ch, three.clone()).await;
    assert_eq!((first.accepted, first.duplicates), (3, 0));
    let retry = record(&ch, three.clone()).await;
    assert_eq!(
        (retry.accepted, retry.rejected, retry.duplicates),
        (3, 0, 3),
        "a retry is accepted and every event counted as a duplicate"
    );
    assert_eq!(event_count(&ch, "c1").await, 3, "not 6");

    let same_id_twice = record(&ch, vec![view("c1", "ord-9", 9), view("c1", "ord-9", 10)]).await;
    assert_eq!(
        (same_id_twice.accepted, same_id_twice.duplicates),
        (2, 1),
        "a repeat within one stream is a duplicate"
    );
    let other_customer = record(&ch, vec![view("c2", "ord-0", 0)]).await;
    assert_eq!(
        other_customer.duplicates, 0,
        "ids are scoped to their customer"
    );
    assert_eq!(event_count(&ch, "c1").await, 4);
    assert_eq!(event_count(&ch, "c2").await, 1);

    let without_ids = vec![view("c2", "", 1), view("c2", "", 1)];
    for _ in 0..2 {
        let summary = record(&ch, without_ids.clone()).await;
        assert_eq!((summary.accepted, summary.duplicates), (2, 0));
    }
    assert_eq!(
        event_count(&ch, "c2").await,
        5,
        "events without ids are never deduplicated"
    );

    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    let after_restart = record(&server.channel, three).await;
    assert_eq!(
        after_restart.duplicates, 3,
        "recorded ids survive a restart"
    );
    assert_eq!(event_count(&server.channel, "c1").await, 4);
    server.stop().await;
}

#[tokio::test]
async fn a_stream_cut_mid_way_is_retried_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path()).await;
    let ch = server.channel.clone();
    let total = SERVER_BATCH + 200;
    let events: Vec<pb::Event> = (0..total)
        .map(|n| view("c1", &format!("cut-{n}"), n as i64))
        .collect();

    // Send every event through a link we can cut, but keep the stream open, so the server
    // stores its first full batch and holds the rest; then cut the connection.
    let (link_addr, link) = cuttable_link(&server.addr).await;
    let linked = doppel_client::connect(&link_addr).await.expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(total);
    for event in &events {
        tx.send(event.clone()).await.expect("queue");
    }
    let mut client = IngestClient::new(linked);
    let call = tokio::spawn(async move { client.record_events(ReceiverStream::new(rx)).await });
    let until = Instant::now() + Duration::from_secs(30);
    while event_count(&ch, "c1").await < SERVER_BATCH as u64 {
        assert!(Instant::now() < until, "the first batch was never stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    link.abort();
    let cut = call.await.expect("call task");
    let status = cut.expect_err("a cut call gets no summary");
    // tonic reports a connection lost mid-call as UNKNOWN "transport error"; behind a proxy
    // the client sees UNAVAILABLE. Either way: no summary.
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Unknown
        ),
        "{status:?}"
    );
    drop(tx);
    let committed = event_count(&ch, "c1").await;
    assert_eq!(
        committed, SERVER_BATCH as u64,
        "only the first batch was committed before the cut"
    );

    let retry = record(&ch, events).await;
    assert_eq!(retry.accepted, total as u64);
    assert_eq!(
        retry.duplicates, committed,
        "what the cut call committed is reported as duplicates"
    );
    assert_eq!(
        event_count(&ch, "c1").await,
        total as u64,
        "every event stored exactly once"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_event_ids_are_rejected_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = server(dir.path()).await;
    let ch = server.channel.clone();
    let longest = "a".repeat(128);
    let summary = record(
        &ch,
        vec![
            view("c1", "has space", 0),
            view("c1", &"x".repeat(200), 1),
            view("c1", "ünïcode", 2),
            view("c1", "ok:A-z_0.9", 3),
            view("c1", &longest, 4),
        ],
    )
    .await;
    assert_eq!((summary.accepted, summary.rejected), (2, 3));
    let refused: Vec<(u64, &str)> = summary
        .errors
        .iter()
        .map(|e| (e.index, e.field.as_str()))
        .collect();
    assert_eq!(refused, [(0, "event_id"), (1, "event_id"), (2, "event_id")]);
    assert_eq!(event_count(&ch, "c1").await, 2);
    server.stop().await;
}
