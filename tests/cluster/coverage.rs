//! A shard node that dies does not fail or hang fan-outs: the router answers with the
//! shards it has, within the deadline, and says how complete the answer is.

use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_types::shard::shard_of;

use crate::fixture::{batches, loaded, seeds};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_shard_node_gives_a_partial_answer_flagged_by_coverage() {
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

    // Node 1 (odd shards) crashes: ports closed, lease left to expire.
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
    assert_eq!((last.shards_answered, last.shards_total), (8, 16));
    let prospects: Vec<&pb::Prospect> = partial.iter().flat_map(|b| &b.prospects).collect();
    assert!(!prospects.is_empty());
    assert!(
        prospects
            .iter()
            .all(|p| shard_of(&p.customer_id, 16) % 2 == 0),
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
    let of_node = |node: u32| {
        cluster
            .data
            .customers
            .iter()
            .find(|c| shard_of(&c.id, 16) % 2 == node)
            .expect("a customer")
            .id
            .clone()
    };
    let ok = client
        .recommend_offers(pb::RecommendRequest {
            customer_id: of_node(0),
            k: 5,
            ..Default::default()
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let started = Instant::now();
    let err = client
        .recommend_offers(pb::RecommendRequest {
            customer_id: of_node(1),
            k: 5,
            ..Default::default()
        })
        .await
        .expect_err("dead owner");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // Once the lease expired, the router stops routing to the dead node at all.
    tokio::time::sleep(doppel_cluster::LEASE_TTL + Duration::from_secs(1)).await;
    cluster.router.router.refresh().await.expect("refresh");
    assert_eq!(cluster.router.router.topology().routable_shards(), 8);
    let later = batches(cluster.router.channel.clone(), request)
        .await
        .expect("still a partial answer");
    assert_eq!(later.last().expect("batch").shards_answered, 8);
}
