//! Event retention (`--event-retention-days`): the oldest events leave the log once the
//! event checkpoints hold what they built, so the log — and what a start-up, a takeover or
//! a training run reads — stays proportional to the retention window, not to history.
//!
//! An event goes when all of these hold:
//! * it is older than the window (by its timestamp);
//! * every checkpoint covers it: the items checkpoint and every logical shard's (none is
//!   missing), so any node can still start or take any shard over;
//! * no experiment kept in the book reads it: reports read the log after the experiment's
//!   start (forget an experiment to let its events go);
//! * it is in the log's prefix: an older event after a newer one waits for it.
//!
//! The store records the newest sequence number removed; a node whose checkpoints are
//! older than that (or missing: another `--shards`, a damaged checkpoint) refuses to start
//! rather than start from a log missing what they would have held. Training reads what is
//! left, so the window is also the training window: keep it longer than the decay's reach
//! (a few half-lives).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use doppel_types::CheckpointScope;

use crate::error::{Error, Result};
use crate::event_checkpoints::ReplayFrom;
use crate::node::Node;

/// Longest `--event-retention-days`.
pub const MAX_EVENT_RETENTION_DAYS: u64 = 36_500;

/// Events removed per store transaction: each holds the embedded store's write lock (500
/// events took about 23 ms a transaction, pause included, with ingest running beside it),
/// so writers wait little.
const COMPACT_BATCH: usize = 500;
/// Pause between two removal transactions. Without it (and at 2,000 events a transaction)
/// the next one took the write lock before a waiting writer woke up: one-event
/// `RecordEvents` calls waited 49–59 ms at the median and up to 0.25 s during a removal,
/// 13–15 ms and 0.1–0.18 s with it (`doppel bench scale --event-retention-days`, see
/// docs/scaling.md).
const COMPACT_PAUSE: Duration = Duration::from_millis(2);

impl Node {
    /// Starts [`Self::compact_event_log`] in a task of its own, unless one runs: the first
    /// removal after retention is turned on may take minutes, and neither the checkpoint
    /// task nor a shard node's follower waits for it.
    pub fn spawn_compaction(self: &Arc<Self>, bound: Option<u64>) {
        if self.config.event_retention.is_none()
            || self.checkpoints.compacting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let node = Arc::clone(self);
        tokio::spawn(async move {
            // Cleared however the task ends (a panic included).
            let _running = Running(&node.checkpoints.compacting);
            if let Err(e) = node.compact_event_log(bound).await {
                tracing::warn!(error = %e, "old events not removed; retrying at the next round");
            }
        });
    }

    /// Removes the events retention lets go (see the module), none after `bound` (a shard
    /// node passes the lowest position of the live nodes' followers); returns how many. A
    /// node without `--event-retention-days` removes none; in a cluster, the holder of
    /// logical shard 0 does it for every node.
    pub async fn compact_event_log(&self, bound: Option<u64>) -> Result<u64> {
        let Some(retention) = self.config.event_retention else {
            return Ok(0);
        };
        if self.placement.follows_event_log() && !self.engine.owns_shard(0) {
            return Ok(0);
        }
        let started = Instant::now();
        let count = self.engine.config().shard_count;
        let mut scopes = vec![CheckpointScope::Items];
        scopes.extend((0..count).map(|shard| CheckpointScope::Shard {
            shard,
            shard_count: count,
        }));
        let seqs = self.store.event_checkpoint_seqs(&scopes).await?;
        let Some(covered) = seqs
            .iter()
            .copied()
            .collect::<Option<Vec<u64>>>()
            .and_then(|s| s.into_iter().min())
        else {
            tracing::debug!("event retention waits for a checkpoint of every shard");
            return Ok(0);
        };
        let book = self.store.experiments().await?;
        let through = book
            .experiments
            .iter()
            .map(|e| e.start_seq)
            .fold(covered.min(bound.unwrap_or(u64::MAX)), u64::min);
        let before_ms = doppel_types::clock::now_ms().saturating_sub(window_ms(retention));
        let mut removed = 0;
        loop {
            let n = self
                .store
                .compact_events(through, before_ms, COMPACT_BATCH)
                .await?;
            removed += n;
            if n == 0 {
                break;
            }
            tokio::time::sleep(COMPACT_PAUSE).await;
        }
        if removed > 0 {
            self.store.flush().await?;
            tracing::info!(
                events = removed,
                through,
                before_ms,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "old events removed (event retention)"
            );
        }
        Ok(removed)
    }

    /// Start-up: fails if the log was compacted past what the restored checkpoints hold
    /// (their events are gone, so the state could not be rebuilt).
    pub(crate) async fn check_replayable(&self, from: &ReplayFrom) -> Result<()> {
        let compacted = self.store.events_compacted_through().await?;
        if compacted == 0 {
            return Ok(());
        }
        let count = self.engine.config().shard_count;
        let short = std::iter::once(("the items checkpoint".to_owned(), from.items)).chain(
            from.shards.iter().enumerate().filter_map(|(shard, f)| {
                f.map(|f| (format!("the checkpoint of shard {shard} of {count}"), f))
            }),
        );
        for (what, through) in short {
            if through < compacted {
                return Err(Error::FailedPrecondition(not_replayable(
                    &what, through, compacted,
                )));
            }
        }
        Ok(())
    }
}

/// Why a start or a takeover cannot rebuild `what` from a log compacted through
/// `compacted` when its checkpoint holds events through `through` (0: none).
pub fn not_replayable(what: &str, through: u64, compacted: u64) -> String {
    let held = if through == 0 {
        "is missing or unreadable".to_owned()
    } else {
        format!("holds events through {through} only")
    };
    format!(
        "the event log was compacted through sequence number {compacted} \
         (--event-retention-days), and {what} {held}: the events it needs are gone. \
         Start with the --shards the node ran with before, or restore the store from a backup"
    )
}

/// Clears a "running" flag when dropped.
struct Running<'a>(&'a AtomicBool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// `retention` in ms, saturating.
fn window_ms(retention: Duration) -> i64 {
    i64::try_from(retention.as_millis()).unwrap_or(i64::MAX)
}
