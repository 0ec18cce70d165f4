//! What a shard node follows after start-up: the event log (events of customers held by
//! other nodes feed item popularity here; this node's own customers' events arrive through
//! its Ingest service) and the active-version pointer (a node that missed a router's
//! activation, or restarted during one, converges on the pointer).
//!
//! The Redis store numbers events from one counter before writing them per shard, so two
//! appenders can commit out of order: a seq skipped by a scan may still appear. Skipped
//! seqs are remembered as gaps and re-read for [`GAP_PATIENCE`]; after that they are taken
//! for what erasure leaves behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doppel_grpc::Node;

/// How often the event log and the pointer are polled.
pub const POLL_EVERY: Duration = Duration::from_millis(250);
/// How long a skipped sequence number is waited for.
pub const GAP_PATIENCE: Duration = Duration::from_secs(10);
/// Events read per poll.
const PAGE: usize = 5_000;
/// Gaps wider than this are not waited for (a bulk erasure, not a slow writer).
const MAX_GAP: u64 = 10_000;

/// Seqs not seen yet, with when they were first missed.
#[derive(Default)]
struct Gaps {
    missing: BTreeMap<u64, Instant>,
}

impl Gaps {
    fn note(&mut self, from: u64, to: u64, now: Instant) {
        if to >= from && to - from < MAX_GAP {
            for seq in from..=to {
                self.missing.insert(seq, now);
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        self.missing
            .retain(|_, since| now.duration_since(*since) < GAP_PATIENCE);
    }
}

/// Follows the event log from `after` and the active pointer until the node is dropped.
pub fn spawn(node: &Arc<Node>, after: u64) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(node);
    tokio::spawn(async move {
        let mut after = after;
        let mut gaps = Gaps::default();
        let mut tick = tokio::time::interval(POLL_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else { break };
            if let Err(e) = poll_events(&node, &mut after, &mut gaps).await {
                tracing::warn!(error = %e, "following the event log failed; retrying");
            }
            if let Err(e) = follow_pointer(&node).await {
                tracing::warn!(error = %e.message(), "following the active version failed; retrying");
            }
        }
    })
}

async fn poll_events(node: &Node, after: &mut u64, gaps: &mut Gaps) -> doppel_store::Result<()> {
    let now = Instant::now();
    loop {
        let page = node.store.scan_events(*after, PAGE).await?;
        for (seq, event) in &page {
            if *seq > *after + 1 {
                gaps.note(*after + 1, seq - 1, now);
            }
            apply_foreign(node, event);
            *after = *seq;
        }
        if page.len() < PAGE {
            break;
        }
    }
    if let (Some(&first), Some(&last)) =
        (gaps.missing.keys().next(), gaps.missing.keys().next_back())
    {
        let late = node
            .store
            .scan_events(first - 1, (last - first + 1) as usize)
            .await?;
        for (seq, event) in late {
            if gaps.missing.remove(&seq).is_some() {
                apply_foreign(node, &event);
            }
        }
    }
    gaps.expire(now);
    Ok(())
}

/// Events of customers held here came in through this node's Ingest and are applied
/// already; the others only count for item popularity.
fn apply_foreign(node: &Node, event: &doppel_types::Event) {
    if !node.engine.config().owns_customer(&event.customer_id) {
        node.engine.record_foreign_event(event);
    }
}

async fn follow_pointer(node: &Node) -> Result<(), tonic::Status> {
    let Some(active) = node
        .store
        .active_version()
        .await
        .map_err(doppel_grpc::status::store_status)?
    else {
        return Ok(());
    };
    if node.engine.active_version().as_deref() == Some(active.as_str()) {
        return Ok(());
    }
    node.ensure_loaded(&active).await?;
    node.engine
        .activate(&active)
        .map_err(doppel_grpc::status::engine_status)?;
    tracing::info!(model.version = %active, "followed the active-version pointer");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_remembered_then_given_up() {
        let mut gaps = Gaps::default();
        let t0 = Instant::now();
        gaps.note(5, 7, t0);
        gaps.note(100, 100 + MAX_GAP, t0);
        assert_eq!(gaps.missing.keys().copied().collect::<Vec<_>>(), [5, 6, 7]);
        gaps.expire(t0 + GAP_PATIENCE);
        assert!(gaps.missing.is_empty());
    }
}
