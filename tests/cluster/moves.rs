//! Adding a shard node under load: shards move to it (it loads them, claims them, the old
//! owners fence their writes and release them) and no request fails — reads, audience
//! fan-outs and writes alike — and no acknowledged write is lost in the move.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_test_support::cluster::TestShard;
use parking_lot::Mutex;

use crate::fixture::{batches, loaded, seeds};

#[derive(Default)]
struct Outcomes {
    ok: usize,
    failed: Vec<String>,
    /// Last acknowledged `tier` attribute per customer.
    written: HashMap<String, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn adding_a_node_moves_shards_under_load_without_failing_a_request() {
    let mut cluster = loaded(2).await;
    let seeds = seeds(&cluster.data, 30);
    let audience = pb::LookalikeRequest {
        seed_customer_ids: seeds.clone(),
        size: Some(Size::TopPercent(10.0)),
        // By cosine: a classifier's order would move with the summation order of the
        // moments of a shard rebuilt elsewhere (within float noise).
        strategy: pb::Strategy::Centroid as i32,
        ..Default::default()
    };
    let before = batches(cluster.router.channel.clone(), audience.clone())
        .await
        .expect("audience before the move");
    let customers: Vec<pb::Customer> = cluster
        .data
        .customers
        .iter()
        .cloned()
        .map(doppel_grpc::convert::customer_to_pb)
        .collect();

    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let running = Arc::new(AtomicBool::new(true));
    let mut load = Vec::new();
    for worker in 0..4usize {
        let (outcomes, running) = (outcomes.clone(), running.clone());
        let channel = cluster.router.channel.clone();
        let customers = customers.clone();
        let audience = audience.clone();
        load.push(tokio::spawn(async move {
            let mut n = worker;
            while running.load(Ordering::Relaxed) {
                n += 4;
                let customer = &customers[(n * 37) % customers.len()];
                let result: Result<(), String> = match n % 3 {
                    0 => RecommendationsClient::new(channel.clone())
                        .recommend_offers(pb::RecommendRequest {
                            customer_id: customer.id.clone(),
                            k: 10,
                            ..Default::default()
                        })
                        .await
                        .map(|_| ())
                        .map_err(|s| format!("recommend: {s:?}")),
                    1 => match batches(channel.clone(), audience.clone()).await {
                        Ok(b) if b.last().is_some_and(|l| l.shards_answered == 16) => Ok(()),
                        Ok(b) => Err(format!(
                            "audience coverage {:?}",
                            b.last().map(|l| l.shards_answered)
                        )),
                        Err(s) => Err(format!("audience: {s:?}")),
                    },
                    _ => {
                        // n ≡ worker (mod 4) and 4 divides the base: no two workers write
                        // the same customer, so "last acknowledged" is well defined.
                        let customer = &customers[n % customers.len()];
                        let mut updated = customer.clone();
                        let tier = format!("t{n}");
                        updated.attributes.insert("tier".into(), tier.clone());
                        match IngestClient::new(channel.clone())
                            .upsert_customers(tokio_stream::iter(vec![updated]))
                            .await
                        {
                            Ok(r) if r.get_ref().accepted == 1 => {
                                outcomes.lock().written.insert(customer.id.clone(), tier);
                                Ok(())
                            }
                            Ok(r) => Err(format!("upsert summary {:?}", r.into_inner())),
                            Err(s) => Err(format!("upsert: {s:?}")),
                        }
                    }
                };
                let mut o = outcomes.lock();
                match result {
                    Ok(()) => o.ok += 1,
                    Err(e) => o.failed.push(e),
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    cluster.shards.push(Some(
        TestShard::start(&cluster.redis.url(), 2, dir.path()).await,
    ));
    cluster.router.wait_for_nodes(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.store(false, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }

    let outcomes = std::mem::take(&mut *outcomes.lock());
    assert!(outcomes.ok > 50, "the load ran ({} requests)", outcomes.ok);
    assert!(
        outcomes.failed.is_empty(),
        "{} of {} requests failed during the move, e.g. {:?}",
        outcomes.failed.len(),
        outcomes.ok + outcomes.failed.len(),
        &outcomes.failed[..outcomes.failed.len().min(5)]
    );
    let topology = cluster.router.router.topology();
    let spread = topology.shards_by_node();
    assert_eq!(spread.len(), 3, "the new node serves shards: {spread:?}");
    assert_eq!(topology.routable_shards(), 16);

    // Every acknowledged write is visible on the shard's (possibly new) owner.
    let mut client = IngestClient::new(cluster.router.channel.clone());
    for (id, tier) in &outcomes.written {
        let found = client
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.clone(),
            })
            .await
            .expect("customer")
            .into_inner();
        let attributes = found.customer.expect("profile").attributes;
        assert_eq!(attributes.get("tier"), Some(tier), "last write of {id}");
    }
    // And the audience is the same as before the move.
    let after = batches(cluster.router.channel.clone(), audience)
        .await
        .expect("audience after the move");
    let ids = |b: &[pb::LookalikeBatch]| -> Vec<String> {
        b.iter()
            .flat_map(|b| &b.prospects)
            .map(|p| p.customer_id.clone())
            .collect()
    };
    assert_eq!(ids(&after), ids(&before));
}
