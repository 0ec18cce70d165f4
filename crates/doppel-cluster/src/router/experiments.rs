//! `doppel.v1.Experiments` on the router. The experiments live in Redis; one node
//! validates and writes each change, and every other node applies it before the call
//! answers, so every node routes a customer to the same arm:
//!
//! ```text
//!   CreateExperiment
//!     Shard.PrepareVersion(arm versions), all nodes ──any fails──▶ FAILED_PRECONDITION
//!     Experiments.CreateExperiment, first node: validates, writes Redis, applies
//!     Shard.FollowExperiments, other nodes ──any fails──▶ UNAVAILABLE (stored; the
//!       laggards follow Redis within a lease renewal)
//! ```
//!
//! Weight changes and stops take the last two steps. Listings and reports are read from
//! Redis by any node (a report reads the whole shared log and every customer).

use std::sync::Arc;
use std::time::Duration;

use doppel_grpc::audit_log::set_target;
use doppel_grpc::convert::arms_from_pb;
use doppel_proto::internal::v1 as internal;
use doppel_proto::internal::v1::shard_client::ShardClient;
use doppel_proto::v1 as pb;
use doppel_proto::v1::experiments_client::ExperimentsClient;
use doppel_proto::v1::experiments_server::Experiments;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use super::fan_out::on_nodes;
use super::model_admin::DEFAULT_ACTIVATION_DEADLINE;
use super::{DEFAULT_FORWARD_DEADLINE, Router, deadline_of, forward};
use crate::topology::NodeHandle;

/// Deadline of a report when the client set none (it reads the whole log).
pub const DEFAULT_REPORT_DEADLINE: Duration = Duration::from_secs(120);

/// The router's Experiments service.
pub struct RouterExperiments {
    router: Arc<Router>,
}

impl RouterExperiments {
    /// A service routing through `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

fn client(node: &NodeHandle) -> ExperimentsClient<Channel> {
    ExperimentsClient::new(node.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn shard_client(node: &NodeHandle) -> ShardClient<Channel> {
    ShardClient::new(node.channel.clone())
}

/// Every live node loads `versions`; the first failure is the answer.
pub async fn prepare_everywhere(
    router: &Router,
    versions: &[String],
    deadline: Duration,
) -> Result<(), Status> {
    let nodes = router.topology().nodes.clone();
    for version in versions {
        let prepared = on_nodes(&nodes, deadline, |node| {
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
    let others: Vec<Arc<NodeHandle>> = router
        .topology()
        .nodes
        .iter()
        .filter(|n| n.node_id != done)
        .cloned()
        .collect();
    let followed = on_nodes(&others, deadline, |node| {
        let mut client = shard_client(node);
        let request = forward(internal::FollowExperimentsRequest {}, deadline);
        async move { client.follow_experiments(request).await }
    })
    .await;
    let laggards: Vec<String> = others
        .iter()
        .zip(followed)
        .filter_map(|(node, answer)| {
            answer
                .err()
                .map(|s| format!("{}: {}", node.node_id, s.message()))
        })
        .collect();
    if !laggards.is_empty() {
        return Err(Status::unavailable(format!(
            "the experiments are stored, but some nodes have not applied them yet ({}); they \
             follow within seconds",
            laggards.join("; ")
        )));
    }
    Ok(())
}

impl RouterExperiments {
    /// Sends a change to the first node, then has every other node apply it.
    async fn change<M, F, Fut>(
        &self,
        message: M,
        deadline: Duration,
        call: F,
    ) -> Result<Response<pb::ExperimentInfo>, Status>
    where
        F: FnOnce(ExperimentsClient<Channel>, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<pb::ExperimentInfo>, Status>>,
    {
        let first = self.router.any_node()?;
        let answer = call(client(&first), forward(message, deadline)).await?;
        follow_everywhere(&self.router, &first.node_id, deadline).await?;
        Ok(answer)
    }
}

#[tonic::async_trait]
impl Experiments for RouterExperiments {
    #[tracing::instrument(skip_all, fields(experiment = %request.get_ref().name))]
    async fn create_experiment(
        &self,
        request: Request<pb::CreateExperimentRequest>,
    ) -> Result<Response<pb::ExperimentInfo>, Status> {
        let deadline = deadline_of(&request, DEFAULT_ACTIVATION_DEADLINE);
        set_target(&request, &request.get_ref().name);
        let message = request.into_inner();
        let mut versions: Vec<String> = arms_from_pb(message.arms.clone(), true)?
            .into_iter()
            .map(|a| a.version)
            .collect();
        versions.sort();
        versions.dedup();
        prepare_everywhere(&self.router, &versions, deadline).await?;
        self.change(message, deadline, |mut c, r| async move {
            c.create_experiment(r).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(experiment = %request.get_ref().name))]
    async fn update_weights(
        &self,
        request: Request<pb::UpdateWeightsRequest>,
    ) -> Result<Response<pb::ExperimentInfo>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        set_target(&request, &request.get_ref().name);
        self.change(request.into_inner(), deadline, |mut c, r| async move {
            c.update_weights(r).await
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(experiment = %request.get_ref().name))]
    async fn stop_experiment(
        &self,
        request: Request<pb::StopExperimentRequest>,
    ) -> Result<Response<pb::ExperimentInfo>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        set_target(&request, &request.get_ref().name);
        self.change(request.into_inner(), deadline, |mut c, r| async move {
            c.stop_experiment(r).await
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_experiments(
        &self,
        request: Request<pb::ListExperimentsRequest>,
    ) -> Result<Response<pb::ListExperimentsResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        let node = self.router.any_node()?;
        client(&node)
            .list_experiments(forward(request.into_inner(), deadline))
            .await
    }

    #[tracing::instrument(skip_all, fields(experiment = %request.get_ref().name))]
    async fn get_experiment_report(
        &self,
        request: Request<pb::GetExperimentReportRequest>,
    ) -> Result<Response<pb::ExperimentReport>, Status> {
        let deadline = deadline_of(&request, DEFAULT_REPORT_DEADLINE);
        set_target(&request, &request.get_ref().name);
        let node = self.router.any_node()?;
        client(&node)
            .get_experiment_report(forward(request.into_inner(), deadline))
            .await
    }
}
