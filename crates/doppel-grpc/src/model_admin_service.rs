//! `doppel.v1.ModelAdmin`: bring-your-own vectors, versions, activation, index description.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_server::ModelAdmin;
use doppel_types::limits::{MAX_DIM, MAX_IMPORT_ROWS_PER_CHUNK};
use doppel_types::version::VERSION_NAME_RULE;
use doppel_types::{
    Entity, VersionInfo, VersionSource, VersionState, is_valid_version_name, validate_vector,
};
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{validate_id, version_to_pb};
use crate::node::Node;
use crate::status::{FieldViolation, engine_status, store_status};

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

/// Checks a model version name (see [`doppel_types::version::is_valid_version_name`]).
pub fn validate_version_name(name: &str) -> Result<(), FieldViolation> {
    if is_valid_version_name(name) {
        Ok(())
    } else {
        Err(FieldViolation::new("model_version", VERSION_NAME_RULE))
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// One validated chunk of an import.
struct Rows {
    entity: Entity,
    rows: Vec<(String, Vec<f32>)>,
}

/// Ids already imported in this stream, per entity: a repeated id is refused, so the
/// summary's counts are what the index holds.
#[derive(Default)]
struct SeenIds {
    customers: HashSet<String>,
    items: HashSet<String>,
}

fn chunk_rows(
    chunk: pb::EmbeddingChunk,
    version: &str,
    dim: u32,
    seen: &mut SeenIds,
) -> Result<Rows, FieldViolation> {
    let pb::EmbeddingChunk {
        model_version,
        entity,
        dim: chunk_dim,
        ids,
        values,
    } = chunk;
    if model_version != version {
        return Err(FieldViolation::new(
            "model_version",
            "every chunk of one import must name the same version",
        ));
    }
    if chunk_dim != dim {
        return Err(FieldViolation::new(
            "dim",
            format!("chunk has dim {chunk_dim}, the import started with {dim}"),
        ));
    }
    let entity = match pb::Entity::try_from(entity) {
        Ok(pb::Entity::Customer) => Entity::Customer,
        Ok(pb::Entity::Item) => Entity::Item,
        Ok(pb::Entity::Unspecified) | Err(_) => {
            return Err(FieldViolation::new("entity", "must be CUSTOMER or ITEM"));
        }
    };
    if ids.len() > MAX_IMPORT_ROWS_PER_CHUNK {
        return Err(FieldViolation::new(
            "ids",
            format!("at most {MAX_IMPORT_ROWS_PER_CHUNK} rows per chunk"),
        ));
    }
    let dim = dim as usize;
    if values.len() != ids.len() * dim {
        return Err(FieldViolation::new(
            "values",
            format!(
                "expected ids × dim = {} floats, got {}",
                ids.len() * dim,
                values.len()
            ),
        ));
    }
    let seen = match entity {
        Entity::Customer => &mut seen.customers,
        Entity::Item => &mut seen.items,
    };
    let mut rows = Vec::with_capacity(ids.len());
    for (row, id) in ids.into_iter().enumerate() {
        validate_id(&format!("ids[{row}]"), &id)?;
        if !seen.insert(id.clone()) {
            return Err(FieldViolation::new(
                format!("ids[{row}]"),
                format!("`{id}` appears twice in this import; every id once per entity"),
            ));
        }
        let vector = values[row * dim..(row + 1) * dim].to_vec();
        validate_vector(&vector, dim).map_err(|e| {
            FieldViolation::new(format!("values[row {row}, id {id}]"), e.to_string())
        })?;
        if vector.iter().all(|&x| x == 0.0) {
            return Err(FieldViolation::new(
                format!("values[row {row}, id {id}]"),
                "zero vector has no direction",
            ));
        }
        rows.push((id, vector));
    }
    Ok(Rows { entity, rows })
}

#[tonic::async_trait]
impl ModelAdmin for ModelAdminService {
    type TrainStream = crate::training::TrainStream;

    #[tracing::instrument(skip_all)]
    async fn rollback(
        &self,
        _request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        let previous = self.node.engine.previous_version().ok_or_else(|| {
            Status::failed_precondition(
                "no previous version is loaded to roll back to (activate a second version first)",
            )
        })?;
        let response = self
            .activate_version(Request::new(pb::ActivateVersionRequest {
                model_version: previous,
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
        let plan = crate::training::TrainPlan::from_pb(request.into_inner())?;
        let stream = crate::training::start(Arc::clone(&self.node), plan).await?;
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all)]
    async fn import_embeddings(
        &self,
        request: Request<Streaming<pb::EmbeddingChunk>>,
    ) -> Result<Response<pb::ImportSummary>, Status> {
        let mut stream = request.into_inner();
        let store = &self.node.store;
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("stream: no EmbeddingChunk received"))?;
        let version = first.model_version.clone();
        validate_version_name(&version)?;
        let dim = first.dim;
        if dim == 0 || dim as usize > MAX_DIM {
            return Err(FieldViolation::new("dim", format!("must be 1..={MAX_DIM}")).into());
        }
        let Some(_writing) = self.node.start_writing(&version) else {
            return Err(Status::already_exists(format!(
                "model_version: `{version}` is being written by another import or training run"
            )));
        };
        if store
            .get_version(&version)
            .await
            .map_err(store_status)?
            .is_some()
        {
            return Err(Status::failed_precondition(format!(
                "model_version: `{version}` already exists; versions are immutable"
            )));
        }
        let mut info = VersionInfo {
            version: version.clone(),
            dim,
            source: VersionSource::Imported,
            state: VersionState::Staging,
            created_ms: now_ms(),
            ..Default::default()
        };
        store
            .put_version(info.clone())
            .await
            .map_err(store_status)?;
        let outcome = self.import_rows(first, &mut stream, &mut info).await;
        match outcome {
            Ok(summary) => Ok(Response::new(summary)),
            Err(status) => {
                // A half-imported version is never activated; its vectors are dropped.
                info.fail(format!("import failed: {}", status.message()));
                let _ = store.delete_version(&version).await;
                let _ = store.put_version(info).await;
                Err(status)
            }
        }
    }

    #[tracing::instrument(skip_all)]
    async fn list_versions(
        &self,
        _request: Request<pb::ListVersionsRequest>,
    ) -> Result<Response<pb::ListVersionsResponse>, Status> {
        let store = &self.node.store;
        let mut versions = store.list_versions().await.map_err(store_status)?;
        versions.sort_by(|a, b| {
            a.created_ms
                .cmp(&b.created_ms)
                .then(a.version.cmp(&b.version))
        });
        let active_version = store
            .active_version()
            .await
            .map_err(store_status)?
            .unwrap_or_default();
        Ok(Response::new(pb::ListVersionsResponse {
            versions: versions.into_iter().map(version_to_pb).collect(),
            active_version,
        }))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn activate_version(
        &self,
        request: Request<pb::ActivateVersionRequest>,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        let pb::ActivateVersionRequest { model_version } = request.into_inner();
        validate_version_name(&model_version)?;
        let node = &self.node;
        let stored = node
            .store
            .get_version(&model_version)
            .await
            .map_err(store_status)?
            .ok_or_else(|| {
                Status::not_found(format!("model_version: `{model_version}` not found"))
            })?;
        stored
            .check_activatable()
            .map_err(Status::failed_precondition)?;
        let mut info = node.ensure_loaded(&model_version).await?;
        let previous = node.store.active_version().await.map_err(store_status)?;
        // The store's pointer is the durable truth; the engine swaps right after it.
        node.store
            .set_active_version(&model_version)
            .await
            .map_err(store_status)?;
        node.engine
            .activate(&model_version)
            .map_err(engine_status)?;
        info.state = VersionState::Active;
        node.store.put_version(info).await.map_err(store_status)?;
        if let Some(prev) = previous.as_deref().filter(|p| *p != model_version)
            && let Some(mut prev_info) = node.store.get_version(prev).await.map_err(store_status)?
        {
            prev_info.state = VersionState::Retired;
            node.store
                .put_version(prev_info)
                .await
                .map_err(store_status)?;
        }
        tracing::info!(
            previous = previous.as_deref().unwrap_or(""),
            "version activated"
        );
        if let Err(e) = crate::version_gc::collect(node).await {
            tracing::warn!(error = %e.message(), "old versions not collected; next activation retries");
        }
        Ok(Response::new(pb::ActivateVersionResponse {
            model_version,
            previous_version: previous.unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn describe_index(
        &self,
        request: Request<pb::DescribeIndexRequest>,
    ) -> Result<Response<pb::DescribeIndexResponse>, Status> {
        let pb::DescribeIndexRequest { model_version } = request.into_inner();
        let version = (!model_version.is_empty()).then_some(model_version.as_str());
        if let Some(v) = version {
            validate_version_name(v)?;
        }
        let d = self.node.engine.describe(version).map_err(engine_status)?;
        Ok(Response::new(description_to_pb(d)))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn describe_version(
        &self,
        request: Request<pb::DescribeVersionRequest>,
    ) -> Result<Response<pb::DescribeVersionResponse>, Status> {
        let pb::DescribeVersionRequest { model_version } = request.into_inner();
        validate_version_name(&model_version)?;
        let info = self
            .node
            .store
            .get_version(&model_version)
            .await
            .map_err(store_status)?
            .ok_or_else(|| {
                Status::not_found(format!("model_version: `{model_version}` not found"))
            })?;
        let engine = &self.node.engine;
        let loaded = engine.loaded_versions().contains(&model_version);
        let index = if loaded {
            Some(description_to_pb(
                engine
                    .describe(Some(&model_version))
                    .map_err(engine_status)?,
            ))
        } else {
            None
        };
        let progress = self.node.building.read().get(&model_version).cloned();
        let (build_done, build_total) = progress.map_or((0, 0), |p| {
            (
                p.done.load(std::sync::atomic::Ordering::Relaxed),
                p.total.load(std::sync::atomic::Ordering::Relaxed),
            )
        });
        Ok(Response::new(pb::DescribeVersionResponse {
            active: engine.active_version().as_deref() == Some(model_version.as_str()),
            info: Some(version_to_pb(info)),
            loaded,
            index,
            building: build_total > 0,
            build_done,
            build_total,
        }))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn delete_version(
        &self,
        request: Request<pb::DeleteVersionRequest>,
    ) -> Result<Response<pb::DeleteVersionResponse>, Status> {
        let pb::DeleteVersionRequest { model_version } = request.into_inner();
        validate_version_name(&model_version)?;
        let state = crate::version_gc::delete(&self.node, &model_version).await?;
        Ok(Response::new(pb::DeleteVersionResponse {
            model_version,
            state: state.name().to_owned(),
        }))
    }
}

fn description_to_pb(d: doppel_engine::IndexDescription) -> pb::DescribeIndexResponse {
    pb::DescribeIndexResponse {
        model_version: d.version,
        dim: d.dim as u32,
        metric: "cosine".to_owned(),
        customer_count: d.customer_count as u64,
        item_count: d.item_count as u64,
        shard_count: d.shard_count,
        memory_bytes: d.memory_bytes as u64,
        m: d.m as u32,
        ef_construction: d.ef_construction as u32,
        ef_search: d.ef_search as u32,
        deleted: d.deleted as u64,
        delta: d.delta as u64,
        loaded_from_snapshot: d.from_snapshot,
    }
}

impl ModelAdminService {
    /// Stores the rows of `first` and every following chunk, then builds the indexes.
    async fn import_rows(
        &self,
        first: pb::EmbeddingChunk,
        stream: &mut Streaming<pb::EmbeddingChunk>,
        info: &mut VersionInfo,
    ) -> Result<pb::ImportSummary, Status> {
        let store = &self.node.store;
        let (version, dim) = (info.version.clone(), info.dim);
        let mut seen = SeenIds::default();
        let mut summary = pb::ImportSummary {
            model_version: version.clone(),
            ..Default::default()
        };
        let mut next = Some(first);
        while let Some(chunk) = next {
            let Rows { entity, rows } = chunk_rows(chunk, &version, dim, &mut seen)?;
            let offered = rows.len() as u64;
            let stored = store
                .put_vectors(&version, entity, rows)
                .await
                .map_err(store_status)? as u64;
            match entity {
                Entity::Customer => {
                    summary.customers += stored;
                    summary.erased_skipped += offered - stored;
                }
                Entity::Item => summary.items += stored,
            }
            next = stream.message().await?;
        }
        // The build is timed from the end of the stream: a client that sends slowly
        // does not inflate it.
        let started = Instant::now();
        info.customer_count = summary.customers;
        info.item_count = summary.items;
        if let Err(missing) = info.check_vectors() {
            return Err(Status::failed_precondition(format!(
                "{missing} (erased customers do not count); nothing was built"
            )));
        }
        info.state = VersionState::Building;
        info.customer_count = summary.customers;
        info.item_count = summary.items;
        store
            .put_version(info.clone())
            .await
            .map_err(store_status)?;
        // Build before marking ready, so a version listed as ready can be activated.
        self.node.ensure_loaded(&version).await?;
        info.state = VersionState::Ready;
        store
            .put_version(info.clone())
            .await
            .map_err(store_status)?;
        summary.build_seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            model.version = %version,
            customers = summary.customers,
            items = summary.items,
            "embeddings imported"
        );
        Ok(summary)
    }
}
