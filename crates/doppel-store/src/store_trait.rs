//! The store contract shared by the embedded (redb) and Redis implementations.
//!
//! Every write is atomic (all of a batch or nothing) and durable once it returns `Ok`.
//! The `contract` module (feature `contract`) checks these rules against any
//! implementation.

use std::sync::Arc;

use async_trait::async_trait;
use doppel_types::{
    AuditEvent, CheckpointScope, ContactPolicy, ContextModel, Customer, Entity, Event,
    EventCheckpoint, ExperimentBook, Item, SavedAudienceInfo, SavedAudienceLimits,
    SavedAudienceWrite, SavedMember, VersionInfo,
};

use doppel_types::shard::ShardId;

use crate::error::Result;

/// What [`Store::append_events`] did with a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// The last sequence number assigned after the append (as
    /// [`Store::last_event_seq`]; 0 if none ever was).
    pub last_seq: u64,
    /// The sequence number of the last event this append wrote; `None` when it wrote none
    /// (an empty batch, or every event a duplicate or of an erased customer). Numbers may
    /// be skipped for dropped events, so this can be below `last_seq`.
    pub last_written: Option<u64>,
    /// Positions in the batch of the events dropped as duplicates, ascending.
    pub duplicates: Vec<usize>,
    /// Positions in the batch of the events dropped because their customer is in the
    /// erasure ledger, ascending (a caller applying what was stored skips them too).
    pub erased: Vec<usize>,
}

