//! Serving: `run(listener, node, options, shutdown)` wires the services, health and
//! reflection, serves until `shutdown` resolves, then drains.
//!
//! ```text
//! serving ──shutdown──► health NOT_SERVING ──► drain in-flight RPCs ──► flush store ──► Ok
//!                                                  │ grace period over
//!                                                  └──► remaining connections dropped
//! ```
//! Taking the listener and the shutdown future as arguments lets tests run a real server
//! on `127.0.0.1:0` and stop it, and keeps signals in the binary.
//!
//! While serving, health follows the store's ([`Store::health`]): NOT_SERVING while the
//! embedded store is failing every operation (a full disk) and recovering on its own.
//!
//! [`Store::health`]: doppel_store::Store::health

use std::sync::Arc;
use std::time::Duration;

use doppel_proto::v1::audiences_server::{Audiences, AudiencesServer};
use doppel_proto::v1::experiments_server::{Experiments, ExperimentsServer};
use doppel_proto::v1::ingest_server::{Ingest, IngestServer};
use doppel_proto::v1::model_admin_server::{ModelAdmin, ModelAdminServer};
use doppel_proto::v1::policies_server::{Policies, PoliciesServer};
use doppel_proto::v1::recommendations_server::{Recommendations, RecommendationsServer};
use doppel_proto::v1::segments_server::{Segments, SegmentsServer};
use doppel_types::limits::MAX_MESSAGE_BYTES;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::admission::{AdmissionLayer, AdmissionLimits};
use crate::audiences_service::AudiencesService;
use crate::audit_log::AuditLayer;
use crate::auth::{ApiKeys, AuthLayer};
use crate::experiments_service::ExperimentsService;
use crate::ingest_service::IngestService;
use crate::model_admin_service::ModelAdminService;
use crate::policies_service::PoliciesService;
use crate::recommendations_service::RecommendationsService;
use crate::rpc_metrics::{RpcMetrics, RpcMetricsLayer};
use crate::segments::SegmentsService;
use doppel_node::Node;

/// Default time in-flight RPCs get to finish after shutdown starts.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(20);

/// Serving options.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// How long in-flight RPCs may take to finish after shutdown starts.
    pub grace_period: Duration,
    /// Largest gRPC message decoded or encoded, in bytes.
    pub max_message_bytes: usize,
    /// API keys every call (but health) must present; none: no checks.
    pub api_keys: Option<Arc<ApiKeys>>,
    /// Concurrent calls admitted per cost class (beyond: RESOURCE_EXHAUSTED).
    pub admission: AdmissionLimits,
    /// Where administrative calls are recorded (a node's store, a router's Redis); none:
    /// not recorded.
    pub audit: Option<crate::audit_log::AuditSink>,
    /// TLS on the public port (with client certificates required when it names a client
    /// CA); none: plaintext.
    pub tls: Option<tonic::transport::ServerTlsConfig>,
    /// Calls per second each API key may make (none: unlimited; without keys, unused).
    pub key_rate_limit: Option<crate::auth::RateLimit>,
    /// A second, plaintext port serving only `grpc.health.v1` (for probes that cannot speak
    /// TLS, like the kubelet's); none: health only on the public port.
    pub health_listen: Option<std::net::SocketAddr>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            grace_period: DEFAULT_GRACE_PERIOD,
            max_message_bytes: MAX_MESSAGE_BYTES,
            api_keys: None,
            admission: AdmissionLimits::from_cores(),
            audit: None,
            tls: None,
            key_rate_limit: None,
            health_listen: None,
        }
    }
}

/// Why serving stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Building reflection failed.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The store could not be flushed.
    #[error("flushing the store: {0}")]
    Flush(String),
    /// The health port could not be bound.
    #[error("binding the health port {addr}: {source}")]
    HealthBind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The fully-qualified names of doppel's public services, as health reports them.
pub const SERVICE_NAMES: &[&str] = &[
    "doppel.v1.Ingest",
    "doppel.v1.ModelAdmin",
    "doppel.v1.Audiences",
    "doppel.v1.Recommendations",
    "doppel.v1.Segments",
    "doppel.v1.Policies",
    "doppel.v1.Experiments",
];

