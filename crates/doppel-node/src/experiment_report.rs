//! An experiment's report, counted from the store: customers assigned to each arm now,
//! and the impressions, clicks and attributed purchases in the event log since the
//! experiment started, each attributed to the arm its customer was in when it happened.
//!
//! * An IMPRESSION or CLICK at time `t` counts for the arm holding the customer's bucket
//!   at `t` (none before the start or after the stop).
//! * A PURCHASE counts for the latest IMPRESSION of the same (customer, item) at or before
//!   its time and at most `attribution` earlier, in that impression's arm — unless that
//!   impression was outside the experiment (after its stop, or in no arm; such
//!   impressions are kept for pairs already shown in the experiment); `conversions` counts
//!   the impressions that got at least one.
//!
//! Reading the store rather than a node's memory makes the report the same on every node
//! of a cluster, and exact: it costs one pass over the customers and over the log since
//! the start.

use std::collections::{HashMap, HashSet};

use doppel_types::shard::stable_hash;
use doppel_types::{EventType, Experiment};

use crate::error::{Error, Result};
use crate::experiment_stats::{Rate, chi_square_p_value, two_proportion_p_value, wilson};
use crate::node::Node;
use crate::store_pages::PAGE;

/// Default attribution window: 7 days.
pub const DEFAULT_ATTRIBUTION_SECONDS: u64 = 7 * 86_400;
/// Longest attribution window: 90 days.
pub const MAX_ATTRIBUTION_SECONDS: u64 = 90 * 86_400;
/// How long a report waits for impressions queued for the store.
const STORE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// One arm against the first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Comparison {
    /// This arm's CTR minus the first's.
    pub ctr_difference: f64,
    /// Two-sided p-value of the CTR difference.
    pub ctr_p_value: f64,
    /// This arm's conversion minus the first's.
    pub conversion_difference: f64,
    /// Two-sided p-value of the conversion difference.
    pub conversion_p_value: f64,
}

/// One arm's counts and rates.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArmReport {
    /// The arm.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its weight.
    pub weight: u32,
    /// Buckets it holds now.
    pub buckets: u32,
    /// Known customers in it now.
    pub customers_assigned: u64,
    /// Customers with an impression attributed to it.
    pub customers_exposed: u64,
    /// Impressions attributed to it.
    pub impressions: u64,
    /// Clicks attributed to it.
    pub clicks: u64,
    /// Purchases attributed to its impressions.
    pub purchases: u64,
    /// Impressions with at least one attributed purchase.
    pub conversions: u64,
    /// Value of the attributed purchases.
    pub revenue: f64,
    /// clicks / impressions.
    pub ctr: Rate,
    /// conversions / impressions.
    pub conversion: Rate,
    /// Against the first arm (`None` for the first).
    pub versus_first: Option<Comparison>,
}

/// An experiment's report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExperimentReport {
    /// The experiment as stored.
    pub experiment: Experiment,
    /// The attribution window used.
    pub attribution_seconds: u64,
    /// Per arm, in arm order.
    pub arms: Vec<ArmReport>,
    /// Chi-square p-value of customers assigned against bucket shares.
    pub srm_p_value: f64,
    /// The same over customers exposed.
    pub srm_exposed_p_value: f64,
    /// Events read.
    pub events_scanned: u64,
}

/// One impression: when, in which arm (`None`: outside the experiment), and whether a
/// purchase was attributed to it.
struct Shown {
    time_ms: i64,
    arm: Option<usize>,
    converted: bool,
}

/// A (customer, item) pair's key.
fn pair_key(customer_id: &str, item_id: &str) -> u64 {
    let mut key = Vec::with_capacity(customer_id.len() + 1 + item_id.len());
    key.extend_from_slice(customer_id.as_bytes());
    key.push(0);
    key.extend_from_slice(item_id.as_bytes());
    stable_hash(&key)
}

