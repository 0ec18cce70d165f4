//! A shard node: owns the logical shards `s` with `s % nodes == ordinal`, loads their
//! customers and vectors from Redis, and serves them to routers on its internal port.
//!
//! ```text
//! start ─► public port: health "" SERVING, doppel.internal.v1.Shard NOT_SERVING
//!       ─► replay owned customers + every event, load the active version's owned shards
//!       ─► internal port serving ─► lease + shard-map claim ─► Shard SERVING
//!       ─► follow events and the active pointer; renew the lease every second
//! SIGTERM ─► drop the lease, NOT_SERVING ─► routers stop sending (≤ 1 refresh)
//!         ─► drain in-flight RPCs (grace period) ─► exit
//! ```

pub mod follower;
pub mod internal_service;

use std::sync::Arc;
use std::time::Duration;

use doppel_grpc::{Node, NodeConfig, ServeOptions};
use doppel_proto::internal::v1::shard_server::ShardServer;
use doppel_store::{MemberRecord, RedisStore, Store};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::shard::internal_service::ShardService;
use crate::{LEASE_RENEW_EVERY, LEASE_TTL, SHARD_SERVICE_NAME};

/// How a shard node is set up.
#[derive(Clone, Debug)]
pub struct ShardNodeConfig {
    /// The node's identity in leases and the shard map.
    pub node_id: String,
    /// Its position among the shard nodes, `0..nodes`.
    pub ordinal: u32,
    /// Number of shard nodes.
    pub nodes: u32,
    /// Where routers reach the internal port (`host:port`).
    pub advertise: String,
    /// Engine and snapshot settings (`owned_shards` is set from the ordinal).
    pub node: NodeConfig,
    /// Serving options (drain time, message size).
    pub serve: ServeOptions,
}

/// The logical shards node `ordinal` of `nodes` owns.
pub fn owned_shards(ordinal: u32, nodes: u32, shard_count: u32) -> Vec<u32> {
    (0..shard_count)
        .filter(|s| s % nodes.max(1) == ordinal)
        .collect()
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
    let shard_count = config.node.engine.shard_count;
    let owned = owned_shards(config.ordinal, config.nodes, shard_count);
    config.node.engine.owned_shards = Some(owned.clone());
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
        Server::builder()
            .add_service(health.clone())
            .add_service(reflection)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(public).with_nodelay(Some(true)),
                drained(stop_rx.clone(), grace + Duration::from_secs(1)),
            ),
    );

    let shared: Arc<dyn Store> = Arc::new(store.clone());
    tracing::info!(node.id = %config.node_id, shards = ?owned, "loading owned shards");
    let node = Node::open(shared, config.node.clone())
        .await
        .map_err(|s| ShardNodeError::CatchUp(s.message().to_owned()))?;
    let follower = follower::spawn(&node, node.replayed_seq());

    let max = config.serve.max_message_bytes;
    let shard_service =
        ShardServer::new(ShardService::new(Arc::clone(&node), config.node_id.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
    let internal_server = tokio::spawn(
        Server::builder()
            .add_routes(doppel_grpc::server::public_routes(&node, max))
            .add_service(shard_service)
            .add_service(health)
            .serve_with_incoming_shutdown(
                TcpIncoming::from(internal).with_nodelay(Some(true)),
                drained(stop_rx.clone(), Duration::ZERO),
            ),
    );

    let record = MemberRecord {
        node_id: config.node_id.clone(),
        internal_addr: config.advertise.clone(),
        ready_shards: owned.clone(),
    };
    let lease = tokio::spawn(keep_lease(store.clone(), record, owned, stop_rx.clone()));
    reporter
        .set_service_status(SHARD_SERVICE_NAME, ServingStatus::Serving)
        .await;
    tracing::info!(node.id = %config.node_id, advertise = %config.advertise, "shard node ready");

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
    let _ = lease.await;
    if let Err(e) = store.drop_lease(&config.node_id).await {
        tracing::warn!(error = %e, "could not drop the lease; it expires by itself");
    }
    follower.abort();
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

/// Renews the lease (and the shard-map claim) every second until stopped.
async fn keep_lease(
    store: RedisStore,
    record: MemberRecord,
    claims: Vec<u32>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(LEASE_RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = store.renew_lease(&record, &claims, LEASE_TTL).await {
                    tracing::warn!(error = %e, "lease renewal failed; retrying");
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shard_has_exactly_one_owner() {
        let owners: Vec<Vec<u32>> = (0..3).map(|n| owned_shards(n, 3, 16)).collect();
        let mut all: Vec<u32> = owners.concat();
        all.sort_unstable();
        assert_eq!(all, (0..16).collect::<Vec<_>>());
        assert_eq!(owners[1], [1, 4, 7, 10, 13]);
    }
}
