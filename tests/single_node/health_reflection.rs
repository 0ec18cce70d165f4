//! Health per service, reflection (so grpcurl works), and draining on shutdown.

use doppel_proto::v1::lookalike_request::Size;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::fixture::{count, loaded};

#[tokio::test]
async fn health_and_reflection_list_every_service() {
    let fx = loaded().await;
    let mut health = HealthClient::new(fx.channel());
    for service in [
        "",
        "doppel.v1.Ingest",
        "doppel.v1.ModelAdmin",
        "doppel.v1.Audiences",
        "doppel.v1.Recommendations",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service}");
    }

    let mut reflection = ServerReflectionClient::new(fx.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.next().await.expect("one response").expect("ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "doppel.v1.Ingest",
        "doppel.v1.ModelAdmin",
        "doppel.v1.Audiences",
        "doppel.v1.Recommendations",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    // A single node serves no internal API, so reflection does not offer it (issue 10).
    assert!(
        !names.iter().any(|n| n.starts_with("doppel.internal.")),
        "internal services listed on a public port: {names:?}"
    );
}

#[tokio::test]
async fn shutdown_drains_an_audience_stream_in_flight() {
    let fx = loaded().await;
    let mut request = count(fx.seeds(0, 10), 1);
    request.size = Some(Size::TopPercent(100.0));
    let mut stream = doppel_proto::v1::audiences_client::AudiencesClient::new(fx.channel())
        .find_lookalikes(request)
        .await
        .expect("lookalike")
        .into_inner();
    let first = stream
        .message()
        .await
        .expect("first page")
        .expect("some page");
    let stopping = tokio::spawn(fx.server.stop());
    let mut received = first.prospects.len() as u64;
    while let Some(batch) = stream
        .message()
        .await
        .expect("pages after shutdown started")
    {
        received += batch.prospects.len() as u64;
    }
    assert_eq!(
        received, first.eligible_population,
        "the stream was cut short"
    );
    stopping.await.expect("server stopped cleanly");
}

/// `--health-listen`: a plaintext port with health alone (for the kubelet's probes beside a
/// TLS public port), answering the public port's statuses and nothing else.
#[tokio::test]
async fn the_health_port_serves_health_only() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = std::sync::Arc::new(doppel_store::EmbeddedStore::open(dir.path()).expect("store"));
    let options = doppel_grpc::ServeOptions {
        health_listen: Some(port),
        ..Default::default()
    };
    let _server = doppel_test_support::TestServer::start_serving(
        store,
        dir.path(),
        doppel_grpc::NodeConfig::default(),
        options,
    )
    .await;
    let channel = doppel_client::connect(&format!("http://{port}"))
        .await
        .expect("health port");
    for service in ["", "doppel.v1.Audiences", "doppel.v1.Experiments"] {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service}");
    }
    let refused = doppel_proto::v1::policies_client::PoliciesClient::new(channel.clone())
        .get_contact_policy(doppel_proto::v1::GetContactPolicyRequest {})
        .await
        .expect_err("only health there");
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
    // No reflection either: the port tells nothing about the API.
    let mut reflection = ServerReflectionClient::new(channel);
    let answer = reflection
        .server_reflection_info(tokio_stream::once(ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        }))
        .await;
    assert_eq!(
        answer.expect_err("no reflection").code(),
        tonic::Code::Unimplemented
    );
}
