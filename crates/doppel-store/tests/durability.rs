//! Acknowledged writes survive closing the store and `kill -9` of the writing process.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use doppel_store::contract::{customer, event, version};
use doppel_store::{EmbeddedStore, Store};
use doppel_types::Entity;

/// Set in the child process: the data directory it writes to until it is killed.
const CHILD_DIR_ENV: &str = "DOPPEL_STORE_CRASH_CHILD_DIR";
/// Acknowledged writes the parent waits for before killing the child.
const ACKS_BEFORE_KILL: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_is_there_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = EmbeddedStore::open(dir.path()).expect("open");
        store
            .upsert_customers(vec![customer("c1"), customer("c2")])
            .await
            .expect("upsert");
        store
            .append_events(vec![event("c1", "i1", 1), event("c2", "i1", 2)])
            .await
            .expect("append");
        store.put_version(version("v1")).await.expect("put version");
        store
            .put_vectors(
                "v1",
                Entity::Customer,
                vec![("c1".to_owned(), vec![1.0, 2.0])],
            )
            .await
            .expect("put vectors");
        store.set_active_version("v1").await.expect("activate");
        store.delete_customer("c2").await.expect("erase");
        store.flush().await.expect("flush");
    }
    let store = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store.get_customer("c1").await.expect("get"),
        Some(customer("c1"))
    );
    assert_eq!(store.get_customer("c2").await.expect("get"), None);
    assert_eq!(store.customer_events("c1").await.expect("events").len(), 1);
    assert_eq!(store.last_event_seq().await.expect("seq"), 2);
    assert_eq!(
        store
            .get_vector("v1", Entity::Customer, "c1")
            .await
            .expect("get"),
        Some(vec![1.0, 2.0])
    );
    assert_eq!(
        store.active_version().await.expect("active").as_deref(),
        Some("v1")
    );
    assert_eq!(store.erased_customers().await.expect("ledger"), ["c2"]);
    let appended = store
        .append_events(vec![event("c1", "i2", 3)])
        .await
        .expect("append");
    assert_eq!(
        appended.last_seq, 3,
        "sequence numbers continue after reopen"
    );
}

/// The child half of [`acknowledged_writes_survive_sigkill`]: does nothing unless the
/// parent set [`CHILD_DIR_ENV`]. Then it writes one customer per transaction and prints
/// `ack N` after each acknowledged write, until it is killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let store = EmbeddedStore::open(Path::new(&dir)).expect("child open");
    let mut out = std::io::stdout().lock();
    for n in 0..100_000usize {
        let id = format!("c{n:06}");
        store
            .upsert_customers(vec![customer(&id)])
            .await
            .expect("child upsert");
        store
            .append_events(vec![event(&id, "i1", n as i64)])
            .await
            .expect("child append");
        writeln!(out, "ack {n}").expect("child stdout");
        out.flush().expect("child flush");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([
            "crash_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut last_ack = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read child stdout");
        if let Some(n) = line.strip_prefix("ack ") {
            let n: usize = n.parse().expect("ack number");
            last_ack = Some(n);
            if n + 1 >= ACKS_BEFORE_KILL {
                break;
            }
        }
    }
    // Child::kill is SIGKILL on Unix: no destructors, no clean shutdown.
    child.kill().expect("kill child");
    child.wait().expect("reap child");
    let last_ack = last_ack.expect("the child acknowledged writes before it was killed");

    let store = EmbeddedStore::open(dir.path()).expect("reopen after kill -9");
    for n in 0..=last_ack {
        let id = format!("c{n:06}");
        assert!(
            store.get_customer(&id).await.expect("get").is_some(),
            "acknowledged customer {id} lost after kill -9"
        );
        assert_eq!(
            store.customer_events(&id).await.expect("events").len(),
            1,
            "acknowledged event of {id} lost after kill -9"
        );
    }
    // The store is usable after recovery.
    store
        .upsert_customers(vec![customer("after")])
        .await
        .expect("write after recovery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_impressions_are_visible_at_once_and_durable_after_a_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let impression = |n: i64| doppel_types::Event {
        kind: doppel_types::EventType::Impression,
        ..event("c1", "i1", n)
    };
    {
        let store = EmbeddedStore::open(dir.path()).expect("open");
        store
            .upsert_customers(vec![customer("c1")])
            .await
            .expect("upsert");
        let appended = store
            .append_impressions(vec![impression(1), impression(2)].into())
            .await
            .expect("append");
        assert_eq!(appended.last_written, Some(2));
        assert_eq!(store.customer_events("c1").await.expect("read").len(), 2);
        store.flush().await.expect("flush");
        // A durable write after lazy ones makes them durable too.
        store
            .append_impressions(vec![impression(3)].into())
            .await
            .expect("append");
        store
            .append_events(vec![event("c1", "i1", 4)])
            .await
            .expect("append");
    }
    let store = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(store.customer_events("c1").await.expect("read").len(), 4);
    assert_eq!(store.last_event_seq().await.expect("seq"), 4);
}

/// Impressions recorded with answers are stored as batch rows, out of the per-customer
/// index: after a reopen the store still finds them per customer, and erasure removes them
/// (and only them) from the rows they share with others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_impressions_are_found_and_erased_per_customer_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let impression = |customer: &str, item: &str| doppel_types::Event {
        kind: doppel_types::EventType::Impression,
        quantity: 1,
        value: 0.0,
        ..event(customer, item, 7)
    };
    {
        let store = EmbeddedStore::open(dir.path()).expect("open");
        store
            .append_events(vec![event("c1", "i0", 1)])
            .await
            .expect("append");
        let shown = vec![
            impression("c1", "i1"),
            impression("c1", "i2"),
            impression("c2", "i1"),
            impression("c1", "i3"),
        ];
        store
            .append_impressions(shown.into())
            .await
            .expect("append");
        store.flush().await.expect("flush");
    }
    let store = EmbeddedStore::open(dir.path()).expect("reopen");
    let items = |events: Vec<doppel_types::Event>| -> Vec<String> {
        events.into_iter().map(|e| e.item_id).collect()
    };
    let c1 = store.customer_events("c1").await.expect("read");
    assert_eq!(
        items(c1),
        ["i0", "i1", "i2", "i3"],
        "indexed and unindexed, in order"
    );
    assert!(store.delete_customer("c1").await.expect("erase"));
    assert!(store.customer_events("c1").await.expect("read").is_empty());
    let left = store.scan_events(0, 10).await.expect("scan");
    assert_eq!(left.len(), 1, "only c2's impression stays: {left:?}");
    assert_eq!(left[0].1.customer_id, "c2");
    assert_eq!(
        items(store.customer_events("c2").await.expect("read")),
        ["i1"]
    );
    drop(store);
    let store = EmbeddedStore::open(dir.path()).expect("reopen after erasure");
    assert!(store.customer_events("c1").await.expect("read").is_empty());
    assert_eq!(store.scan_events(0, 10).await.expect("scan").len(), 1);
}
