//! Reads that need only the nodes' memory go on while Redis is down: the router serves
//! lookalikes with the active-version pointer it last read, and forwards offers.

use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_store::testing::redis_harness::RedisServer;
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
    let customer = cluster
        .data
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
        .expect("offers while Redis is down")
        .into_inner();
    assert_eq!(offers.offers.len(), 5);
    cluster.redis.start();
}
