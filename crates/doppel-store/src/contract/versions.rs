//! Version metadata, the active pointer and deleting a version.

use doppel_types::{Entity, VersionState};

use super::fixtures::{rows, version};
use crate::error::Error;
use crate::store_trait::Store;

/// Versions list in name order; the active pointer follows set_active_version.
pub async fn versions_and_active_pointer(store: &dyn Store) {
    store.put_version(version("v2")).await.expect("put");
    store.put_version(version("v1")).await.expect("put");
    assert_eq!(
        store.get_version("v1").await.expect("get"),
        Some(version("v1"))
    );
    assert_eq!(store.get_version("v3").await.expect("get"), None);
    let names: Vec<String> = store
        .list_versions()
        .await
        .expect("list")
        .into_iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(names, ["v1", "v2"]);

    let mut active = version("v2");
    active.state = VersionState::Active;
    store.put_version(active.clone()).await.expect("put");
    assert_eq!(
        store.get_version("v2").await.expect("get"),
        Some(active),
        "put replaces"
    );

    assert_eq!(store.active_version().await.expect("active"), None);
    store.set_active_version("v1").await.expect("activate");
    assert_eq!(
        store.active_version().await.expect("active").as_deref(),
        Some("v1")
    );
    store.set_active_version("v2").await.expect("activate");
    assert_eq!(
        store.active_version().await.expect("active").as_deref(),
        Some("v2")
    );
}

/// Activating an unknown version is NotFound and leaves the pointer alone.
pub async fn set_active_unknown_is_not_found(store: &dyn Store) {
    store.put_version(version("v1")).await.expect("put");
    store.set_active_version("v1").await.expect("activate");
    match store.set_active_version("nope").await {
        Err(Error::NotFound { what, id }) => {
            assert_eq!(what, "version");
            assert_eq!(id, "nope");
        }
        other => {
            panic!("set_active_version on an unknown version: expected NotFound, got {other:?}")
        }
    }
    assert_eq!(
        store.active_version().await.expect("active").as_deref(),
        Some("v1")
    );
}

/// Deleting a version removes its metadata and vectors only, and clears the pointer if
/// it was active.
pub async fn delete_version_removes_vectors(store: &dyn Store) {
    for v in ["v1", "v10"] {
        store.put_version(version(v)).await.expect("put");
        store
            .put_vectors(v, Entity::Customer, rows(&["a", "b"]))
            .await
            .expect("put");
        store
            .put_vectors(v, Entity::Item, rows(&["x"]))
            .await
            .expect("put");
    }
    store.set_active_version("v1").await.expect("activate");
    store.delete_version("v1").await.expect("delete");
    assert_eq!(store.get_version("v1").await.expect("get"), None);
    assert!(
        store
            .scan_vectors("v1", Entity::Customer, None, 10)
            .await
            .expect("scan")
            .is_empty()
    );
    assert!(
        store
            .scan_vectors("v1", Entity::Item, None, 10)
            .await
            .expect("scan")
            .is_empty()
    );
    assert_eq!(
        store
            .scan_vectors("v10", Entity::Customer, None, 10)
            .await
            .expect("scan")
            .len(),
        2,
        "deleting v1 leaves v10 alone"
    );
    assert_eq!(
        store
            .scan_vectors("v10", Entity::Item, None, 10)
            .await
            .expect("scan")
            .len(),
        1
    );
    assert_eq!(
        store.active_version().await.expect("active"),
        None,
        "pointer cleared"
    );
    store
        .delete_version("never")
        .await
        .expect("deleting an unknown version is fine");
}

/// A version's context model reads back equal, is per version, and goes with the version.
pub async fn context_models_round_trip_and_go_with_their_version(store: &dyn Store) {
    use doppel_types::ContextModel;
    use doppel_types::context_model::{ContextFeature, ContextItem, ContextValue};
    let model = ContextModel {
        prior_events: 10.0,
        categories: vec!["garden".into()],
        items: vec![ContextItem {
            id: "i1".into(),
            category: 0,
        }],
        features: vec![ContextFeature {
            name: "device".into(),
            weight: 0.04,
            values: vec![ContextValue {
                value: "mobile".into(),
                item_events: vec![(0, 3.5)],
            }],
        }],
    };
    store.put_version(version("v1")).await.expect("put");
    store.put_version(version("v2")).await.expect("put");
    assert_eq!(store.context_model("v1").await.expect("get"), None);
    store.put_context_model("v1", &model).await.expect("put");
    assert_eq!(
        store.context_model("v1").await.expect("get"),
        Some(model.clone())
    );
    assert_eq!(store.context_model("v2").await.expect("get"), None);
    store.delete_version("v1").await.expect("delete");
    assert_eq!(
        store.context_model("v1").await.expect("get"),
        None,
        "deleting a version deletes its context model"
    );
}
