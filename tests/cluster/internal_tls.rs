//! mTLS between routers and shard nodes (issue 15): nodes serve their internal port over
//! TLS and require a router certificate from the internal CA; a router holding one serves
//! lookalikes end to end, to clients over TLS on its own public port; a router without one
//! reaches no node.

use std::path::PathBuf;

use doppel_proto::v1 as pb;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::cluster::{TestRouter, TestShard};
use doppel_test_support::{load_base, small_base};

use crate::fixture::{VERSION, batches};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/tls")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn routers_reach_nodes_only_over_mtls() {
    let redis = RedisServer::standalone();
    let url = redis.url();
    let mut dirs = Vec::new();
    let mut shards = Vec::new();
    for n in 0..2 {
        let dir = tempfile::tempdir().expect("tempdir");
        let tls = doppel_grpc::tls::internal_server_tls(
            &fixture("server.pem"),
            &fixture("server.key"),
            &fixture("ca.pem"),
        )
        .expect("node TLS");
        shards.push(TestShard::start_with_tls(&url, n, dir.path(), Some(tls)).await);
        dirs.push(dir);
    }
    let client_tls = doppel_grpc::tls::internal_client_tls(
        &fixture("client.pem"),
        &fixture("client.key"),
        &fixture("ca.pem"),
    )
    .expect("router TLS");
    let public_tls = doppel_grpc::tls::server_tls(
        &fixture("server.pem"),
        &fixture("server.key"),
        Some(&fixture("ca.pem")),
    )
    .expect("router public TLS");
    let router = TestRouter::start_serving(&url, Some(client_tls), Some(public_tls)).await;
    router.wait_for_nodes(2).await;
    // Clients reach the router over mTLS too; plaintext does not get in.
    let client = doppel_client::ClientTls {
        ca_pem: std::fs::read(fixture("ca.pem")).expect("ca"),
        identity_pem: Some((
            std::fs::read(fixture("client.pem")).expect("cert"),
            std::fs::read(fixture("client.key")).expect("key"),
        )),
        domain: Some("localhost".into()),
    };
    let channel = doppel_client::connect_with(&router.addr, Some(&client))
        .await
        .expect("TLS to the router");
    let data = small_base();
    load_base(&channel, &data, VERSION).await;
    doppel_client::activate(channel.clone(), VERSION)
        .await
        .expect("activate over mTLS");
    let plaintext = RecommendationsClient::new(router.channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: data.customers[0].id.clone(),
            k: 3,
            ..Default::default()
        })
        .await;
    assert!(plaintext.is_err(), "plaintext to a TLS router");
    let seeds: Vec<String> = data
        .customers
        .iter()
        .take(20)
        .map(|c| c.id.clone())
        .collect();
    let pages = batches(
        channel.clone(),
        pb::LookalikeRequest {
            seed_customer_ids: seeds,
            size: Some(pb::lookalike_request::Size::Count(50)),
            ..Default::default()
        },
    )
    .await
    .expect("lookalikes over mTLS");
    let found: usize = pages.iter().map(|b| b.prospects.len()).sum();
    assert_eq!(found, 50);

    // A router without a client certificate: nodes refuse the handshake.
    let plain = TestRouter::start(&url).await;
    let status = RecommendationsClient::new(plain.channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: data.customers[0].id.clone(),
            k: 3,
            ..Default::default()
        })
        .await
        .expect_err("no node answers a plaintext router");
    // The node's TLS alert reaches the plaintext router as an HTTP/2 error (INTERNAL) or a
    // dropped connection (UNAVAILABLE): either way no call runs.
    assert!(
        matches!(
            status.code(),
            tonic::Code::Unavailable | tonic::Code::Internal
        ),
        "{status:?}"
    );
    // TLS routers trusting the CA, one with a client certificate of another CA and one with
    // none: the nodes refuse both.
    let rogue = doppel_grpc::tls::internal_client_tls(
        &fixture("rogue-client.pem"),
        &fixture("rogue-client.key"),
        &fixture("ca.pem"),
    )
    .expect("rogue TLS");
    let anonymous = tonic::transport::ClientTlsConfig::new().ca_certificate(
        tonic::transport::Certificate::from_pem(std::fs::read(fixture("ca.pem")).expect("ca")),
    );
    for tls in [rogue, anonymous] {
        let router = TestRouter::start_with_tls(&url, Some(tls)).await;
        let status = RecommendationsClient::new(router.channel.clone())
            .recommend_offers(pb::RecommendRequest {
                customer_id: data.customers[0].id.clone(),
                k: 3,
                ..Default::default()
            })
            .await
            .expect_err("the node refuses the router's certificate");
        assert!(
            matches!(
                status.code(),
                tonic::Code::Unavailable | tonic::Code::Internal
            ),
            "{status:?}"
        );
    }
    drop(shards);
}
