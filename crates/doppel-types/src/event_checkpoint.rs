//! Checkpoints of what the event log built in a node's memory — item popularity, and per
//! logical shard each customer's purchases and impressions — so a node starts (and takes a
//! shard over) from the last checkpoint plus the events after it, not from the whole log.
//!
//! A checkpoint is exact: it counts every event up to [`EventCheckpoint::through_seq`]
//! and none after it, so applying the events after that sequence number gives the state
//! a full replay would. Erasing a customer removes its history from its shard's
//! checkpoint (the store does it with the erasure), so erased data never outlives the
//! erasure there, and the shard's other customers keep theirs: with event retention, the
//! checkpoint may be all that is left of their old events.

use serde::{Deserialize, Serialize};

use crate::shard::shard_of;

/// What a checkpoint covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CheckpointScope {
    /// Popularity and purchase counts of every item (from every customer's events).
    Items,
    /// The purchases and impressions of the customers of logical shard `shard` of
    /// `shard_count`.
    Shard {
        /// The logical shard.
        shard: u32,
        /// How many logical shards the customers were spread over.
        shard_count: u32,
    },
}

impl CheckpointScope {
    /// The scope's name in a store: `items` or `shard-<shard>-of-<shard_count>`.
    pub fn key(&self) -> String {
        match self {
            Self::Items => "items".to_owned(),
            Self::Shard { shard, shard_count } => format!("shard-{shard}-of-{shard_count}"),
        }
    }

    /// The scope named `key` (see [`Self::key`]), if it is one.
    pub fn from_key(key: &str) -> Option<Self> {
        if key == "items" {
            return Some(Self::Items);
        }
        let (shard, count) = key.strip_prefix("shard-")?.split_once("-of-")?;
        let (shard, shard_count) = (shard.parse().ok()?, count.parse().ok()?);
        (shard < shard_count).then_some(Self::Shard { shard, shard_count })
    }

    /// True when customer `id`'s data is in this scope.
    pub fn holds_customer(&self, id: &str) -> bool {
        match self {
            Self::Items => false,
            Self::Shard { shard, shard_count } => shard_of(id, *shard_count) == *shard,
        }
    }
}

/// One item's counts from the events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ItemCounts {
    /// The item.
    pub item_id: String,
    /// Its weighted event count (see the engine's popularity weights).
    pub popularity: f64,
    /// Units purchased.
    pub purchases: u64,
}

/// One customer's state from its events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerHistory {
    /// The customer.
    pub customer_id: String,
    /// Items bought, as indexes into [`EventCheckpoint::item_ids`], oldest last purchase
    /// first (checkpoints written before offers read the newest purchases: in any order).
    pub purchased: Vec<u32>,
    /// Impressions remembered for frequency caps: (index into
    /// [`EventCheckpoint::item_ids`], timestamp ms), oldest first.
    pub exposures: Vec<(u32, i64)>,
}

/// A checkpoint of one [`CheckpointScope`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventCheckpoint {
    /// Every event with a sequence number up to this one is counted, none after it.
    pub through_seq: u64,
    /// Scope [`CheckpointScope::Items`]: every item's counts.
    pub items: Vec<ItemCounts>,
    /// Scope [`CheckpointScope::Shard`]: the item ids the customers refer to.
    pub item_ids: Vec<String>,
    /// Scope [`CheckpointScope::Shard`]: the shard's customers with any purchase or
    /// impression.
    pub customers: Vec<CustomerHistory>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys_round_trip_and_reject_nonsense() {
        for scope in [
            CheckpointScope::Items,
            CheckpointScope::Shard {
                shard: 3,
                shard_count: 16,
            },
        ] {
            assert_eq!(CheckpointScope::from_key(&scope.key()), Some(scope));
        }
        for bad in ["", "shard-16-of-16", "shard-x-of-2", "shard-1", "items2"] {
            assert_eq!(CheckpointScope::from_key(bad), None, "{bad}");
        }
    }
}
