//! Version snapshots: a restarted node loads its indexes from disk (same answers, erasures
//! since the snapshot applied); a damaged snapshot is refused and the node rebuilds.

use doppel_grpc::NodeConfig;
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_test_support::{TestServer, load_base, small_base};

use crate::fixture::{audience, prospects};

/// Everyone eligible, by cosine to the seeds' centroid: a customer erased since the
/// snapshot must leave the rest of the order as it was (a classifier's order would move with
/// the population it is fitted against).
fn centroid(seeds: Vec<String>) -> pb::LookalikeRequest {
    pb::LookalikeRequest {
        strategy: pb::Strategy::Centroid as i32,
        ..crate::fixture::everyone(seeds)
    }
}

async fn from_snapshot(server: &TestServer) -> bool {
    ModelAdminClient::new(server.channel.clone())
        .describe_index(pb::DescribeIndexRequest::default())
        .await
        .expect("describe")
        .into_inner()
        .loaded_from_snapshot
}

#[tokio::test]
async fn restarts_load_snapshots_and_rebuild_when_one_is_damaged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = NodeConfig {
        snapshot_dir: Some(dir.path().join("snapshots")),
        ..NodeConfig::default()
    };
    let server = TestServer::start_with(dir.path(), config.clone()).await;
    let data = small_base();
    load_base(&server.channel, &data, "v1").await;
    doppel_client::activate(server.channel.clone(), "v1")
        .await
        .expect("activate");
    assert!(!from_snapshot(&server).await, "the first load builds");
    let seeds: Vec<String> = data
        .customers
        .iter()
        .filter(|c| c.consent.ads_personalization)
        .take(10)
        .map(|c| c.id.clone())
        .collect();
    let ids = |batches: Vec<pb::LookalikeBatch>| -> Vec<String> {
        prospects(&batches)
            .iter()
            .map(|p| p.customer_id.clone())
            .collect()
    };
    let before = ids(audience(server.channel.clone(), centroid(seeds.clone()))
        .await
        .expect("audience"));
    assert!(dir.path().join("snapshots/v1/manifest.txt").exists());
    // Erased after the snapshot was written: the ledger keeps it out on load.
    let victim = before[0].clone();
    IngestClient::new(server.channel.clone())
        .delete_customer(pb::DeleteCustomerRequest {
            customer_id: victim.clone(),
        })
        .await
        .expect("erase");
    server.stop().await;

    let server = TestServer::start_with(dir.path(), config.clone()).await;
    assert!(
        from_snapshot(&server).await,
        "the restart loads the snapshot"
    );
    let after = ids(audience(server.channel.clone(), centroid(seeds.clone()))
        .await
        .expect("audience"));
    let expected: Vec<String> = before.iter().filter(|id| **id != victim).cloned().collect();
    assert_eq!(after, expected);
    server.stop().await;

    // Flip a byte: refused, rebuilt from the store, same answers, fresh snapshot written.
    let seg = dir.path().join("snapshots/v1/shard-0003.seg");
    let mut bytes = std::fs::read(&seg).expect("read segment");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&seg, bytes).expect("write segment");
    let server = TestServer::start_with(dir.path(), config).await;
    assert!(
        !from_snapshot(&server).await,
        "a damaged snapshot is not used"
    );
    let rebuilt = ids(audience(server.channel.clone(), centroid(seeds.clone()))
        .await
        .expect("audience"));
    assert_eq!(rebuilt, expected);
    assert!(dir.path().join("snapshots/v1/manifest.txt").exists());
    server.stop().await;
}
