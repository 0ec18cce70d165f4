//! Router readiness: a router reports NOT_SERVING until every shard first has a live
//! owner (a load balancer then holds writes back instead of letting them fail), then
//! SERVING — also after a node is lost later, when partial answers beat no router.

use std::time::{Duration, Instant};

use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::cluster::{TestRouter, TestShard};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn status(channel: &Channel, service: &str) -> ServingStatus {
    let response = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health")
        .into_inner();
    ServingStatus::try_from(response.status).expect("a known status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_router_is_not_serving_until_every_shard_has_an_owner() {
    let redis = RedisServer::standalone();
    let router = TestRouter::start(&redis.url()).await;
    for service in ["", "doppel.v1.Ingest", "doppel.v1.Policies"] {
        assert_eq!(
            status(&router.channel, service).await,
            ServingStatus::NotServing,
            "`{service}` before any shard node"
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let shard = TestShard::start(&redis.url(), 0, dir.path()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&router.channel, "").await != ServingStatus::Serving {
        assert!(Instant::now() < deadline, "the router never became ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(router.router.topology().routable_shards(), 16);

    // Losing the only node later does not take the router out of service.
    shard.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while router.router.topology().routable_shards() > 0 {
        let _ = router.router.refresh().await;
        assert!(Instant::now() < deadline, "the lease never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status(&router.channel, "").await, ServingStatus::Serving);
}
