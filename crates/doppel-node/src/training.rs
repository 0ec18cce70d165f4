//! Training runs: learn vectors from the event log, store them as a new version, build its
//! indexes, and report progress.
//!
//! ```text
//! store events ──▶ Interactions ──ALS (blocking pool)──▶ Model ──▶ ServingVectors + segments
//!      + context model (lifts, weights fitted on a validation window)
//!      ──▶ store.put_vectors, put_context_model, segment attributes
//!      ──▶ ensure_loaded (indexes + fold-in + context) ──▶ version Ready
//! ```

use doppel_engine::SCAN_VECTORS_PARAM;
use std::sync::Arc;
use std::time::Instant;

use std::collections::HashMap;

use doppel_train::{
    AlsParams, ConfidenceConfig, ContextFitReport, Interactions, PriorSettings, SegmentConfig,
    ServingVectors, fit_context, segment_customers,
};
use doppel_types::clock::now_ms;
use doppel_types::{Entity, Event, VersionInfo, VersionSource, VersionState};
use tokio::sync::mpsc;

use crate::error::{Error, Result, blocking};
use crate::node::Node;
use crate::store_pages;

/// Rows per `put_vectors` call when storing a trained version.
const STORE_CHUNK: usize = 10_000;
/// Progress messages buffered for a slow reader (a reader that went away does not stop
/// the run).
const PROGRESS_BUFFER: usize = 32;

/// A validated training request.
#[derive(Clone, Debug)]
pub struct TrainPlan {
    /// Name of the new version.
    pub version: String,
    /// ALS settings.
    pub als: AlsParams,
    /// Event → confidence settings.
    pub confidence: ConfidenceConfig,
    /// Customer scans of the new version read int8 codes (recorded as
    /// `scan_vectors = int8`).
    pub int8_scan: bool,
    /// The recent-popularity prior of the version's offers (weight 0: none).
    pub prior: PriorSettings,
}

/// One progress report of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrainProgress {
    /// The version being trained.
    pub version: String,
    /// `reading events`, `training`, `choosing the popularity prior` (and the recency weight),
    /// `learning context`,
    /// `storing vectors`, `segmenting`,
    /// `building indexes`, `done`.
    pub stage: &'static str,
    /// ALS iteration done (stage `training`).
    pub iteration: u32,
    /// ALS iterations in all.
    pub iterations: u32,
    /// Weighted squared error of the last iteration (0 when not computed).
    pub loss: f64,
    /// Since the run started.
    pub elapsed_seconds: f64,
    /// Events read.
    pub events: u64,
    /// Customer vectors.
    pub customers: u64,
    /// Item vectors.
    pub items: u64,
    /// The last report: the version is ready.
    pub done: bool,
}

/// The progress of a run; the last item is `done` or an error.
pub type ProgressReceiver = mpsc::Receiver<Result<TrainProgress>>;

