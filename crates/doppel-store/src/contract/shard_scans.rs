//! Scans of one logical shard: exactly that shard's customers, events and customer
//! vectors, in order and paged, whatever shard count is asked (the store's own, read
//! from its keys, or another, filtered).

use doppel_types::Entity;
use doppel_types::shard::shard_of;

use super::fixtures::{customer, event, item};
use crate::store_trait::Store;

/// Ids the case writes: enough to give every shard of 5 and of 16 a few.
fn ids() -> Vec<String> {
    (0..60).map(|i| format!("c{i:03}")).collect()
}

/// Each shard's customers, events and vectors, paged by 3, are exactly its own.
pub async fn shard_scans_read_exactly_one_shard(store: &dyn Store) {
    let ids = ids();
    store
        .upsert_items(vec![item("i1", "cat")])
        .await
        .expect("item");
    store
        .upsert_customers(ids.iter().map(|id| customer(id)).collect())
        .await
        .expect("customers");
    let events: Vec<_> = ids
        .iter()
        .enumerate()
        .flat_map(|(i, id)| {
            let t = 1_700_000_000_000 + i as i64;
            [event(id, "i1", t), event(id, "i1", t + 1)]
        })
        .collect();
    store.append_events(events).await.expect("events");
    let rows: Vec<(String, Vec<f32>)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), vec![i as f32, 1.0, 0.5]))
        .collect();
    store
        .put_vectors("v1", Entity::Customer, rows)
        .await
        .expect("vectors");
    let all_events = store.scan_events(0, 1_000).await.expect("log");

    for count in [5, 16] {
        let mut seen = 0;
        for shard in 0..count {
            let mine: Vec<&String> = ids
                .iter()
                .filter(|id| shard_of(id, count) == shard)
                .collect();
            seen += mine.len();

            let mut customers = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .scan_shard_customers(shard, count, after.as_deref(), 3)
                    .await
                    .expect("shard customers");
                assert!(page.len() <= 3, "a page holds at most its limit");
                after = page.last().map(|c| c.id.clone());
                let done = page.len() < 3;
                customers.extend(page.into_iter().map(|c| c.id));
                if done {
                    break;
                }
            }
            assert_eq!(
                customers.iter().collect::<Vec<_>>(),
                mine,
                "customers of shard {shard} of {count}, in id order"
            );

            let expected: Vec<u64> = all_events
                .iter()
                .filter(|(_, e)| shard_of(&e.customer_id, count) == shard)
                .map(|(seq, _)| *seq)
                .collect();
            let mut seqs = Vec::new();
            let mut cursor = 0;
            loop {
                let page = store
                    .scan_shard_events(shard, count, cursor, 3)
                    .await
                    .expect("shard events");
                assert!(page.len() <= 3, "a page holds at most its limit");
                cursor = page.last().map_or(cursor, |(seq, _)| *seq);
                let done = page.len() < 3;
                seqs.extend(page.into_iter().map(|(seq, _)| seq));
                if done {
                    break;
                }
            }
            assert_eq!(
                seqs, expected,
                "events of shard {shard} of {count}, in seq order"
            );

            let mut vectors = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .scan_shard_vectors("v1", shard, count, after.as_deref(), 3)
                    .await
                    .expect("shard vectors");
                assert!(page.len() <= 3, "a page holds at most its limit");
                after = page.last().map(|(id, _)| id.clone());
                let done = page.len() < 3;
                vectors.extend(page);
                if done {
                    break;
                }
            }
            assert_eq!(
                vectors.iter().map(|(id, _)| id).collect::<Vec<_>>(),
                mine,
                "vectors of shard {shard} of {count}, in id order"
            );
            for (id, v) in &vectors {
                let i: f32 = id[1..].parse().expect("numbered id");
                assert_eq!(v, &vec![i, 1.0, 0.5], "vector of {id}");
            }
        }
        assert_eq!(
            seen,
            ids.len(),
            "the shards of {count} cover every customer"
        );
    }
}
