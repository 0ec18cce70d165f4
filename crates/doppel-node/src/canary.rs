//! Canary activations: a version serves a sticky share of customers' offers beside the
//! active (stable) one, as a two-arm experiment named `canary`, until it is promoted or a
//! guard trips and it rolls back by itself.
//!
//! The guards are judged here every [`GUARD_PERIOD`], per version, on this node's traffic
//! (error rate and p99 latency of `RecommendOffers`) and on the shared event log (CTR of
//! each arm's impressions). A tripped guard stops the canary in the store (every node of
//! a cluster follows) and records why on the version (`DescribeVersion`).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use doppel_types::experiment::{
    CANARY_ARM, CANARY_NAME, DEFAULT_MIN_IMPRESSIONS, DEFAULT_MIN_REQUESTS, STABLE_ARM,
};
use doppel_types::{Arm, CanaryGuard, EventType, Experiment, ExperimentKind};

use crate::error::{Error, Result};
use crate::node::Node;

/// How often the guards of a running canary are judged.
pub const GUARD_PERIOD: Duration = Duration::from_secs(1);
/// Latencies kept per version for the p99.
pub const LATENCY_WINDOW: usize = 2_048;
/// Version-info parameter holding why the version's last canary rolled back.
pub const ROLLBACK_REASON: &str = "rollback_reason";
/// Event-log rows the guard reads per period at most (it catches up over periods).
const EVENTS_PER_PERIOD: usize = 100_000;

/// One version's `RecommendOffers` calls on this node since the experiment started.
#[derive(Clone, Debug, Default)]
pub struct ServingStats {
    /// Calls answered (or failed).
    pub requests: u64,
    /// Calls that failed with a server-side error.
    pub errors: u64,
    /// Latencies of the last [`LATENCY_WINDOW`] calls, in microseconds (ring).
    latencies_us: Vec<u32>,
    next: usize,
}

impl ServingStats {
    fn note(&mut self, elapsed: Duration, server_error: bool) {
        self.requests += 1;
        self.errors += u64::from(server_error);
        let us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        if self.latencies_us.len() < LATENCY_WINDOW {
            self.latencies_us.push(us);
        } else {
            self.latencies_us[self.next] = us;
        }
        self.next = (self.next + 1) % LATENCY_WINDOW;
    }

    /// The 99th percentile of the latency window, in ms (0 when empty).
    pub fn p99_ms(&self) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let rank = (sorted.len() as f64 * 0.99).ceil() as usize;
        f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1_000.0
    }

    /// errors / requests (0 before the first call).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// Impressions and clicks per canary arm, read from the log so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArmClicks {
    /// Impressions of the stable and the canary arm.
    pub impressions: [u64; 2],
    /// Clicks of the stable and the canary arm.
    pub clicks: [u64; 2],
}

/// Serving statistics and the guard's reading of the log.
#[derive(Default)]
pub(crate) struct CanaryState {
    serving: parking_lot::Mutex<HashMap<String, ServingStats>>,
    /// (canary created_ms, last seq read, counts).
    watch: tokio::sync::Mutex<(i64, u64, ArmClicks)>,
}

