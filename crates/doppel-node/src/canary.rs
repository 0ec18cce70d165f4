//! Canary activations: a version serves a sticky share of customers' offers beside the
//! active (stable) one, as a two-arm experiment named `canary`, until it is promoted, a
//! full activation ends it, or a guard trips and it rolls back by itself.
//!
//! The guards (`canary_guard`) are judged here every [`GUARD_PERIOD`] on this node's
//! traffic (error rate and p99 latency of `RecommendOffers`, per version) and on the shared
//! event log (CTR of each arm's impressions). A tripped guard stops the canary in the store
//! (every node of a cluster follows) and records why on the version (`DescribeVersion`).
//! The canary always ends in the store before its version is activated, so a crash in
//! between leaves the stable version serving everyone, never a canary whose arms are
//! inverted.

use std::sync::{Arc, Weak};
use std::time::Duration;

use doppel_types::experiment::{CANARY_ARM, CANARY_NAME, STABLE_ARM};
use doppel_types::{Arm, CanaryGuard, EventType, Experiment, ExperimentKind};

use crate::canary_guard::{ArmClicks, judge, validate_guard};
use crate::error::{Error, Result};
use crate::node::Node;

/// How often the guards of a running canary are judged (and a single node re-reads the
/// stored experiments).
pub const GUARD_PERIOD: Duration = Duration::from_secs(1);
/// Version-info parameter holding why the version's last canary rolled back.
pub const ROLLBACK_REASON: &str = "rollback_reason";
/// Event-log rows the guard reads per period at most (it catches up over periods).
const EVENTS_PER_PERIOD: usize = 100_000;

/// The guard's reading of the log: (canary created_ms, last seq read, counts).
#[derive(Default)]
pub(crate) struct CanaryWatch(tokio::sync::Mutex<(i64, u64, ArmClicks)>);

/// The canary arm's version of `experiment`, when it is a canary.
pub fn canary_arm_version(experiment: &Experiment) -> Option<&str> {
    experiment
        .is_canary()
        .then(|| experiment.arms.get(1).map(|a| a.version.as_str()))
        .flatten()
}

impl Node {
    /// Starts a canary: `version` serves `percent` % of customers beside the active one.
    /// Returns the stable (active) version.
    pub async fn start_canary(
        &self,
        version: &str,
        percent: u32,
        guard: CanaryGuard,
    ) -> Result<String> {
        if !(1..=99).contains(&percent) {
            return Err(Error::invalid(
                "canary_percent",
                "must be 1..=99 (0 activates fully)",
            ));
        }
        validate_guard(&guard)?;
        let stable = self.engine.active_version().ok_or_else(|| {
            Error::FailedPrecondition(
                "no version is active: activate one fully before a canary".into(),
            )
        })?;
        if stable == version {
            return Err(Error::FailedPrecondition(format!(
                "model_version: `{version}` is already active"
            )));
        }
        let draft = Experiment {
            name: CANARY_NAME.into(),
            salt: format!("{CANARY_NAME}:{version}"),
            arms: vec![
                Arm {
                    name: STABLE_ARM.into(),
                    version: stable.clone(),
                    weight: 100 - percent,
                },
                Arm {
                    name: CANARY_ARM.into(),
                    version: version.to_owned(),
                    weight: percent,
                },
            ],
            traffic_percent: 100,
            kind: ExperimentKind::Canary(guard),
            ..Default::default()
        };
        self.start(draft).await?;
        tracing::info!(model.version = version, stable = %stable, percent, "canary started");
        Ok(stable)
    }

    /// Promotes the running canary: ends it, then activates its version. Returns (the
    /// version, the one active before).
    pub async fn promote_canary(&self) -> Result<(String, Option<String>)> {
        let ended = self
            .end_canary("promoted")
            .await?
            .ok_or_else(|| Error::FailedPrecondition("no canary is running".into()))?;
        let version = canary_arm_version(&ended)
            .ok_or_else(|| Error::FailedPrecondition("the canary has no canary arm".into()))?
            .to_owned();
        let previous = self.activate(&version).await.map_err(|e| {
            Error::FailedPrecondition(format!(
                "the canary ended but `{version}` could not be activated ({e}); activate it \
                 again"
            ))
        })?;
        tracing::info!(model.version = %version, "canary promoted");
        Ok((version, previous))
    }

