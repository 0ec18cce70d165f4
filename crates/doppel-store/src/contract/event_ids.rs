//! Event ids: (customer id, event id) is an event's identity, so a retried append does not
//! write it twice.

use doppel_types::Event;

use super::fixtures::{customer, event};
use crate::store_trait::Store;

/// An event of `customer` on `item` carrying `event_id`.
fn with_id(customer: &str, item: &str, event_id: &str) -> Event {
    Event {
        event_id: event_id.to_owned(),
        ..event(customer, item, 10)
    }
}

/// The items of the logged events, in sequence order.
async fn logged_items(store: &dyn Store) -> Vec<String> {
    let log = store.scan_events(0, 100).await.expect("scan");
    log.into_iter().map(|(_, e)| e.item_id).collect()
}

/// An id seen in an earlier batch, or earlier in the same batch, is a duplicate: reported
/// by position and not written; the first occurrence wins.
pub async fn repeated_event_ids_are_duplicates(store: &dyn Store) {
    let first = store
        .append_events(vec![with_id("a", "i1", "e1"), with_id("a", "i2", "e2")])
        .await
        .expect("append");
    assert!(first.duplicates.is_empty());
    assert_eq!(first.last_written, Some(2));

    let retry = store
        .append_events(vec![
            with_id("a", "i3", "e3"),
            with_id("a", "i1-again", "e1"),
            with_id("a", "i2-again", "e2"),
        ])
        .await
        .expect("append");
    assert_eq!(
        retry.duplicates,
        [1, 2],
        "ids recorded by an earlier append are duplicates, reported by batch position"
    );
    assert_eq!(
        logged_items(store).await,
        ["i1", "i2", "i3"],
        "duplicates are not in the log"
    );

    let within = store
        .append_events(vec![
            with_id("a", "i4", "e4"),
            with_id("a", "i4-again", "e4"),
            with_id("a", "i4-third", "e4"),
        ])
        .await
        .expect("append");
    assert_eq!(
        within.duplicates,
        [1, 2],
        "a repeat within one batch is a duplicate"
    );
    let items: Vec<String> = store
        .customer_events("a")
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.item_id)
        .collect();
    assert_eq!(items, ["i1", "i2", "i3", "i4"], "the first occurrence wins");

    let all_duplicates = store
        .append_events(vec![with_id("a", "x", "e1"), with_id("a", "y", "e4")])
        .await
        .expect("append");
    assert_eq!(all_duplicates.duplicates, [0, 1]);
    assert_eq!(
        all_duplicates.last_written, None,
        "a batch of duplicates writes nothing"
    );
    assert!(all_duplicates.last_seq >= 4);
}

/// Ids are scoped to their customer, and empty ids are never deduplicated.
pub async fn event_ids_are_per_customer_and_optional(store: &dyn Store) {
    let appended = store
        .append_events(vec![
            with_id("a", "i1", "same"),
            with_id("b", "i1", "same"),
            event("a", "i2", 20),
            event("a", "i2", 20),
        ])
        .await
        .expect("append");
    assert!(
        appended.duplicates.is_empty(),
        "one id under two customers, and events without ids, are all distinct"
    );
    let again = store
        .append_events(vec![event("a", "i2", 20), with_id("b", "i9", "same")])
        .await
        .expect("append");
    assert_eq!(again.duplicates, [1]);
    assert_eq!(
        store.customer_events("a").await.expect("events").len(),
        4,
        "events without ids are appended every time"
    );
    assert_eq!(store.customer_events("b").await.expect("events").len(), 1);
}

/// Erasure forgets a customer's event ids with its events: once the id is upserted again
/// as a new customer, its old event ids are new.
pub async fn erasure_forgets_event_ids(store: &dyn Store) {
    store
        .upsert_customers(vec![customer("gone"), customer("stay")])
        .await
        .expect("upsert");
    store
        .append_events(vec![
            with_id("gone", "i1", "e1"),
            with_id("stay", "i1", "e1"),
        ])
        .await
        .expect("append");
    store.delete_customer("gone").await.expect("delete");
    let dropped = store
        .append_events(vec![with_id("gone", "i1", "e1")])
        .await
        .expect("append");
    assert!(
        dropped.duplicates.is_empty() && dropped.last_written.is_none(),
        "an erased customer's event is dropped by the ledger, not as a duplicate"
    );

    store
        .upsert_customers(vec![customer("gone")])
        .await
        .expect("upsert");
    let back = store
        .append_events(vec![
            with_id("gone", "i2", "e1"),
            with_id("stay", "i2", "e1"),
        ])
        .await
        .expect("append");
    assert_eq!(
        back.duplicates,
        [1],
        "the re-upserted customer's old ids are forgotten; the other customer's are kept"
    );
    let items: Vec<String> = store
        .customer_events("gone")
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.item_id)
        .collect();
    assert_eq!(items, ["i2"]);
}
