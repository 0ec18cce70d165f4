//! Redis killed and restarted under write load: writes fail with UNAVAILABLE while it is
//! down (never UNKNOWN or INTERNAL), succeed again once it is back, and no acknowledged
//! write is lost (the server runs with `appendonly yes`, `appendfsync always`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_store::testing::redis_harness::RedisServer;
use parking_lot::Mutex;

use crate::fixture::loaded_on;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restart_under_load_loses_no_acknowledged_write() {
    let mut cluster = loaded_on(RedisServer::standalone_durable(), 2).await;
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<tonic::Code>::new()));
    let running = Arc::new(AtomicBool::new(true));
    let writer = {
        let (acked, refused, running) = (acked.clone(), refused.clone(), running.clone());
        let channel = cluster.router.channel.clone();
        tokio::spawn(async move {
            let mut client = IngestClient::new(channel);
            let mut n = 0u64;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let id = format!("late-{n}");
                let customer = pb::Customer {
                    id: id.clone(),
                    consent: Some(pb::Consent {
                        ads_personalization: true,
                        onsite_personalization: true,
                    }),
                    ..Default::default()
                };
                let mut request = tonic::Request::new(tokio_stream::iter(vec![customer]));
                request.set_timeout(Duration::from_secs(3));
                match client.upsert_customers(request).await {
                    Ok(r) if r.get_ref().accepted == 1 => acked.lock().push(id),
                    Ok(r) => panic!("unexpected summary {:?}", r.into_inner()),
                    Err(status) => refused.lock().push(status.code()),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.redis.kill();
    // Down longer than a write's 3 s deadline: a write in flight when Redis died cannot
    // wait the outage out (the client's reconnect would hide it otherwise).
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    cluster.redis.start();
    // Writes succeed again once Redis is back.
    let before = acked.lock().len();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while acked.lock().len() < before + 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes did not recover after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.store(false, Ordering::Relaxed);
    writer.await.expect("writer");

    let refused = refused.lock().clone();
    assert!(
        !refused.is_empty(),
        "Redis was down: some writes must have failed"
    );
    // UNAVAILABLE from the server, or the client's own 3 s deadline passing (tonic reports
    // that as CANCELLED "Timeout expired", or DEADLINE_EXCEEDED): never UNKNOWN/INTERNAL.
    assert!(
        refused.iter().all(|c| matches!(
            c,
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
        )),
        "failures while Redis was down must be UNAVAILABLE: {refused:?}"
    );
    let acked = acked.lock().clone();
    let mut client = IngestClient::new(cluster.router.channel.clone());
    for id in &acked {
        let found = client
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.clone(),
            })
            .await;
        assert!(found.is_ok(), "acknowledged `{id}` lost: {found:?}");
    }
}
