//! The Redis key layout. Every key starts with the configured prefix and carries a hash
//! tag: `{sNN}` (logical shard `NN` of [`shard_of`] over the deployment's `--shards`) for
//! everything of one customer, or `{global}` for what belongs to no customer. Keys of one
//! tag live in one Redis Cluster slot, so a Lua script over them is atomic there, and a
//! node taking a logical shard over reads that shard's keys and no others.
//!
//! Before keys were per logical shard, customer keys hashed by 16 fixed tags whatever
//! `--shards` said. `P:{global}:key_layout` (`per-shard <count>`) marks data written
//! since; the two layouts coincide at 16 shards, so unmarked data is adopted there and
//! refused under any other shard count (see [`check_key_layout`](super::RedisStore::check_key_layout)).
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:{sNN}:customers` | hash | id → postcard [`Customer`](doppel_types::Customer) |
//! | `P:{sNN}:customer_ids` | zset, score 0 | ids, for id-ordered paging (`ZRANGEBYLEX`) |
//! | `P:{sNN}:erased` | hash | erasure ledger: id → erasure time (ms) |
//! | `P:{sNN}:events` | hash | seq → postcard [`Event`](doppel_types::Event) |
//! | `P:{sNN}:event_seqs` | zset, score seq | the shard's part of the log, in seq order |
//! | `P:{sNN}:cust_events:<id>` | zset, score seq | one customer's event seqs |
//! | `P:{sNN}:cust_event_ids:<id>` | hash | one customer's event ids → seq, for dedup |
//! | `P:{sNN}:checkpoint` | hash | the shard's event checkpoint: `through` → its sequence number, `head` → postcard [`EventCheckpoint`](doppel_types::EventCheckpoint) without customers, `c:<id>` → postcard [`CustomerHistory`](doppel_types::CustomerHistory); an erasure deletes its customer's field; written whole through `checkpoint:next:<nonce>` and `RENAME` |
//! | `P:{sNN}:event_checkpoint` | bytes | a checkpoint as older releases wrote it; deleted by the erasure of any of its customers and by the next checkpoint |
//! | `P:{T}:vectors:<e>:<version>` | hash | id → little-endian f32 bytes |
//! | `P:{T}:vector_ids:<e>:<version>` | zset, score 0 | ids, for paging |
//! | `P:{T}:vector_versions:<e>` | set | versions holding vectors of entity `e` under `T` |
//! | `P:{global}:items` / `item_ids` | hash / zset | items, as for customers |
//! | `P:{global}:versions` | hash | version → postcard [`VersionInfo`](doppel_types::VersionInfo) |
//! | `P:{global}:active_version` | string | the active version |
//! | `P:{global}:context_models` | hash | version → postcard [`ContextModel`](doppel_types::ContextModel) |
//! | `P:{global}:contact_policy` | bytes | postcard [`ContactPolicy`](doppel_types::ContactPolicy) |
//! | `P:{global}:experiments` / `experiments_rev` | bytes / string | postcard [`ExperimentBook`](doppel_types::ExperimentBook) and its revision |
//! | `P:{global}:checkpoint:items` | hash | the event checkpoint of item popularity (`through`, `head`) |
//! | `P:{global}:events_compacted_through` | string | the newest sequence number event retention removed (set before it removes) |
//! | `P:{global}:last_event_seq` | string | the event sequence counter (`INCRBY`) |
//! | `P:{global}:key_layout` | string | `per-shard <count>`: customer keys are tagged by logical shard, of that many |
//! | `P:{global}:members`, `member:<id>`, `shard_map` | | cluster membership (see `membership`) |
//! | `P:{global}:member_applied:<id>` | string | a node's event-log follower position, with its lease's expiry (event retention) |
//!
//! `T` is the customer's shard tag for customer vectors (`e` = `c`) and `global` for item
//! vectors (`e` = `i`). The variable part of a key is always last, so no two
//! (kind, entity, version, id) combinations share a key.

use doppel_types::Entity;
use doppel_types::shard::{ShardId, shard_of};

/// The hash tag a key lives under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Tag {
    /// One logical shard of customers.
    Shard(ShardId),
    /// Everything that belongs to no customer.
    Global,
}

impl std::fmt::Display for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tag::Shard(shard) => write!(f, "s{shard:02}"),
            Tag::Global => f.write_str("global"),
        }
    }
}

/// Builds every key from the prefix; see the module docs for the table.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    prefix: String,
    shard_count: u32,
}

impl Layout {
    /// Keys under `prefix` (e.g. `doppel`) for `shard_count` logical shards.
    pub(crate) fn new(prefix: &str, shard_count: u32) -> Self {
        Self {
            prefix: prefix.to_owned(),
            shard_count: shard_count.max(1),
        }
    }

    /// The key prefix.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The number of logical shards the customer keys are spread over.
    pub(crate) fn logical_shards(&self) -> u32 {
        self.shard_count
    }

    /// The shard tag of a customer.
    pub(crate) fn customer_tag(&self, id: &str) -> Tag {
        Tag::Shard(shard_of(id, self.shard_count))
    }

    /// Every shard tag, in shard order.
    pub(crate) fn shard_tags(&self) -> Vec<Tag> {
        (0..self.shard_count).map(Tag::Shard).collect()
    }

    /// The tag of a vector row of `entity` with this id.
    pub(crate) fn vector_tag(&self, entity: Entity, id: &str) -> Tag {
        match entity {
            Entity::Customer => self.customer_tag(id),
            Entity::Item => Tag::Global,
        }
    }

    /// The tags that hold vectors of `entity`.
    pub(crate) fn vector_tags(&self, entity: Entity) -> Vec<Tag> {
        match entity {
            Entity::Customer => self.shard_tags(),
            Entity::Item => vec![Tag::Global],
        }
    }

    fn key(&self, tag: Tag, name: &str) -> String {
        format!("{}:{{{tag}}}:{name}", self.prefix)
    }

    /// Customer profiles of a shard.
    pub(crate) fn customers(&self, tag: Tag) -> String {
        self.key(tag, "customers")
    }
    /// Customer ids of a shard, for paging.
    pub(crate) fn customer_ids(&self, tag: Tag) -> String {
        self.key(tag, "customer_ids")
    }
    /// The erasure ledger of a shard.
    pub(crate) fn erased(&self, tag: Tag) -> String {
        self.key(tag, "erased")
    }
    /// The event checkpoint of a shard's customers, as older releases wrote it (one value).
    pub(crate) fn legacy_shard_event_checkpoint(&self, tag: Tag) -> String {
        self.key(tag, "event_checkpoint")
    }
    /// The event checkpoint of item popularity, as older releases wrote it.
    pub(crate) fn legacy_items_event_checkpoint(&self) -> String {
        self.key(Tag::Global, "event_checkpoint:items")
    }
    /// The event checkpoint of a shard's customers (a hash, a field per customer).
    pub(crate) fn shard_event_checkpoint(&self, tag: Tag) -> String {
        self.key(tag, "checkpoint")
    }
    /// The event checkpoint of item popularity (a hash).
    pub(crate) fn items_event_checkpoint(&self) -> String {
        self.key(Tag::Global, "checkpoint:items")
    }
    /// The newest sequence number event retention removed.
    pub(crate) fn events_compacted_through(&self) -> String {
        self.key(Tag::Global, "events_compacted_through")
    }
    /// Events of a shard by seq.
    pub(crate) fn events(&self, tag: Tag) -> String {
        self.key(tag, "events")
    }
    /// The shard's event seqs, scored by seq.
    pub(crate) fn event_seqs(&self, tag: Tag) -> String {
        self.key(tag, "event_seqs")
    }
    /// One customer's event seqs.
    pub(crate) fn customer_events(&self, id: &str) -> String {
        self.key(self.customer_tag(id), &format!("cust_events:{id}"))
    }
    /// One customer's recorded event ids (→ seq), the dedup set of appends.
    pub(crate) fn customer_event_ids(&self, id: &str) -> String {
        self.key(self.customer_tag(id), &format!("cust_event_ids:{id}"))
    }
    /// Vectors of `entity` in `version` under `tag`.
    pub(crate) fn vectors(&self, tag: Tag, entity: Entity, version: &str) -> String {
        self.key(tag, &format!("vectors:{}:{version}", entity_code(entity)))
    }
    /// The key prefix that `version` completes into [`Self::vectors`] (for Lua scripts).
    pub(crate) fn vectors_prefix(&self, tag: Tag, entity: Entity) -> String {
        self.key(tag, &format!("vectors:{}:", entity_code(entity)))
    }
    /// Ids of `entity` vectors in `version` under `tag`.
    pub(crate) fn vector_ids(&self, tag: Tag, entity: Entity, version: &str) -> String {
        self.key(
            tag,
            &format!("vector_ids:{}:{version}", entity_code(entity)),
        )
    }
    /// The key prefix that `version` completes into [`Self::vector_ids`].
    pub(crate) fn vector_ids_prefix(&self, tag: Tag, entity: Entity) -> String {
        self.key(tag, &format!("vector_ids:{}:", entity_code(entity)))
    }
    /// Versions holding `entity` vectors under `tag`.
    pub(crate) fn vector_versions(&self, tag: Tag, entity: Entity) -> String {
        self.key(tag, &format!("vector_versions:{}", entity_code(entity)))
    }
    /// Items.
    pub(crate) fn items(&self) -> String {
        self.key(Tag::Global, "items")
    }
    /// Item ids, for paging.
    pub(crate) fn item_ids(&self) -> String {
        self.key(Tag::Global, "item_ids")
    }
    /// Version metadata.
    pub(crate) fn versions(&self) -> String {
        self.key(Tag::Global, "versions")
    }
    /// The active-version pointer.
    pub(crate) fn active_version(&self) -> String {
        self.key(Tag::Global, "active_version")
    }
    /// Context models of trained versions.
    pub(crate) fn context_models(&self) -> String {
        self.key(Tag::Global, "context_models")
    }
    /// The contact policy.
    pub(crate) fn contact_policy(&self) -> String {
        self.key(Tag::Global, "contact_policy")
    }
    /// The experiments.
    pub(crate) fn experiments(&self) -> String {
        self.key(Tag::Global, "experiments")
    }
    /// The experiments' revision (compare-and-set).
    pub(crate) fn experiments_revision(&self) -> String {
        self.key(Tag::Global, "experiments_rev")
    }
    /// Saved audiences' info by id.
    pub(crate) fn saved_audiences(&self) -> String {
        self.key(Tag::Global, "saved_audiences")
    }
    /// Saved audiences' query bytes by id.
    pub(crate) fn saved_audience_queries(&self) -> String {
        self.key(Tag::Global, "saved_audience_queries")
    }
    /// One saved audience's members, scored by rank (`""`: the key prefix).
    pub(crate) fn saved_audience_members(&self, id: &str) -> String {
        self.key(Tag::Global, &format!("saved_audience_members:{id}"))
    }
    /// One saved audience's member scores (`""`: the key prefix).
    pub(crate) fn saved_audience_scores(&self, id: &str) -> String {
        self.key(Tag::Global, &format!("saved_audience_scores:{id}"))
    }
    /// Members over every saved audience.
    pub(crate) fn saved_members_total(&self) -> String {
        self.key(Tag::Global, "saved_audience_member_total")
    }
    /// Customers erased in the last day, scored by time (against saved-audience writes
    /// computed before the erasure).
    pub(crate) fn recent_erasures(&self) -> String {
        self.key(Tag::Global, "recent_erasures")
    }
    /// The audit log's seq counter.
    pub(crate) fn audit_seq(&self) -> String {
        self.key(Tag::Global, "audit_seq")
    }
    /// Audit events by seq.
    pub(crate) fn audit_events(&self) -> String {
        self.key(Tag::Global, "audit_events")
    }
    /// Audit seqs, for paging.
    pub(crate) fn audit_seqs(&self) -> String {
        self.key(Tag::Global, "audit_seqs")
    }
    /// The event sequence counter.
    pub(crate) fn last_event_seq(&self) -> String {
        self.key(Tag::Global, "last_event_seq")
    }
    /// Node ids that held a lease.
    pub(crate) fn members(&self) -> String {
        self.key(Tag::Global, "members")
    }
    /// One node's lease.
    pub(crate) fn member(&self, node_id: &str) -> String {
        self.key(Tag::Global, &format!("member:{node_id}"))
    }
    /// One node's event-log follower position (beside its lease, same expiry).
    pub(crate) fn member_applied(&self, node_id: &str) -> String {
        self.key(Tag::Global, &format!("member_applied:{node_id}"))
    }
    /// The key layout marker (`per-shard <count>`).
    pub(crate) fn key_layout(&self) -> String {
        self.key(Tag::Global, "key_layout")
    }
    /// The cluster's number of logical shards.
    pub(crate) fn shard_count(&self) -> String {
        self.key(Tag::Global, "shard_count")
    }
    /// Logical shard → owning node.
    pub(crate) fn shard_map(&self) -> String {
        self.key(Tag::Global, "shard_map")
    }
}

/// The letter an entity is keyed under.
fn entity_code(entity: Entity) -> char {
    match entity {
        Entity::Customer => 'c',
        Entity::Item => 'i',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_one_customer_share_its_shard_tag() {
        let layout = Layout::new("doppel", 16);
        let tag = layout.customer_tag("c42");
        let hash_tag = format!("{{{tag}}}");
        assert!(layout.customers(tag).contains(&hash_tag));
        assert!(layout.customer_events("c42").contains(&hash_tag));
        assert!(layout.customer_event_ids("c42").contains(&hash_tag));
        assert!(
            layout
                .vectors(
                    layout.vector_tag(Entity::Customer, "c42"),
                    Entity::Customer,
                    "v1"
                )
                .contains(&hash_tag)
        );
        assert_eq!(layout.items(), "doppel:{global}:items");
        assert_eq!(Tag::Shard(7).to_string(), "s07");
        assert_eq!(
            format!("{}v1", layout.vectors_prefix(Tag::Global, Entity::Item)),
            layout.vectors(Tag::Global, Entity::Item, "v1")
        );
    }

    #[test]
    fn customer_keys_follow_the_logical_shard_count() {
        for shards in [1, 5, 16, 64, 300] {
            let layout = Layout::new("doppel", shards);
            assert_eq!(layout.shard_tags().len(), shards as usize);
            for id in ["c1", "c42", "customer-9000"] {
                assert_eq!(layout.customer_tag(id), Tag::Shard(shard_of(id, shards)));
            }
        }
    }
}
