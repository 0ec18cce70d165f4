//! Opening a node: replay the store into a new engine, start the snapshot refresher,
//! reconcile versions a crash left unfinished (single node), load the active version.

use std::sync::Arc;
use std::time::Instant;

use doppel_store::Store;

use crate::config::NodeConfig;
use crate::error::Result;
use crate::node::Node;
use crate::placement::Placement;

impl Node {
    /// Opens a node over `store`: replays profiles, items and events into a new engine,
    /// reconciles versions a crash left unfinished (single node), and loads the active
    /// model version (if any). Returns once the node is caught up.
    pub async fn open(
        store: Arc<dyn Store>,
        config: NodeConfig,
        placement: Arc<dyn Placement>,
    ) -> Result<Arc<Self>> {
        let started = Instant::now();
        let node = Arc::new(Self::new(store, config, placement));
        if node.placement.serves_everyone() {
            node.prepare_replay().await;
        }
        node.replay().await?;
        tracing::info!(
            events = node.replayed_events(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "profiles, event checkpoints and the events after them read"
        );
        node.spawn_event_checkpoints();
        node.follow_contact_policy().await?;
        let single = node.placement.serves_everyone();
        if single && node.config.snapshot_dir.is_some() {
            crate::snapshots::spawn_refresh(&node);
        }
        if single {
            // A shard node shares the store with live nodes that may be importing or
            // training right now: only a single node knows an unfinished version is dead.
            crate::version_recovery::reconcile(&node).await?;
        }
        if let Some(active) = node.store.active_version().await? {
            node.ensure_loaded(&active).await?;
            node.engine.activate(&active)?;
        }
        // Not used (the active version changed meanwhile): dropped. A read still running
        // finishes in the background and frees its memory then.
        node.snapshot_read_ahead.lock().take();
        // An arm version that cannot load does not keep the node from serving: the guard
        // task retries every second.
        if let Err(e) = node.follow_experiments().await {
            tracing::error!(error = %e, "the running experiment could not be applied; retrying");
        }
        crate::canary::spawn_guard(&node);
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            active.version = node.engine.active_version().unwrap_or_default(),
            "node caught up with the store"
        );
        Ok(node)
    }

    /// A starting single node, before it reads its profiles: makes room for about as many
    /// customers as the active version has vectors, and starts reading that version's
    /// snapshot (the two reads are most of a start, and independent). Without an active
    /// version, or when the store cannot say, the replay just goes ahead.
    async fn prepare_replay(&self) {
        let info = async {
            match self.store.active_version().await? {
                Some(active) => self.store.get_version(&active).await,
                None => Ok(None),
            }
        };
        let Ok(Some(info)) = info.await.inspect_err(
            |e| tracing::debug!(error = %e, "no active version read before the replay"),
        ) else {
            return;
        };
        // A hint only, and bounded: a damaged count cannot reserve without limit.
        let customers = usize::try_from(info.customer_count).unwrap_or(usize::MAX);
        self.engine
            .reserve_customers(customers.min(MAX_RESERVED_CUSTOMERS));
        if self.config.snapshot_dir.is_some() {
            self.read_snapshot_ahead(info);
        }
    }
}

/// The most customers [`Node::prepare_replay`] makes room for ahead of the replay (67M; a
/// node holding more grows its tables past it as before).
const MAX_RESERVED_CUSTOMERS: usize = 1 << 26;
