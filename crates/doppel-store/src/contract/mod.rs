//! The store contract as executable checks, shared by every [`Store`] implementation.
//!
//! [`run_all`] runs every case on a fresh store from the factory and panics with the case
//! name and the violated rule. Implementations call it from their own tests:
//!
//! ```ignore
//! doppel_store::contract::run_all(|| async { MyStore::connect(...).await }).await;
//! ```
//!
//! Each case is also public, to run one alone while debugging.
//!
//! Layout: `fixtures` (records the cases write), `records` (profiles, items, events,
//! vectors), `event_ids` (deduplication of events by id), `erasure` (the ledger and what
//! erasure removes), `versions` (metadata, context models and the active pointer), `policies` (the contact policy), `saved_audiences`, `shard_scans` (reads of one logical shard).

mod audit_log;
mod erasure;
mod event_checkpoints;
mod event_ids;
mod fixtures;
mod policies;
mod records;
mod retention;
mod saved_audiences;
mod shard_scans;
mod versions;

use std::future::Future;

pub use audit_log::audit_events_append_and_page;
pub use erasure::{
    erased_ids_are_dropped_from_writes, erasure_removes_everything,
    reupsert_after_erasure_clears_ledger,
};
pub use event_checkpoints::event_checkpoints_round_trip_and_go_with_an_erasure;
pub use event_ids::{
    erasure_forgets_event_ids, event_ids_are_per_customer_and_optional,
    repeated_event_ids_are_duplicates,
};
pub use fixtures::{customer, event, item, rows, version};
pub use policies::{contact_policy_round_trips, experiments_compare_and_set};
pub use records::{
    customers_upsert_get_scan, empty_store, events_order_and_per_customer,
    impressions_shown_together_read_back_one_by_one, items_round_trip,
    vectors_round_trip_and_paging,
};
pub use retention::compaction_removes_the_old_prefix_and_keeps_event_ids;
pub use saved_audiences::saved_audiences_round_trip_and_lose_erased_members;
pub use shard_scans::shard_scans_read_exactly_one_shard;
pub use versions::{
    context_models_round_trip_and_go_with_their_version, delete_version_removes_vectors,
    set_active_unknown_is_not_found, versions_and_active_pointer,
};

use crate::store_trait::Store;

/// Runs every contract case, each on a fresh store made by `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Store,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    macro_rules! case {
        ($name:ident) => {{
            eprintln!("store contract: {}", stringify!($name));
            let store = make().await;
            $name(&store).await;
        }};
    }
    case!(empty_store);
    case!(customers_upsert_get_scan);
    case!(items_round_trip);
    case!(events_order_and_per_customer);
    case!(impressions_shown_together_read_back_one_by_one);
    case!(repeated_event_ids_are_duplicates);
    case!(event_ids_are_per_customer_and_optional);
    case!(erasure_forgets_event_ids);
    case!(vectors_round_trip_and_paging);
    case!(erasure_removes_everything);
    case!(erased_ids_are_dropped_from_writes);
    case!(reupsert_after_erasure_clears_ledger);
    case!(versions_and_active_pointer);
    case!(set_active_unknown_is_not_found);
    case!(delete_version_removes_vectors);
    case!(contact_policy_round_trips);
    case!(experiments_compare_and_set);
    case!(context_models_round_trip_and_go_with_their_version);
    case!(saved_audiences_round_trip_and_lose_erased_members);
    case!(audit_events_append_and_page);
    case!(shard_scans_read_exactly_one_shard);
    case!(event_checkpoints_round_trip_and_go_with_an_erasure);
    case!(compaction_removes_the_old_prefix_and_keeps_event_ids);
}
