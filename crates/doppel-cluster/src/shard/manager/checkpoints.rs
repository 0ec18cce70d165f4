//! The manager's event checkpoints (written at the follower's position) and, with event
//! retention, the removal of old events every live node has read.

use doppel_node::Result;
use doppel_store::Store;
use doppel_types::CheckpointScope;

use super::Manager;

impl Manager {
    /// Writes the event checkpoints that changed, at the follower's position, when no
    /// skipped sequence number is awaited (else a checkpoint would not be exact at it);
    /// true when done (or nothing to do).
    pub(super) async fn checkpoint(&mut self) -> bool {
        // After a resync, item counts hold events past the position until it catches up.
        if self.after < self.items_through {
            return false;
        }
        if !self.gaps.missing.is_empty() {
            self.checkpoints_waiting += 1;
            // Tried every poll once due: 40 polls are ten seconds, a gap's whole patience.
            if self.checkpoints_waiting.is_multiple_of(40) {
                tracing::warn!(
                    polls = self.checkpoints_waiting,
                    awaited = self.gaps.missing.len(),
                    "event checkpoints wait for skipped sequence numbers to commit or expire"
                );
            }
            return false;
        }
        self.checkpoints_waiting = 0;
        // Shards another node claimed are not this node's to write any more.
        let leaving: Vec<u32> = self.handoffs.keys().copied().collect();
        match self
            .node
            .write_event_checkpoints_except(Some(self.after), &leaving)
            .await
        {
            Ok(_) => {
                self.compact().await;
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "event checkpoints not written; retrying");
                false
            }
        }
    }

    /// With event retention, on the holder of logical shard 0: starts removing old events,
    /// none a live node's follower has not read yet (this one's included: its lease record
    /// may be a round old).
    async fn compact(&self) {
        if self.node.config().event_retention.is_none() || !self.node.engine().owns_shard(0) {
            return;
        }
        match self.store.live_members().await {
            Ok(members) => {
                let slowest = members
                    .iter()
                    .map(|m| m.applied_seq)
                    .fold(self.after, u64::min);
                self.node.spawn_compaction(Some(slowest));
            }
            Err(e) => {
                tracing::warn!(error = %e, "live nodes unknown: no old events removed this round")
            }
        }
    }

    /// Of the shards this node should take over, those it can take now: all of them, unless
    /// old events were removed — then those whose checkpoint is usable at this node's
    /// position (at least as new as the removal, not newer than the position, no skipped
    /// number up to it awaited). The others wait for a later round, so one lagging or
    /// damaged checkpoint does not hold the rest back.
    pub(super) async fn takeover_ready(&self, wanted: Vec<u32>) -> Result<Vec<u32>> {
        let compacted = self.store.events_compacted_through().await?;
        if compacted == 0 || wanted.is_empty() {
            return Ok(wanted);
        }
        let shard_count = self.node.engine().config().shard_count;
        let scopes: Vec<CheckpointScope> = wanted
            .iter()
            .map(|&shard| CheckpointScope::Shard { shard, shard_count })
            .collect();
        let seqs = self.store.event_checkpoint_seqs(&scopes).await?;
        let usable = |through: u64| {
            through >= compacted
                && through <= self.after
                && self.gaps.missing.range(..=through).next().is_none()
        };
        let (mut ready, mut waiting) = (Vec::new(), Vec::new());
        for (shard, seq) in wanted.into_iter().zip(seqs) {
            if seq.is_some_and(usable) {
                ready.push(shard);
            } else {
                waiting.push((shard, seq));
            }
        }
        if !waiting.is_empty() {
            tracing::warn!(
                shards = ?waiting,
                compacted,
                position = self.after,
                "shards not taken over yet: old events were removed and their checkpoints are not usable at this position"
            );
        }
        Ok(ready)
    }
}
