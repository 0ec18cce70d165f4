//! A `--role all` node on a real Redis (instead of the embedded store): it serves, and a
//! restarted node rebuilt from Redis answers exactly as before.

use std::sync::Arc;

use doppel_grpc::NodeConfig;
use doppel_proto::v1 as pb;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_store::{RedisConfig, RedisStore, Store};
use doppel_test_support::{TestServer, load_base, small_base};

use crate::fixture::{audience, everyone, prospects};

async fn redis_store(url: &str) -> Arc<dyn Store> {
    Arc::new(
        RedisStore::connect(RedisConfig::standalone(url))
            .await
            .expect("connect to redis"),
    )
}

#[tokio::test]
async fn a_node_on_redis_serves_and_rebuilds_from_it_after_a_restart() {
    let redis = RedisServer::standalone();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_on(
        redis_store(&redis.url()).await,
        dir.path(),
        NodeConfig::default(),
    )
    .await;
    let data = small_base();
    load_base(&server.channel, &data, "v1").await;
    doppel_client::activate(server.channel.clone(), "v1")
        .await
        .expect("activate");
    let seeds: Vec<String> = data
        .customers
        .iter()
        .filter(|c| c.consent.ads_personalization)
        .take(20)
        .map(|c| c.id.clone())
        .collect();
    let ids = |batches: &[pb::LookalikeBatch]| -> Vec<String> {
        prospects(batches)
            .iter()
            .map(|p| p.customer_id.clone())
            .collect()
    };
    let before = ids(&audience(server.channel.clone(), everyone(seeds.clone()))
        .await
        .expect("lookalike"));
    assert!(before.len() > 1_000);
    server.stop().await;

    // A new node process state, rebuilt from Redis alone.
    let server = TestServer::start_on(
        redis_store(&redis.url()).await,
        dir.path(),
        NodeConfig::default(),
    )
    .await;
    let batches = audience(server.channel.clone(), everyone(seeds))
        .await
        .expect("lookalike after restart");
    assert_eq!(batches[0].model_version, "v1");
    assert_eq!(
        ids(&batches),
        before,
        "the rebuilt node answers differently"
    );
    server.stop().await;
}
