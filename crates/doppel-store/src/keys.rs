//! The redb table layout. Every table is created when the database is opened, so readers
//! never meet a missing table.
//!
//! | table | key | value |
//! | --- | --- | --- |
//! | `customers` | id | postcard [`Customer`](doppel_types::Customer) |
//! | `items` | id | postcard [`Item`](doppel_types::Item) |
//! | `events` | seq (u64, numeric order) | postcard [`Event`](doppel_types::Event) |
//! | `customer_events` | (customer id, seq) | () — per-customer index of `events` |
//! | `impression_batches` | seq | postcard customer ids — batch rows of `events`, kept out of `customer_events` |
//! | `customer_event_ids` | (customer id, event id) | seq — ids recorded, for dedup |
//! | `erased` | customer id | erasure time, ms since the epoch |
//! | `vectors` | (version, entity tag, id) | little-endian f32 bytes |
//! | `vector_versions` | version | () — versions that have vectors, for erasure |
//! | `versions` | version | postcard [`VersionInfo`](doppel_types::VersionInfo) |
//! | `policies` | name | postcard policy ([`ContactPolicy`](doppel_types::ContactPolicy) under `contact`) |
//! | `context_models` | version | postcard [`ContextModel`](doppel_types::ContextModel) |
//! | `saved_audiences` | audience id | postcard [`SavedAudienceInfo`](doppel_types::SavedAudienceInfo) |
//! | `saved_audience_queries` | audience id | the query, encoded by the serving layer |
//! | `saved_audience_members` | (audience id, rank) | postcard [`SavedMember`](doppel_types::SavedMember) |
//! | `saved_audience_ranks` | (customer id, audience id) | rank — reverse index for erasure |
//! | `audit_events` | seq | postcard [`AuditEvent`](doppel_types::AuditEvent) |
//! | `event_checkpoints` | scope key ([`CheckpointScope::key`](doppel_types::CheckpointScope::key)) | postcard [`EventCheckpoint`](doppel_types::EventCheckpoint) without its customers |
//! | `event_checkpoint_customers` | (scope key, customer id) | postcard [`CustomerHistory`](doppel_types::CustomerHistory) — one row a customer, so an erasure removes one row |
//! | `meta` | name | u64 or bytes, see the constants below |

use doppel_types::Entity;
use redb::TableDefinition;

/// Customer profiles by id.
pub const CUSTOMERS: TableDefinition<&str, &[u8]> = TableDefinition::new("customers");
/// Items by id.
pub const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("items");
/// The global event log by sequence number.
pub const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Per-customer index of the event log.
pub const CUSTOMER_EVENTS: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("customer_events");
/// Batch rows of impressions (stored without `customer_events` entries), with the
/// customers each holds (see `embedded::batch_owners`).
pub const IMPRESSION_BATCHES: TableDefinition<u64, &[u8]> =
    TableDefinition::new("impression_batches");
/// Event ids recorded per customer (the dedup set of `append_events`), with the seq of
/// the event that carried each; erasure removes a customer's range.
pub const CUSTOMER_EVENT_IDS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("customer_event_ids");
/// The erasure ledger.
pub const ERASED: TableDefinition<&str, u64> = TableDefinition::new("erased");
/// Vectors by (version, entity tag, id).
pub const VECTORS: TableDefinition<(&str, u8, &str), &[u8]> = TableDefinition::new("vectors");
/// Versions that hold vectors (with or without metadata).
pub const VECTOR_VERSIONS: TableDefinition<&str, ()> = TableDefinition::new("vector_versions");
/// Model-version metadata.
pub const VERSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("versions");
/// Counters by name.
pub const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// Small string settings by name.
pub const SETTINGS: TableDefinition<&str, &str> = TableDefinition::new("settings");

/// Policies by name (postcard).
pub const POLICIES: TableDefinition<&str, &[u8]> = TableDefinition::new("policies");
/// Context models of trained versions, by version (postcard).
pub const CONTEXT_MODELS: TableDefinition<&str, &[u8]> = TableDefinition::new("context_models");
/// Saved audiences' info by id (postcard).
pub const SAVED_AUDIENCES: TableDefinition<&str, &[u8]> = TableDefinition::new("saved_audiences");
/// Saved audiences' query bytes by id.
pub const SAVED_AUDIENCE_QUERIES: TableDefinition<&str, &[u8]> =
    TableDefinition::new("saved_audience_queries");
/// Saved audiences' members by (id, rank), best first.
pub const SAVED_AUDIENCE_MEMBERS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("saved_audience_member_rows");
/// Which saved audiences hold a customer, at which rank: (customer, audience) → rank.
pub const SAVED_AUDIENCE_RANKS: TableDefinition<(&str, &str), u64> =
    TableDefinition::new("saved_audience_ranks");
/// Checkpoints of what the event log built, by scope key.
pub const EVENT_CHECKPOINTS: TableDefinition<&str, &[u8]> =
    TableDefinition::new("event_checkpoints");
/// The customers of shard checkpoints, one row each: (scope key, customer id) → postcard
/// [`CustomerHistory`](doppel_types::CustomerHistory).
pub const EVENT_CHECKPOINT_CUSTOMERS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("event_checkpoint_customers");
/// The audit log by seq.
pub const AUDIT_EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("audit_events");
/// `COUNTERS` key of the last audit seq.
pub const LAST_AUDIT_SEQ: &str = "last_audit_seq";
/// `COUNTERS` key of the members over every saved audience.
pub const SAVED_MEMBERS_TOTAL: &str = "saved_audience_members";
/// `POLICIES` key of the contact policy.
pub const CONTACT_POLICY: &str = "contact";
/// `POLICIES` key of the experiments ([`ExperimentBook`](doppel_types::ExperimentBook)).
pub const EXPERIMENTS: &str = "experiments";

/// `COUNTERS` key of the last assigned event sequence number (0 before the first event).
/// Kept apart from the log so erasing the newest events never lets a number be reused.
pub const LAST_EVENT_SEQ: &str = "last_event_seq";
/// `COUNTERS` key of the newest sequence number event retention removed (0: none): the
/// log no longer holds every event up to it, so a node needs checkpoints at least as new.
pub const EVENTS_COMPACTED_THROUGH: &str = "events_compacted_through";
/// `SETTINGS` key of the active version.
pub const ACTIVE_VERSION: &str = "active_version";

/// The byte an entity is keyed under in `VECTORS`.
pub fn entity_tag(entity: Entity) -> u8 {
    match entity {
        Entity::Customer => 0,
        Entity::Item => 1,
    }
}
