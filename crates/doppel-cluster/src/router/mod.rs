//! The router: serves the public `doppel.v1` API of the whole cluster and holds no data.
//!
//! * per-customer calls (recommendations, profile reads and writes, erasure) go to the
//!   node that owns the customer's shard, through that node's internal port, which serves
//!   the same `doppel.v1` services for the shards it holds;
//! * item writes go to every node (each keeps the whole catalogue);
//! * lookalikes fan out to every node and are merged exactly ([`audiences`]);
//! * the contact policy is stored in Redis and set on every node ([`policies`]);
//! * experiments are written by one node to Redis and applied by every node ([`experiments`]);
//! * segment listings are summed or merged by id ([`segments`]);
//! * model administration: version writes go to one node (they land in the shared store);
//!   activation and rollback are two-phase over every node ([`model_admin`]).
//!
//! Every fan-out answer says how many logical shards answered. A shard with no live owner
//! makes per-customer calls for it fail with UNAVAILABLE (retryable) and fan-outs partial.

mod audience_merge;
mod audience_round;
pub mod audiences;
pub mod experiment_sync;
pub mod experiments;
pub mod fan_out;
pub mod ingest;
pub mod model_admin;
pub mod policies;
pub mod recommendations;
mod score_streams;
mod seed_gathering;
pub mod segments;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use doppel_store::{RedisStore, Store};
use doppel_types::shard::shard_of;
use doppel_types::{PrivacyFloor, SavedAudienceLimits};
use tonic::Status;

use crate::topology::{NodeHandle, Topology, TopologyReader};

/// Deadline of a fan-out when the client set none.
pub const DEFAULT_FAN_OUT_DEADLINE: Duration = Duration::from_secs(10);
/// Deadline of a forwarded call when the client set none.
pub const DEFAULT_FORWARD_DEADLINE: Duration = Duration::from_secs(30);

/// How long a call refused by a node handing its shard off waits before it is re-routed.
pub const RETRY_PAUSE: Duration = Duration::from_millis(300);

/// A node refused the call before doing anything: the customer's shard is not held there
/// (any more) or is being handed off. Safe to send again to the new owner, writes included.
pub fn refused_before_write(status: &Status) -> bool {
    status.code() == tonic::Code::Unavailable
        && (status.message().contains("is moving to another node")
            || status.message().contains("is not held by this node"))
}

/// A failure of the connection to a node (not an answer of the node) as UNAVAILABLE
/// naming the node: tonic reports a refused TLS handshake or a dropped connection as
/// UNKNOWN "transport error", INTERNAL "h2 protocol error" or CANCELLED "operation was
/// canceled" (the router's own caller going away drops the call instead). Anything else is
/// unchanged.
pub fn unreachable_node(node_id: &str, status: Status) -> Status {
    let transport = match status.code() {
        tonic::Code::Unknown | tonic::Code::Internal => {
            status.message() == "transport error"
                || status.message().starts_with("h2 protocol error")
        }
        tonic::Code::Cancelled => status.message() == "operation was canceled",
        _ => false,
    };
    if transport {
        Status::unavailable(format!(
            "node {node_id} unreachable ({}); retry (a TLS mismatch between router and node \
             looks like this too)",
            status.message()
        ))
    } else {
        status
    }
}

/// The router's view of the cluster.
pub struct Router {
    /// The shared store (the active-version pointer, version metadata).
    pub store: RedisStore,
    /// Logical shards of the cluster.
    pub shard_count: u32,
    reader: TopologyReader,
    topology: ArcSwap<Topology>,
    next: AtomicUsize,
    /// Turns true the first time every shard has a live owner, and stays true (a node
    /// lost later gives partial answers, better than a router taken out of service).
    ready: tokio::sync::watch::Sender<bool>,
    /// Smallest seed set and audience served (the whole cluster's, checked here).
    privacy_floor: ArcSwap<PrivacyFloor>,
    /// How many saved audiences, and members over all of them, the cluster keeps.
    saved_audience_limits: ArcSwap<SavedAudienceLimits>,
    /// How long a client stream may stay silent (ms; 0: the default).
    stream_idle_ms: std::sync::atomic::AtomicU64,
    /// The active-version pointer last read, for reads while the store fails.
    last_active_version: ArcSwap<Option<String>>,
}

impl Router {
    /// A router over `store` for `shard_count` logical shards; reads the topology once.
    pub async fn connect(store: RedisStore, shard_count: u32) -> Result<Arc<Self>, Status> {
        Self::connect_with_tls(store, shard_count, None).await
    }

    /// [`Router::connect`], dialling the nodes' internal ports over mTLS when `tls` is
    /// given.
    pub async fn connect_with_tls(
        store: RedisStore,
        shard_count: u32,
        tls: Option<tonic::transport::ClientTlsConfig>,
    ) -> Result<Arc<Self>, Status> {
        store
            .check_shard_count(shard_count)
            .await
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        let reader = TopologyReader::new(store.clone(), shard_count, tls);
        let router = Arc::new(Self {
            store,
            shard_count,
            reader,
            topology: ArcSwap::from_pointee(Topology {
                shard_count,
                owners: vec![None; shard_count as usize],
                nodes: Vec::new(),
            }),
            next: AtomicUsize::new(0),
            ready: tokio::sync::watch::Sender::new(false),
            privacy_floor: ArcSwap::from_pointee(PrivacyFloor::default()),
            saved_audience_limits: ArcSwap::from_pointee(SavedAudienceLimits::default()),
            stream_idle_ms: std::sync::atomic::AtomicU64::new(0),
            last_active_version: ArcSwap::from_pointee(None),
        });
        router.refresh().await?;
        Ok(router)
    }

