//! Saved audiences: info and members written together, listed in id order, replaced
//! whole, deleted; erasure takes the customer out of every one; batch profile reads.

use doppel_types::{SavedAudienceInfo, SavedMember};

use super::fixtures::customer;
use crate::store_trait::Store;

fn info(id: &str, size: u64) -> SavedAudienceInfo {
    SavedAudienceInfo {
        id: id.to_owned(),
        name: format!("name of {id}"),
        query: vec![1, 2, 3],
        model_version: "v1".into(),
        created_ms: 1_700_000_000_000,
        refreshed_ms: 1_700_000_000_000,
        size,
        eligible_population: 1_000,
    }
}

fn members(ids: &[&str]) -> Vec<SavedMember> {
    ids.iter()
        .enumerate()
        .map(|(i, id)| SavedMember {
            customer_id: (*id).to_owned(),
            score: 1.0 - i as f32 / 10.0,
        })
        .collect()
}

/// Round trips, replacement, deletion, and erasure leaving every saved audience.
pub async fn saved_audiences_round_trip_and_lose_erased_members(store: &dyn Store) {
    assert!(store.saved_audiences().await.expect("list").is_empty());
    assert_eq!(store.saved_audience("aud-1").await.expect("get"), None);
    assert_eq!(
        store.saved_audience_members("aud-1").await.expect("get"),
        None
    );
    assert!(!store.delete_saved_audience("aud-1").await.expect("delete"));

    store
        .upsert_customers(vec![customer("c1"), customer("c2"), customer("c3")])
        .await
        .expect("customers");
    store
        .put_saved_audience(&info("aud-2", 3), &members(&["c1", "c2", "c3"]))
        .await
        .expect("put");
    store
        .put_saved_audience(&info("aud-1", 2), &members(&["c2", "c3"]))
        .await
        .expect("put");
    let listed: Vec<String> = store
        .saved_audiences()
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, ["aud-1", "aud-2"]);
    assert_eq!(
        store.saved_audience("aud-2").await.expect("get"),
        Some(info("aud-2", 3))
    );
    assert_eq!(
        store
            .saved_audience_members("aud-2")
            .await
            .expect("members"),
        Some(members(&["c1", "c2", "c3"]))
    );

    // Replaced whole.
    store
        .put_saved_audience(&info("aud-1", 1), &members(&["c3"]))
        .await
        .expect("replace");
    assert_eq!(
        store
            .saved_audience_members("aud-1")
            .await
            .expect("members"),
        Some(members(&["c3"]))
    );

    // Erasure takes the customer out of every audience and lowers the sizes.
    store.delete_customer("c3").await.expect("erase");
    assert_eq!(
        store
            .saved_audience_members("aud-2")
            .await
            .expect("members"),
        Some(members(&["c1", "c2"]))
    );
    assert_eq!(
        store
            .saved_audience("aud-2")
            .await
            .expect("get")
            .map(|i| i.size),
        Some(2)
    );
    assert_eq!(
        store
            .saved_audience_members("aud-1")
            .await
            .expect("members"),
        Some(Vec::new())
    );

    let got = store
        .get_customers(&["c2".into(), "c3".into(), "nobody".into(), "c1".into()])
        .await
        .expect("batch get");
    let ids: Vec<Option<String>> = got.into_iter().map(|c| c.map(|c| c.id)).collect();
    assert_eq!(ids, [Some("c2".into()), None, None, Some("c1".to_owned())]);

    assert!(store.delete_saved_audience("aud-2").await.expect("delete"));
    assert_eq!(store.saved_audience("aud-2").await.expect("get"), None);
    assert_eq!(
        store
            .saved_audience_members("aud-2")
            .await
            .expect("members"),
        None
    );
    assert_eq!(store.saved_audiences().await.expect("list").len(), 1);
}
