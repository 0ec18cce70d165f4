//! A shard node that restarts takes its shards back from its own snapshot files — patched
//! from Redis where the shard changed meanwhile — instead of rebuilding the graphs; a
//! snapshot with a flipped byte is refused and the shard is rebuilt from Redis. Answers are
//! the same either way.

use std::time::{Duration, Instant};

use doppel_proto::internal::v1 as ipb;
use doppel_proto::internal::v1::shard_client::ShardClient;
use doppel_proto::v1 as pb;
use doppel_proto::v1::lookalike_request::Size;
use doppel_test_support::cluster::TestShard;

use crate::fixture::{Cluster, VERSION, batches, loaded, seeds};

async fn status_of(cluster: &Cluster, node_id: &str) -> ipb::NodeStatusResponse {
    let node = cluster
        .router
        .router
        .topology()
        .nodes
        .iter()
        .find(|n| n.node_id == node_id)
        .cloned()
        .expect("node is live");
    ShardClient::new(node.channel.clone())
        .node_status(ipb::NodeStatusRequest {})
        .await
        .expect("status")
        .into_inner()
}

async fn wait_for_one_node(cluster: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        cluster.router.router.refresh().await.expect("refresh");
        let topology = cluster.router.router.topology();
        if topology.nodes.len() == 1 && topology.routable_shards() == 16 {
            return;
        }
        assert!(Instant::now() < deadline, "no takeover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(batches: &[pb::LookalikeBatch]) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| &b.prospects)
        .map(|p| p.customer_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarting_node_loads_its_shards_from_snapshots_and_refuses_damaged_ones() {
    let mut cluster = loaded(2).await;
    let request = pb::LookalikeRequest {
        seed_customer_ids: seeds(&cluster.data, 25),
        size: Some(Size::TopPercent(25.0)),
        // By cosine: a classifier's order would move with the summation order of the
        // moments of a shard rebuilt elsewhere (within float noise).
        strategy: pb::Strategy::Centroid as i32,
        ..Default::default()
    };
    let before = batches(cluster.router.channel.clone(), request.clone())
        .await
        .expect("audience");
    let dir = cluster._dirs[1].path().to_owned();
    let shard_dir = dir.join("snapshots").join(VERSION).join("shards");
    let saved: Vec<_> = std::fs::read_dir(&shard_dir)
        .expect("node 1 wrote shard snapshots")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!saved.is_empty());

    // Restart node 1: the other node holds its shards meanwhile, then hands them back.
    cluster.shards[1].take().expect("node 1").stop().await;
    wait_for_one_node(&cluster).await;
    cluster.shards[1] = Some(TestShard::start(&cluster.redis.url(), 1, &dir).await);
    cluster.router.wait_for_nodes(2).await;
    let status = status_of(&cluster, "shard-1").await;
    assert!(status.shards_from_snapshot > 0, "{status:?}");
    assert_eq!(status.shards_rebuilt, 0, "{status:?}");
    let after = batches(cluster.router.channel.clone(), request.clone())
        .await
        .expect("audience");
    assert_eq!(ids(&after), ids(&before));
    assert_eq!(after.last().expect("batch").shards_answered, 16);

    // A flipped byte in one shard's segment: refused, rebuilt from Redis, same answers.
    let victim = std::fs::read_dir(&shard_dir)
        .expect("snapshots")
        .flatten()
        .map(|e| e.path().join("shard.seg"))
        .find(|p| p.exists())
        .expect("a shard segment");
    cluster.shards[1].take().expect("node 1").stop().await;
    wait_for_one_node(&cluster).await;
    let mut bytes = std::fs::read(&victim).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&victim, bytes).expect("write");
    cluster.shards[1] = Some(TestShard::start(&cluster.redis.url(), 1, &dir).await);
    cluster.router.wait_for_nodes(2).await;
    let status = status_of(&cluster, "shard-1").await;
    assert_eq!(status.shards_rebuilt, 1, "{status:?}");
    assert!(status.shards_from_snapshot > 0, "{status:?}");
    let again = batches(cluster.router.channel.clone(), request)
        .await
        .expect("audience");
    assert_eq!(ids(&again), ids(&before));
}
