//! One shard node cut from Redis while everything else keeps its links (a black-hole TCP
//! proxy between that node and Redis): writes for its shards are refused, never hung and
//! never acknowledged without being kept; reads keep answering; the other node takes its
//! shards over once its lease expires; when the link returns it rejoins and takes shards
//! back, and every acknowledged write is there.

use std::net::SocketAddr;
use std::time::Duration;

use doppel_proto::v1 as pb;
use doppel_proto::v1::lookalike_request::Size;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::audience_checks::find;
use doppel_test_support::cluster::{TestRouter, TestShard};
use doppel_test_support::cut_proxy::CutProxy;
use doppel_test_support::{load_base, small_base};

use crate::fixture::{VERSION, seeds};
use crate::write_load::WriteLoad;

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
    let load = WriteLoad::start(router.channel.clone(), "cut", Duration::from_secs(8));
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
    load.wait_for_more(
        20,
        Duration::from_secs(30),
        "writes did not recover after the takeover",
    )
    .await;

    // The link returns: node 1 rejoins and takes shards back.
    proxy.restore();
    router.wait_for_nodes(2).await;
    load.wait_for_more(
        20,
        Duration::from_secs(30),
        "writes did not go on after the node rejoined",
    )
    .await;
    let outcome = load.stop().await;
    let batches = find(&router.channel, query).await.expect("lookalike after");
    assert_eq!(batches[0].model_version, VERSION);

    // The node's own Redis timeout (5 s) answers before the client's 8 s deadline: every
    // refusal is the server's UNAVAILABLE, none a hang cut short by the client.
    outcome.assert_refusals_unavailable(false);
    outcome.assert_none_lost(router.channel.clone()).await;
    eprintln!(
        "{} writes acknowledged, {} refused ({:?})",
        outcome.acked.len(),
        outcome.refused.len(),
        outcome.refused.first()
    );
}
