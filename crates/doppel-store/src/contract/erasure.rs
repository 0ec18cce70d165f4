//! Erasure: what it removes, what the ledger blocks, and how a customer comes back.

use doppel_types::Entity;

use super::fixtures::{customer, event, rows, version};
use crate::store_trait::Store;

/// Erasure removes profile, events and vectors in every version, and records the ledger.
pub async fn erasure_removes_everything(store: &dyn Store) {
    store
        .upsert_customers(vec![customer("gone"), customer("stay")])
        .await
        .expect("upsert");
    store
        .append_events(vec![
            event("gone", "i1", 1),
            event("stay", "i1", 2),
            event("gone", "i2", 3),
        ])
        .await
        .expect("append");
    for v in ["v1", "v2"] {
        store.put_version(version(v)).await.expect("put version");
        store
            .put_vectors(v, Entity::Customer, rows(&["gone", "stay"]))
            .await
            .expect("put");
    }
    // An item that happens to share the id is not a customer and is kept.
    store
        .put_vectors("v1", Entity::Item, rows(&["gone"]))
        .await
        .expect("put");

    assert!(
        store.delete_customer("gone").await.expect("delete"),
        "something existed"
    );
    assert_eq!(
        store.get_customer("gone").await.expect("get"),
        None,
        "profile erased"
    );
    assert!(
        store
            .customer_events("gone")
            .await
            .expect("events")
            .is_empty(),
        "events erased"
    );
    let log = store.scan_events(0, 100).await.expect("scan");
    assert!(
        log.iter().all(|(_, e)| e.customer_id != "gone"),
        "erased events are gone from the global log"
    );
    assert_eq!(log.len(), 1);
    for v in ["v1", "v2"] {
        assert_eq!(
            store
                .get_vector(v, Entity::Customer, "gone")
                .await
                .expect("get"),
            None,
            "vector erased in version {v}"
        );
        assert!(
            store
                .get_vector(v, Entity::Customer, "stay")
                .await
                .expect("get")
                .is_some()
        );
    }
    assert!(
        store
            .get_vector("v1", Entity::Item, "gone")
            .await
            .expect("get")
            .is_some()
    );
    assert!(store.is_erased("gone").await.expect("erased"));
    assert!(!store.is_erased("stay").await.expect("erased"));
    assert_eq!(store.erased_customers().await.expect("ledger"), ["gone"]);
    assert_eq!(
        store.get_customer("stay").await.expect("get"),
        Some(customer("stay"))
    );

    assert!(
        !store.delete_customer("never").await.expect("delete"),
        "nothing existed"
    );
    assert!(
        store.is_erased("never").await.expect("erased"),
        "the ledger records it anyway"
    );
    // Sequence numbers are never reused after erasure.
    let last = store
        .append_events(vec![event("stay", "i9", 4)])
        .await
        .expect("append")
        .last_seq;
    assert_eq!(last, 4, "sequence numbers keep growing after erasure");
}

/// Events and customer vectors of erased ids are dropped on write.
pub async fn erased_ids_are_dropped_from_writes(store: &dyn Store) {
    store.delete_customer("gone").await.expect("delete");
    let stored = store
        .put_vectors("v1", Entity::Customer, rows(&["gone", "ok"]))
        .await
        .expect("put");
    assert_eq!(stored, 1, "the erased customer's vector is not stored");
    assert_eq!(
        store
            .get_vector("v1", Entity::Customer, "gone")
            .await
            .expect("get"),
        None
    );
    let items = store
        .put_vectors("v1", Entity::Item, rows(&["gone"]))
        .await
        .expect("put");
    assert_eq!(
        items, 1,
        "item vectors are never filtered by the customer ledger"
    );

    let appended = store
        .append_events(vec![event("gone", "i1", 1), event("ok", "i1", 2)])
        .await
        .expect("append");
    assert_eq!(
        appended.last_written,
        Some(1),
        "only the event of the live customer is appended"
    );
    assert!(
        appended.duplicates.is_empty(),
        "an erased customer's event is dropped, not a duplicate"
    );
    assert_eq!(
        appended.erased,
        [0],
        "the position of the erased customer's event is reported"
    );
    let impressions = store
        .append_impressions(std::sync::Arc::from(vec![
            doppel_types::Event {
                kind: doppel_types::EventType::Impression,
                ..event("ok", "i1", 3)
            },
            doppel_types::Event {
                kind: doppel_types::EventType::Impression,
                ..event("gone", "i1", 3)
            },
        ]))
        .await
        .expect("impressions");
    assert_eq!(
        impressions.erased,
        [1],
        "impressions of the erased are dropped too"
    );
    assert!(
        store
            .customer_events("gone")
            .await
            .expect("events")
            .is_empty()
    );
}

/// Upserting an erased id again makes it a new customer and clears the ledger entry.
pub async fn reupsert_after_erasure_clears_ledger(store: &dyn Store) {
    store
        .upsert_customers(vec![customer("back")])
        .await
        .expect("upsert");
    store.delete_customer("back").await.expect("delete");
    assert!(store.is_erased("back").await.expect("erased"));
    store
        .upsert_customers(vec![customer("back")])
        .await
        .expect("upsert");
    assert!(
        !store.is_erased("back").await.expect("erased"),
        "ledger entry cleared"
    );
    assert!(store.erased_customers().await.expect("ledger").is_empty());
    assert_eq!(
        store
            .append_events(vec![event("back", "i1", 1)])
            .await
            .expect("append")
            .last_seq,
        1
    );
    assert_eq!(
        store
            .put_vectors("v1", Entity::Customer, rows(&["back"]))
            .await
            .expect("put"),
        1,
        "a re-upserted customer's vectors are stored again"
    );
}
