//! Saved audiences: info, query and members written in one step, listed in id order, read
//! in rank pages, replaced, deleted; limits checked by the write; erasure takes the
//! customer out of every audience, also from a write computed before it; batch profile
//! reads.

use doppel_types::{SavedAudienceInfo, SavedAudienceLimits, SavedAudienceWrite, SavedMember};

use super::fixtures::customer;
use crate::error::Error;
use crate::store_trait::Store;

fn info(id: &str) -> SavedAudienceInfo {
    SavedAudienceInfo {
        id: id.to_owned(),
        name: format!("name of {id}"),
        model_version: "v1".into(),
        created_ms: 1_700_000_000_000,
        refreshed_ms: 1_700_000_000_000,
        size: 0,
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

async fn all(store: &dyn Store, id: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .saved_audience_members(id, after, 2)
            .await
            .expect("members")?;
        if page.is_empty() {
            return Some(out);
        }
        after = page.last().map(|(rank, _)| *rank);
        out.extend(page.into_iter().map(|(_, m)| m.customer_id));
    }
}

const LIMITS: SavedAudienceLimits = SavedAudienceLimits {
    max_audiences: 3,
    max_members: 6,
};

/// Round trips, paging, replacement, limits, deletion, and erasure leaving every saved
/// audience.
pub async fn saved_audiences_round_trip_and_lose_erased_members(store: &dyn Store) {
    use SavedAudienceWrite::{Create, Replace};
    assert!(store.saved_audiences().await.expect("list").is_empty());
    assert_eq!(store.saved_audience("aud-1").await.expect("get"), None);
    assert_eq!(all(store, "aud-1").await, None);
    assert!(!store.delete_saved_audience("aud-1").await.expect("delete"));

    let ids = ["c1", "c2", "c3", "c4", "c5"];
    store
        .upsert_customers(ids.iter().map(|id| customer(id)).collect())
        .await
        .expect("customers");
    let stored = store
        .put_saved_audience(
            &info("aud-2"),
            Some(b"q2".as_slice()),
            &members(&["c1", "c2", "c3"]),
            Create,
            LIMITS,
        )
        .await
        .expect("put");
    assert_eq!(stored.size, 3);
    store
        .put_saved_audience(
            &info("aud-1"),
            Some(b"q1".as_slice()),
            &members(&["c2", "c3"]),
            Create,
            LIMITS,
        )
        .await
        .expect("put");
    let listed: Vec<(String, u64)> = store
        .saved_audiences()
        .await
        .expect("list")
        .into_iter()
        .map(|i| (i.id, i.size))
        .collect();
    assert_eq!(listed, [("aud-1".into(), 2), ("aud-2".into(), 3)]);
    assert_eq!(
        all(store, "aud-2").await,
        Some(vec!["c1".into(), "c2".into(), "c3".into()])
    );
    assert_eq!(
        store.saved_audience_query("aud-2").await.expect("query"),
        Some(b"q2".to_vec())
    );
    assert!(
        store
            .put_saved_audience_query("aud-2", b"q2", b"q2'")
            .await
            .expect("scrub")
    );
    // A compare-and-set: a stale expectation writes nothing.
    assert!(
        !store
            .put_saved_audience_query("aud-2", b"q2", b"q2''")
            .await
            .expect("scrub")
    );
    assert_eq!(
        store.saved_audience_query("aud-2").await.expect("query"),
        Some(b"q2'".to_vec())
    );
    assert!(
        !store
            .put_saved_audience_query("aud-9", b"", b"x")
            .await
            .expect("scrub")
    );

    // Limits: members over every audience, then the number of audiences.
    let over = store
        .put_saved_audience(
            &info("aud-3"),
            Some(b"q3".as_slice()),
            &members(&["c1", "c2"]),
            Create,
            LIMITS,
        )
        .await;
    assert!(
        matches!(over, Err(Error::LimitExceeded { field: "query", .. })),
        "{over:?}"
    );
    store
        .put_saved_audience(
            &info("aud-3"),
            Some(b"q3".as_slice()),
            &members(&["c4"]),
            Create,
            LIMITS,
        )
        .await
        .expect("at the limit");
    let over = store
        .put_saved_audience(&info("aud-4"), Some(b"q4".as_slice()), &[], Create, LIMITS)
        .await;
    assert!(
        matches!(over, Err(Error::LimitExceeded { field: "name", .. })),
        "{over:?}"
    );

    // Replaced whole, the query kept when none is given, a repeated member at its best
    // rank; replacing a deleted one is NotFound.
    let replaced = store
        .put_saved_audience(
            &info("aud-1"),
            None,
            &members(&["c5", "c5"]),
            Replace,
            LIMITS,
        )
        .await
        .expect("replace");
    assert_eq!(replaced.size, 1);
    assert_eq!(all(store, "aud-1").await, Some(vec!["c5".into()]));
    assert_eq!(
        store.saved_audience_query("aud-1").await.expect("query"),
        Some(b"q1".to_vec())
    );
    let gone = store
        .put_saved_audience(
            &info("aud-9"),
            Some(b"q9".as_slice()),
            &members(&["c5"]),
            Replace,
            LIMITS,
        )
        .await;
    assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");

    // Erasure takes the customer out of every audience and lowers the sizes; a write
    // computed before the erasure does not bring it back.
    store.delete_customer("c2").await.expect("erase");
    assert_eq!(
        all(store, "aud-2").await,
        Some(vec!["c1".into(), "c3".into()])
    );
    assert_eq!(
        store
            .saved_audience("aud-2")
            .await
            .expect("get")
            .map(|i| i.size),
        Some(2)
    );
    let late = store
        .put_saved_audience(
            &info("aud-2"),
            Some(b"q2".as_slice()),
            &members(&["c1", "c2", "c3"]),
            Replace,
            LIMITS,
        )
        .await
        .expect("late write");
    assert_eq!(late.size, 2);
    assert_eq!(
        all(store, "aud-2").await,
        Some(vec!["c1".into(), "c3".into()])
    );

    let got = store
        .get_customers(&["c3".into(), "c2".into(), "nobody".into(), "c1".into()])
        .await
        .expect("batch get");
    let ids: Vec<Option<String>> = got.into_iter().map(|c| c.map(|c| c.id)).collect();
    assert_eq!(ids, [Some("c3".into()), None, None, Some("c1".to_owned())]);

    assert!(store.delete_saved_audience("aud-2").await.expect("delete"));
    assert_eq!(store.saved_audience("aud-2").await.expect("get"), None);
    assert_eq!(all(store, "aud-2").await, None);
    assert_eq!(store.saved_audiences().await.expect("list").len(), 2);
    // Deleting freed its members: 4 more fit under the limit of 6 (c5 and c4 are held).
    store
        .put_saved_audience(
            &info("aud-5"),
            Some(b"q5".as_slice()),
            &members(&["c1", "c3", "c4", "c5"]),
            Create,
            LIMITS,
        )
        .await
        .expect("freed");
}
