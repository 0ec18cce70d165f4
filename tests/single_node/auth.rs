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

/// Per-key rate limits: a key gets its burst, then RESOURCE_EXHAUSTED naming it with the
/// wait in the trailers, shared over connections; another key keeps its own bucket.
#[tokio::test]
async fn each_key_is_held_to_its_rate_over_every_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_path = dir.path().join("api-keys");
    std::fs::write(
        &keys_path,
        format!(
            "greedy read {}\ncalm read {}\n",
            digest_hex("greedy-key"),
            digest_hex("calm-key")
        ),
    )
    .expect("keys file");
    let keys: Arc<ApiKeys> = ApiKeys::load(&keys_path).expect("load keys");
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db")).expect("store"));
    let options = ServeOptions {
        api_keys: Some(keys),
        // One call per 10 s after a burst of 5: the test cannot refill by accident.
        key_rate_limit: Some(doppel_grpc::auth::RateLimit {
            per_second: 0.1,
            burst: 5.0,
        }),
        ..ServeOptions::default()
    };
    let server = TestServer::start_serving(store, dir.path(), NodeConfig::default(), options).await;
    let call = |key: &'static str, channel: tonic::transport::Channel| async move {
        doppel_proto::v1::policies_client::PoliciesClient::new(channel)
            .get_contact_policy(with_key(pb::GetContactPolicyRequest {}, "x-api-key", key))
            .await
    };
    // The burst is spent over two connections: the bucket is the key's, not the
    // connection's.
    let other = doppel_client::connect(&server.addr)
        .await
        .expect("second connection");
    for i in 0..5 {
        let channel = if i % 2 == 0 {
            server.channel.clone()
        } else {
            other.clone()
        };
        call("greedy-key", channel).await.expect("within the burst");
    }
    let refused = call("greedy-key", other.clone())
        .await
        .expect_err("over the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("greedy"), "{refused:?}");
    let wait: u64 = refused
        .metadata()
        .get("retry-after-ms")
        .expect("retry-after-ms trailer")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a number of ms");
    assert!((1..=10_000).contains(&wait), "{wait}");
    assert!(refused.metadata().get("grpc-retry-pushback-ms").is_some());
    call("calm-key", server.channel.clone())
        .await
        .expect("another key has its own bucket");
    // Health is never limited.
    let mut health = HealthClient::new(server.channel.clone());
    for _ in 0..10 {
        health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .expect("health");
    }
}
