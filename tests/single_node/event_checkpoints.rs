//! Event checkpoints on a single node: a restart reads the checkpoints and only the events
//! after them, and ends in exactly the state a replay of the whole log gives — purchases
//! (excluded from offers), item popularity (the fallback ranking, including returns and
//! cancellations) and impressions (frequency caps) — and an erasure after a checkpoint
//! takes the customer out of its shard's checkpoint. With `--event-retention-days`, old
//! events leave the log once checkpointed, and restarts still end in the same state.

use std::sync::Arc;

use doppel_engine::RecommendQuery;
use doppel_grpc::{Node, NodeConfig};
use doppel_store::EmbeddedStore;
use doppel_types::shard::shard_of;
use doppel_types::{
    CapScope, CheckpointScope, ContactPolicy, Customer, Entity, Event, EventType, FrequencyCap,
    Item,
};

const CUSTOMERS: usize = 40;
const ITEMS: usize = 30;

fn customer(i: usize) -> String {
    format!("c{i:03}")
}

fn events(round: usize, now: i64) -> Vec<Event> {
    (0..CUSTOMERS * 4)
        .map(|n| {
            let kinds = [
                EventType::Purchase,
                EventType::View,
                EventType::AddToCart,
                EventType::Return,
                EventType::Click,
            ];
            let kind = kinds[(n + round) % kinds.len()];
            Event {
                customer_id: customer((n * 7 + round) % CUSTOMERS),
                item_id: format!("i{:02}", (n * 13 + round * 5) % ITEMS),
                kind,
                // Some purchases are cancellations (negative quantity).
                quantity: if n % 11 == 0 { -1 } else { 1 + (n % 3) as i32 },
                timestamp_ms: now - 60_000 + n as i64,
                ..Event::default()
            }
        })
        .collect()
}

async fn open(dir: &std::path::Path) -> Arc<Node> {
    open_with(dir, NodeConfig::default())
        .await
        .expect("open node")
}

async fn open_with(dir: &std::path::Path, config: NodeConfig) -> doppel_node::Result<Arc<Node>> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let store = loop {
        match EmbeddedStore::open(dir) {
            Ok(s) => break s,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("open store: {e}"),
        }
    };
    let config = NodeConfig {
        // Written by the test itself; the periodic task is not what is checked.
        event_checkpoint_every: Some(std::time::Duration::from_secs(3_600)),
        ..config
    };
    Node::open(Arc::new(store), config, Arc::new(doppel_node::Everyone)).await
}

/// What every customer is offered (the popularity fallback, without bought items) and
/// its impressions under each cap.
async fn state(node: &Arc<Node>) -> Vec<(String, Vec<String>, Vec<(String, u32)>)> {
    let mut out = Vec::new();
    for i in 0..CUSTOMERS {
        let id = customer(i);
        let query = RecommendQuery {
            customer_id: id.clone(),
            k: 10,
            ..RecommendQuery::default()
        };
        // An erased customer is not found: the error is its state.
        let items = match node.recommend(&query).await {
            Ok(offers) => offers
                .recommendation
                .offers
                .iter()
                .map(|o| format!("{} {:.6}", o.item_id, o.score))
                .collect(),
            Err(e) => vec![e.to_string()],
        };
        let caps = node
            .engine()
            .cap_counts(&id)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.key, c.impressions))
            .collect();
        out.push((id, items, caps));
    }
    out
}

/// Shows each customer offers, recorded as impressions.
async fn show(node: &Arc<Node>) {
    for i in 0..CUSTOMERS {
        let query = RecommendQuery {
            customer_id: customer(i),
            k: 3,
            record_impressions: true,
            ..RecommendQuery::default()
        };
        // Erased customers are not found.
        let _ = node.recommend(&query).await;
    }
}

