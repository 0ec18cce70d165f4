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
use doppel_proto::v1 as pb;
use doppel_proto::v1::experiments_client::ExperimentsClient;
use doppel_proto::v1::experiments_server::Experiments;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::experiment_sync::{follow_everywhere, prepare_everywhere};
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
        // Checked here too, so nothing is loaded for a request the node would refuse.
        if !doppel_types::experiment::is_valid_name(&message.name) {
            return Err(Status::invalid_argument(
                "name: must be 1..=64 bytes of [A-Za-z0-9._-], starting with a letter or digit",
            ));
        }
        let arms = arms_from_pb(message.arms.clone(), true)?;
        let traffic = match message.traffic_percent {
            0 => 100,
            t => t,
        };
        doppel_types::experiment::validate_arms(&arms, traffic)
            .map_err(|(field, reason)| Status::invalid_argument(format!("{field}: {reason}")))?;
        let mut versions: Vec<String> = arms.into_iter().map(|a| a.version).collect();
        versions.sort();
        versions.dedup();
        prepare_everywhere(&self.router.topology().nodes, &versions, deadline).await?;
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
