//! API keys with roles (issue 15, part 1): a missing or unknown key is UNAUTHENTICATED, a
//! key whose role is too low PERMISSION_DENIED, health stays open, reflection needs a key,
//! and a rewritten keys file takes effect without a restart.

use std::sync::Arc;

use doppel_grpc::auth::{ApiKeys, digest_hex};
use doppel_grpc::{NodeConfig, ServeOptions};
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_store::EmbeddedStore;
use doppel_test_support::TestServer;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;

fn with_key<T>(message: T, header: &'static str, value: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        header,
        MetadataValue::try_from(value).expect("ascii header"),
    );
    request
}

fn list_versions() -> pb::ListVersionsRequest {
    pb::ListVersionsRequest {}
}

#[tokio::test]
async fn calls_need_a_key_with_the_right_role() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_path = dir.path().join("api-keys");
    std::fs::write(
        &keys_path,
        format!(
            "# test keys\nops admin {}\nshop write {}\nads read {}\n",
            digest_hex("admin-key"),
            digest_hex("write-key"),
            digest_hex("read-key")
        ),
    )
    .expect("keys file");
    let keys: Arc<ApiKeys> = ApiKeys::load(&keys_path).expect("load keys");
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db")).expect("store"));
    let options = ServeOptions {
        api_keys: Some(Arc::clone(&keys)),
        ..ServeOptions::default()
    };
    let server = TestServer::start_serving(store, dir.path(), NodeConfig::default(), options).await;
    let ch = server.channel.clone();
    let mut admin = ModelAdminClient::new(ch.clone());

    let none = admin
        .list_versions(list_versions())
        .await
        .expect_err("no key");
    assert_eq!(none.code(), Code::Unauthenticated, "{none:?}");
    let unknown = admin
        .list_versions(with_key(list_versions(), "x-api-key", "guess"))
        .await
        .expect_err("unknown key");
    assert_eq!(unknown.code(), Code::Unauthenticated, "{unknown:?}");
    let low = admin
        .list_versions(with_key(
            list_versions(),
            "authorization",
            "Bearer read-key",
        ))
        .await
        .expect_err("read key on ModelAdmin");
    assert_eq!(low.code(), Code::PermissionDenied, "{low:?}");
    assert!(low.message().contains("ads"), "names the key id: {low:?}");
    admin
        .list_versions(with_key(
            list_versions(),
            "authorization",
            "Bearer admin-key",
        ))
        .await
        .expect("admin key");

    // Erasure is admin-only; ingest is write; GetCustomer is read.
    let mut ingest = IngestClient::new(ch.clone());
    let erase = |key: &str| {
        with_key(
            pb::DeleteCustomerRequest {
                customer_id: "c1".into(),
            },
            "x-api-key",
            key,
        )
    };
    let denied = ingest
        .delete_customer(erase("write-key"))
        .await
        .expect_err("write key erases");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    ingest
        .delete_customer(erase("admin-key"))
        .await
        .expect("admin erases");
    let customer = |key: &str| {
        with_key(
            tokio_stream::iter(vec![pb::Customer {
                id: "c1".into(),
                ..Default::default()
            }]),
            "x-api-key",
            key,
        )
    };
    let denied = ingest
        .upsert_customers(customer("read-key"))
        .await
        .expect_err("read key writes");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    ingest
        .upsert_customers(customer("write-key"))
        .await
        .expect("write key writes");
    ingest
        .get_customer(with_key(
            pb::GetCustomerRequest {
                customer_id: "c1".into(),
            },
            "x-api-key",
            "read-key",
        ))
        .await
        .expect("read key reads");

    // Health is open (probes carry no key); reflection needs one.
    let health = HealthClient::new(ch.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health without a key");
    assert_eq!(health.into_inner().status, 1, "SERVING");
    let reflect = || ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let refused = ServerReflectionClient::new(ch.clone())
        .server_reflection_info(tokio_stream::iter(vec![reflect()]))
        .await
        .expect_err("reflection without a key");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    ServerReflectionClient::new(ch.clone())
        .server_reflection_info(with_key(
            tokio_stream::iter(vec![reflect()]),
            "x-api-key",
            "read-key",
        ))
        .await
        .expect("reflection with a key");

    // Rotation: a new line, then the old one removed; no restart.
    std::fs::write(
        &keys_path,
        format!("ops-2026 admin {}\n", digest_hex("new-admin-key")),
    )
    .expect("rewrite keys");
    assert!(keys.reload());
    admin
        .list_versions(with_key(list_versions(), "x-api-key", "new-admin-key"))
        .await
        .expect("the new key works");
    let old = admin
        .list_versions(with_key(list_versions(), "x-api-key", "admin-key"))
        .await
        .expect_err("the old key is gone");
    assert_eq!(old.code(), Code::Unauthenticated, "{old:?}");
    // A broken file is refused and the keys in force stay.
    std::fs::write(&keys_path, "garbage\n").expect("break keys");
    assert!(!keys.reload());
    admin
        .list_versions(with_key(list_versions(), "x-api-key", "new-admin-key"))
        .await
        .expect("still in force");
    server.stop().await;
}