impl Node {
    /// Starts a training run in the background; progress arrives on the receiver. Refused
    /// while another run is going or when the version name is taken.
    pub async fn start_training(self: &Arc<Self>, plan: TrainPlan) -> Result<ProgressReceiver> {
        let guard = Arc::clone(&self.training).try_lock_owned().map_err(|_| {
            Error::FailedPrecondition("a training run is already in progress".into())
        })?;
        if self.store.get_version(&plan.version).await?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "model_version: `{}` already exists",
                plan.version
            )));
        }
        if self.is_working_on(&plan.version) {
            return Err(being_written(&plan.version));
        }
        let (tx, rx) = mpsc::channel(PROGRESS_BUFFER);
        let node = Arc::clone(self);
        tokio::spawn(async move {
            let _one_run = guard;
            let outcome = match node.start_writing(&plan.version) {
                Some(_writing) => node.train(&plan, &tx).await,
                None => Err(being_written(&plan.version)),
            };
            if let Err(e) = outcome {
                tracing::warn!(model.version = %plan.version, error = %e, "training failed");
                node.mark_failed(&plan.version, &format!("training failed: {e}"))
                    .await;
                // The reader may have gone away; the version is marked failed either way.
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }

    /// Drops a version's vectors and records it as failed with `reason` (logged if the
    /// store refuses: the start-up reconciliation then finds it unfinished).
    pub(crate) async fn mark_failed(&self, version: &str, reason: &str) {
        let marked = async {
            if let Some(mut info) = self.store.get_version(version).await? {
                info.fail(reason);
                self.store.delete_version(version).await?;
                self.store.put_version(info).await?;
            }
            Ok::<_, Error>(())
        };
        if let Err(e) = marked.await {
            tracing::error!(model.version = version, error = %e, "version not marked failed");
        }
    }

    async fn train(
        &self,
        plan: &TrainPlan,
        tx: &mpsc::Sender<Result<TrainProgress>>,
    ) -> Result<()> {
        let started = Instant::now();
        let report = |stage: &'static str| TrainProgress {
            version: plan.version.clone(),
            stage,
            elapsed_seconds: started.elapsed().as_secs_f64(),
            ..Default::default()
        };
        // A reader that went away does not stop the run: the version still gets built.
        let send = |p: TrainProgress| async move {
            let _ = tx.send(Ok(p)).await;
        };
        send(report("reading events")).await;
        let mut events: Vec<Event> = Vec::new();
        store_pages::events(self.store.as_ref(), 0, None, &mut |_, e| {
            events.push(e.clone())
        })
        .await?;
        let event_count = events.len() as u64;
        let mut category_of: HashMap<String, String> = HashMap::new();
        store_pages::items(self.store.as_ref(), |item| {
            category_of.insert(item.id.clone(), item.category.clone());
        })
        .await?;
        let mut info = VersionInfo {
            version: plan.version.clone(),
            dim: (plan.als.factors + 1) as u32,
            source: VersionSource::Trained,
            state: VersionState::Building,
            created_ms: now_ms(),
            params: doppel_train::recorded_params::params_of(&plan.als, &plan.confidence),
            ..VersionInfo::default()
        };
        if plan.int8_scan {
            info.params
                .insert(SCAN_VECTORS_PARAM.to_owned(), "int8".to_owned());
        }
        self.store.put_version(info.clone()).await?;

        let (als, confidence, prior) = (plan.als.clone(), plan.confidence.clone(), plan.prior);
        let progress_tx = tx.clone();
        let version = plan.version.clone();
        let context_tx = tx.clone();
        let (serving, segments, context, prior_choice) = blocking("training", move || {
            // Decay is measured to a high quantile of the log's times (capped by the
            // clock), not its newest event: an old log is not "all forgotten", and one
            // far-future event does not make every other one look ancient.
            let now = doppel_train::reference_time_ms(
                events
                    .iter()
                    .filter(|e| confidence.carries_signal(e))
                    .map(|e| e.timestamp_ms),
                now_ms(),
            );
            let interactions = Interactions::from_events(&events, &confidence, now);
            let model = doppel_train::train(&interactions, &als, &|step| {
                // Dropped when the reader went away; the run goes on.
                let _ = progress_tx.blocking_send(Ok(TrainProgress {
                    version: version.clone(),
                    stage: "training",
                    iteration: step.iteration as u32,
                    iterations: step.iterations as u32,
                    loss: step.loss.unwrap_or_default(),
                    elapsed_seconds: started.elapsed().as_secs_f64(),
                    ..Default::default()
                }));
            })?;
            let segments = segment_customers(&events, &model, &SegmentConfig::new(now))?;
            let fit = match (prior.weight, prior.recency_weight) {
                (Some(_), Some(_)) => None,
                _ => {
                    let _ = context_tx.blocking_send(Ok(TrainProgress {
                        version: version.clone(),
                        stage: "choosing the popularity prior",
                        elapsed_seconds: started.elapsed().as_secs_f64(),
                        ..Default::default()
                    }));
                    Some(doppel_train::choose_prior_weight(
                        &events,
                        &als,
                        &confidence,
                        &prior,
                        now_ms(),
                    )?)
                }
            };
            let weight = prior
                .weight
                .or(fit.as_ref().map(|f| f.weight))
                .unwrap_or(0.0);
            let popularity =
                doppel_train::recent_popularity(&events, &model.item_ids, now, prior.days);
            let serving = ServingVectors::with_prior(&model, weight, &popularity);
            let _ = context_tx.blocking_send(Ok(TrainProgress {
                version: version.clone(),
                stage: "learning context",
                elapsed_seconds: started.elapsed().as_secs_f64(),
                ..Default::default()
            }));
            let context = fit_context(
                &events,
                &serving.items,
                serving.layout,
                &category_of,
                als.solve_weights(),
                &confidence,
            );
            Ok::<_, doppel_train::Error>((serving, segments, context, fit))
        })
        .await??;
        let fit = prior_choice;
        doppel_train::recorded_params::record_prior(&mut info.params, &plan.prior, fit.as_ref());
        info.dim = serving.layout.dim() as u32;

        let mut message = report("storing vectors");
        message.events = event_count;
        message.customers = serving.customers.len() as u64;
        message.items = serving.items.len() as u64;
        send(message.clone()).await;
        let mut stored_customers = 0;
        for chunk in serving.customers.chunks(STORE_CHUNK) {
            stored_customers += self
                .store
                .put_vectors(&plan.version, Entity::Customer, chunk.to_vec())
                .await?;
        }
        for chunk in serving.items.chunks(STORE_CHUNK) {
            self.store
                .put_vectors(&plan.version, Entity::Item, chunk.to_vec())
                .await?;
        }
        self.store
            .put_context_model(&plan.version, &context.model)
            .await?;
        record_context(&mut info.params, &context.report);
        info.customer_count = stored_customers as u64;
        info.item_count = serving.items.len() as u64;
        if let Err(missing) = info.check_vectors() {
            return Err(Error::FailedPrecondition(format!(
                "{missing} after training (erased customers do not count)"
            )));
        }
        self.store.put_version(info.clone()).await?;

        send(report("segmenting")).await;
        let segmented = self.store_segments(&plan.version, &segments).await?;
        info.params
            .insert("segmented_customers".to_owned(), segmented.to_string());

        send(report("building indexes")).await;
        self.ensure_loaded(&plan.version).await?;
        info.state = VersionState::Ready;
        self.store.put_version(info).await?;

        message.stage = "done";
        message.done = true;
        message.customers = stored_customers as u64;
        message.elapsed_seconds = started.elapsed().as_secs_f64();
        send(message).await;
        tracing::info!(
            model.version = %plan.version,
            events = event_count,
            customers = stored_customers,
            seconds = started.elapsed().as_secs_f64(),
            "version trained"
        );
        Ok(())
    }
}

/// What the context fit chose and saw, in the version's recorded params.
fn record_context(
    params: &mut std::collections::BTreeMap<String, String>,
    report: &ContextFitReport,
) {
    let weights = report
        .weights
        .iter()
        .map(|(f, w)| format!("{f}={w}"))
        .collect::<Vec<_>>()
        .join(",");
    for (key, value) in [
        ("context_weights", weights),
        ("context_prior_events", report.prior_events.to_string()),
        ("context_validation_queries", report.queries.to_string()),
        (
            "context_validation_ndcg_without",
            format!("{:.4}", report.ndcg_without),
        ),
        (
            "context_validation_ndcg_with",
            format!("{:.4}", report.ndcg_with),
        ),
        ("context_validation_gain_z", format!("{:.2}", report.gain_z)),
        (
            "context_validation_from_ms",
            report.validation_from_ms.to_string(),
        ),
    ] {
        params.insert(key.to_owned(), value);
    }
}

fn being_written(version: &str) -> Error {
    Error::AlreadyExists(format!(
        "model_version: `{version}` is being written by an import or training run"
    ))
}
