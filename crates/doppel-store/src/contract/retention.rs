//! Event retention: `compact_events` removes the oldest events — the log's prefix up to
//! the given sequence number, older than the cutoff — and nothing else; recorded event ids
//! stay.

use std::sync::Arc;

use doppel_types::{Event, EventType};

use super::fixtures::event;
use crate::store_trait::Store;

/// The prefix goes, up to the first event too new or past `through`; ids stay recorded.
pub async fn compaction_removes_the_old_prefix_and_keeps_event_ids(store: &dyn Store) {
    const OLD: i64 = 1_000;
    const NEW: i64 = 9_000;
    const CUTOFF: i64 = 5_000;
    let with_id = Event {
        event_id: "e1".into(),
        ..event("c", "i1", OLD)
    };
    store
        .append_events(vec![with_id.clone(), event("c", "i2", OLD + 1)])
        .await
        .expect("old events");
    let shown = Event {
        kind: EventType::Impression,
        quantity: 1,
        ..event("c", "i3", OLD + 2)
    };
    store
        .append_impressions(Arc::from(vec![shown.clone(), shown.clone()]))
        .await
        .expect("old impressions");
    store
        .append_events(vec![event("c", "i4", NEW), event("c", "i5", OLD + 3)])
        .await
        .expect("a new event, then an old one");
    let all = store.scan_events(0, 100).await.expect("log");
    assert_eq!(all.len(), 6);
    let seq_of_new = all.iter().find(|(_, e)| e.item_id == "i4").unwrap().0;

    assert_eq!(store.events_compacted_through().await.unwrap(), 0);
    // Nothing past `through`: only the first two go.
    let first_two = all[1].0;
    assert_eq!(
        store.compact_events(first_two, CUTOFF, 100).await.unwrap(),
        2
    );
    let left = store.scan_events(0, 100).await.unwrap();
    assert_eq!(left, all[2..].to_vec());
    assert_eq!(store.events_compacted_through().await.unwrap(), first_two);
    // Up to the new event (which ends the prefix, so the old one after it stays).
    assert_eq!(
        store.compact_events(u64::MAX, CUTOFF, 100).await.unwrap(),
        2
    );
    let left = store.scan_events(0, 100).await.unwrap();
    assert_eq!(left.first().map(|(s, _)| *s), Some(seq_of_new));
    assert_eq!(left.len(), 2);
    assert_eq!(
        store.compact_events(u64::MAX, CUTOFF, 100).await.unwrap(),
        0
    );
    assert_eq!(
        store.events_compacted_through().await.unwrap(),
        seq_of_new - 1,
        "the newest removed: the impressions before the new event"
    );
    let items: Vec<String> = store
        .customer_events("c")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.item_id)
        .collect();
    assert_eq!(items, ["i4", "i5"], "the customer's own index follows");
    // The id of a removed event is still recorded: a retry is a duplicate.
    let retried = store.append_events(vec![with_id]).await.unwrap();
    assert_eq!(retried.duplicates, [0]);
}