    /// Ends the running canary, if any, with `reason` (a promotion, or a full activation
    /// about to happen); returns it as ended.
    pub async fn end_canary(&self, reason: &str) -> Result<Option<Experiment>> {
        self.stop_running(&|e| e.is_canary(), reason).await
    }

    /// The running canary's version, if one runs here.
    pub fn canary_version(&self) -> Option<String> {
        self.running_experiment()
            .and_then(|e| canary_arm_version(&e).map(str::to_owned))
    }

    /// Judges the running canary's guards once; rolls it back when one trips and returns
    /// why.
    pub async fn check_canary(&self) -> Result<Option<String>> {
        let Some(canary) = self.running_experiment().filter(|e| e.is_canary()) else {
            return Ok(None);
        };
        let (ExperimentKind::Canary(guard), [stable, candidate]) =
            (&canary.kind, canary.arms.as_slice())
        else {
            return Ok(None);
        };
        let ctr = self.read_arm_clicks(&canary).await?;
        let Some(reason) = judge(
            guard,
            &self.serving_stats(&candidate.version),
            &self.serving_stats(&stable.version),
            &ctr,
        ) else {
            return Ok(None);
        };
        let created = canary.created_ms;
        let stopped = self
            .stop_running(&|e| e.is_canary() && e.created_ms == created, &reason)
            .await?;
        // Only the call that stopped it records why (another node may have been first).
        if stopped.is_some() {
            if let Some(mut info) = self.store.get_version(&candidate.version).await? {
                info.params
                    .insert(ROLLBACK_REASON.to_owned(), reason.clone());
                self.store.put_version(info).await?;
            }
            tracing::warn!(model.version = %candidate.version, reason, "canary rolled back by its guard");
        }
        Ok(Some(reason))
    }

    /// Counts each canary arm's impressions and clicks in the log since it started,
    /// reading on from where the last call stopped.
    async fn read_arm_clicks(&self, canary: &Experiment) -> Result<ArmClicks> {
        let mut watch = self.canary_watch.0.lock().await;
        if watch.0 != canary.created_ms {
            *watch = (canary.created_ms, canary.start_seq, ArmClicks::default());
        }
        let mut read = 0;
        while read < EVENTS_PER_PERIOD {
            let page = self
                .store
                .scan_events(watch.1, crate::store_pages::PAGE)
                .await?;
            let full = page.len() == crate::store_pages::PAGE;
            read += page.len();
            for (seq, event) in page {
                watch.1 = seq;
                let Some(arm) = canary.arm_at(&event.customer_id, event.timestamp_ms) else {
                    continue;
                };
                match event.kind {
                    EventType::Impression => watch.2.impressions[arm] += 1,
                    EventType::Click => watch.2.clicks[arm] += 1,
                    EventType::Purchase
                    | EventType::Return
                    | EventType::View
                    | EventType::AddToCart => {}
                }
            }
            if !full {
                break;
            }
        }
        Ok(watch.2.clone())
    }
}

/// Every [`GUARD_PERIOD`] until the node is dropped: on a single node follows the stored
/// experiments (one a failed start-up could not apply; a shard node's manager follows them
/// at each lease renewal already), and judges the running canary's guards.
pub(crate) fn spawn_guard(node: &Arc<Node>) {
    let weak: Weak<Node> = Arc::downgrade(node);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(GUARD_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(node) = weak.upgrade() else {
                return;
            };
            if node.placement.serves_everyone()
                && let Err(e) = node.follow_experiments().await
            {
                tracing::warn!(error = %e, "experiments not followed; retrying");
            }
            if let Err(e) = node.check_canary().await {
                tracing::warn!(error = %e, "canary guard not judged; retrying");
            }
        }
    });
}
