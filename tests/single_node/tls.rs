//! TLS and mTLS on the public port (issue 15), with the test-only certificates of
//! `tests/fixtures/tls`: a client that trusts the CA gets in; with a client CA configured,
//! only clients holding a certificate that CA signed do; plaintext never does.

use std::path::PathBuf;
use std::sync::Arc;

use doppel_client::ClientTls;
use doppel_proto::v1 as pb;
use doppel_proto::v1::policies_client::PoliciesClient;
use doppel_test_support::TestServer;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/tls")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

async fn server(client_ca: bool) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(doppel_store::EmbeddedStore::open(dir.path()).expect("store"));
    let ca = fixture("ca.pem");
    let tls = doppel_grpc::tls::server_tls(
        &fixture("server.pem"),
        &fixture("server.key"),
        client_ca.then_some(ca.as_path()),
    )
    .expect("server TLS");
    let options = doppel_grpc::ServeOptions {
        tls: Some(tls),
        ..Default::default()
    };
    let server = TestServer::start_serving(
        store,
        dir.path(),
        doppel_grpc::NodeConfig::default(),
        options,
    )
    .await;
    (server, dir)
}

/// A call over a fresh connection with `tls` (none: plaintext); Err(why) when it fails.
async fn call(addr: &str, tls: Option<ClientTls>) -> Result<(), String> {
    let channel = doppel_client::connect_with(addr, tls.as_ref())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    PoliciesClient::new(channel)
        .get_contact_policy(pb::GetContactPolicyRequest {})
        .await
        .map(|_| ())
        .map_err(|s| format!("{s:?}"))
}

fn trusting(identity: Option<(&str, &str)>) -> ClientTls {
    ClientTls {
        ca_pem: read("ca.pem"),
        identity_pem: identity.map(|(cert, key)| (read(cert), read(key))),
        domain: Some("localhost".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plaintext() {
    let (server, _dir) = server(false).await;
    call(&server.addr, Some(trusting(None)))
        .await
        .expect("TLS client");
    call(&server.addr, None)
        .await
        .expect_err("plaintext must not get through");
    // A client trusting another CA refuses the server.
    let mut wrong = trusting(None);
    wrong.ca_pem = read("rogue-ca.pem");
    call(&server.addr, Some(wrong))
        .await
        .expect_err("the server's certificate is not from the rogue CA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_requires_a_client_certificate_from_the_client_ca() {
    let (server, _dir) = server(true).await;
    call(
        &server.addr,
        Some(trusting(Some(("client.pem", "client.key")))),
    )
    .await
    .expect("client certificate from the CA");
    call(&server.addr, Some(trusting(None)))
        .await
        .expect_err("no client certificate");
    call(
        &server.addr,
        Some(trusting(Some(("rogue-client.pem", "rogue-client.key")))),
    )
    .await
    .expect_err("a client certificate from another CA");
    call(&server.addr, None).await.expect_err("plaintext");
}