/// Why `guard` trips for a canary with `served` calls and `ctr` counts, if it does.
pub fn judge(guard: &CanaryGuard, served: &ServingStats, ctr: &ArmClicks) -> Option<String> {
    let min_requests = match guard.min_requests {
        0 => DEFAULT_MIN_REQUESTS,
        n => n,
    };
    if served.requests >= min_requests {
        let rate = served.error_rate();
        if guard.max_error_rate > 0.0 && rate > guard.max_error_rate {
            return Some(format!(
                "error rate {rate:.4} over {} calls exceeded max_error_rate {}",
                served.requests, guard.max_error_rate
            ));
        }
        let p99 = served.p99_ms();
        if guard.max_p99_ms > 0.0 && p99 > guard.max_p99_ms {
            return Some(format!(
                "p99 latency {p99:.2} ms exceeded max_p99_ms {}",
                guard.max_p99_ms
            ));
        }
    }
    let min_impressions = match guard.min_impressions {
        0 => DEFAULT_MIN_IMPRESSIONS,
        n => n,
    };
    if guard.min_ctr_ratio > 0.0 && ctr.impressions.iter().all(|&i| i >= min_impressions) {
        let rate = |arm: usize| ctr.clicks[arm] as f64 / ctr.impressions[arm] as f64;
        let (stable, canary) = (rate(0), rate(1));
        if stable > 0.0 && canary / stable < guard.min_ctr_ratio {
            return Some(format!(
                "CTR {canary:.4} over {} impressions is {:.3}× the stable version's {stable:.4}, below min_ctr_ratio {}",
                ctr.impressions[1],
                canary / stable,
                guard.min_ctr_ratio
            ));
        }
    }
    None
}

/// Checks a guard's limits; the error names the field.
pub fn validate_guard(guard: &CanaryGuard) -> Result<()> {
    let fields = [
        ("guard.max_error_rate", guard.max_error_rate, 1.0),
        ("guard.max_p99_ms", guard.max_p99_ms, 3_600_000.0),
        ("guard.min_ctr_ratio", guard.min_ctr_ratio, 1_000.0),
    ];
    for (field, value, max) in fields {
        if !value.is_finite() || !(0.0..=max).contains(&value) {
            return Err(Error::invalid(
                field,
                format!("must be a number in 0..={max}"),
            ));
        }
    }
    Ok(())
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

    /// Promotes the running canary: its version becomes active and the canary ends.
    /// Returns (the version, the one active before).
    pub async fn promote_canary(&self) -> Result<(String, Option<String>)> {
        let book = self.store.experiments().await?;
        let canary = book
            .running()
            .filter(|e| e.is_canary())
            .ok_or_else(|| Error::FailedPrecondition("no canary is running".into()))?;
        let version = canary.arms[1].version.clone();
        let previous = self.activate(&version).await?;
        self.stop_experiment(CANARY_NAME, "promoted").await?;
        tracing::info!(model.version = %version, "canary promoted");
        Ok((version, previous))
    }

    /// The running canary's version, if one runs.
    pub fn canary_version(&self) -> Option<String> {
        self.running_experiment()
            .filter(|e| e.is_canary())
            .map(|e| e.arms[1].version.clone())
    }

    /// Notes one `RecommendOffers` call answered by `version`.
    pub(crate) fn note_served(&self, version: &str, elapsed: Duration, server_error: bool) {
        if self.running_experiment().is_none() {
            return;
        }
        let mut serving = self.canary.serving.lock();
        if let Some(stats) = serving.get_mut(version) {
            stats.note(elapsed, server_error);
        } else {
            let mut stats = ServingStats::default();
            stats.note(elapsed, server_error);
            serving.insert(version.to_owned(), stats);
        }
    }

    /// `version`'s calls on this node since the running experiment started.
    pub fn serving_stats(&self, version: &str) -> ServingStats {
        self.canary
            .serving
            .lock()
            .get(version)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn reset_serving_metrics(&self) {
        self.canary.serving.lock().clear();
    }

    /// Judges the running canary's guards once; rolls it back when one trips and returns
    /// why.
    pub async fn check_canary(&self) -> Result<Option<String>> {
        let Some(canary) = self.running_experiment().filter(|e| e.is_canary()) else {
            return Ok(None);
        };
        let ExperimentKind::Canary(guard) = &canary.kind else {
            return Ok(None);
        };
        let ctr = self.read_arm_clicks(&canary).await?;
        let served = self.serving_stats(&canary.arms[1].version);
        let Some(reason) = judge(guard, &served, &ctr) else {
            return Ok(None);
        };
        self.roll_back_canary(&canary, &reason).await?;
        Ok(Some(reason))
    }

    /// Stops `canary` (if it still runs) with `reason`, and records the reason on its
    /// version.
    async fn roll_back_canary(&self, canary: &Experiment, reason: &str) -> Result<()> {
        let created = canary.created_ms;
        let book = self
            .write_book(|book| {
                let Some(running) = book
                    .running_mut()
                    .filter(|e| e.is_canary() && e.created_ms == created)
                else {
                    return Ok(false);
                };
                running.stopped_ms = Some(doppel_types::clock::now_ms());
                running.stop_reason = reason.to_owned();
                Ok(true)
            })
            .await?;
        self.apply_book(&book);
        let version = &canary.arms[1].version;
        if let Some(mut info) = self.store.get_version(version).await? {
            info.params
                .insert(ROLLBACK_REASON.to_owned(), reason.to_owned());
            self.store.put_version(info).await?;
        }
        tracing::warn!(model.version = %version, reason, "canary rolled back by its guard");
        Ok(())
    }

    /// Counts each canary arm's impressions and clicks in the log since it started,
    /// reading on from where the last call stopped.
    async fn read_arm_clicks(&self, canary: &Experiment) -> Result<ArmClicks> {
        let mut watch = self.canary.watch.lock().await;
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
                let slot = match event.kind {
                    EventType::Impression => 0,
                    EventType::Click => 1,
                    _ => continue,
                };
                if let Some(arm) = canary.arm_at(&event.customer_id, event.timestamp_ms) {
                    let counts = &mut watch.2;
                    if slot == 0 {
                        counts.impressions[arm] += 1;
                    } else {
                        counts.clicks[arm] += 1;
                    }
                }
            }
            if !full {
                break;
            }
        }
        Ok(watch.2.clone())
    }
}

