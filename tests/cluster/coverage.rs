//! A shard node that dies does not fail or hang fan-outs: the router answers with the
//! shards it has, within the deadline, and says how complete the answer is; once its lease
//! expires, the other node takes its shards over and answers are complete again.

use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_types::shard::shard_of;

use crate::fixture::{batches, loaded, seeds};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_shard_node_gives_partial_answers_then_fails_over() {
    let mut cluster = loaded(2).await;
    let seeds = seeds(&cluster.data, 30);
    let request = pb::LookalikeRequest {
        seed_customer_ids: seeds.clone(),
        size: Some(Size::TopPercent(20.0)),
        ..Default::default()
    };
    let full = batches(cluster.router.channel.clone(), request.clone())
        .await
        .expect("full answer");
    assert_eq!(full[0].shards_answered, 16);

    // Node 1 crashes: ports closed, lease left to expire.
    let topology = cluster.router.router.topology();
    let dead: Vec<u32> = topology
        .shards_by_node()
        .into_iter()
        .find(|(node, _)| node.node_id == "shard-1")
        .map(|(_, shards)| shards)
        .expect("node 1 serves shards");
    let live = 16 - dead.len() as u32;
    assert!(live > 0 && live < 16, "both nodes serve some shards");
    let on_dead = |id: &str| dead.contains(&shard_of(id, 16));
    cluster.shards[1].take().expect("node 1").kill();
    let started = Instant::now();
    let mut request_with_deadline = tonic::Request::new(request.clone());
    request_with_deadline.set_timeout(Duration::from_secs(5));
    let partial = batches(cluster.router.channel.clone(), request_with_deadline)
        .await
        .expect("a partial answer, not an error");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within the deadline"
    );
    let last = partial.last().expect("a batch");
    assert_eq!((last.shards_answered, last.shards_total), (live, 16));
    let prospects: Vec<&pb::Prospect> = partial.iter().flat_map(|b| &b.prospects).collect();
    assert!(!prospects.is_empty());
    assert!(
        prospects.iter().all(|p| !on_dead(&p.customer_id)),
        "only the live node's customers"
    );
    // Seeds held by the dead node are reported as ignored, not as unknown.
    assert!(
        partial[0]
            .ignored_seed_ids
            .iter()
            .all(|id| seeds.contains(id))
    );

    // Per-customer calls: the live node's customers are served; the dead node's get
    // UNAVAILABLE (retryable), not UNKNOWN or a hang.
    let mut client = RecommendationsClient::new(cluster.router.channel.clone());
    let of_node = |dead: bool| {
        cluster
            .data
            .customers
            .iter()
            .find(|c| on_dead(&c.id) == dead)
            .expect("a customer")
            .id
            .clone()
    };
    let ok = client
        .recommend_offers(pb::RecommendRequest {
            customer_id: of_node(false),
            k: 5,
            ..Default::default()
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let started = Instant::now();
    let err = client
        .recommend_offers(pb::RecommendRequest {
            customer_id: of_node(true),
            k: 5,
            ..Default::default()
        })
        .await
        .expect_err("dead owner");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Once the lease expired, the surviving node takes the dead node's shards over (from
    // Redis) and the answers are complete again.
    cluster.wait_for_sole_survivor().await;
    let later = batches(cluster.router.channel.clone(), request)
        .await
        .expect("a complete answer again");
    assert_eq!(later.last().expect("batch").shards_answered, 16);
    let again: Vec<&str> = later
        .iter()
        .flat_map(|b| &b.prospects)
        .map(|p| p.customer_id.as_str())
        .collect();
    let before: Vec<&str> = full
        .iter()
        .flat_map(|b| &b.prospects)
        .map(|p| p.customer_id.as_str())
        .collect();
    assert_eq!(
        again, before,
        "the failover answer equals the one before the crash"
    );
}