/// doppel's state: profiles, items, events, the erasure ledger, versions and vectors.
///
/// Object-safe: services hold it as `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Inserts or replaces customers, as one atomic batch. An id in the erasure ledger that
    /// is upserted again is a new customer: its ledger entry is cleared.
    async fn upsert_customers(&self, customers: Vec<Customer>) -> Result<()>;
    /// The customer with this id, if any.
    async fn get_customer(&self, id: &str) -> Result<Option<Customer>>;
    /// Customers by id, in input order (`None` for unknown or erased ids).
    async fn get_customers(&self, ids: &[String]) -> Result<Vec<Option<Customer>>>;
    /// Up to `limit` customers with ids after `after` (exclusive), in id order.
    async fn scan_customers(&self, after: Option<&str>, limit: usize) -> Result<Vec<Customer>>;
    /// Erasure: removes the profile, all its events and its customer vectors in every
    /// version, and records the id in the erasure ledger — one transaction. Returns `true`
    /// if anything existed. The ledger entry is written even if nothing existed.
    async fn delete_customer(&self, id: &str) -> Result<bool>;
    /// The erasure ledger: ids erased and not upserted since, in id order.
    async fn erased_customers(&self) -> Result<Vec<String>>;
    /// Is this id in the erasure ledger?
    async fn is_erased(&self, id: &str) -> Result<bool>;

    /// Inserts or replaces items, as one atomic batch.
    async fn upsert_items(&self, items: Vec<Item>) -> Result<()>;
    /// The item with this id, if any.
    async fn get_item(&self, id: &str) -> Result<Option<Item>>;
    /// Up to `limit` items with ids after `after` (exclusive), in id order.
    async fn scan_items(&self, after: Option<&str>, limit: usize) -> Result<Vec<Item>>;

    /// Appends events to the log, as one atomic batch, numbering them from the last
    /// sequence number + 1. Events of erased customers are dropped. An event with a
    /// non-empty `event_id` whose (customer id, event id) was recorded before — by an
    /// earlier append or earlier in this batch — is dropped as a duplicate; the ids are
    /// recorded in the same transaction as the events and forgotten when the customer is
    /// erased.
    async fn append_events(&self, events: Vec<Event>) -> Result<Appended>;
    /// [`append_events`](Self::append_events) for impressions, which a store may make
    /// durable lazily: visible to reads at once, durable by the next
    /// [`flush`](Self::flush) (or the next durable write). A crash can lose the
    /// impressions of the last flush interval, never anything else. Shared, so a caller
    /// keeps them for a retry without copying.
    async fn append_impressions(&self, events: Arc<[Event]>) -> Result<Appended> {
        self.append_events(events.to_vec()).await
    }
    /// All events of one customer, in append order.
    async fn customer_events(&self, customer_id: &str) -> Result<Vec<Event>>;
    /// Up to `limit` events with sequence numbers > `after_seq`, in sequence order.
    /// Sequence numbers start at 1; erased events leave gaps.
    async fn scan_events(&self, after_seq: u64, limit: usize) -> Result<Vec<(u64, Event)>>;
    /// The last sequence number assigned (0 before the first event).
    async fn last_event_seq(&self) -> Result<u64>;

    /// Up to `limit` customers of logical shard `shard` (of `shard_count`) with ids after
    /// `after`, in id order: what a node taking a shard over reads. The default filters
    /// the whole scan; a store keyed by logical shard reads only that shard's keys.
    async fn scan_shard_customers(
        &self,
        shard: ShardId,
        shard_count: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Customer>> {
        crate::shard_scans::customers(self, shard, shard_count, after, limit).await
    }
    /// Up to `limit` events of logical shard `shard`'s customers with sequence numbers >
    /// `after_seq`, in sequence order (default: the whole log, filtered).
    async fn scan_shard_events(
        &self,
        shard: ShardId,
        shard_count: u32,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Event)>> {
        crate::shard_scans::events(self, shard, shard_count, after_seq, limit).await
    }
    /// Up to `limit` customer vectors of logical shard `shard` in `version` with ids after
    /// `after`, in id order (default: the whole scan, filtered).
    async fn scan_shard_vectors(
        &self,
        version: &str,
        shard: ShardId,
        shard_count: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<f32>)>> {
        crate::shard_scans::vectors(self, version, shard, shard_count, after, limit).await
    }

    /// Stores vectors of `entity` in `version`, as one atomic batch; returns the number
    /// of rows stored. Customer rows whose id is in the erasure ledger are dropped.
    async fn put_vectors(
        &self,
        version: &str,
        entity: Entity,
        rows: Vec<(String, Vec<f32>)>,
    ) -> Result<usize>;
    /// One vector, if stored.
    async fn get_vector(&self, version: &str, entity: Entity, id: &str)
    -> Result<Option<Vec<f32>>>;
    /// Up to `limit` vectors of `entity` in `version` with ids after `after`, in id order.
    async fn scan_vectors(
        &self,
        version: &str,
        entity: Entity,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<f32>)>>;
    /// Removes a version's metadata and all its vectors. Deleting the active version also
    /// clears the active pointer. Deleting an unknown version is not an error.
    async fn delete_version(&self, version: &str) -> Result<()>;

    /// Inserts or replaces a version's metadata.
    async fn put_version(&self, info: VersionInfo) -> Result<()>;
    /// A version's metadata, if any.
    async fn get_version(&self, version: &str) -> Result<Option<VersionInfo>>;
    /// All versions, in version-name order.
    async fn list_versions(&self) -> Result<Vec<VersionInfo>>;
    /// Points the active-version pointer at `version`; [`Error::NotFound`] if it has no
    /// metadata. Does not change any version's state (the caller owns the lifecycle).
    ///
    /// [`Error::NotFound`]: crate::Error::NotFound
    async fn set_active_version(&self, version: &str) -> Result<()>;
    /// The active version, if one was set.
    async fn active_version(&self) -> Result<Option<String>>;

    /// Replaces the contact policy (frequency caps), validated by the caller.
    async fn put_contact_policy(&self, policy: &ContactPolicy) -> Result<()>;
    /// The contact policy, if one was ever set.
    async fn contact_policy(&self) -> Result<Option<ContactPolicy>>;

    /// Replaces the checkpoint of `scope` of what the event log built (see
    /// [`doppel_types::event_checkpoint`]) unless the stored one is newer (a lagging
    /// writer never takes a checkpoint back); true if written. Erasing a customer removes
    /// its history from its shard's checkpoint in the same transaction (or script).
    async fn put_event_checkpoint(
        &self,
        scope: CheckpointScope,
        checkpoint: &EventCheckpoint,
    ) -> Result<bool>;
    /// Moves the checkpoint of `scope` forward to `through` when it is older, keeping its
    /// content: the caller knows nothing in the scope changed between the two (a quiet
    /// shard, so event retention is not held back by it). False when there is none or it
    /// is as new.
    async fn advance_event_checkpoint(&self, scope: CheckpointScope, through: u64) -> Result<bool>;
    /// The checkpoint of `scope`, if one was written, its customers in id order.
    async fn event_checkpoint(&self, scope: CheckpointScope) -> Result<Option<EventCheckpoint>>;
    /// The sequence number of each of `scopes`' checkpoints (none: not written), without
    /// reading the checkpoints whole.
    async fn event_checkpoint_seqs(&self, scopes: &[CheckpointScope]) -> Result<Vec<Option<u64>>>;
    /// Event retention: removes up to about `limit` of the oldest events — the log's
    /// prefix (per logical shard where the store keys by shard) up to sequence number
    /// `through` whose timestamps are before `before_ms` — and returns how many it removed
    /// (0: none left). The caller passes a `through` its event checkpoints cover. Recorded
    /// event ids stay, so a retried old event is still a duplicate.
    async fn compact_events(&self, through: u64, before_ms: i64, limit: usize) -> Result<u64>;
    /// The newest sequence number [`Self::compact_events`] removed (0: none): the log may
    /// lack events up to it, so replaying it needs checkpoints at least that new.
    async fn events_compacted_through(&self) -> Result<u64>;

    /// The experiments and canaries (an empty book at revision 0 when none was written).
    async fn experiments(&self) -> Result<ExperimentBook>;
    /// The stored book's revision (0 when none was written): cheap, for followers.
    async fn experiments_revision(&self) -> Result<u64> {
        Ok(self.experiments().await?.revision)
    }
    /// Writes `book` if the stored revision is still `book.revision - 1` (a
    /// compare-and-set: concurrent writers cannot undo each other); false when it is not.
    async fn put_experiments(&self, book: &ExperimentBook) -> Result<bool>;

    /// Stores the context model of a trained version (replacing any); deleted with the
    /// version.
    async fn put_context_model(&self, version: &str, model: &ContextModel) -> Result<()>;
    /// The context model of a version, if it has one.
    async fn context_model(&self, version: &str) -> Result<Option<ContextModel>>;

    /// Writes a saved audience — its info, its query (opaque bytes; `None` keeps the stored
    /// one) and its members, best first — in one atomic step, and answers the info as
    /// stored. Repeated members keep their best rank. Members in the erasure ledger, or
    /// erased since `info.refreshed_ms` (when the members were computed), are left out (an
    /// erasure during the computation wins), and `size` is what was kept. [`SavedAudienceWrite::Create`] fails with `LimitExceeded` (field `name`) at
    /// `limits.max_audiences`; [`SavedAudienceWrite::Replace`] with `NotFound` when the
    /// audience is gone; either with `LimitExceeded` (field `query`) when the members of
    /// every saved audience would exceed `limits.max_members`. Erasing a customer takes it
    /// out of every saved audience at once (and lowers `size`).
    async fn put_saved_audience(
        &self,
        info: &SavedAudienceInfo,
        query: Option<&[u8]>,
        members: &[SavedMember],
        write: SavedAudienceWrite,
        limits: SavedAudienceLimits,
    ) -> Result<SavedAudienceInfo>;
    /// A saved audience's info.
    async fn saved_audience(&self, id: &str) -> Result<Option<SavedAudienceInfo>>;
    /// A saved audience's query bytes.
    async fn saved_audience_query(&self, id: &str) -> Result<Option<Vec<u8>>>;
    /// Replaces a saved audience's query bytes if they still are `expected` (erasure scrubs
    /// ids from them; a compare-and-set, so concurrent scrubs cannot undo each other);
    /// false when the audience is gone or its query changed meanwhile.
    async fn put_saved_audience_query(
        &self,
        id: &str,
        expected: &[u8],
        query: &[u8],
    ) -> Result<bool>;
    /// Every saved audience's info, in id order.
    async fn saved_audiences(&self) -> Result<Vec<SavedAudienceInfo>>;
    /// Up to `limit` members of a saved audience after rank `after` (exclusive; `None`:
    /// from the best), as `(rank, member)` in rank order; `None` when the audience is gone.
    async fn saved_audience_members(
        &self,
        id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Option<Vec<(u64, SavedMember)>>>;
    /// Deletes a saved audience; `true` if it existed.
    async fn delete_saved_audience(&self, id: &str) -> Result<bool>;

    /// Appends an audit event (its `seq` is assigned); at most
    /// [`MAX_AUDIT_EVENTS`](doppel_types::audit::MAX_AUDIT_EVENTS) are kept, oldest dropped
    /// first. Answers the assigned seq.
    async fn append_audit_event(&self, event: &AuditEvent) -> Result<u64>;
    /// Up to `limit` audit events after seq `after` (exclusive), oldest first.
    async fn audit_events(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>>;

    /// Makes every acknowledged write durable, lazy impressions included (a no-op where
    /// writes are durable on commit).
    async fn flush(&self) -> Result<()>;

    /// Whether the store can serve: `false` while it is failing every operation and
    /// recovering on its own (the embedded store after an I/O error such as a full disk).
    /// `None` for stores that never stop serving as a whole.
    fn health(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }
}