/// Judges the running canary's guards every [`GUARD_PERIOD`] until the node is dropped.
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
            if let Err(e) = node.check_canary().await {
                tracing::warn!(error = %e, "canary guard not judged; retrying");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(requests: u64, errors: u64, ms: u32) -> ServingStats {
        let mut stats = ServingStats::default();
        for i in 0..requests {
            stats.note(Duration::from_millis(u64::from(ms)), i < errors);
        }
        stats
    }

    #[test]
    fn guards_trip_only_past_their_minimums() {
        let guard = CanaryGuard {
            max_error_rate: 0.05,
            max_p99_ms: 50.0,
            min_ctr_ratio: 0.8,
            min_requests: 100,
            min_impressions: 100,
        };
        let quiet = ArmClicks::default();
        assert_eq!(judge(&guard, &served(99, 99, 1), &quiet), None);
        assert!(
            judge(&guard, &served(100, 6, 1), &quiet)
                .unwrap()
                .contains("error rate")
        );
        assert_eq!(judge(&guard, &served(100, 5, 1), &quiet), None);
        assert!(
            judge(&guard, &served(100, 0, 60), &quiet)
                .unwrap()
                .contains("p99")
        );
        let ctr = |stable: u64, canary: u64| ArmClicks {
            impressions: [100, 100],
            clicks: [stable, canary],
        };
        assert_eq!(judge(&guard, &served(0, 0, 1), &ctr(10, 9)), None);
        assert!(
            judge(&guard, &served(0, 0, 1), &ctr(10, 7))
                .unwrap()
                .contains("CTR")
        );
        let few = ArmClicks {
            impressions: [100, 99],
            clicks: [50, 0],
        };
        assert_eq!(judge(&guard, &served(0, 0, 1), &few), None);
    }

    #[test]
    fn p99_is_a_nearest_rank_over_the_window() {
        let mut stats = ServingStats::default();
        for ms in 1..=100u64 {
            stats.note(Duration::from_millis(ms), false);
        }
        assert_eq!(stats.p99_ms(), 99.0);
        for _ in 0..LATENCY_WINDOW {
            stats.note(Duration::from_millis(2), false);
        }
        assert_eq!(stats.p99_ms(), 2.0);
    }
}
