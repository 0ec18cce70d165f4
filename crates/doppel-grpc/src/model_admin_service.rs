//! `doppel.v1.ModelAdmin`: bring-your-own vectors, versions, activation, index description.

use std::sync::Arc;

use doppel_node::canary::ROLLBACK_REASON;
use doppel_node::{ImportSummary, Node, VersionView};
use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_server::ModelAdmin;
use doppel_types::limits::MAX_DIM;
use tonic::{Request, Response, Status, Streaming};

use crate::audit_log::{AuditTarget, set_target};
use crate::convert::{
    Rows, chunk_rows, description_to_pb, guard_from_pb, plan_from_pb, scan_vectors_of,
    validate_version_name, version_to_pb,
};
use crate::status::{FieldViolation, engine_status, node_status};
use crate::stream_idle::next_message;

/// The ModelAdmin service.
pub struct ModelAdminService {
    node: Arc<Node>,
}

impl ModelAdminService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

#[tonic::async_trait]
impl ModelAdmin for ModelAdminService {
    type TrainStream = crate::training::TrainStream;

    #[tracing::instrument(skip_all)]
    async fn rollback(
        &self,
        _request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        let previous = self.node.rollback_target().map_err(node_status)?;
        let response = self
            .activate_version(Request::new(pb::ActivateVersionRequest {
                model_version: previous,
                ..Default::default()
            }))
            .await?;
        tracing::info!(
            model.version = %response.get_ref().model_version,
            "rolled back"
        );
        Ok(response)
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn train(
        &self,
        request: Request<pb::TrainRequest>,
    ) -> Result<Response<Self::TrainStream>, Status> {
        set_target(&request, &request.get_ref().model_version);
        let plan = plan_from_pb(request.into_inner())?;
        let stream = crate::training::start(Arc::clone(&self.node), plan).await?;
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all)]
    async fn import_embeddings(
        &self,
        request: Request<Streaming<pb::EmbeddingChunk>>,
    ) -> Result<Response<pb::ImportSummary>, Status> {
        let audit = AuditTarget::of(&request);
        let mut stream = request.into_inner();
        let idle = self.node.config().stream_idle;
        let first = next_message(&mut stream, idle)
            .await?
            .ok_or_else(|| Status::invalid_argument("stream: no EmbeddingChunk received"))?;
        let version = first.model_version.clone();
        if let Some(audit) = &audit {
            audit.set(&version);
        }
        validate_version_name(&version)?;
        let dim = first.dim;
        if dim == 0 || dim as usize > MAX_DIM {
            return Err(FieldViolation::new("dim", format!("must be 1..={MAX_DIM}")).into());
        }
        let int8_scan = scan_vectors_of(&first.scan_vectors)?;
        let mut session = self
            .node
            .begin_import(&version, dim, int8_scan)
            .await
            .map_err(node_status)?;
        let mut next = Some(first);
        let received: Result<(), Status> = async {
            while let Some(chunk) = next {
                let Rows { entity, rows } = chunk_rows(chunk, &version, dim)?;
                session.add_rows(entity, rows).await.map_err(node_status)?;
                next = next_message(&mut stream, idle).await?;
            }
            Ok(())
        }
        .await;
        if let Err(status) = received {
            session.fail(status.message()).await;
            return Err(status);
        }
        let summary = session.finish().await.map_err(node_status)?;
        let ImportSummary {
            version,
            customers,
            items,
            erased_skipped,
            build_seconds,
        } = summary;
        Ok(Response::new(pb::ImportSummary {
            model_version: version,
            customers,
            items,
            erased_skipped,
            build_seconds,
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let page = crate::audit_log::list(self.node.store().as_ref(), request.into_inner()).await?;
        Ok(Response::new(page))
    }

    #[tracing::instrument(skip_all)]
    async fn list_versions(
        &self,
        _request: Request<pb::ListVersionsRequest>,
    ) -> Result<Response<pb::ListVersionsResponse>, Status> {
        let (versions, active) = self.node.list_versions().await.map_err(node_status)?;
        Ok(Response::new(pb::ListVersionsResponse {
            versions: versions.into_iter().map(version_to_pb).collect(),
            active_version: active.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn activate_version(
        &self,
        request: Request<pb::ActivateVersionRequest>,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        set_target(&request, &request.get_ref().model_version);
        let pb::ActivateVersionRequest {
            model_version,
            canary_percent,
            guard,
        } = request.into_inner();
        validate_version_name(&model_version)?;
        if canary_percent > 0 {
            let stable = self
                .node
                .start_canary(&model_version, canary_percent, guard_from_pb(guard))
                .await
                .map_err(node_status)?;
            return Ok(Response::new(pb::ActivateVersionResponse {
                model_version,
                previous_version: stable,
                canary: true,
            }));
        }
        if guard.is_some() {
            return Err(FieldViolation::new("guard", "only with canary_percent").into());
        }
        // A full activation (or rollback) ends a running canary first (in the store, so
        // also one this node has not applied yet): its stable arm would no longer be the
        // active version. Only once the version is known to be activatable.
        self.node
            .version_info(&model_version)
            .await
            .map_err(node_status)?
            .check_activatable()
            .map_err(Status::failed_precondition)?;
        self.node
            .end_canary(&format!("ended by the activation of `{model_version}`"))
            .await
            .map_err(node_status)?;
        let previous = self
            .node
            .activate(&model_version)
            .await
            .map_err(node_status)?;
        Ok(Response::new(pb::ActivateVersionResponse {
            model_version,
            previous_version: previous.unwrap_or_default(),
            canary: false,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn promote_canary(
        &self,
        request: Request<pb::PromoteCanaryRequest>,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        if let Some(version) = self.node.canary_version() {
            set_target(&request, &version);
        }
        let (model_version, previous) = self.node.promote_canary().await.map_err(node_status)?;
        Ok(Response::new(pb::ActivateVersionResponse {
            model_version,
            previous_version: previous.unwrap_or_default(),
            canary: false,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn describe_index(
        &self,
        request: Request<pb::DescribeIndexRequest>,
    ) -> Result<Response<pb::DescribeIndexResponse>, Status> {
        set_target(&request, &request.get_ref().model_version);
        let pb::DescribeIndexRequest { model_version } = request.into_inner();
        let version = (!model_version.is_empty()).then_some(model_version.as_str());
        if let Some(v) = version {
            validate_version_name(v)?;
        }
        let d = self
            .node
            .engine()
            .describe(version)
            .map_err(engine_status)?;
        Ok(Response::new(description_to_pb(d)))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn describe_version(
        &self,
        request: Request<pb::DescribeVersionRequest>,
    ) -> Result<Response<pb::DescribeVersionResponse>, Status> {
        set_target(&request, &request.get_ref().model_version);
        let pb::DescribeVersionRequest { model_version } = request.into_inner();
        validate_version_name(&model_version)?;
        let VersionView {
            info,
            loaded,
            active,
            index,
            build,
            canary,
        } = self
            .node
            .describe_version(&model_version)
            .await
            .map_err(node_status)?;
        let (build_done, build_total) = build.unwrap_or((0, 0));
        let info_rollback_reason = info
            .params
            .get(ROLLBACK_REASON)
            .cloned()
            .unwrap_or_default();
        Ok(Response::new(pb::DescribeVersionResponse {
            active,
            info: Some(version_to_pb(info)),
            loaded,
            index: index.map(description_to_pb),
            building: build_total > 0,
            build_done,
            build_total,
            canary,
            rollback_reason: info_rollback_reason,
            audience_vectors: doppel_engine::classifier::AUDIENCE_VECTORS.to_owned(),
        }))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn delete_version(
        &self,
        request: Request<pb::DeleteVersionRequest>,
    ) -> Result<Response<pb::DeleteVersionResponse>, Status> {
        set_target(&request, &request.get_ref().model_version);
        let pb::DeleteVersionRequest { model_version } = request.into_inner();
        validate_version_name(&model_version)?;
        let state = self
            .node
            .delete_version(&model_version)
            .await
            .map_err(node_status)?;
        Ok(Response::new(pb::DeleteVersionResponse {
            model_version,
            state: state.map(|s| s.name().to_owned()).unwrap_or_default(),
        }))
    }
}
