//! Profiles, items, the event log and vectors: round trips, ordering, paging.

use doppel_types::{Entity, Event, EventType};

use super::fixtures::{customer, event, item, rows};
use crate::store_trait::Store;

/// A new store is empty.
pub async fn empty_store(store: &dyn Store) {
    assert_eq!(store.get_customer("c1").await.expect("get"), None);
    assert!(
        store
            .scan_customers(None, 10)
            .await
            .expect("scan")
            .is_empty()
    );
    assert!(store.scan_items(None, 10).await.expect("scan").is_empty());
    assert!(store.scan_events(0, 10).await.expect("scan").is_empty());
    assert_eq!(store.last_event_seq().await.expect("seq"), 0);
    assert_eq!(store.active_version().await.expect("active"), None);
    assert!(store.list_versions().await.expect("list").is_empty());
    assert!(store.erased_customers().await.expect("ledger").is_empty());
    store.flush().await.expect("flush");
}

/// Upserted customers read back equal; scans page in id order; upsert replaces.
pub async fn customers_upsert_get_scan(store: &dyn Store) {
    let ids = ["c05", "c01", "c03", "c02", "c04"];
    store
        .upsert_customers(ids.iter().map(|id| customer(id)).collect())
        .await
        .expect("upsert");
    assert_eq!(
        store.get_customer("c03").await.expect("get"),
        Some(customer("c03")),
        "a customer reads back as written"
    );
    let first = store.scan_customers(None, 2).await.expect("scan");
    let first_ids: Vec<&str> = first.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        first_ids,
        ["c01", "c02"],
        "scan is in id order and honours limit"
    );
    let rest = store.scan_customers(Some("c02"), 10).await.expect("scan");
    let rest_ids: Vec<&str> = rest.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(
        rest_ids,
        ["c03", "c04", "c05"],
        "scan resumes strictly after `after`"
    );

    let mut changed = customer("c01");
    changed.consent.onsite_personalization = true;
    changed
        .attributes
        .insert("tier".to_owned(), "gold".to_owned());
    store
        .upsert_customers(vec![changed.clone()])
        .await
        .expect("upsert");
    assert_eq!(
        store.get_customer("c01").await.expect("get"),
        Some(changed),
        "upsert replaces"
    );
    assert_eq!(
        store.scan_customers(None, 100).await.expect("scan").len(),
        5
    );
}

/// Items read back equal and page in id order.
pub async fn items_round_trip(store: &dyn Store) {
    let items = vec![item("i2", "shoes"), item("i1", "hats"), item("i3", "hats")];
    store.upsert_items(items).await.expect("upsert");
    assert_eq!(
        store.get_item("i1").await.expect("get"),
        Some(item("i1", "hats"))
    );
    assert_eq!(store.get_item("nope").await.expect("get"), None);
    let page = store.scan_items(Some("i1"), 1).await.expect("scan");
    assert_eq!(
        page,
        vec![item("i2", "shoes")],
        "item scan pages in id order"
    );
}

/// Sequence numbers start at 1 and grow; per-customer lookup is in append order.
pub async fn events_order_and_per_customer(store: &dyn Store) {
    let last = store
        .append_events(vec![
            event("a", "i1", 30),
            event("b", "i1", 10),
            event("a", "i2", 20),
        ])
        .await
        .expect("append")
        .last_seq;
    assert_eq!(last, 3, "the first batch of three ends at seq 3");
    let last = store
        .append_events(vec![event("a", "i3", 5)])
        .await
        .expect("append");
    assert_eq!(last.last_seq, 4);
    assert_eq!(last.last_written, Some(4));
    assert!(
        last.duplicates.is_empty(),
        "events without ids are never duplicates"
    );
    assert_eq!(store.last_event_seq().await.expect("seq"), 4);

    let a = store.customer_events("a").await.expect("events");
    let items: Vec<&str> = a.iter().map(|e| e.item_id.as_str()).collect();
    assert_eq!(
        items,
        ["i1", "i2", "i3"],
        "customer events come in append order"
    );
    assert_eq!(a[0], event("a", "i1", 30), "events read back as written");
    assert!(
        store
            .customer_events("zzz")
            .await
            .expect("events")
            .is_empty()
    );

    let all = store.scan_events(0, 10).await.expect("scan");
    let seqs: Vec<u64> = all.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2, 3, 4], "the log scans in sequence order from 1");
    let page = store.scan_events(2, 1).await.expect("scan");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].0, 3, "scan_events resumes strictly after after_seq");
    assert_eq!(page[0].1, event("a", "i2", 20));
}

