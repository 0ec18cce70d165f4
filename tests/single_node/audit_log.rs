//! The audit log (issue 15): every administrative call and erasure is recorded with the
//! caller's key id, the target and the outcome — refusals included — kept in the store and
//! read back through ModelAdmin.ListAuditEvents, admin only, in pages.

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

fn as_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {key}")).expect("ascii"),
    );
    request
}

async fn all_events(ch: &tonic::transport::Channel) -> Vec<pb::AuditEvent> {
    let mut admin = ModelAdminClient::new(ch.clone());
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_audit_events(as_key(
                pb::ListAuditEventsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                },
                "admin-key",
            ))
            .await
            .expect("list")
            .into_inner();
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        token = page.next_page_token;
    }
}

#[tokio::test]
async fn administrative_calls_and_erasures_are_recorded_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_path = dir.path().join("api-keys");
    std::fs::write(
        &keys_path,
        format!(
            "ops admin {}\nads read {}\n",
            digest_hex("admin-key"),
            digest_hex("read-key")
        ),
    )
    .expect("keys file");
    let keys: Arc<ApiKeys> = ApiKeys::load(&keys_path).expect("load keys");
    let db = dir.path().join("db");
    let start = |keys: Arc<ApiKeys>| {
        let db = db.clone();
        let dir = dir.path().to_owned();
        async move {
            let store = Arc::new(EmbeddedStore::open(&db).expect("store"));
            let options = ServeOptions {
                api_keys: Some(keys),
                ..ServeOptions::default()
            };
            TestServer::start_serving(store, &dir, NodeConfig::default(), options).await
        }
    };
    let server = start(Arc::clone(&keys)).await;
    let ch = server.channel.clone();

    // An erasure by the admin, one refused to a read key, a version call, a read call.
    let mut ingest = IngestClient::new(ch.clone());
    ingest
        .delete_customer(as_key(
            pb::DeleteCustomerRequest {
                customer_id: "c-gone".into(),
            },
            "admin-key",
        ))
        .await
        .expect("erasure");
    let refused = ingest
        .delete_customer(as_key(
            pb::DeleteCustomerRequest {
                customer_id: "c-kept".into(),
            },
            "read-key",
        ))
        .await
        .expect_err("read key");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let missing = ModelAdminClient::new(ch.clone())
        .activate_version(as_key(
            pb::ActivateVersionRequest {
                model_version: "nope".into(),
                ..Default::default()
            },
            "admin-key",
        ))
        .await
        .expect_err("unknown version");
    assert_eq!(missing.code(), Code::NotFound);
    ingest
        .get_customer(as_key(
            pb::GetCustomerRequest {
                customer_id: "c-kept".into(),
            },
            "read-key",
        ))
        .await
        .ok();

    // Listing is admin only.
    let status = ModelAdminClient::new(ch.clone())
        .list_audit_events(as_key(pb::ListAuditEventsRequest::default(), "read-key"))
        .await
        .expect_err("read key");
    assert_eq!(status.code(), Code::PermissionDenied);

    let expected = |events: &[pb::AuditEvent]| {
        let rows: Vec<(&str, &str, &str, &str)> = events
            .iter()
            .filter(|e| !e.rpc.ends_with("ListAuditEvents"))
            .map(|e| {
                (
                    e.key_id.as_str(),
                    e.rpc.as_str(),
                    e.target.as_str(),
                    e.outcome.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("ops", "/doppel.v1.Ingest/DeleteCustomer", "c-gone", "OK"),
                // Refused before the handler read the request: no target.
                (
                    "ads",
                    "/doppel.v1.Ingest/DeleteCustomer",
                    "",
                    "PERMISSION_DENIED"
                ),
                (
                    "ops",
                    "/doppel.v1.ModelAdmin/ActivateVersion",
                    "nope",
                    "NOT_FOUND"
                ),
            ]
        );
        assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        assert!(events.iter().all(|e| e.time_ms > 1_700_000_000_000));
    };
    // Stored off the call's path: wait until they are there.
    let mut events = all_events(&ch).await;
    for _ in 0..50 {
        if events
            .iter()
            .filter(|e| !e.rpc.ends_with("ListAuditEvents"))
            .count()
            >= 3
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        events = all_events(&ch).await;
    }
    expected(&events);

    let bad = ModelAdminClient::new(ch.clone())
        .list_audit_events(as_key(
            pb::ListAuditEventsRequest {
                page_size: 5_000,
                page_token: String::new(),
            },
            "admin-key",
        ))
        .await
        .expect_err("page too big");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().starts_with("page_size"), "{bad:?}");

    server.stop().await;
    let server = start(keys).await;
    expected(&all_events(&server.channel).await);
    server.stop().await;
}