async fn set_all(reporter: &HealthReporter, status: ServingStatus) {
    for name in SERVICE_NAMES.iter().chain(std::iter::once(&"")) {
        reporter.set_service_status(*name, status).await;
    }
}

/// Status of every public service while serving, given the health source.
fn serving_status(healthy: bool) -> ServingStatus {
    if healthy {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Sets every public service's health from `source` (the store's health on a node, the
/// router's readiness) until the source is gone.
async fn follow_health(reporter: HealthReporter, mut source: watch::Receiver<bool>) {
    while source.changed().await.is_ok() {
        let healthy = *source.borrow_and_update();
        if healthy {
            tracing::info!("serving: SERVING");
        } else {
            tracing::warn!("store failing or shards unowned: NOT_SERVING until it recovers");
        }
        set_all(&reporter, serving_status(healthy)).await;
    }
}

/// Aborts the task when dropped (serving ended without a shutdown).
struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    /// Aborts the task and waits until it is gone, so it cannot set health afterwards.
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// HTTP/2 flow-control windows of every server: a stream may buffer 256 KiB, a connection
/// 8 MiB. h2 sends GOAWAY `too_many_data_frames` when small DATA frames (one small event
/// message each, as grpcio and grpc-go send them) sit unread beyond half the connection
/// window; with hyper's default 1 MiB window a `RecordEvents` stream stalled on a store
/// write for a moment crossed it. Half of 8 MiB holds a full 256 KiB stream window of
/// 20-byte frames (charged 256 bytes each) with room to spare.
pub const STREAM_WINDOW_BYTES: u32 = 256 * 1024;
/// See [`STREAM_WINDOW_BYTES`].
pub const CONNECTION_WINDOW_BYTES: u32 = 8 * 1024 * 1024;

/// Largest header list a client may send (metadata, an API key).
pub const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;
/// HTTP/2 pings on quiet connections, and how long an answer may take before the
/// connection is closed (a vanished peer releases its streams).
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// See [`KEEPALIVE_INTERVAL`].
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The transport every doppel server is built on (public and internal ports). Concurrent
/// calls are bounded by admission on the public port, not per connection: a router sends
/// all its calls to a node over one connection.
pub fn transport() -> Server {
    Server::builder()
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .http2_max_header_list_size(MAX_HEADER_LIST_BYTES)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(KEEPALIVE_INTERVAL))
}

/// The seven public services, whoever implements them (a node's or a router's), each
/// bounded to `max` bytes per message: the one place they are wired.
pub struct PublicServices<I, M, A, R, S, P, E> {
    /// `doppel.v1.Ingest`.
    pub ingest: I,
    /// `doppel.v1.ModelAdmin`.
    pub model_admin: M,
    /// `doppel.v1.Audiences`.
    pub audiences: A,
    /// `doppel.v1.Recommendations`.
    pub recommendations: R,
    /// `doppel.v1.Segments`.
    pub segments: S,
    /// `doppel.v1.Policies`.
    pub policies: P,
    /// `doppel.v1.Experiments`.
    pub experiments: E,
}

impl<I, M, A, R, S, P, E> PublicServices<I, M, A, R, S, P, E>
where
    I: Ingest,
    M: ModelAdmin,
    A: Audiences,
    R: Recommendations,
    S: Segments,
    P: Policies,
    E: Experiments,
{
    /// The routes of the seven services, each bounded to `max` bytes per message.
    pub fn routes(self, max: usize) -> tonic::service::Routes {
        tonic::service::Routes::new(
            IngestServer::new(self.ingest)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ModelAdminServer::new(self.model_admin)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            AudiencesServer::new(self.audiences)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            RecommendationsServer::new(self.recommendations)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            SegmentsServer::new(self.segments)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            PoliciesServer::new(self.policies)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ExperimentsServer::new(self.experiments)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
    }
}

/// The public services over `node`, each bounded to `max` bytes per message (also what a
/// shard node serves to routers on its internal port).
pub fn public_routes(node: &Arc<Node>, max: usize) -> tonic::service::Routes {
    PublicServices {
        ingest: IngestService::new(Arc::clone(node)),
        model_admin: ModelAdminService::new(Arc::clone(node)),
        audiences: AudiencesService::new(Arc::clone(node)),
        recommendations: RecommendationsService::new(Arc::clone(node)),
        segments: SegmentsService::new(Arc::clone(node)),
        policies: PoliciesService::new(Arc::clone(node)),
        experiments: ExperimentsService::new(Arc::clone(node)),
    }
    .routes(max)
}

/// Serves `routes` (the public services, of a node or of a router) with health (every
/// public service name, plus ""), reflection and RPC metrics on `listener` until `shutdown`
/// resolves; then NOT_SERVING and in-flight RPCs get the grace period to finish. With
/// `health` (a node's store health, a router's readiness), every service is NOT_SERVING
/// while it is false.
pub async fn serve_public(
    listener: TcpListener,
    routes: tonic::service::Routes,
    options: &ServeOptions,
    health: Option<watch::Receiver<bool>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(doppel_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(doppel_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;
    // Ends with this function (the public port's drain decides when serving is over).
    let _health_port = match options.health_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::HealthBind { addr, source })?;
            tracing::info!(%addr, "plaintext health port");
            let service = health_service.clone();
            Some(AbortOnDrop(tokio::spawn(async move {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                if let Err(e) = transport()
                    .add_service(service)
                    .serve_with_incoming(incoming)
                    .await
                {
                    tracing::error!(error = %e, "health port failed");
                }
            })))
        }
        None => None,
    };
    let follower = match health {
        Some(mut store) => {
            let healthy = *store.borrow_and_update();
            set_all(&reporter, serving_status(healthy)).await;
            Some(AbortOnDrop(tokio::spawn(follow_health(
                reporter.clone(),
                store,
            ))))
        }
        None => {
            set_all(&reporter, ServingStatus::Serving).await;
            None
        }
    };

    let (draining_tx, draining_rx) = oneshot::channel::<()>();
    let drain_reporter = reporter.clone();
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: NOT_SERVING, draining in-flight RPCs");
        if let Some(follower) = follower {
            follower.stop().await;
        }
        set_all(&drain_reporter, ServingStatus::NotServing).await;
        let _ = draining_tx.send(());
    };
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut server = transport();
    if let Some(tls) = options.tls.clone() {
        server = server.tls_config(tls)?;
    }
    let serve = server
        .layer(RpcMetricsLayer::new(RpcMetrics::from_global()))
        .layer(AuditLayer::new(options.audit.clone()))
        .layer(AuthLayer::new(
            options.api_keys.clone(),
            options.key_rate_limit,
        ))
        .layer(AdmissionLayer::new(options.admission))
        .add_routes(routes)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, signal);
    let grace = options.grace_period;
    let grace_over = async move {
        match draining_rx.await {
            Ok(()) => tokio::time::sleep(grace).await,
            // The signal future was dropped: serving ended on its own.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        result = serve => result?,
        () = grace_over => tracing::warn!(?grace, "grace period over; dropping remaining connections"),
    }
    Ok(())
}

/// Serves the public API on `listener` until `shutdown` resolves, then drains.
pub async fn run(
    listener: TcpListener,
    node: Arc<Node>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let routes = public_routes(&node, options.max_message_bytes);
    let options = ServeOptions {
        audit: options
            .audit
            .clone()
            .or_else(|| Some(crate::audit_log::AuditSink::new(Arc::clone(node.store())))),
        ..options
    };
    let served = serve_public(listener, routes, &options, node.store().health(), shutdown).await;
    // Impressions applied but not yet stored are stored whatever ended serving, and so
    // are the audit events of the last calls.
    node.store_impressions(Duration::from_secs(5)).await;
    if let Some(audit) = &options.audit {
        audit.drain(Duration::from_secs(5)).await;
    }
    if let Err(e) = served {
        if let Err(flush) = node.store().flush().await {
            tracing::error!(error = %flush, "store not flushed after serving failed");
        }
        return Err(e);
    }
    // Snapshots fold-in dropped are written again, so the next start loads, not builds.
    node.refresh_snapshots().await;
    node.write_event_checkpoints_on_stop().await;
    node.store()
        .flush()
        .await
        .map_err(|e| ServeError::Flush(e.to_string()))?;
    tracing::info!("drained and flushed");
    Ok(())
}