/// Customers, items, a contact policy and an active version with half the customers.
async fn populate(node: &Arc<Node>) {
    node.upsert_customers(
        (0..CUSTOMERS)
            .map(|i| Customer {
                id: customer(i),
                ..Customer::default()
            })
            .collect(),
    )
    .await
    .unwrap();
    node.upsert_items(
        (0..ITEMS)
            .map(|i| Item {
                id: format!("i{i:02}"),
                category: format!("cat{}", i % 4),
                in_stock: true,
                ..Item::default()
            })
            .collect(),
    )
    .await
    .unwrap();
    node.set_contact_policy(ContactPolicy {
        caps: vec![
            FrequencyCap {
                scope: CapScope::Item,
                max_impressions: 5,
                window_seconds: 86_400,
            },
            FrequencyCap {
                scope: CapScope::All,
                max_impressions: 50,
                window_seconds: 86_400,
            },
        ],
    })
    .await
    .unwrap();
    // Half the customers have a vector (personalised offers), the others get the
    // popularity fallback.
    let vector =
        |n: usize| -> Vec<f32> { (0..4).map(|d| ((n * 5 + d * 3) % 7) as f32 + 0.5).collect() };
    let mut import = node.begin_import("v1", 4, false).await.unwrap();
    import
        .add_rows(
            Entity::Item,
            (0..ITEMS)
                .map(|i| (format!("i{i:02}"), vector(i)))
                .collect(),
        )
        .await
        .unwrap();
    import
        .add_rows(
            Entity::Customer,
            (0..CUSTOMERS)
                .step_by(2)
                .map(|i| (customer(i), vector(i + 100)))
                .collect(),
        )
        .await
        .unwrap();
    import.finish().await.unwrap();
    node.activate("v1").await.unwrap();
}

#[tokio::test]
async fn a_restart_reads_only_the_events_after_the_checkpoints_and_ends_in_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let now = doppel_types::clock::now_ms();
    let node = open(dir.path()).await;
    populate(&node).await;
    node.record_events(events(0, now)).await.unwrap();
    show(&node).await;
    // Erased before the checkpoints: in none of them.
    let gone = customer(3);
    node.delete_customer(&gone).await.unwrap();
    let round = node.write_event_checkpoints(None).await.unwrap();
    assert!(round.items && round.shards > 0, "{round:?}");
    let at_checkpoint = logged(&node).await;
    // After the checkpoints: more events and impressions.
    node.record_events(events(1, now)).await.unwrap();
    show(&node).await;
    let before = stop(node).await;
    // The tail held events of the customer erased before: dropped by the store, and not
    // applied in memory either (they would have brought the customer back).
    let erased_state = before.iter().find(|(id, _, _)| *id == gone).unwrap();
    assert!(erased_state.1[0].contains("not found"), "{erased_state:?}");

    let node = open(dir.path()).await;
    assert_eq!(
        state(&node).await,
        before,
        "checkpoints plus the tail = the state before"
    );
    let total = logged(&node).await;
    assert_eq!(
        node.replayed_events(),
        total - at_checkpoint,
        "only the tail is read"
    );
    assert!(!node.engine().known_customer(&gone));

    // An erasure after the checkpoints takes the customer out of its shard's checkpoint;
    // the shard's other customers stay in it, so the next start still reads the tail only.
    let erased = customer(5);
    let count = node.engine().config().shard_count;
    let scope = CheckpointScope::Shard {
        shard: shard_of(&erased, count),
        shard_count: count,
    };
    let holders = |c: Option<doppel_types::EventCheckpoint>| -> Vec<String> {
        c.expect("the shard's checkpoint")
            .customers
            .into_iter()
            .map(|h| h.customer_id)
            .collect()
    };
    let mut expected = holders(node.store().event_checkpoint(scope).await.unwrap());
    assert!(expected.contains(&erased), "{expected:?}");
    node.delete_customer(&erased).await.unwrap();
    expected.retain(|id| *id != erased);
    assert_eq!(
        holders(node.store().event_checkpoint(scope).await.unwrap()),
        expected
    );
    let before = stop(node).await;
    let node = open(dir.path()).await;
    assert_eq!(state(&node).await, before);
    assert!(node.replayed_events() < logged(&node).await);
    assert!(!node.engine().known_customer(&erased));

    // Written again on the way out: the next start reads no event.
    node.write_event_checkpoints_on_stop().await;
    let before = stop(node).await;
    let node = open(dir.path()).await;
    assert_eq!(node.replayed_events(), 0);
    assert_eq!(state(&node).await, before);
}

