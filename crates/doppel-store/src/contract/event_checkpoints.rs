//! Event checkpoints: each scope round-trips, a put never takes a checkpoint back, and
//! erasing a customer removes its history from its shard's checkpoint and nothing else.

use doppel_types::shard::shard_of;
use doppel_types::{CheckpointScope, CustomerHistory, EventCheckpoint, ItemCounts};

use super::fixtures::customer;
use crate::store_trait::Store;

fn shard_checkpoint(customers: &[&str], through_seq: u64) -> EventCheckpoint {
    EventCheckpoint {
        through_seq,
        item_ids: vec!["i1".into(), "i2".into()],
        customers: customers
            .iter()
            .map(|id| CustomerHistory {
                customer_id: (*id).to_owned(),
                purchased: vec![0, 1],
                exposures: vec![(1, 1_700_000_000_000)],
            })
            .collect(),
        ..EventCheckpoint::default()
    }
}

/// Checkpoints round-trip per scope; older puts are refused; an erasure removes its
/// customer's history only.
pub async fn event_checkpoints_round_trip_and_go_with_an_erasure(store: &dyn Store) {
    let items = EventCheckpoint {
        through_seq: 7,
        items: vec![ItemCounts {
            item_id: "i1".into(),
            popularity: 2.5,
            purchases: 3,
        }],
        ..EventCheckpoint::default()
    };
    assert_eq!(
        store
            .event_checkpoint(CheckpointScope::Items)
            .await
            .unwrap(),
        None
    );
    assert!(
        store
            .put_event_checkpoint(CheckpointScope::Items, &items)
            .await
            .expect("items checkpoint")
    );
    let older = EventCheckpoint {
        through_seq: 6,
        ..EventCheckpoint::default()
    };
    assert!(
        !store
            .put_event_checkpoint(CheckpointScope::Items, &older)
            .await
            .expect("an older items checkpoint"),
        "a lagging writer's checkpoint is refused"
    );
    // A store keyed by logical shard may refuse another shard count: use the first taken.
    let mut taken = None;
    for shard_count in [16, 5] {
        let scope = |shard| CheckpointScope::Shard { shard, shard_count };
        if store
            .put_event_checkpoint(scope(0), &EventCheckpoint::default())
            .await
            .is_ok()
        {
            taken = Some(shard_count);
            break;
        }
    }
    let shard_count = taken.expect("a shard checkpoint under 16 or 5 shards");
    let scope = |shard| CheckpointScope::Shard { shard, shard_count };
    let ids: Vec<String> = (0..40).map(|i| format!("c{i:03}")).collect();
    let victim = ids[0].as_str();
    let victim_shard = shard_of(victim, shard_count);
    let other_shard = (victim_shard + 1) % shard_count;
    let of = |shard| -> Vec<&str> {
        ids.iter()
            .map(String::as_str)
            .filter(|id| shard_of(id, shard_count) == shard)
            .collect()
    };
    store
        .upsert_customers(vec![customer(victim)])
        .await
        .expect("customer");
    for shard in [victim_shard, other_shard] {
        store
            .put_event_checkpoint(scope(shard), &shard_checkpoint(&of(shard), 9))
            .await
            .expect("shard checkpoint");
        assert_eq!(
            store.event_checkpoint(scope(shard)).await.unwrap(),
            Some(shard_checkpoint(&of(shard), 9))
        );
    }
    assert_eq!(
        store
            .event_checkpoint_seqs(&[scope(victim_shard), CheckpointScope::Items])
            .await
            .unwrap(),
        [Some(9), Some(7)]
    );
    store.delete_customer(victim).await.expect("erase");
    let survivors: Vec<&str> = of(victim_shard)
        .into_iter()
        .filter(|id| *id != victim)
        .collect();
    assert_eq!(
        store.event_checkpoint(scope(victim_shard)).await.unwrap(),
        Some(shard_checkpoint(&survivors, 9)),
        "the erased customer's history goes, the shard's other customers' stays"
    );
    // A writer that read its memory before the erasure cannot put the customer back.
    assert!(
        store
            .put_event_checkpoint(
                scope(victim_shard),
                &shard_checkpoint(&of(victim_shard), 10)
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.event_checkpoint(scope(victim_shard)).await.unwrap(),
        Some(shard_checkpoint(&survivors, 10))
    );
    // A quiet shard's checkpoint moves forward whole; never back.
    assert!(
        store
            .advance_event_checkpoint(scope(victim_shard), 12)
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance_event_checkpoint(scope(victim_shard), 11)
            .await
            .unwrap()
    );
    assert_eq!(
        store.event_checkpoint(scope(victim_shard)).await.unwrap(),
        Some(shard_checkpoint(&survivors, 12))
    );
    assert_eq!(
        store
            .event_checkpoint_seqs(&[scope(victim_shard)])
            .await
            .unwrap(),
        [Some(12)]
    );
    assert_eq!(
        store.event_checkpoint(scope(other_shard)).await.unwrap(),
        Some(shard_checkpoint(&of(other_shard), 9))
    );
    assert_eq!(
        store
            .event_checkpoint(CheckpointScope::Items)
            .await
            .unwrap(),
        Some(items)
    );
}
