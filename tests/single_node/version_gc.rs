//! Old versions are garbage-collected after an activation: retired ones beyond the newest
//! `keep_versions` go (metadata and vectors), never the active one or the rollback target.

use doppel_grpc::NodeConfig;
use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_test_support::{TestServer, load_base, small_base};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activations_collect_retired_versions_beyond_the_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = NodeConfig {
        keep_versions: 1,
        ..NodeConfig::default()
    };
    let server = TestServer::start_with(dir.path(), config).await;
    let data = small_base();
    load_base(&server.channel, &data, "v1").await;
    doppel_client::activate(server.channel.clone(), "v1")
        .await
        .expect("activate v1");
    let dim = data.customer_vectors[0].1.len() as u32;
    for version in ["v2", "v3", "v4"] {
        doppel_client::import_vectors(
            server.channel.clone(),
            version,
            dim,
            &data.customer_vectors,
            &data.item_vectors,
        )
        .await
        .expect("import");
        doppel_client::activate(server.channel.clone(), version)
            .await
            .expect("activate");
    }
    let mut admin = ModelAdminClient::new(server.channel.clone());
    let names: Vec<String> = admin
        .list_versions(pb::ListVersionsRequest {})
        .await
        .expect("list")
        .into_inner()
        .versions
        .into_iter()
        .map(|v| v.model_version)
        .collect();
    // v4 active, v3 the rollback target, v2 the one retired version kept; v1 collected.
    assert_eq!(names, ["v2", "v3", "v4"]);
    let gone = admin
        .describe_version(pb::DescribeVersionRequest {
            model_version: "v1".into(),
        })
        .await
        .expect_err("v1 was collected");
    assert_eq!(gone.code(), tonic::Code::NotFound);
    let back = admin
        .rollback(pb::RollbackRequest {})
        .await
        .expect("rollback still works")
        .into_inner();
    assert_eq!(back.model_version, "v3");
    server.stop().await;
}
