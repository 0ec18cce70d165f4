//! Bringing every shard node to the same experiments: loading the versions an experiment
//! or canary needs before it is stored, and applying the stored experiments right after a
//! change (rather than at the next lease renewal).

use std::time::Duration;

use doppel_proto::internal::v1 as internal;
use doppel_proto::internal::v1::shard_client::ShardClient;
use tonic::{Code, Status};

use super::fan_out::{on_nodes, on_other_nodes};
use super::{Router, forward};
use crate::topology::NodeHandle;

fn shard_client(node: &NodeHandle) -> ShardClient<tonic::transport::Channel> {
    ShardClient::new(node.channel.clone())
}

/// Every node of `nodes` loads `versions`; the first failure is the answer (NOT_FOUND or
/// FAILED_PRECONDITION naming the node; nothing was changed).
pub async fn prepare_everywhere(
    nodes: &[std::sync::Arc<NodeHandle>],
    versions: &[String],
    deadline: Duration,
) -> Result<(), Status> {
    for version in versions {
        let prepared = on_nodes(nodes, deadline, |node| {
            let mut client = shard_client(node);
            let request = forward(
                internal::PrepareVersionRequest {
                    model_version: version.clone(),
                },
                deadline,
            );
            async move { client.prepare_version(request).await }
        })
        .await;
        for (node, answer) in nodes.iter().zip(prepared) {
            if let Err(status) = answer {
                let message = format!(
                    "node {} cannot load `{version}`: {}; nothing was changed",
                    node.node_id,
                    status.message()
                );
                return Err(match status.code() {
                    Code::NotFound => Status::not_found(message),
                    _ => Status::failed_precondition(message),
                });
            }
        }
    }
    Ok(())
}

/// Every node but `done` applies the stored experiments now; UNAVAILABLE naming the
/// laggards (they follow Redis within a lease renewal).
pub async fn follow_everywhere(
    router: &Router,
    done: &str,
    deadline: Duration,
) -> Result<(), Status> {
    let laggards = on_other_nodes(router, done, deadline, |node| {
        let mut client = shard_client(node);
        let request = forward(internal::FollowExperimentsRequest {}, deadline);
        async move { client.follow_experiments(request).await }
    })
    .await;
    if !laggards.is_empty() {
        return Err(Status::unavailable(format!(
            "the experiments are stored, but some nodes have not applied them yet ({}); they \
             follow within seconds",
            laggards.join("; ")
        )));
    }
    Ok(())
}
