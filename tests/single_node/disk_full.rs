//! A full data disk: writes fail with RESOURCE_EXHAUSTED naming the disk, health goes
//! NOT_SERVING, and once space is freed the node takes writes again and reports SERVING
//! without a restart. The disk is mocked under a real store and a real server
//! (`doppel_store::testing::full_disk`): filling a real one needs root.

use std::sync::Arc;
use std::time::Duration;

use doppel_grpc::NodeConfig;
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_store::testing::full_disk::FullDisk;
use doppel_test_support::TestServer;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Longest wait for health to change or a write to go through again.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between polls.
const POLL: Duration = Duration::from_millis(20);

fn customer(id: &str) -> pb::Customer {
    pb::Customer {
        id: id.to_owned(),
        attributes: [("country".to_owned(), "SE".to_owned())].into(),
        consent: Some(pb::Consent {
            ads_personalization: true,
            onsite_personalization: true,
        }),
    }
}

async fn upsert(channel: &Channel, ids: &[&str]) -> Result<pb::WriteSummary, tonic::Status> {
    let records: Vec<pb::Customer> = ids.iter().map(|id| customer(id)).collect();
    IngestClient::new(channel.clone())
        .upsert_customers(tokio_stream::iter(records))
        .await
        .map(tonic::Response::into_inner)
}

async fn health(channel: &Channel) -> i32 {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

async fn wait_for_health(channel: &Channel, expected: ServingStatus) {
    let deadline = tokio::time::Instant::now() + RECOVERY_TIMEOUT;
    while health(channel).await != expected as i32 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "health never became {expected:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn a_full_disk_is_resource_exhausted_and_not_serving_until_space_is_freed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FullDisk::new();
    let store = disk.open_store(dir.path()).expect("open store");
    let db_path = store.path().display().to_string();
    let server = TestServer::start_on(Arc::new(store), dir.path(), NodeConfig::default()).await;
    let channel = server.channel.clone();

    upsert(&channel, &["c1", "c2"])
        .await
        .expect("upsert with room");
    assert_eq!(health(&channel).await, ServingStatus::Serving as i32);

    disk.set_full(true);
    let status = upsert(&channel, &["c3"])
        .await
        .expect_err("upsert on a full disk");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("data disk full") && status.message().contains(&db_path),
        "the message names the disk: {}",
        status.message()
    );
    wait_for_health(&channel, ServingStatus::NotServing).await;

    disk.set_full(false);
    let deadline = tokio::time::Instant::now() + RECOVERY_TIMEOUT;
    while let Err(status) = upsert(&channel, &["c4"]).await {
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never recovered: {status:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    wait_for_health(&channel, ServingStatus::Serving).await;

    let mut ingest = IngestClient::new(channel.clone());
    for id in ["c1", "c2", "c4"] {
        let got = ingest
            .get_customer(pb::GetCustomerRequest {
                customer_id: id.to_owned(),
            })
            .await
            .unwrap_or_else(|s| panic!("get {id}: {s:?}"))
            .into_inner();
        assert_eq!(got.customer.map(|c| c.id).as_deref(), Some(id));
    }
    let status = ingest
        .get_customer(pb::GetCustomerRequest {
            customer_id: "c3".to_owned(),
        })
        .await
        .expect_err("the refused customer was not stored");
    assert_eq!(status.code(), tonic::Code::NotFound);
    server.stop().await;
}