/// Impressions shown together (one customer, time and context) read back one by one, each
/// with its own sequence number, however a scan pages through them; erasure removes them.
pub async fn impressions_shown_together_read_back_one_by_one(store: &dyn Store) {
    let impression = |customer: &str, item: &str, at: i64| {
        let mut e = event(customer, item, at);
        e.kind = EventType::Impression;
        e.quantity = 1;
        e.value = 0.0;
        e
    };
    let shown: Vec<Event> = ["i1", "i2", "i3", "i4"]
        .into_iter()
        .map(|i| impression("a", i, 100))
        .collect();
    let mut written = shown.clone();
    written.push(event("b", "i1", 100));
    written.extend(["i5", "i6"].map(|i| impression("b", i, 100)));
    written.extend(["i7", "i8"].map(|i| impression("a", i, 101)));
    let appended = store
        .append_impressions(written.clone().into())
        .await
        .expect("append");
    assert_eq!(appended.last_seq, 9, "one sequence number per impression");
    store
        .append_events(vec![event("a", "i9", 102)])
        .await
        .expect("append");
    written.push(event("a", "i9", 102));
    let all: Vec<(u64, Event)> = (1..).zip(written.iter().cloned()).collect();
    for after in 0..=10u64 {
        for limit in 1..=11usize {
            let page = store.scan_events(after, limit).await.expect("scan");
            let want: Vec<(u64, Event)> = all
                .iter()
                .filter(|(seq, _)| *seq > after)
                .take(limit)
                .cloned()
                .collect();
            assert_eq!(page, want, "scan_events({after}, {limit})");
        }
    }
    let a = store.customer_events("a").await.expect("events");
    let want: Vec<Event> = written
        .iter()
        .filter(|e| e.customer_id == "a")
        .cloned()
        .collect();
    assert_eq!(a, want, "a customer's impressions in append order");
    store.delete_customer("a").await.expect("erase");
    assert!(store.customer_events("a").await.expect("events").is_empty());
    let left = store.scan_events(0, 100).await.expect("scan");
    let seqs: Vec<u64> = left.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        [5, 6, 7],
        "only b's events stay, at their sequence numbers"
    );
}

/// Vectors round-trip bit-exactly, per version and entity, and page in id order.
pub async fn vectors_round_trip_and_paging(store: &dyn Store) {
    let stored = store
        .put_vectors("v1", Entity::Customer, rows(&["c3", "c1", "c2"]))
        .await
        .expect("put");
    assert_eq!(stored, 3);
    store
        .put_vectors("v1", Entity::Item, rows(&["c1"]))
        .await
        .expect("put");
    store
        .put_vectors("v2", Entity::Customer, rows(&["c9"]))
        .await
        .expect("put");
    // A version whose name extends another's must not leak into its scans.
    store
        .put_vectors("v10", Entity::Customer, rows(&["c0"]))
        .await
        .expect("put");

    let got = store
        .get_vector("v1", Entity::Customer, "c1")
        .await
        .expect("get");
    assert_eq!(
        got,
        Some(vec![1.0, -0.25, 1.0e-7]),
        "vectors read back bit-exactly"
    );
    assert_eq!(
        store
            .get_vector("v1", Entity::Item, "c1")
            .await
            .expect("get"),
        Some(vec![0.0, -0.25, 1.0e-7]),
        "customer and item vectors of the same id are separate"
    );
    assert_eq!(
        store
            .get_vector("v2", Entity::Customer, "c1")
            .await
            .expect("get"),
        None
    );

    let all = store
        .scan_vectors("v1", Entity::Customer, None, 10)
        .await
        .expect("scan");
    let ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["c1", "c2", "c3"],
        "scan stays inside one version and entity"
    );
    let page = store
        .scan_vectors("v1", Entity::Customer, Some("c1"), 1)
        .await
        .expect("scan");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].0, "c2");
    let items = store
        .scan_vectors("v1", Entity::Item, None, 10)
        .await
        .expect("scan");
    assert_eq!(items.len(), 1);
}
