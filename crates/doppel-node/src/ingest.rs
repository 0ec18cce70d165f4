//! Writes from clients: profiles, items, events, erasure; and the one read of a customer.
//! Every write reaches the store (durably) before the engine.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use doppel_store::Appended;
use doppel_types::{Customer, Entity, Event, EventType, Item};

use crate::error::{Error, Result};
use crate::node::Node;

/// On a shard node, how long an event write waits for the follower to apply it
/// (read-your-writes).
pub(crate) const FOLLOWER_PATIENCE: Duration = Duration::from_secs(5);

/// What one batch of `record_events` did.
#[derive(Debug, Default)]
pub struct RecordedBatch {
    /// Events dropped because their (customer, event id) was already recorded.
    pub duplicates: u64,
    /// The last sequence number this batch wrote (none when it wrote nothing).
    pub last_written: Option<u64>,
    /// Customers whose events were applied to the engine here (a single node), for
    /// fold-in once the stream ends.
    pub applied_customers: Vec<String>,
}

/// A customer as `GetCustomer` shows it.
#[derive(Debug)]
pub struct CustomerView {
    /// The stored profile.
    pub customer: Customer,
    /// Events in the log.
    pub event_count: u64,
    /// Items with net purchased units > 0.
    pub purchased_items: u64,
    /// The active version ("" when none).
    pub model_version: String,
    /// Has a vector in the active version.
    pub has_vector: bool,
    /// Impressions per capped scope within each cap's window (non-zero counts only).
    pub cap_counts: Vec<doppel_engine::CapCount>,
}

impl Node {
    /// Upserts profiles (keeping their stored customer segments), store first.
    pub async fn upsert_customers(&self, batch: Vec<Customer>) -> Result<()> {
        for c in &batch {
            self.check_holds(&c.id, true)?;
        }
        let batch = crate::customer_segments::keep_segments(self, batch).await?;
        self.store.upsert_customers(batch.clone()).await?;
        // Memory follows the store whatever the confirmation says (a consent withdrawn is
        // withdrawn here too); the confirmation decides only the acknowledgement.
        batch.iter().for_each(|c| self.engine.upsert_customer(c));
        self.confirm_owned(batch.iter().map(|c| c.id.as_str()))
            .await
    }

    /// Upserts items, store first.
    pub async fn upsert_items(&self, batch: Vec<Item>) -> Result<()> {
        self.store.upsert_items(batch.clone()).await?;
        batch.iter().for_each(|i| self.engine.upsert_item(i));
        Ok(())
    }

    /// The field of an event that names a customer or item unknown here, and why.
    pub fn unknown_event_ref(&self, event: &Event) -> Option<(&'static str, String)> {
        if !self.engine.known_customer(&event.customer_id) {
            return Some((
                "customer_id",
                format!("unknown customer `{}` (upsert it first)", event.customer_id),
            ));
        }
        if !self.engine.known_item(&event.item_id) {
            return Some((
                "item_id",
                format!("unknown item `{}` (upsert it first)", event.item_id),
            ));
        }
        None
    }

    /// Appends a batch of events to the log (repeated event ids dropped) and, on a single
    /// node, applies the stored ones to the engine. On a shard node the follower applies
    /// every stored event exactly once.
    pub async fn record_events(self: &Arc<Self>, batch: Vec<Event>) -> Result<RecordedBatch> {
        for e in &batch {
            self.check_holds(&e.customer_id, true)?;
        }
        // Stored and applied in a task of its own: a caller that goes away (a cancelled
        // request) cannot leave a stored event unapplied, which the next event checkpoint
        // would make permanent.
        let node = Arc::clone(self);
        tokio::spawn(async move {
            // A single node applies what it stores: under the shards' gates (see
            // `event_checkpoints`). A shard node's follower applies events in log order.
            let _gates = if node.placement.follows_event_log() {
                Vec::new()
            } else {
                node.gate_customers(batch.iter().map(|e| e.customer_id.as_str()))
                    .await
            };
            let appended = node.store.append_events(batch.clone()).await?;
            node.confirm_owned(batch.iter().map(|e| e.customer_id.as_str()))
                .await?;
            Ok(node.apply_appended(&batch, appended))
        })
        .await
        .map_err(|e| Error::task("recording events", e))?
    }

    /// [`Self::record_events`] for impressions shown by `RecommendOffers`: stored with
    /// [`Store::append_impressions`](doppel_store::Store::append_impressions) (durable
    /// within the flush interval rather than on return).
    pub(crate) async fn record_impression_events(
        &self,
        batch: Vec<Event>,
    ) -> Result<RecordedBatch> {
        for e in &batch {
            self.check_holds(&e.customer_id, true)?;
        }
        // Shared with the store, not copied: the engine applies the same events after.
        let batch: std::sync::Arc<[Event]> = batch.into();
        let appended = self
            .store
            .append_impressions(std::sync::Arc::clone(&batch))
            .await?;
        self.confirm_owned(batch.iter().map(|e| e.customer_id.as_str()))
            .await?;
        Ok(self.apply_appended(&batch, appended))
    }

