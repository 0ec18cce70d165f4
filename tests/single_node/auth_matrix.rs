//! The auth matrix (issue 15): every public RPC, read from the API's own descriptors, called
//! with no key and with a key of each role. No key is UNAUTHENTICATED; a role below the
//! RPC's (from the table here, independent of the server's) is PERMISSION_DENIED; a role at
//! or above it gets through to the handler (whatever it then answers to an empty request).

use std::sync::Arc;
use std::time::Duration;

use doppel_grpc::auth::{ApiKeys, digest_hex};
use doppel_grpc::{NodeConfig, ServeOptions};
use doppel_store::EmbeddedStore;
use doppel_test_support::TestServer;
use prost::Message;
use tonic::Code;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

/// Every RPC of `doppel.v1`, as `/doppel.v1.Service/Method`.
fn rpc_paths() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(doppel_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut paths = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "doppel.v1") {
        for service in &file.service {
            for method in &service.method {
                paths.push(format!("/doppel.v1.{}/{}", service.name(), method.name()));
            }
        }
    }
    paths
}

/// The role each RPC needs (the README's table): 0 read, 1 write, 2 admin.
fn needed(path: &str) -> u8 {
    const ADMIN: &[&str] = &[
        "/doppel.v1.Ingest/DeleteCustomer",
        "/doppel.v1.Policies/SetContactPolicy",
    ];
    const WRITE: &[&str] = &[
        "/doppel.v1.Ingest/UpsertCustomers",
        "/doppel.v1.Ingest/UpsertItems",
        "/doppel.v1.Ingest/RecordEvents",
        "/doppel.v1.Audiences/SaveAudience",
        "/doppel.v1.Audiences/RefreshAudience",
        "/doppel.v1.Audiences/DeleteAudience",
    ];
    if path.starts_with("/doppel.v1.ModelAdmin/")
        || path.starts_with("/doppel.v1.Experiments/")
        || ADMIN.contains(&path)
    {
        2
    } else if WRITE.contains(&path) {
        1
    } else {
        0
    }
}

/// Calls `path` with one empty message (a valid encoding of any request) and `key`;
/// the status code it ends with.
async fn call(channel: &Channel, path: &str, key: Option<&str>) -> Code {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    let mut request = tonic::Request::new(tokio_stream::once(()));
    request.set_timeout(Duration::from_secs(20));
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("x-api-key", key.parse().expect("ascii key"));
    }
    let path = PathAndQuery::try_from(path).expect("path");
    match grpc.streaming(request, path, codec).await {
        Ok(response) => match response.into_inner().message().await {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        },
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_rpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_path = dir.path().join("api-keys");
    std::fs::write(
        &keys_path,
        format!(
            "r read {}\nw write {}\na admin {}\n",
            digest_hex("read-key"),
            digest_hex("write-key"),
            digest_hex("admin-key")
        ),
    )
    .expect("keys file");
    let keys: Arc<ApiKeys> = ApiKeys::load(&keys_path).expect("keys");
    let store = Arc::new(EmbeddedStore::open(&dir.path().join("db")).expect("store"));
    let options = ServeOptions {
        api_keys: Some(keys),
        ..ServeOptions::default()
    };
    let server = TestServer::start_serving(store, dir.path(), NodeConfig::default(), options).await;
    let paths = rpc_paths();
    // 7 services, 34 RPCs when this was written: the descriptors were read.
    assert!(paths.len() >= 34, "only {} RPCs found", paths.len());
    for service in doppel_grpc::server::SERVICE_NAMES {
        assert!(
            paths.iter().any(|p| p.starts_with(&format!("/{service}/"))),
            "{service} missing"
        );
    }
    let roles = [(0u8, "read-key"), (1, "write-key"), (2, "admin-key")];
    for path in &paths {
        let unauthenticated = call(&server.channel, path, None).await;
        assert_eq!(
            unauthenticated,
            Code::Unauthenticated,
            "{path} without a key"
        );
        for (role, key) in roles {
            let code = call(&server.channel, path, Some(key)).await;
            if role < needed(path) {
                assert_eq!(code, Code::PermissionDenied, "{path} with {key}");
            } else {
                assert!(
                    !matches!(
                        code,
                        Code::Unauthenticated | Code::PermissionDenied | Code::Unimplemented
                    ),
                    "{path} with {key}: {code:?}"
                );
            }
        }
    }
}
