//! `doppel.v1.Experiments`: experiments across model versions on next-best offers.

use std::sync::Arc;

use doppel_node::{NewExperiment, Node};
use doppel_proto::v1 as pb;
use doppel_proto::v1::experiments_server::Experiments;
use doppel_types::Experiment;
use tonic::{Request, Response, Status};

use crate::audit_log::set_target;
use crate::convert::{arms_from_pb, experiment_to_pb, report_to_pb};
use crate::status::{FieldViolation, node_status};

/// The Experiments service.
pub struct ExperimentsService {
    node: Arc<Node>,
}

impl ExperimentsService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn info(&self, experiment: &Experiment) -> pb::ExperimentInfo {
        experiment_to_pb(
            experiment,
            self.node.versions_memory(&experiment.versions()),
        )
    }
}

/// Refuses an empty experiment name (the node checks the rest).
fn check_name(name: &str) -> Result<(), FieldViolation> {
    if name.is_empty() {
        return Err(FieldViolation::new("name", "must not be empty"));
    }
    Ok(())
}

#[tonic::async_trait]
impl Experiments for ExperimentsService {
    #[tracing::instrument(skip_all, fields(experiment = %request.get_ref().name))]
    async fn create_experiment(
        &self,
        request: Request<pb::CreateExperimentRequest>,
    ) -> Result<Response<pb::ExperimentInfo>, Status> {
        set_target(&request, &request.get_ref().name);
        let pb::CreateExperimentRequest {
            name,
            arms,
            salt,
            traffic_percent,
        } = request.into_inner();
        check_name(&name)?;
        let arms = arms_from_pb(arms, true)?;
        let experiment = self
            .node
            .create_experiment(NewExperiment {
                name,
                arms,
                salt,
                traffic_percent,
            })
            .await
            .map_err(node_status)?;
        Ok(Response::new(self.info(&experiment)))
    }

    #[tracing::instrument(skip_all, fields(experiment = %request.get_ref().name))]
    async fn update_weights(
        &self,
        request: Request<pb::UpdateWeightsRequest>,
    ) -> Result<Response<pb::ExperimentInfo>, Status> {
        set_target(&request, &request.get_ref().name);
        let pb::UpdateWeightsRequest {
            name,
            arms,
            traffic_percent,
        } = request.into_inner();
        check_name(&name)?;
        let arms = arms_from_pb(arms, false)?;
        let experiment = self
            .node
            .update_weights(&name, &arms, traffic_percent)
            .await
            .map_err(node_status)?;
        Ok(Response::new(self.info(&experiment)))
    }

    #[tracing::instrument(skip_all, fields(experiment = %request.get_ref().name))]
    async fn stop_experiment(
        &self,
        request: Request<pb::StopExperimentRequest>,
    ) -> Result<Response<pb::ExperimentInfo>, Status> {
        set_target(&request, &request.get_ref().name);
        let pb::StopExperimentRequest { name } = request.into_inner();
        check_name(&name)?;
        let experiment = self
            .node
            .stop_experiment(&name, "stopped")
            .await
            .map_err(node_status)?;
        Ok(Response::new(self.info(&experiment)))
    }

    #[tracing::instrument(skip_all)]
    async fn list_experiments(
        &self,
        _request: Request<pb::ListExperimentsRequest>,
    ) -> Result<Response<pb::ListExperimentsResponse>, Status> {
        let experiments = self.node.list_experiments().await.map_err(node_status)?;
        Ok(Response::new(pb::ListExperimentsResponse {
            experiments: experiments.iter().map(|e| self.info(e)).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(experiment = %request.get_ref().name))]
    async fn get_experiment_report(
        &self,
        request: Request<pb::GetExperimentReportRequest>,
    ) -> Result<Response<pb::ExperimentReport>, Status> {
        set_target(&request, &request.get_ref().name);
        let pb::GetExperimentReportRequest {
            name,
            attribution_seconds,
        } = request.into_inner();
        check_name(&name)?;
        let report = self
            .node
            .experiment_report(&name, attribution_seconds)
            .await
            .map_err(node_status)?;
        Ok(Response::new(report_to_pb(report)))
    }
}
