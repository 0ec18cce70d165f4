//! Serving a router: the public `doppel.v1` services over the cluster, health (every
//! public service name, plus ""), reflection, and the same drain as a single node.

use std::sync::Arc;
use std::time::Duration;

use doppel_grpc::server::{SERVICE_NAMES, ServeError, ServeOptions};
use doppel_proto::v1::audiences_server::AudiencesServer;
use doppel_proto::v1::ingest_server::IngestServer;
use doppel_proto::v1::model_admin_server::ModelAdminServer;
use doppel_proto::v1::recommendations_server::RecommendationsServer;
use doppel_proto::v1::segments_server::SegmentsServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::LEASE_RENEW_EVERY;
use crate::router::Router;
use crate::router::audiences::RouterAudiences;
use crate::router::ingest::RouterIngest;
use crate::router::model_admin::RouterModelAdmin;
use crate::router::recommendations::RouterRecommendations;
use crate::router::segments::RouterSegments;

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    for name in SERVICE_NAMES.iter().chain(std::iter::once(&"")) {
        reporter.set_service_status(*name, status).await;
    }
}

/// Serves the public API of the cluster on `listener` until `shutdown` resolves, then
/// drains in-flight RPCs for up to the grace period.
pub async fn run(
    listener: TcpListener,
    router: Arc<Router>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let refresher = router.spawn_refresher(LEASE_RENEW_EVERY);
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(doppel_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let max = options.max_message_bytes;
    let ingest = IngestServer::new(RouterIngest::new(Arc::clone(&router)))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let admin = ModelAdminServer::new(RouterModelAdmin::new(Arc::clone(&router)))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let audiences = AudiencesServer::new(RouterAudiences::new(Arc::clone(&router)))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let recommendations =
        RecommendationsServer::new(RouterRecommendations::new(Arc::clone(&router)))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
    let segments = SegmentsServer::new(RouterSegments::new(Arc::clone(&router)))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    set_all(&reporter, ServingStatus::Serving).await;

    let (draining_tx, draining_rx) = oneshot::channel::<()>();
    let drain_reporter = reporter.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: NOT_SERVING, draining in-flight RPCs");
        set_all(&drain_reporter, ServingStatus::NotServing).await;
        let _ = draining_tx.send(());
    };
    let serve = Server::builder()
        .layer(doppel_grpc::rpc_metrics::RpcMetricsLayer::new(
            doppel_grpc::rpc_metrics::RpcMetrics::from_global(),
        ))
        .add_service(health)
        .add_service(reflection)
        .add_service(ingest)
        .add_service(admin)
        .add_service(audiences)
        .add_service(recommendations)
        .add_service(segments)
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal);
    let grace: Duration = options.grace_period;
    let grace_over = async move {
        match draining_rx.await {
            Ok(()) => tokio::time::sleep(grace).await,
            Err(_) => std::future::pending().await,
        }
    };
    let result = tokio::select! {
        result = serve => result.map_err(ServeError::from),
        () = grace_over => {
            tracing::warn!(?grace, "grace period over; dropping remaining connections");
            Ok(())
        }
    };
    refresher.abort();
    tracing::info!("router drained");
    result
}
