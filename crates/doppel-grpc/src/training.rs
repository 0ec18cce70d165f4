//! `ModelAdmin.Train`: learn vectors from the event log, store them as a new version, build
//! its indexes, and stream progress. Also the per-version fold-in state.
//!
//! ```text
//! store events ──▶ Interactions ──ALS (blocking pool)──▶ Model ──▶ ServingVectors + segments
//!      ──▶ store.put_vectors, segment attributes ──▶ node.ensure_loaded (indexes + fold-in)
//!      ──▶ version Ready
//! ```

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use doppel_proto::v1 as pb;
use doppel_train::{
    AlsParams, ConfidenceConfig, FoldInModel, Interactions, SegmentConfig, ServingVectors,
    segment_customers,
};
use doppel_types::{Entity, Event, VersionInfo, VersionSource, VersionState};
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::model_admin_service::validate_version_name;
use crate::node::{Node, REPLAY_PAGE};
use crate::status::{FieldViolation, store_status};

/// Rows per `put_vectors` call when storing a trained version.
const STORE_CHUNK: usize = 10_000;

/// The progress stream of one training run.
pub type TrainStream = Pin<Box<dyn Stream<Item = Result<pb::TrainProgress, Status>> + Send>>;

/// A validated training request.
#[derive(Clone, Debug)]
pub struct TrainPlan {
    /// Name of the new version.
    pub version: String,
    /// ALS settings.
    pub als: AlsParams,
    /// Event → confidence settings.
    pub confidence: ConfidenceConfig,
}

