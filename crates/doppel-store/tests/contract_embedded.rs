//! The shared store contract, run against the embedded store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use doppel_store::EmbeddedStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_contract() {
    let root = tempfile::tempdir().expect("tempdir");
    let next = Arc::new(AtomicUsize::new(0));
    let base = root.path().to_owned();
    doppel_store::contract::run_all(|| {
        let dir = base.join(next.fetch_add(1, Ordering::Relaxed).to_string());
        async move { EmbeddedStore::open(&dir).expect("open embedded store") }
    })
    .await;
}

#[tokio::test]
async fn embedded_store_is_usable_as_a_trait_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn doppel_store::Store> =
        Arc::new(EmbeddedStore::open(dir.path()).expect("open"));
    assert_eq!(store.active_version().await.expect("active"), None);
}
