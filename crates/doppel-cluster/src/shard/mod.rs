//! A shard node: takes over the logical shards it should own (rendezvous hashing over the
//! live nodes, see [`assignment`]), loads their customers and vectors from Redis, and serves
//! them to routers on its internal port. Nodes joining or leaving move shards between
//! nodes without failing requests (see [`manager`]).
//!
//! ```text
//! start ─► public port: health "" SERVING, doppel.internal.v1.Shard NOT_SERVING
//!       ─► replay items and every event (popularity), load the active version's items
//!       ─► internal port serving ─► lease ─► take over its shards ─► Shard SERVING
//!       ─► manager: events, membership, hand-offs, the active pointer
//!       ─► ownership guard: reads the shard map, so writes are acknowledged only while
//!          this node owns their shards (a node paused past its lease is fenced)
//! SIGTERM ─► NOT_SERVING, lease dropped (others take the shards over)
//!         ─► drain in-flight RPCs (grace period) ─► exit
//! ```

pub mod assignment;
pub mod internal_service;
pub mod manager;
pub mod ownership_guard;
pub mod placement;

use std::sync::Arc;
use std::time::Duration;

use doppel_grpc::{Node, NodeConfig, ServeOptions};
use doppel_proto::internal::v1::shard_server::ShardServer;
use doppel_store::{RedisStore, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::shard::internal_service::ShardService;
use crate::shard::manager::Manager;
use crate::shard::placement::ShardPlacement;
use crate::{LEASE_RENEW_EVERY, SHARD_SERVICE_NAME};

/// How a shard node is set up.
#[derive(Clone, Debug)]
pub struct ShardNodeConfig {
    /// The node's identity in leases and the shard map (stable across restarts).
    pub node_id: String,
    /// Where routers reach the internal port (`host:port`).
    pub advertise: String,
    /// Engine and snapshot settings (the node starts holding no shard).
    pub node: NodeConfig,
    /// Serving options (drain time, message size).
    pub serve: ServeOptions,
    /// mTLS on the internal port (routers must present a certificate of its CA); none:
    /// plaintext.
    pub internal_tls: Option<tonic::transport::ServerTlsConfig>,
}

/// Why a shard node stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ShardNodeError {
    /// The store could not be read while catching up.
    #[error("catching up with the store: {0}")]
    CatchUp(String),
    /// The transport failed.
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Building reflection failed.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}

/// Runs a shard node until `shutdown` resolves, then drains.
pub async fn run(
    store: RedisStore,
    mut config: ShardNodeConfig,
    public: TcpListener,
    internal: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ShardNodeError> {
    if store.logical_shards() != config.node.engine.shard_count {
        return Err(ShardNodeError::CatchUp(format!(
            "the Redis store is keyed for {} logical shards, the engine runs {}",
            store.logical_shards(),
            config.node.engine.shard_count
        )));
    }
    store
        .check_shard_count(config.node.engine.shard_count)
        .await
        .map_err(|e| ShardNodeError::CatchUp(e.to_string()))?;
    config.node.engine.owned_shards = Some(Vec::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    // Health first, so liveness holds during a long load; readiness waits for it.
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SHARD_SERVICE_NAME, ServingStatus::NotServing)
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(doppel_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let grace = config.serve.grace_period;
    let public_server = tokio::spawn(
        doppel_grpc::server::transport()
            .add_service(health.clone())
            .add_service(reflection)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(public).with_nodelay(Some(true)),
                drained(stop_rx.clone(), grace + Duration::from_secs(1)),
            ),
    );

    let shared: Arc<dyn Store> = Arc::new(store.clone());
    tracing::info!(node.id = %config.node_id, "catching up with the store");
    let placement = Arc::new(ShardPlacement::new(store.clone(), config.node_id.clone()));
    let node = Node::open(shared, config.node.clone(), Arc::clone(&placement) as _)
        .await
        .map_err(|e| ShardNodeError::CatchUp(e.to_string()))?;

    let max = config.serve.max_message_bytes;
    let shard_service = ShardServer::new(ShardService::new(
        Arc::clone(&node),
        Arc::clone(&placement),
        config.node_id.clone(),
    ))
    .max_decoding_message_size(max)
    .max_encoding_message_size(max);
    // The internal port serves both APIs, and reflection describes both.
    let internal_reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(doppel_proto::INTERNAL_FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let mut internal_transport = doppel_grpc::server::transport();
    if let Some(tls) = config.internal_tls.clone() {
        internal_transport = internal_transport.tls_config(tls)?;
    }
    let internal_server = tokio::spawn(
        internal_transport
            .add_routes(doppel_grpc::server::public_routes(&node, max))
            .add_service(shard_service)
            .add_service(health)
            .add_service(internal_reflection)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(internal).with_nodelay(Some(true)),
                drained(stop_rx.clone(), Duration::ZERO),
            ),
    );

    tokio::spawn(ownership_guard::run(
        store.clone(),
        Arc::clone(node.engine()),
        Arc::clone(&placement),
        stop_rx.clone(),
    ));
    let (ready_tx, mut ready_rx) = watch::channel(false);
    let manager = tokio::spawn(
        Manager::new(
            Arc::clone(&node),
            Arc::clone(&placement),
            store.clone(),
            config.node_id.clone(),
            config.advertise.clone(),
        )
        .run(stop_rx.clone(), ready_tx),
    );
    let ready_reporter = reporter.clone();
    let node_id = config.node_id.clone();
    tokio::spawn(async move {
        if ready_rx.wait_for(|r| *r).await.is_ok() {
            ready_reporter
                .set_service_status(SHARD_SERVICE_NAME, ServingStatus::Serving)
                .await;
            tracing::info!(node.id = %node_id, "shard node ready");
        }
    });

    let mut stop = stop_rx;
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    tracing::info!("shutdown requested: lease dropped, NOT_SERVING, draining");
    reporter
        .set_service_status(SHARD_SERVICE_NAME, ServingStatus::NotServing)
        .await;
    if let Err(e) = manager.await {
        tracing::error!(error = %e, "shard manager task ended abnormally");
    }
    let drain = async {
        if let Ok(result) = internal_server.await {
            result?;
        }
        Ok::<(), ShardNodeError>(())
    };
    match tokio::time::timeout(grace + LEASE_RENEW_EVERY, drain).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!(?grace, "grace period over; dropping remaining connections"),
    }
    public_server.abort();
    tracing::info!("shard node drained");
    Ok(())
}

/// Resolves `delay` after the stop signal (so routers see the lease gone before the port
/// closes).
async fn drained(mut stop: watch::Receiver<bool>, delay: Duration) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
    tokio::time::sleep(LEASE_RENEW_EVERY * 2 + delay).await;
}