fn train_error(e: doppel_train::Error) -> Status {
    match e {
        doppel_train::Error::InvalidParameter { name, reason } => {
            FieldViolation::new(name, reason).into()
        }
        doppel_train::Error::NoInteractions => Status::failed_precondition(
            "the event log has no positive interactions to learn from (record events first)",
        ),
        doppel_train::Error::ThreadPool(reason) => {
            Status::internal(format!("training threads: {reason}"))
        }
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl TrainPlan {
    /// Defaults overridden by what the request sets; every value checked.
    pub fn from_pb(request: pb::TrainRequest) -> Result<Self, Status> {
        let version = if request.model_version.is_empty() {
            format!("als-{}", unix_ms())
        } else {
            request.model_version
        };
        validate_version_name(&version)?;
        let mut als = AlsParams::default();
        if let Some(f) = request.factors {
            als.factors = f as usize;
        }
        if let Some(r) = request.regularization {
            als.regularization = r;
        }
        if let Some(i) = request.iterations {
            als.iterations = i as usize;
        }
        if let Some(s) = request.seed {
            als.seed = s;
        }
        let mut confidence = ConfidenceConfig::default();
        let floats = [
            (request.alpha, &mut confidence.alpha),
            (request.half_life_days, &mut confidence.half_life_days),
            (request.purchase_weight, &mut confidence.purchase_weight),
            (
                request.add_to_cart_weight,
                &mut confidence.add_to_cart_weight,
            ),
            (request.view_weight, &mut confidence.view_weight),
            (request.return_weight, &mut confidence.return_weight),
        ];
        for (value, slot) in floats {
            if let Some(v) = value {
                *slot = v;
            }
        }
        als.validate().map_err(train_error)?;
        confidence.validate().map_err(train_error)?;
        Ok(Self {
            version,
            als,
            confidence,
        })
    }

    /// The hyper-parameters as recorded in `VersionInfo.params`.
    pub fn params(&self) -> BTreeMap<String, String> {
        let a = &self.als;
        let c = &self.confidence;
        [
            ("algorithm", "implicit-als-cg".to_owned()),
            ("factors", a.factors.to_string()),
            ("regularization", a.regularization.to_string()),
            ("iterations", a.iterations.to_string()),
            ("cg_steps", a.cg_steps.to_string()),
            ("seed", a.seed.to_string()),
            ("alpha", c.alpha.to_string()),
            ("half_life_days", c.half_life_days.to_string()),
            ("purchase_weight", c.purchase_weight.to_string()),
            ("add_to_cart_weight", c.add_to_cart_weight.to_string()),
            ("view_weight", c.view_weight.to_string()),
            ("return_weight", c.return_weight.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// Reads the confidence settings and regularisation back from a version's params.
fn recorded_settings(params: &BTreeMap<String, String>) -> (f32, ConfidenceConfig) {
    let get = |key: &str, default: f32| {
        params
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let d = ConfidenceConfig::default();
    let confidence = ConfidenceConfig {
        alpha: get("alpha", d.alpha),
        half_life_days: get("half_life_days", d.half_life_days),
        purchase_weight: get("purchase_weight", d.purchase_weight),
        add_to_cart_weight: get("add_to_cart_weight", d.add_to_cart_weight),
        view_weight: get("view_weight", d.view_weight),
        return_weight: get("return_weight", d.return_weight),
    };
    (
        get("regularization", AlsParams::default().regularization),
        confidence,
    )
}

/// The fold-in state of a trained version, from its stored item vectors.
pub fn fold_in_model(info: &VersionInfo, items: &[(String, Vec<f32>)]) -> Option<FoldInModel> {
    if info.source != VersionSource::Trained {
        return None;
    }
    let (regularization, confidence) = recorded_settings(&info.params);
    FoldInModel::from_serving_items(items, regularization, confidence)
}

/// Starts a training run; progress arrives on the returned stream.
pub async fn start(node: Arc<Node>, plan: TrainPlan) -> Result<TrainStream, Status> {
    let guard = Arc::clone(&node.training)
        .try_lock_owned()
        .map_err(|_| Status::failed_precondition("a training run is already in progress"))?;
    if node
        .store
        .get_version(&plan.version)
        .await
        .map_err(store_status)?
        .is_some()
    {
        return Err(Status::already_exists(format!(
            "model_version: `{}` already exists",
            plan.version
        )));
    }
    if node.is_working_on(&plan.version) {
        return Err(Status::already_exists(format!(
            "model_version: `{}` is being written by an import",
            plan.version
        )));
    }
    let (tx, rx) = mpsc::channel(32);
    tokio::spawn(async move {
        let _one_run = guard;
        let outcome = match node.start_writing(&plan.version) {
            Some(_writing) => run(&node, &plan, &tx).await,
            None => Err(Status::already_exists(format!(
                "model_version: `{}` is being written by an import",
                plan.version
            ))),
        };
        if let Err(status) = outcome {
            tracing::warn!(model.version = %plan.version, error = %status.message(), "training failed");
            if let Ok(Some(mut info)) = node.store.get_version(&plan.version).await {
                info.fail(format!("training failed: {}", status.message()));
                // Its vectors are dropped; the name can be reused once it is deleted.
                let _ = node.store.delete_version(&plan.version).await;
                let _ = node.store.put_version(info).await;
            }
            let _ = tx.send(Err(status)).await;
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

struct Report<'a> {
    tx: &'a mpsc::Sender<Result<pb::TrainProgress, Status>>,
    version: &'a str,
    started: Instant,
}

impl Report<'_> {
    fn message(&self, stage: &str) -> pb::TrainProgress {
        pb::TrainProgress {
            model_version: self.version.to_owned(),
            stage: stage.to_owned(),
            elapsed_seconds: self.started.elapsed().as_secs_f64(),
            ..Default::default()
        }
    }

    async fn send(&self, message: pb::TrainProgress) {
        // A client that went away does not stop the run: the version still gets built.
        let _ = self.tx.send(Ok(message)).await;
    }
}

async fn read_events(node: &Node) -> Result<Vec<Event>, Status> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = node
            .store
            .scan_events(after, REPLAY_PAGE)
            .await
            .map_err(store_status)?;
        let full = page.len() == REPLAY_PAGE;
        if let Some((seq, _)) = page.last() {
            after = *seq;
        }
        events.extend(page.into_iter().map(|(_, e)| e));
        if !full {
            return Ok(events);
        }
    }
}

async fn run(
    node: &Arc<Node>,
    plan: &TrainPlan,
    tx: &mpsc::Sender<Result<pb::TrainProgress, Status>>,
) -> Result<(), Status> {
    let report = Report {
        tx,
        version: &plan.version,
        started: Instant::now(),
    };
    report.send(report.message("reading events")).await;
    let events = read_events(node).await?;
    let event_count = events.len() as u64;
    let mut info = VersionInfo {
        version: plan.version.clone(),
        dim: (plan.als.factors + 1) as u32,
        source: VersionSource::Trained,
        state: VersionState::Building,
        created_ms: unix_ms(),
        params: plan.params(),
        ..VersionInfo::default()
    };
    node.store
        .put_version(info.clone())
        .await
        .map_err(store_status)?;

    let (als, confidence) = (plan.als.clone(), plan.confidence.clone());
    let progress_tx = tx.clone();
    let version = plan.version.clone();
    let started = report.started;
    let (serving, segments) = tokio::task::spawn_blocking(move || {
        // Decay is measured to a high quantile of the log's times (capped by the clock),
        // not its newest event: an old log is not "all forgotten", and one far-future
        // event does not make every other one look ancient.
        let now = doppel_train::reference_time_ms(
            events.iter().map(|e| e.timestamp_ms),
            crate::convert::unix_now_ms(),
        );
        let interactions = Interactions::from_events(&events, &confidence, now);
        let model = doppel_train::train(&interactions, &als, &|step| {
            let _ = progress_tx.blocking_send(Ok(pb::TrainProgress {
                model_version: version.clone(),
                stage: "training".to_owned(),
                iteration: step.iteration as u32,
                iterations: step.iterations as u32,
                loss: step.loss.unwrap_or_default(),
                elapsed_seconds: started.elapsed().as_secs_f64(),
                ..Default::default()
            }));
        })?;
        let segments = segment_customers(&events, &model, &SegmentConfig::new(now))?;
        Ok::<_, doppel_train::Error>((ServingVectors::from_model(&model), segments))
    })
    .await
    .map_err(|e| Status::internal(format!("training task: {e}")))?
    .map_err(train_error)?;

    let mut message = report.message("storing vectors");
    message.events = event_count;
    message.customers = serving.customers.len() as u64;
    message.items = serving.items.len() as u64;
    report.send(message.clone()).await;
    let mut stored_customers = 0;
    for chunk in serving.customers.chunks(STORE_CHUNK) {
        stored_customers += node
            .store
            .put_vectors(&plan.version, Entity::Customer, chunk.to_vec())
            .await
            .map_err(store_status)?;
    }
    for chunk in serving.items.chunks(STORE_CHUNK) {
        node.store
            .put_vectors(&plan.version, Entity::Item, chunk.to_vec())
            .await
            .map_err(store_status)?;
    }
    info.customer_count = stored_customers as u64;
    info.item_count = serving.items.len() as u64;
    if let Err(missing) = info.check_vectors() {
        return Err(Status::failed_precondition(format!(
            "{missing} after training (erased customers do not count)"
        )));
    }
    node.store
        .put_version(info.clone())
        .await
        .map_err(store_status)?;

    report.send(report.message("segmenting")).await;
    let segmented = crate::segments::store_segments(node, &plan.version, &segments).await?;
    info.params
        .insert("segmented_customers".to_owned(), segmented.to_string());

    report.send(report.message("building indexes")).await;
    node.ensure_loaded(&plan.version).await?;
    info.state = VersionState::Ready;
    node.store.put_version(info).await.map_err(store_status)?;

    message.stage = "done".to_owned();
    message.done = true;
    message.customers = stored_customers as u64;
    message.elapsed_seconds = report.started.elapsed().as_secs_f64();
    report.send(message).await;
    tracing::info!(
        model.version = %plan.version,
        events = event_count,
        customers = stored_customers,
        seconds = report.started.elapsed().as_secs_f64(),
        "version trained"
    );
    Ok(())
}

/// Fold-in after new events: each customer's vector is re-solved against the active
/// trained version's items and written to the index and the store. Returns how many
/// customers were updated.
pub async fn fold_in_customers(node: &Node, customer_ids: Vec<String>) -> Result<usize, Status> {
    let Some(version) = node.engine.active_version() else {
        return Ok(0);
    };
    let Some(model) = node.fold_in.read().get(&version).cloned() else {
        return Ok(0);
    };
    let mut updated = Vec::new();
    for id in customer_ids {
        let events = node
            .store
            .customer_events(&id)
            .await
            .map_err(store_status)?;
        let model = Arc::clone(&model);
        let vector = tokio::task::spawn_blocking(move || model.customer_vector(&events, 0))
            .await
            .map_err(|e| Status::internal(format!("fold-in task: {e}")))?;
        if let Some(v) = vector {
            updated.push((id, v));
        }
    }
    let n = updated.len();
    if n == 0 {
        return Ok(0);
    }
    node.invalidate_snapshot(&version);
    // Store first (durable), then the live index.
    node.store
        .put_vectors(&version, Entity::Customer, updated.clone())
        .await
        .map_err(store_status)?;
    for (id, v) in &updated {
        match node.engine.upsert_customer_vector(&version, id, v) {
            Ok(()) => {}
            // Erased in the meantime: nothing to update.
            Err(doppel_engine::Error::FailedPrecondition(_)) => {}
            Err(e) => return Err(crate::status::engine_status(e)),
        }
    }
    Ok(n)
}