impl Node {
    /// The report of experiment `name` (see the module docs); `attribution_seconds` 0
    /// means [`DEFAULT_ATTRIBUTION_SECONDS`].
    pub async fn experiment_report(
        &self,
        name: &str,
        attribution_seconds: u64,
    ) -> Result<ExperimentReport> {
        let attribution_seconds = match attribution_seconds {
            0 => DEFAULT_ATTRIBUTION_SECONDS,
            s if s > MAX_ATTRIBUTION_SECONDS => {
                return Err(Error::invalid(
                    "attribution_seconds",
                    format!("at most {MAX_ATTRIBUTION_SECONDS} (90 days); 0 means 7 days"),
                ));
            }
            s => s,
        };
        let experiment = self.experiment(name).await?;
        // Impressions a single node has applied but not yet stored count too.
        self.store_impressions(STORE_PATIENCE).await;
        let arms = experiment.arms.len();
        let mut assigned = vec![0u64; arms];
        crate::store_pages::customers(self.store.as_ref(), &|_| true, |page| {
            for c in page {
                if let Some(arm) = experiment.arm_of(&c.id) {
                    assigned[arm] += 1;
                }
            }
        })
        .await?;

        let mut counts = vec![ArmReport::default(); arms];
        // Keyed by hashes of ids (64-bit: a collision among millions is ~1e-7 likely), so
        // memory is a few dozen bytes per impression.
        let mut exposed: Vec<HashSet<u64>> = vec![HashSet::new(); arms];
        let mut shown: HashMap<u64, Vec<Shown>> = HashMap::new();
        // Matched after the scan: a single node stores impressions from a queue, so a
        // purchase can reach the log before the impression it follows.
        let mut purchases: Vec<(u64, i64, f64)> = Vec::new();
        let window_ms = i64::try_from(attribution_seconds * 1_000).unwrap_or(i64::MAX);
        let mut after = experiment.start_seq;
        let mut events_scanned = 0u64;
        loop {
            let page = self.store.scan_events(after, PAGE).await?;
            let full = page.len() == PAGE;
            events_scanned += page.len() as u64;
            for (seq, event) in page {
                after = seq;
                let arm = experiment.arm_at(&event.customer_id, event.timestamp_ms);
                match event.kind {
                    EventType::Impression => {
                        let pair = pair_key(&event.customer_id, &event.item_id);
                        if let Some(arm) = arm {
                            counts[arm].impressions += 1;
                            exposed[arm].insert(stable_hash(event.customer_id.as_bytes()));
                        } else if !shown.contains_key(&pair) {
                            // Outside the experiment and never shown in it: irrelevant.
                            continue;
                        }
                        // An impression outside the experiment (after the stop, outside
                        // every arm) still takes later purchases away from earlier ones.
                        shown.entry(pair).or_default().push(Shown {
                            time_ms: event.timestamp_ms,
                            arm,
                            converted: false,
                        });
                    }
                    EventType::Click => {
                        if let Some(arm) = arm {
                            counts[arm].clicks += 1;
                        }
                    }
                    EventType::Purchase => purchases.push((
                        pair_key(&event.customer_id, &event.item_id),
                        event.timestamp_ms,
                        event.value,
                    )),
                    EventType::Return | EventType::View | EventType::AddToCart => {}
                }
            }
            if !full {
                break;
            }
        }
        for impressions in shown.values_mut() {
            impressions.sort_by_key(|s| s.time_ms);
        }
        for (pair, time_ms, value) in purchases {
            let Some(impressions) = shown.get_mut(&pair) else {
                continue;
            };
            let at = impressions.partition_point(|s| s.time_ms <= time_ms);
            let Some(last) = at.checked_sub(1).map(|i| &mut impressions[i]) else {
                continue;
            };
            let Some(arm) = last.arm else { continue };
            if time_ms - last.time_ms > window_ms {
                continue;
            }
            counts[arm].purchases += 1;
            counts[arm].revenue += value;
            if !last.converted {
                last.converted = true;
                counts[arm].conversions += 1;
            }
        }

        let buckets = experiment.arm_buckets();
        for (i, arm) in counts.iter_mut().enumerate() {
            let spec = &experiment.arms[i];
            arm.name = spec.name.clone();
            arm.version = spec.version.clone();
            arm.weight = spec.weight;
            arm.buckets = buckets[i];
            arm.customers_assigned = assigned[i];
            arm.customers_exposed = exposed[i].len() as u64;
            arm.ctr = wilson(arm.clicks, arm.impressions);
            arm.conversion = wilson(arm.conversions, arm.impressions);
        }
        let first = counts.first().cloned().unwrap_or_default();
        for arm in counts.iter_mut().skip(1) {
            arm.versus_first = Some(Comparison {
                ctr_difference: arm.ctr.value - first.ctr.value,
                ctr_p_value: two_proportion_p_value(
                    first.clicks,
                    first.impressions,
                    arm.clicks,
                    arm.impressions,
                ),
                conversion_difference: arm.conversion.value - first.conversion.value,
                conversion_p_value: two_proportion_p_value(
                    first.conversions,
                    first.impressions,
                    arm.conversions,
                    arm.impressions,
                ),
            });
        }
        let shares: Vec<f64> = buckets.iter().map(|&b| f64::from(b)).collect();
        let exposed_counts: Vec<u64> = counts.iter().map(|a| a.customers_exposed).collect();
        Ok(ExperimentReport {
            srm_p_value: chi_square_p_value(&assigned, &shares),
            srm_exposed_p_value: chi_square_p_value(&exposed_counts, &shares),
            experiment,
            attribution_seconds,
            arms: counts,
            events_scanned,
        })
    }
}
