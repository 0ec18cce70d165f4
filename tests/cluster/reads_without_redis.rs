//! Reads that need only the nodes' memory go on while Redis is down (a standalone server
//! killed, or one master of a Redis Cluster): the router serves lookalikes with the
//! active-version pointer it last read, and forwards offers.

use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_synth::SynthData;
use doppel_test_support::audience_checks::{find, members};

use crate::fixture::{VERSION, loaded_on, seeds};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lookalikes_and_offers_answer_while_redis_is_down() {
    let mut cluster = loaded_on(RedisServer::standalone_durable(), 2).await;
    let query = pb::LookalikeRequest {
        seed_customer_ids: seeds(&cluster.data, 20),
        size: Some(Size::Count(50)),
        ..Default::default()
    };
    let router = cluster.router.channel.clone();
    let before = find(&router, query.clone()).await.expect("with Redis");
    cluster.redis.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = find(&router, query.clone()).await.expect("Redis down");
    assert_eq!(during[0].model_version, VERSION);
    let ids = |b: &[pb::LookalikeBatch]| {
        members(b)
            .iter()
            .map(|p| p.customer_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&during), ids(&before));
    assert_five_offers(&router, &cluster.data, "Redis down").await;
    cluster.redis.start();
}

/// Five offers for a customer with on-site consent, through `router`.
async fn assert_five_offers(router: &tonic::transport::Channel, data: &SynthData, when: &str) {
    let customer = data
        .customers
        .iter()
        .find(|c| c.consent.onsite_personalization)
        .expect("a customer")
        .id
        .clone();
    let offers = RecommendationsClient::new(router.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer,
            k: 5,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("offers ({when}): {e}"))
        .into_inner();
    assert_eq!(offers.offers.len(), 5);
}

/// On a 3-master Redis Cluster with one master killed (no replicas: its slots stay
/// unserved; once the others mark it failed, the cluster refuses every command, as Redis
/// requires full slot coverage by default), reads that need only the nodes' memory go on,
/// and writes are refused with UNAVAILABLE, never INTERNAL or UNKNOWN.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_go_on_and_writes_say_unavailable_with_a_redis_cluster_master_down() {
    use doppel_proto::v1::ingest_client::IngestClient;
    use doppel_store::RedisConfig;
    use doppel_store::testing::redis_harness::RedisCluster;
    use doppel_test_support::cluster::{TestRouter, TestShard};

    let mut redis = RedisCluster::three_masters();
    let config = RedisConfig::cluster(&redis.urls());
    let (dir0, dir1) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let _nodes = (
        TestShard::start_on(config.clone(), 0, dir0.path()).await,
        TestShard::start_on(config.clone(), 1, dir1.path()).await,
    );
    let router = TestRouter::start_on(config).await;
    router.wait_for_nodes(2).await;
    let data = doppel_test_support::small_base();
    doppel_test_support::load_base(&router.channel, &data, VERSION).await;
    doppel_client::activate(router.channel.clone(), VERSION)
        .await
        .expect("activate");
    let query = pb::LookalikeRequest {
        seed_customer_ids: seeds(&data, 20),
        size: Some(Size::Count(50)),
        ..Default::default()
    };
    let before = find(&router.channel, query.clone()).await.expect("before");

    redis.kill_node(0);
    // Past the harness's 2 s cluster-node-timeout: the survivors have marked it failed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = find(&router.channel, query.clone())
        .await
        .expect("a lookalike with a master down");
    assert_eq!(during[0].model_version, VERSION);
    assert_eq!(members(&during), members(&before));
    assert_five_offers(&router.channel, &data, "a master down").await;

    // Writes are refused with UNAVAILABLE, within the client's deadline.
    let mut client = IngestClient::new(router.channel.clone());
    let mut codes = Vec::new();
    for n in 0..30 {
        let customer = pb::Customer {
            id: format!("down-{n}"),
            ..Default::default()
        };
        let mut request = tonic::Request::new(tokio_stream::iter(vec![customer]));
        request.set_timeout(Duration::from_secs(10));
        match client.upsert_customers(request).await {
            Ok(_) => codes.push(tonic::Code::Ok),
            Err(status) => codes.push(status.code()),
        }
    }
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, tonic::Code::Ok | tonic::Code::Unavailable)),
        "{codes:?}"
    );
    assert!(
        codes.contains(&tonic::Code::Unavailable),
        "a third of the slots are down: some writes must be refused ({codes:?})"
    );
}