    /// The privacy floor of audiences served through this router.
    pub fn privacy_floor(&self) -> PrivacyFloor {
        **self.privacy_floor.load()
    }

    /// Sets the privacy floor (off until set).
    pub fn set_privacy_floor(&self, floor: PrivacyFloor) {
        self.privacy_floor.store(Arc::new(floor));
    }

    /// The limits on saved audiences.
    pub fn saved_audience_limits(&self) -> SavedAudienceLimits {
        **self.saved_audience_limits.load()
    }

    /// Sets the limits on saved audiences (the defaults until set).
    pub fn set_saved_audience_limits(&self, limits: SavedAudienceLimits) {
        self.saved_audience_limits.store(Arc::new(limits));
    }

    /// How long a client stream may stay silent before the call ends.
    pub fn stream_idle(&self) -> Duration {
        doppel_grpc::stream_idle::or_default(Duration::from_millis(
            self.stream_idle_ms.load(Ordering::Relaxed),
        ))
    }

    /// Sets the idle time of client streams (zero: the default).
    pub fn set_stream_idle(&self, idle: Duration) {
        self.stream_idle_ms
            .store(idle.as_millis() as u64, Ordering::Relaxed);
    }

    /// The current routing.
    pub fn topology(&self) -> Arc<Topology> {
        self.topology.load_full()
    }

    /// Re-reads the leases and the shard map.
    pub async fn refresh(&self) -> Result<(), Status> {
        let topology = self
            .reader
            .read()
            .await
            .map_err(doppel_grpc::status::store_status)?;
        if topology.routable_shards() == self.shard_count {
            self.ready
                .send_if_modified(|ready| !std::mem::replace(ready, true));
        }
        self.topology.store(Arc::new(topology));
        // Keeps the pointer reads fall back on fresh, whoever activated.
        if let Ok(version) = self.store.active_version().await {
            self.note_active_version(version);
        }
        Ok(())
    }

    /// Remembers the active-version pointer (after a read or an activation).
    pub fn note_active_version(&self, version: Option<String>) {
        self.last_active_version.store(Arc::new(version));
    }

    /// Readiness for health: false until every shard first had a live owner.
    pub fn readiness(&self) -> tokio::sync::watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Refreshes the routing every `every` until the router is dropped.
    pub fn spawn_refresher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(router) = weak.upgrade() else { break };
                if let Err(e) = router.refresh().await {
                    tracing::warn!(error = %e.message(), "topology refresh failed; keeping the last one");
                }
            }
        })
    }

    /// The node owning customer `id`'s shard; UNAVAILABLE when the shard has no live owner.
    pub fn owner(&self, id: &str) -> Result<Arc<NodeHandle>, Status> {
        let topology = self.topology();
        topology.owner_of(id).cloned().ok_or_else(|| {
            Status::unavailable(format!(
                "shard {} (of customer `{id}`) has no live node; retry shortly",
                shard_of(id, self.shard_count)
            ))
        })
    }

    /// Calls `call` on the owner of customer `id`. When the owner is unavailable — its shard
    /// just moved, or the node is restarting — re-reads the topology and calls the (new)
    /// owner once more. Only for calls that are safe to repeat (reads, upserts, erasure).
    pub async fn with_owner<T, F, Fut>(&self, id: &str, call: F) -> Result<T, Status>
    where
        F: Fn(Arc<NodeHandle>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let first = match self.owner(id) {
            Ok(node) => {
                let node_id = node.node_id.clone();
                call(node).await.map_err(|s| unreachable_node(&node_id, s))
            }
            Err(status) => Err(status),
        };
        match first {
            Err(status) if status.code() == tonic::Code::Unavailable => {
                tracing::debug!(customer.id = id, error = %status.message(), "owner unavailable; re-routing once");
                tokio::time::sleep(RETRY_PAUSE).await;
                self.refresh().await?;
                let node = self.owner(id)?;
                let node_id = node.node_id.clone();
                call(node).await.map_err(|s| unreachable_node(&node_id, s))
            }
            other => other,
        }
    }

    /// Some live node (round robin), for calls any node can answer.
    pub fn any_node(&self) -> Result<Arc<NodeHandle>, Status> {
        let topology = self.topology();
        if topology.nodes.is_empty() {
            return Err(Status::unavailable("no shard node is live; retry shortly"));
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % topology.nodes.len();
        Ok(Arc::clone(&topology.nodes[i]))
    }

    /// The active model version, from the store; while the store fails, the one last read.
    pub async fn active_version(&self) -> Result<Option<String>, Status> {
        match self.store.active_version().await {
            Ok(version) => {
                self.note_active_version(version.clone());
                Ok(version)
            }
            // Reads need only the nodes' memory: while Redis fails (a master failing over,
            // a restart) they go on with the pointer last read. The nodes answer only with
            // the version they hold, so a stale pointer gives "version moved", not a mix.
            Err(e) => match self.last_active_version.load().as_ref() {
                Some(version) => {
                    tracing::warn!(error = %e, model.version = %version, "the store failed; serving with the active-version pointer last read");
                    Ok(Some(version.clone()))
                }
                None => Err(doppel_grpc::status::store_status(e)),
            },
        }
    }
}

/// The deadline a client asked for (`grpc-timeout`), else `default`.
pub fn deadline_of<T>(request: &tonic::Request<T>, default: Duration) -> Duration {
    request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .unwrap_or(default)
}

/// Parses a `grpc-timeout` header value (`<digits><unit>`).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// A request to forward, with the deadline set.
pub fn forward<T>(message: T, deadline: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(deadline);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }
}
