//! Calls the process tests share: starting a shard node, connecting, waiting, and writes
//! through a router retried while a cluster settles.

use std::path::Path;
use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use tonic::transport::Channel;

use crate::child::free_addr;

/// `doppel serve` flags of shard node `id` with `shards` logical shards.
pub fn shard_node(redis: &str, id: &str, internal: &str, dir: &Path, shards: u32) -> Vec<String> {
    [
        "--shards",
        &shards.to_string(),
        "--role",
        "shard",
        "--redis",
        redis,
        "--node-id",
        id,
        "--listen",
        &free_addr(),
        "--internal-listen",
        internal,
        "--data-dir",
        &dir.join(id).display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A channel to `addr`, retried for up to 60 s while the process starts.
pub async fn connect(addr: &str) -> Channel {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match Channel::from_shared(format!("http://{addr}"))
            .expect("uri")
            .connect()
            .await
        {
            Ok(channel) => return channel,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("connecting to {addr}: {e}"),
        }
    }
}

/// Polls `check` every 200 ms until it is true; panics with `what` after `patience`.
pub async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, patience: Duration, mut check: F) {
    let deadline = Instant::now() + patience;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A customer with ads consent and a `tier` attribute.
pub fn customer(id: &str, tier: &str) -> pb::Customer {
    pb::Customer {
        id: id.to_owned(),
        attributes: [("tier".to_owned(), tier.to_owned())].into(),
        consent: Some(pb::Consent {
            ads_personalization: true,
            onsite_personalization: true,
        }),
    }
}

/// A view of `item-1` with the event id `paused-<id>`.
pub fn view(id: &str) -> pb::Event {
    pb::Event {
        customer_id: id.to_owned(),
        item_id: "item-1".into(),
        r#type: pb::EventType::View as i32,
        timestamp_ms: 1_700_000_000_000,
        quantity: 1,
        event_id: format!("paused-{id}"),
        ..Default::default()
    }
}

/// `message` with a 30 s deadline.
pub fn with_timeout<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(30));
    request
}

/// Through the router, retried while the cluster is still settling (UNAVAILABLE).
pub async fn write_through_router(
    router: &Channel,
    customers: Vec<pb::Customer>,
    events: Vec<pb::Event>,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut client = IngestClient::new(router.clone());
        let result = async {
            if !customers.is_empty() {
                let summary = client
                    .upsert_customers(with_timeout(tokio_stream::iter(customers.clone())))
                    .await?
                    .into_inner();
                assert_eq!(summary.rejected, 0, "{summary:?}");
            }
            if !events.is_empty() {
                let summary = client
                    .record_events(with_timeout(tokio_stream::iter(events.clone())))
                    .await?
                    .into_inner();
                assert_eq!(summary.rejected, 0, "{summary:?}");
            }
            Ok::<(), tonic::Status>(())
        }
        .await;
        match result {
            Ok(()) => return,
            Err(s) if s.code() == tonic::Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(s) => panic!("write through the router: {s:?}"),
        }
    }
}

/// `doppel serve` flags of a router with `shards` logical shards.
pub fn router_node(redis: &str, listen: &str, shards: u32) -> Vec<String> {
    let shards = shards.to_string();
    [
        "--shards", &shards, "--role", "router", "--redis", redis, "--listen", listen,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The one item the process tests' events name.
pub fn test_item() -> pb::Item {
    pb::Item {
        id: "item-1".into(),
        category: "cat".into(),
        price: 1.0,
        in_stock: true,
        ..Default::default()
    }
}

/// Upserts `item` through the router, retried for up to 60 s while the cluster settles.
pub async fn upsert_item_through_router(
    router: &Channel,
    item: pb::Item,
) -> Result<(), tonic::Status> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match IngestClient::new(router.clone())
            .upsert_items(with_timeout(tokio_stream::iter(vec![item.clone()])))
            .await
        {
            Ok(_) => return Ok(()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(s) => return Err(s),
        }
    }
}