    /// Applies what an append wrote to the engine (a single node; a shard node's follower
    /// does it from the log).
    fn apply_appended(&self, batch: &[Event], appended: Appended) -> RecordedBatch {
        let mut recorded = RecordedBatch {
            duplicates: appended.duplicates.len() as u64,
            // The last seq this call wrote, not the counter: seqs of dropped events are
            // never filled, so the follower would not reach them.
            last_written: appended.last_written,
            applied_customers: Vec::new(),
        };
        if self.placement.follows_event_log() {
            return recorded;
        }
        // Neither repeated events nor those of erased customers (which would bring the
        // customer back in memory) are applied.
        let mut dropped: Vec<usize> = appended.duplicates;
        dropped.extend(appended.erased);
        dropped.sort_unstable();
        dropped.dedup();
        let mut dropped = dropped.into_iter().peekable();
        for (position, event) in batch.iter().enumerate() {
            if dropped.next_if_eq(&position).is_some() {
                continue;
            }
            self.engine.record_event(event);
            self.note_applied(&event.customer_id);
            // An impression is not a taste signal to fold in (it only feeds frequency caps).
            if event.kind != EventType::Impression {
                recorded.applied_customers.push(event.customer_id.clone());
            }
        }
        recorded
    }

    /// After a stream of events: a single node folds the customers in (the next
    /// recommendation reflects their events); a shard node waits for its follower to have
    /// applied `last_written`. Returns how many customers were folded in.
    pub async fn events_recorded(
        &self,
        customers: BTreeSet<String>,
        last_written: Option<u64>,
    ) -> Result<usize> {
        if self.placement.follows_event_log() {
            let seq = last_written.unwrap_or(0);
            if !self.placement.wait_applied(seq, FOLLOWER_PATIENCE).await {
                tracing::warn!(seq, "events stored; the follower has not applied them yet");
            }
            return Ok(0);
        }
        self.fold_in_customers(customers.into_iter().collect())
            .await
    }

    /// A customer's profile with counts from its events and whether it has a vector.
    pub async fn customer_view(&self, customer_id: &str) -> Result<CustomerView> {
        self.check_holds(customer_id, false)?;
        let customer =
            self.store.get_customer(customer_id).await?.ok_or_else(|| {
                Error::NotFound(format!("customer_id: `{customer_id}` not found"))
            })?;
        let events = self.store.customer_events(customer_id).await?;
        let mut net_units: HashMap<&str, i64> = HashMap::new();
        for event in &events {
            let units = i64::from(event.quantity.max(1));
            match event.kind {
                EventType::Purchase => *net_units.entry(&event.item_id).or_default() += units,
                EventType::Return => *net_units.entry(&event.item_id).or_default() -= units,
                EventType::View
                | EventType::AddToCart
                | EventType::Impression
                | EventType::Click => {}
            }
        }
        let model_version = self.engine.active_version().unwrap_or_default();
        let has_vector = !model_version.is_empty()
            && self
                .store
                .get_vector(&model_version, Entity::Customer, customer_id)
                .await?
                .is_some();
        // A customer stored but never seen by the engine (no events yet) has no impressions.
        let cap_counts = self.engine.cap_counts(customer_id).unwrap_or_default();
        Ok(CustomerView {
            cap_counts,
            purchased_items: net_units.values().filter(|&&u| u > 0).count() as u64,
            event_count: events.len() as u64,
            customer,
            model_version,
            has_vector,
        })
    }

    /// Erasure: the store first (durable, in the ledger, so no rebuild or import brings the
    /// customer back), then every loaded index. True if anything existed.
    pub async fn delete_customer(self: &Arc<Self>, customer_id: &str) -> Result<bool> {
        self.check_holds(customer_id, true)?;
        // In a task of its own, so a cancelled request cannot leave the customer erased in
        // the store but not in memory (where the next checkpoint would keep it). Under the
        // shard's gate, exclusively: a checkpoint of the shard is written before the store
        // deletes it or after the engine forgot the customer, and no batch of the
        // customer's events is between its append and its application meanwhile.
        let node = Arc::clone(self);
        let id = customer_id.to_owned();
        let (existed, in_memory) = tokio::spawn(async move {
            let shard = doppel_types::shard::shard_of(&id, node.engine.config().shard_count);
            let gate = node.gate_shard_exclusive(shard).await;
            let existed = node.store.delete_customer(&id).await?;
            let in_memory = node.engine.erase_customer(&id);
            node.note_shard_changed(shard);
            drop(gate);
            Ok::<_, Error>((existed, in_memory))
        })
        .await
        .map_err(|e| Error::task("erasing a customer", e))??;
        self.confirm_owned(std::iter::once(customer_id)).await?;
        tracing::info!(existed = existed || in_memory, "customer erased");
        Ok(existed || in_memory)
    }
}
