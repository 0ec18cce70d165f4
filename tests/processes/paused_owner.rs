//! A shard node paused (SIGSTOP) past its lease while other nodes take its shards over,
//! then resumed (SIGCONT), with writes sent to it while it was stopped (issue 15 §5).
//!
//! Node-a and node-b start; node-a is paused and node-b takes everything; node-c joins and
//! takes the shards that rendezvous hashing gives it even with node-a alive, so node-a
//! will not claim those back when it wakes up. The writes go to node-a, for customers of
//! those shards:
//!
//! * it must not acknowledge a write to a shard it no longer owns (the shard map, read
//!   right after an acknowledgement, would name node-c);
//! * the writes it refuses succeed when the client retries them through the router;
//! * no acknowledged write is lost or applied twice: each customer shows the profile written
//!   and exactly one event (the refused-then-retried event carried an event id).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use doppel_cluster::shard::assignment::desired_owner;
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_types::shard::shard_of;

use crate::calls::{
    connect, customer, shard_node, view, wait_until, with_timeout, write_through_router,
};
use crate::child::{DoppelProcess, free_addr};
use crate::two_shard_nodes::TwoShardNodes;

/// Logical shards (the default).
const SHARDS: u32 = 16;
/// The paused node's id.
const PAUSED: &str = "node-a";
/// The node that takes its shards over.
const SURVIVOR: &str = "node-b";
/// The node that joins while node-a is stopped.
const JOINER: &str = "node-c";
/// How long the new owner's second pass waits after its claim (`SECOND_PASS_AFTER`), plus
/// a round of its manager and a margin.
const AFTER_SECOND_PASS: Duration = Duration::from_millis(5_000);

/// What one write sent to the paused node came to.
enum Outcome {
    /// Acknowledged; the shard map's owner of its shard read right after.
    Acked { what: String, owner: Option<String> },
    /// Refused with this status.
    Refused { what: String, status: tonic::Status },
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_owner_acknowledges_no_write_for_the_shards_taken_from_it() {
    let cluster = TwoShardNodes::start(PAUSED, SURVIVOR, SHARDS, &[]).await;
    let (url, dir) = (cluster.redis.url(), cluster.dir.path());
    let (a, router, ids) = (&cluster.a, &cluster.router, &cluster.ids);
    let store = cluster.store.clone();
    let logs = || cluster.logs();

    // The shards node-a owns that node-c will own even beside node-a, their customers, and
    // a connection to node-a made now.
    let map = store.shard_map().await.expect("shard map");
    let all: BTreeSet<String> = [PAUSED, SURVIVOR, JOINER].map(str::to_owned).into();
    let moving: Vec<u32> = map
        .iter()
        .filter(|(s, owner)| owner.as_str() == PAUSED && desired_owner(&all, **s) == Some(JOINER))
        .map(|(s, _)| *s)
        .collect();
    let a_ids: Vec<String> = ids
        .iter()
        .filter(|id| moving.contains(&shard_of(id, SHARDS)))
        .take(12)
        .cloned()
        .collect();
    assert!(
        a_ids.len() >= 4,
        "node-a owns customers that move to node-c: {a_ids:?} (shards {moving:?})"
    );
    let a_channel = connect(&cluster.a_internal).await;
    IngestClient::new(a_channel.clone())
        .get_customer(pb::GetCustomerRequest {
            customer_id: a_ids[0].clone(),
        })
        .await
        .unwrap_or_else(|s| panic!("node-a serves its customer: {s:?}\n{}", logs()));

    // Pause node-a; node-b takes its shards over once its lease expires; node-c joins and
    // takes its own; both second passes run.
    a.pause();
    wait_until(
        "node-b owns node-a's shards",
        Duration::from_secs(60),
        async || {
            let map = store.shard_map().await.unwrap_or_default();
            map.values().all(|owner| owner != PAUSED)
        },
    )
    .await;
    let c = DoppelProcess::serve(
        "c",
        dir,
        &shard_node(&url, JOINER, &free_addr(), dir, SHARDS),
    );
    wait_until(
        "node-c owns its shards",
        Duration::from_secs(60),
        async || {
            let map = store.shard_map().await.unwrap_or_default();
            moving
                .iter()
                .all(|s| map.get(s).map(String::as_str) == Some(JOINER))
        },
    )
    .await;
    tokio::time::sleep(AFTER_SECOND_PASS).await;

    // Writes sent to the stopped node-a wait in its socket; resume it.
    let store = Arc::new(store);
    let mut writes = Vec::new();
    for id in &a_ids {
        for event in [false, true] {
            let (channel, store, id) = (a_channel.clone(), Arc::clone(&store), id.clone());
            writes.push(tokio::spawn(async move {
                let mut client = IngestClient::new(channel);
                let (what, result) = if event {
                    let call = client
                        .record_events(with_timeout(tokio_stream::iter(vec![view(&id)])))
                        .await;
                    (format!("event of {id}"), call.map(|_| ()))
                } else {
                    let call = client
                        .upsert_customers(with_timeout(tokio_stream::iter(vec![customer(
                            &id, "paused",
                        )])))
                        .await;
                    (format!("profile of {id}"), call.map(|_| ()))
                };
                match result {
                    Ok(()) => {
                        let owner = store
                            .shard_owners(&[shard_of(&id, SHARDS)])
                            .await
                            .expect("shard map")
                            .remove(0);
                        Outcome::Acked { what, owner }
                    }
                    Err(status) => Outcome::Refused { what, status },
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.resume();
    let mut acked = 0;
    let mut refused = 0;
    for write in writes {
        match write.await.expect("write task") {
            Outcome::Acked { what, owner } => {
                acked += 1;
                assert_eq!(
                    owner.as_deref(),
                    Some(PAUSED),
                    "node-a acknowledged the {what} while the shard map gave its shard to another node\n{}",
                    logs()
                );
            }
            Outcome::Refused { what, status } => {
                refused += 1;
                assert_eq!(
                    status.code(),
                    tonic::Code::Unavailable,
                    "{what}: {status:?}\n{}",
                    logs()
                );
            }
        }
    }
    assert!(
        refused > 0,
        "node-a refused none of the {acked} writes sent while it was stopped: the test saw no fencing\n{}",
        logs()
    );

    // A client retries every write through the router; each customer then shows the new
    // profile and exactly one event.
    write_through_router(
        router,
        a_ids.iter().map(|id| customer(id, "paused")).collect(),
        a_ids.iter().map(|id| view(id)).collect(),
    )
    .await;
    let mut client = IngestClient::new(router.clone());
    for id in &a_ids {
        let found = client
            .get_customer(with_timeout(pb::GetCustomerRequest {
                customer_id: id.clone(),
            }))
            .await
            .unwrap_or_else(|s| panic!("{id}: {s:?}\n{}", logs()))
            .into_inner();
        let tier = found
            .customer
            .as_ref()
            .and_then(|c| c.attributes.get("tier"));
        assert_eq!(tier.map(String::as_str), Some("paused"), "{id}");
        assert_eq!(found.event_count, 1, "{id}: one event, stored once");
    }
    drop((c, cluster));
}
