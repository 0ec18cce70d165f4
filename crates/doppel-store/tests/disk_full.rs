//! A full disk poisons redb's handle; the embedded store classifies the error, reports
//! itself unhealthy, reopens on its own once the disk has room, and loses nothing it
//! acknowledged. The disk is mocked (`testing::full_disk`): filling a real one needs root.

use std::time::Duration;

use doppel_store::contract::{customer, event};
use doppel_store::testing::full_disk::FullDisk;
use doppel_store::{EmbeddedStore, Error, Store};
use tokio::sync::watch;

/// Longest wait for the store to report a health change.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

async fn wait_for_health(health: &mut watch::Receiver<bool>, healthy: bool) {
    tokio::time::timeout(HEALTH_TIMEOUT, health.wait_for(|h| *h == healthy))
        .await
        .unwrap_or_else(|_| panic!("store health never became {healthy}"))
        .expect("store dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_writes_and_the_store_recovers_on_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FullDisk::new();
    let store = disk.open_store(dir.path()).expect("open");
    let mut health = store.health().expect("the embedded store reports health");
    assert!(*health.borrow());

    store
        .upsert_customers(vec![customer("c1"), customer("c2")])
        .await
        .expect("upsert with room");
    store
        .append_events(vec![event("c1", "i1", 1)])
        .await
        .expect("append with room");

    disk.set_full(true);
    let err = store
        .upsert_customers(vec![customer("c3")])
        .await
        .expect_err("upsert on a full disk");
    let Error::DiskFull { path, reason } = &err else {
        panic!("expected DiskFull, got {err}");
    };
    assert_eq!(path, store.path());
    assert!(reason.contains("No space left on device"), "{reason}");
    wait_for_health(&mut health, false).await;

    // Reads fail too while the disk is full: redb refuses every operation on a handle
    // after an I/O error, and opening the file again writes its header, which the full
    // disk refuses. They fail fast with the same classified error.
    let err = store.get_customer("c1").await.expect_err("read while full");
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    let err = store
        .append_events(vec![event("c2", "i1", 2)])
        .await
        .expect_err("append while full");
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");

    // Space freed: the store reopens itself (no call from here asks it to).
    disk.set_full(false);
    wait_for_health(&mut health, true).await;
    store
        .upsert_customers(vec![customer("c4")])
        .await
        .expect("upsert after space was freed");
    assert_eq!(
        store.get_customer("c1").await.expect("get"),
        Some(customer("c1"))
    );
    assert_eq!(store.last_event_seq().await.expect("seq"), 1);

    drop(store);
    let store = EmbeddedStore::open(dir.path()).expect("reopen after drop");
    for id in ["c1", "c2", "c4"] {
        assert_eq!(
            store.get_customer(id).await.expect("get"),
            Some(customer(id)),
            "{id}"
        );
    }
    assert_eq!(store.get_customer("c3").await.expect("get"), None);
    assert_eq!(store.customer_events("c1").await.expect("events").len(), 1);
    assert_eq!(store.last_event_seq().await.expect("seq"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_operation_reopens_when_a_retry_is_due() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FullDisk::new();
    let store = disk.open_store(dir.path()).expect("open");
    let mut health = store.health().expect("health");
    store
        .upsert_customers(vec![customer("c1")])
        .await
        .expect("upsert");

    disk.set_full(true);
    let err = store
        .upsert_customers(vec![customer("c2")])
        .await
        .expect_err("full");
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    disk.set_full(false);

    // Whichever comes first — this loop's operations or the background retry — reopens
    // the store; within the first backoff steps an operation succeeds.
    let deadline = tokio::time::Instant::now() + HEALTH_TIMEOUT;
    loop {
        match store.upsert_customers(vec![customer("c2")]).await {
            Ok(()) => break,
            Err(e) => {
                assert!(matches!(e, Error::DiskFull { .. }), "{e}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never recovered: {e}"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    wait_for_health(&mut health, true).await;
    assert_eq!(
        store.get_customer("c2").await.expect("get"),
        Some(customer("c2"))
    );
}

/// Impressions committed lazily and lost with a reopen after an I/O error leave no trace:
/// their sequence numbers are taken again, and the customer's events read back once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impressions_lost_with_a_reopen_are_not_read_back_nor_doubled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = FullDisk::new();
    let store = disk.open_store(dir.path()).expect("open");
    let mut health = store.health().expect("health");
    let shown = |item: &str| doppel_types::Event {
        kind: doppel_types::EventType::Impression,
        quantity: 1,
        value: 0.0,
        ..event("c1", item, 5)
    };
    store
        .append_events(vec![event("c1", "i1", 1)])
        .await
        .expect("append");
    store
        .append_impressions(vec![shown("lost1"), shown("lost2")].into())
        .await
        .expect("lazy append");
    assert_eq!(store.customer_events("c1").await.expect("read").len(), 3);

    disk.set_full(true);
    store
        .upsert_customers(vec![customer("c2")])
        .await
        .expect_err("a durable write on a full disk");
    wait_for_health(&mut health, false).await;
    disk.set_full(false);
    wait_for_health(&mut health, true).await;
    assert_eq!(
        store.last_event_seq().await.expect("seq"),
        1,
        "the lazy commit is gone"
    );

    store
        .append_impressions(vec![shown("kept1"), shown("kept2")].into())
        .await
        .expect("append after the reopen");
    let items: Vec<String> = store
        .customer_events("c1")
        .await
        .expect("read")
        .into_iter()
        .map(|e| e.item_id)
        .collect();
    assert_eq!(items, ["i1", "kept1", "kept2"]);
    assert!(store.delete_customer("c1").await.expect("erase"));
    assert!(store.scan_events(0, 10).await.expect("scan").is_empty());
}
