//! Frequency caps in the cluster: the router sets the policy on every node, impressions
//! recorded through the router count on the customer's shard, and a shard taken over by
//! another node (its owner killed) keeps the customer's exposure memory.

use std::collections::HashSet;

use doppel_proto::v1 as pb;
use doppel_proto::v1::frequency_cap::CapScope;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::policies_client::PoliciesClient;
use doppel_types::shard::shard_of;
use tonic::transport::Channel;

use crate::fixture::{loaded, offer_ids};

async fn shown_and_counted(channel: &Channel, customer: &str) -> Vec<String> {
    offer_ids(channel, customer, 5, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn caps_hold_through_the_router_and_survive_a_shard_takeover() {
    let mut cluster = loaded(2).await;
    let channel = cluster.router.channel.clone();
    let policy = pb::ContactPolicy {
        caps: vec![pb::FrequencyCap {
            scope: CapScope::Item as i32,
            attribute: String::new(),
            max_impressions: 1,
            window_seconds: 86_400,
        }],
    };
    PoliciesClient::new(channel.clone())
        .set_contact_policy(policy.clone())
        .await
        .expect("SetContactPolicy through the router");
    let got = PoliciesClient::new(channel.clone())
        .get_contact_policy(pb::GetContactPolicyRequest {})
        .await
        .expect("GetContactPolicy")
        .into_inner();
    assert_eq!(got, policy);

    // One buyer on each node: each node applies the policy.
    let topology = cluster.router.router.topology();
    let on_node_1: Vec<u32> = topology
        .shards_by_node()
        .into_iter()
        .find(|(node, _)| node.node_id == "shard-1")
        .map(|(_, shards)| shards)
        .expect("node 1 serves shards");
    let buyers: HashSet<&str> = cluster
        .data
        .events
        .iter()
        .map(|e| e.customer_id.as_str())
        .collect();
    let mut buyers: Vec<&str> = buyers.into_iter().collect();
    buyers.sort_unstable();
    let pick = |on_1: bool| -> String {
        buyers
            .iter()
            .find(|id| on_node_1.contains(&shard_of(id, 16)) == on_1)
            .expect("a buyer")
            .to_string()
    };
    let (moving, staying) = (pick(true), pick(false));
    let mut seen = Vec::new();
    for customer in [&moving, &staying] {
        let first = shown_and_counted(&channel, customer).await;
        let second = shown_and_counted(&channel, customer).await;
        assert_eq!(first.len(), 5);
        assert!(
            first.iter().all(|i| !second.contains(i)),
            "{customer}: {first:?} then {second:?}"
        );
        seen.push([first, second].concat());
    }
    let counts = IngestClient::new(channel.clone())
        .get_customer(pb::GetCustomerRequest {
            customer_id: moving.clone(),
        })
        .await
        .expect("GetCustomer")
        .into_inner()
        .cap_counts;
    assert_eq!(counts.len(), 10, "{counts:?}");

    // Node 1 dies; node 0 takes its shards over from Redis, exposure memory included.
    cluster.shards[1].take().expect("node 1").kill();
    cluster.wait_for_sole_survivor().await;
    let after = shown_and_counted(&channel, &moving).await;
    assert!(
        after.iter().all(|i| !seen[0].contains(i)),
        "after the takeover: {after:?} repeats one of {:?}",
        seen[0]
    );
}