/// Events in the log.
async fn logged(node: &Arc<Node>) -> u64 {
    node.store().scan_events(0, 1_000_000).await.unwrap().len() as u64
}

/// The node's state, then stops it as a shutdown does (impressions stored and flushed).
async fn stop(node: Arc<Node>) -> Vec<(String, Vec<String>, Vec<(String, u32)>)> {
    let state = state(&node).await;
    node.store_impressions(std::time::Duration::from_secs(5))
        .await;
    node.store().flush().await.unwrap();
    drop(node);
    state
}

const DAY_MS: i64 = 86_400_000;

#[tokio::test]
async fn events_past_the_retention_window_leave_the_log_once_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let now = doppel_types::clock::now_ms();
    let retained = NodeConfig {
        event_retention: Some(std::time::Duration::from_secs(30 * 86_400)),
        ..NodeConfig::default()
    };
    let node = open_with(dir.path(), retained.clone()).await.unwrap();
    populate(&node).await;
    let old = events(0, now - 40 * DAY_MS);
    node.record_events(old.clone()).await.unwrap();
    show(&node).await;
    node.record_events(events(1, now)).await.unwrap();
    let total = logged(&node).await;
    // Nothing goes before every shard has a checkpoint.
    assert_eq!(node.compact_event_log(None).await.unwrap(), 0);
    node.write_event_checkpoints(None).await.unwrap();
    let removed = node.compact_event_log(None).await.unwrap();
    assert_eq!(
        removed,
        old.len() as u64,
        "the old prefix, and nothing newer"
    );
    assert_eq!(logged(&node).await, total - removed);
    let oldest = node.store().scan_events(0, 1).await.unwrap()[0]
        .1
        .timestamp_ms;
    assert!(oldest > now - 30 * DAY_MS, "{oldest}");
    assert!(node.store().events_compacted_through().await.unwrap() > 0);
    assert_eq!(node.compact_event_log(None).await.unwrap(), 0);
    // One customer buys again: its shard's checkpoint is written, the quiet ones move
    // forward, so none holds the next removal back.
    node.record_events(vec![Event {
        customer_id: customer(0),
        item_id: "i01".into(),
        kind: EventType::Purchase,
        quantity: 1,
        timestamp_ms: now,
        ..Event::default()
    }])
    .await
    .unwrap();
    let round = node.write_event_checkpoints(None).await.unwrap();
    let count = node.engine().config().shard_count;
    assert_eq!(
        (round.shards, round.items, round.advanced),
        (1, true, count as usize - 1),
        "{round:?}"
    );
    let last = node.store().last_event_seq().await.unwrap();
    let mut scopes = vec![CheckpointScope::Items];
    scopes.extend((0..count).map(|shard| CheckpointScope::Shard {
        shard,
        shard_count: count,
    }));
    let seqs = node.store().event_checkpoint_seqs(&scopes).await.unwrap();
    assert!(seqs.iter().all(|s| *s == Some(last)), "{seqs:?} vs {last}");

    // The purchases of removed events still count (excluded from offers, popularity),
    // after a restart too, and after an erasure in a shard whose old events are gone.
    let before = stop(node).await;
    let node = open_with(dir.path(), retained.clone()).await.unwrap();
    assert_eq!(
        state(&node).await,
        before,
        "checkpoints stand in for removed events"
    );
    let erased = customer(7);
    node.delete_customer(&erased).await.unwrap();
    let before = stop(node).await;
    let node = open_with(dir.path(), retained.clone()).await.unwrap();
    assert_eq!(state(&node).await, before);
    assert!(!node.engine().known_customer(&erased));
    drop(node);

    // Checkpoints under another shard count do not exist: the node refuses to start
    // rather than start without the removed events.
    let mut other = retained;
    other.engine.shard_count = NodeConfig::default().engine.shard_count / 2;
    let refused = open_with(dir.path(), other).await.err().expect("refused");
    let message = refused.to_string();
    assert!(
        message.contains("compacted") && message.contains("--shards"),
        "{message}"
    );
}
