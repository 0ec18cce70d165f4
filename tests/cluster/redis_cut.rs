//! One shard node cut from Redis while everything else keeps its links (a black-hole TCP
//! proxy between that node and Redis): writes for its shards are refused, never hung and
//! never acknowledged without being kept; reads keep answering; the other node takes its
//! shards over once its lease expires; when the link returns it rejoins and takes shards
//! back, and every acknowledged write is there.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::audience_checks::find;
use doppel_test_support::cluster::{TestRouter, TestShard};
use doppel_test_support::cut_proxy::CutProxy;
use doppel_test_support::{load_base, small_base};
use parking_lot::Mutex;

use crate::fixture::{VERSION, seeds};

fn customer(id: &str) -> pb::Customer {
    pb::Customer {
        id: id.to_owned(),
        consent: Some(pb::Consent {
            ads_personalization: true,
            onsite_personalization: true,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_cut_from_redis_hands_its_shards_over_and_rejoins_without_losing_writes() {
    let redis = RedisServer::standalone_durable();
    let url = redis.url();
    let upstream: SocketAddr = url
        .trim_start_matches("redis://")
        .parse()
        .expect("redis address");
    let proxy = CutProxy::start(upstream).await;
    let (dir0, dir1) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let _kept = TestShard::start(&url, 0, dir0.path()).await;
    let _cut = TestShard::start(&format!("redis://{}", proxy.addr), 1, dir1.path()).await;
    let router = TestRouter::start(&url).await;
    router.wait_for_nodes(2).await;
    let data = small_base();
    load_base(&router.channel, &data, VERSION).await;
    doppel_client::activate(router.channel.clone(), VERSION)
        .await
        .expect("activate");

    // Writes over every shard, all along.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<(tonic::Code, String)>::new()));
    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let (acked, refused, running) = (acked.clone(), refused.clone(), running.clone());
        let mut client = IngestClient::new(router.channel.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("cut-{n}");
                let mut request = tonic::Request::new(tokio_stream::iter(vec![customer(&id)]));
                request.set_timeout(Duration::from_secs(8));
                let started = tokio::time::Instant::now();
                match client.upsert_customers(request).await {
                    Ok(r) if r.get_ref().accepted == 1 => acked.lock().push(id),
                    Ok(r) => panic!("unexpected summary {:?}", r.into_inner()),
                    Err(status) => {
                        // A refusal must come before the client's own deadline: never a
                        // hang behind the partition.
                        assert!(
                            started.elapsed() < Duration::from_secs(8),
                            "`{id}` hung: {status:?}"
                        );
                        refused
                            .lock()
                            .push((status.code(), status.message().to_owned()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();

    // Reads that need only memory keep answering (whole or partial), or say UNAVAILABLE.
    let query = pb::LookalikeRequest {
        seed_customer_ids: seeds(&data, 20),
        size: Some(Size::Count(50)),
        ..Default::default()
    };
    match find(&router.channel, query.clone()).await {
        Ok(batches) => assert_eq!(batches[0].model_version, VERSION),
        Err(status) => assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}"),
    }

    // Node 0 takes every shard over once node 1's lease has expired.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let _ = router.router.refresh().await;
        let topology = router.router.topology();
        if topology.routable_shards() == 16 && topology.nodes.len() == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the node still linked did not take the cut node's shards over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let during_cut = acked.lock().len();
    let recovered = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().len() < during_cut + 20 {
        assert!(
            tokio::time::Instant::now() < recovered,
            "writes did not recover after the takeover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The link returns: node 1 rejoins and takes shards back.
    proxy.restore();
    router.wait_for_nodes(2).await;
    let rejoined = acked.lock().len();
    let settled = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().len() < rejoined + 20 {
        assert!(
            tokio::time::Instant::now() < settled,
            "writes did not go on after the node rejoined"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.store(false, Ordering::Relaxed);
    writer.await.expect("writer");
    let batches = find(&router.channel, query).await.expect("lookalike after");
    assert_eq!(batches[0].model_version, VERSION);

    let refused = refused.lock().clone();
    assert!(
        refused.iter().all(|(c, _)| matches!(
            c,
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        )),
        "writes refused behind the partition must say UNAVAILABLE: {refused:?}"
    );
    let acked = acked.lock().clone();
    assert!(acked.len() >= 40);
    let mut client = IngestClient::new(router.channel.clone());
    for id in &acked {
        let found = client
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.clone(),
            })
            .await;
        assert!(found.is_ok(), "acknowledged `{id}` lost: {found:?}");
    }
    eprintln!(
        "{} writes acknowledged, {} refused ({:?})",
        acked.len(),
        refused.len(),
        refused.first()
    );
}
