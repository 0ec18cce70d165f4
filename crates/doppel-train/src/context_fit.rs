//! Learning a version's [`ContextModel`] from the event log, and fitting the weight that
//! mixes its lifts into the vector score on a validation window.
//!
//! The counts are every signal-carrying event's weight (its [`ConfidenceConfig`] strength
//! without decay; returns and zero-weight events count nothing) under each of its context
//! values. The weight and prior are chosen without looking at anything the version will
//! be judged on:
//!
//! ```text
//! signal events ──────────────── T_v (the 90 % time quantile) ─────────────▶
//!   before T_v: context counts, and each validation customer's fold-in vector
//!   from T_v:   purchases with a context = validation queries (≤ 2,000)
//! ```
//!
//! For each query the 100 best unbought items by the served score (the cosine of the
//! version's serving vectors) are re-ranked by `cosine + Σ_f weight_f × lift_f`. The
//! customers are split in two halves by a hash of their id. For each prior of a small
//! grid, coordinate ascent on the first half picks each feature's weight from a grid to
//! maximise the mean NDCG@10 of the bought item, and the best prior there wins; the other
//! half judges the choice once. Unless it beats the vector score alone on that
//! half by [`MIN_GAIN`] and by [`MIN_GAIN_Z`] standard errors of the paired per-query
//! difference, every weight is 0 and the version ignores context. (The item vectors were
//! trained on every event, the validation window's included; only the customer vectors
//! and the counts are held back from it.)

use std::collections::{HashMap, HashSet};

use doppel_types::context_model::{CONTEXT_FEATURES, ContextCounts, ContextItem};
use doppel_types::{ContextLifts, ContextModel, Event, EventType, OfferPrior, VectorLayout};
use rayon::prelude::*;

use crate::als_params::SolveWeights;
use crate::confidence::ConfidenceConfig;
use crate::dense::dot;
use crate::fold_in_model::FoldInModel;

/// Share of the signal events (by time) before the validation window.
const VALIDATION_QUANTILE: f64 = 0.9;
/// Most validation queries (an even stride over the window's purchases).
const MAX_QUERIES: usize = 2_000;
/// Fewer queries than this and the weight is not fitted (it stays 0).
pub const MIN_QUERIES: usize = 50;
/// Candidates re-ranked per query.
const CANDIDATES: usize = 100;
/// Cut-off of the validation metric.
const K: usize = 10;
/// Weights tried per feature (0 leaves the feature out).
const WEIGHTS: [f32; 10] = [0.0, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64];
/// Rounds of coordinate ascent over the features.
const ROUNDS: usize = 3;
/// Prior strengths tried, in weighted events.
const PRIORS: [f32; 4] = [2.0, 10.0, 50.0, 250.0];
/// Prior of a model whose weight could not be fitted.
pub const DEFAULT_PRIOR_EVENTS: f32 = 10.0;
/// Relative NDCG@10 gain over weight 0 that context must show on validation to be used.
pub const MIN_GAIN: f64 = 0.01;
/// Standard errors the paired gain on the judging half must reach to be used: a gain
/// within noise of zero leaves context unused.
pub const MIN_GAIN_Z: f64 = 2.0;

/// `(feature, weight)` pairs.
type FeatureWeights = Vec<(&'static str, f32)>;

/// What the weight fit saw and chose.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContextFitReport {
    /// The chosen weight of each feature that has one (none: context ignored).
    pub weights: FeatureWeights,
    /// The chosen prior strength.
    pub prior_events: f32,
    /// Validation queries scored.
    pub queries: usize,
    /// Mean NDCG@10 without context, on the half of the validation customers that judged
    /// the weights (not the half that chose them).
    pub ndcg_without: f64,
    /// Mean NDCG@10 with the chosen weights and prior, on the same half (measured even
    /// when the weights were not used).
    pub ndcg_with: f64,
    /// The judged gain in standard errors of the paired per-query difference.
    pub gain_z: f64,
    /// Start of the validation window, ms.
    pub validation_from_ms: i64,
}

/// A fitted model and its report.
#[derive(Clone, Debug)]
pub struct ContextFit {
    /// Counts over every event, with the chosen weight and prior.
    pub model: ContextModel,
    /// How they were chosen.
    pub report: ContextFitReport,
}

/// Items of the model: the version's serving items, with their categories.
struct Catalogue {
    categories: Vec<String>,
    items: Vec<ContextItem>,
    index: HashMap<String, u32>,
}

impl Catalogue {
    fn new(serving_items: &[(String, Vec<f32>)], category_of: &HashMap<String, String>) -> Self {
        let mut categories: Vec<String> = Vec::new();
        let mut category_index: HashMap<&str, u32> = HashMap::new();
        let mut items = Vec::with_capacity(serving_items.len());
        let mut index = HashMap::with_capacity(serving_items.len());
        for (n, (id, _)) in serving_items.iter().enumerate() {
            let category = category_of.get(id).map_or("", String::as_str);
            let c = *category_index.entry(category).or_insert_with(|| {
                categories.push(category.to_owned());
                (categories.len() - 1) as u32
            });
            items.push(ContextItem {
                id: id.clone(),
                category: c,
            });
            index.insert(id.clone(), n as u32);
        }
        Self {
            categories,
            items,
            index,
        }
    }

    fn counts<'a>(
        &self,
        events: impl Iterator<Item = &'a Event>,
        confidence: &ConfidenceConfig,
    ) -> ContextCounts {
        let mut counts = ContextCounts::new();
        for e in events {
            if let Some(&item) = self.index.get(&e.item_id) {
                counts.add(e, item, confidence.event_strength(e, e.timestamp_ms));
            }
        }
        counts
    }

    fn model(
        &self,
        counts: ContextCounts,
        weights: &[(&'static str, f32)],
        prior: f32,
    ) -> ContextModel {
        let weights: HashMap<&str, f32> = weights.iter().copied().collect();
        counts.into_model(self.categories.clone(), self.items.clone(), &weights, prior)
    }
}

fn has_context(e: &Event) -> bool {
    !(e.context.channel.is_empty() && e.context.device.is_empty() && e.context.country.is_empty())
}

/// One validation query: the customer's candidates (item, served score), the item bought.
struct Query<'a> {
    /// The purchase.
    event: &'a Event,
    candidates: Vec<(u32, f32)>,
    bought: u32,
}

/// Learns the context model of a version from `events`, its serving item vectors (laid out
/// as `layout` says, see [`ServingVectors`](crate::ServingVectors)), the items' categories
/// and the training settings; fits the weight and prior on the validation window against
/// the offers' served score (with the recent-popularity prior when the version has one).
pub fn fit_context(
    events: &[Event],
    serving_items: &[(String, Vec<f32>)],
    layout: VectorLayout,
    category_of: &HashMap<String, String>,
    weights: SolveWeights,
    confidence: &ConfidenceConfig,
) -> ContextFit {
    let catalogue = Catalogue::new(serving_items, category_of);
    let fold_in =
        FoldInModel::from_serving_items(serving_items, layout, weights, confidence.clone());
    let prior = OfferPrior::new(layout, serving_items.iter().map(|(_, v)| v.as_slice()));
    let (queries, validation_from_ms, pre) = match fold_in {
        Some(fold_in) => validation_queries(
            events,
            serving_items,
            &catalogue,
            (&fold_in, prior.as_ref()),
            confidence,
        ),
        None => (Vec::new(), 0, Vec::new()),
    };
    let mut report = ContextFitReport {
        prior_events: DEFAULT_PRIOR_EVENTS,
        queries: queries.len(),
        validation_from_ms,
        ..ContextFitReport::default()
    };
    if queries.len() >= MIN_QUERIES {
        let pre_counts = catalogue.counts(pre.iter().copied(), confidence);
        // Weights and the prior are chosen on one half of the customers and judged on the
        // other, so noise the ascent fits does not count as a gain (a customer's queries
        // all fall on one side).
        let judged: Vec<bool> = queries
            .iter()
            .map(|q| customer_half(&q.event.customer_id))
            .collect();
        let mut best: Option<(Vec<f32>, f32, f64, ContextLifts)> = None;
        for prior in PRIORS {
            let unit: Vec<(&'static str, f32)> =
                CONTEXT_FEATURES.iter().map(|f| (*f, 1.0)).collect();
            let lifts = ContextLifts::new(&catalogue.model(pre_counts.clone(), &unit, prior));
            let choose = query_terms(&queries, &lifts, &judged, false);
            let weights = ascend(&choose);
            let chosen = mean_ndcg(&choose, &weights);
            if best.as_ref().is_none_or(|b| chosen > b.2) {
                best = Some((weights, prior, chosen, lifts));
            }
        }
        if let Some((weights, prior, _, lifts)) = best {
            let judge = query_terms(&queries, &lifts, &judged, true);
            let without = ndcg_per_query(&judge, &vec![0.0; weights.len()]);
            let with = ndcg_per_query(&judge, &weights);
            report.gain_z = gain_z(&without, &with);
            report.ndcg_without = mean(&without);
            report.ndcg_with = mean(&with);
            if report.ndcg_with > report.ndcg_without * (1.0 + MIN_GAIN)
                && report.gain_z >= MIN_GAIN_Z
            {
                report.weights = lifts
                    .feature_names()
                    .into_iter()
                    .zip(weights)
                    .filter(|(_, w)| *w != 0.0)
                    .collect();
                report.prior_events = prior;
            }
        }
    }
    let counts = catalogue.counts(events.iter(), confidence);
    ContextFit {
        model: catalogue.model(counts, &report.weights, report.prior_events),
        report,
    }
}

/// A query's candidates scored apart: served score and per-feature lifts.
struct Terms {
    cosine: Vec<f32>,
    /// `[feature][candidate]`.
    lifts: Vec<Vec<f32>>,
    /// Position of the bought item among the candidates, if it is one.
    target: Option<usize>,
}

/// Which half a customer's queries fall in (a stable hash of the id).
fn customer_half(id: &str) -> bool {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash & 1 == 1
}

/// The terms of the queries whose half (`judged`) is `side`.
fn query_terms(
    queries: &[Query<'_>],
    lifts: &ContextLifts,
    judged: &[bool],
    side: bool,
) -> Vec<Terms> {
    let features = lifts.feature_names().len();
    queries
        .par_iter()
        .zip(judged)
        .filter(|(_, j)| **j == side)
        .map(|(q, _)| {
            let active = lifts.resolve(&q.event.context, q.event.timestamp_ms);
            let mut per_feature = vec![Vec::with_capacity(q.candidates.len()); features];
            for &(item, _) in &q.candidates {
                for (f, lift) in lifts.unweighted(&active, item).into_iter().enumerate() {
                    per_feature[f].push(lift);
                }
            }
            Terms {
                cosine: q.candidates.iter().map(|c| c.1).collect(),
                lifts: per_feature,
                target: q.candidates.iter().position(|c| c.0 == q.bought),
            }
        })
        .collect()
}

/// Mean NDCG@10 of the bought item with per-feature `weights`.
fn mean_ndcg(terms: &[Terms], weights: &[f32]) -> f64 {
    mean(&ndcg_per_query(terms, weights))
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The paired gain of `with` over `without` in standard errors: mean difference over
/// its standard error (0 when there is no spread).
fn gain_z(without: &[f64], with: &[f64]) -> f64 {
    let d: Vec<f64> = with.iter().zip(without).map(|(a, b)| a - b).collect();
    let n = d.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let m = mean(&d);
    let var = d.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    let se = (var / n).sqrt();
    if se > 0.0 { m / se } else { 0.0 }
}

/// NDCG@10 of the bought item per query, with per-feature `weights`.
fn ndcg_per_query(terms: &[Terms], weights: &[f32]) -> Vec<f64> {
    terms
        .par_iter()
        .map(|t| {
            let Some(target) = t.target else {
                return 0.0;
            };
            let score = |n: usize| {
                t.cosine[n]
                    + weights
                        .iter()
                        .zip(&t.lifts)
                        .map(|(w, l)| w * l[n])
                        .sum::<f32>()
            };
            let own = score(target);
            let above = (0..t.cosine.len())
                .filter(|&n| n != target && score(n) > own)
                .count();
            if above < K {
                1.0 / ((above + 2) as f64).log2()
            } else {
                0.0
            }
        })
        .collect()
}

/// Coordinate ascent over per-feature weights from all zeros.
fn ascend(terms: &[Terms]) -> Vec<f32> {
    let features = terms.first().map_or(0, |t| t.lifts.len());
    let mut weights = vec![0f32; features];
    let mut best = mean_ndcg(terms, &weights);
    for _ in 0..ROUNDS {
        let before = best;
        for f in 0..features {
            for w in WEIGHTS {
                let mut trial = weights.clone();
                trial[f] = w;
                let score = mean_ndcg(terms, &trial);
                if score > best {
                    best = score;
                    weights = trial;
                }
            }
        }
        if best <= before {
            break;
        }
    }
    weights
}

/// The validation queries, the window's start and the events before it.
fn validation_queries<'a>(
    events: &'a [Event],
    serving_items: &[(String, Vec<f32>)],
    catalogue: &Catalogue,
    (fold_in, prior): (&FoldInModel, Option<&OfferPrior>),
    confidence: &ConfidenceConfig,
) -> (Vec<Query<'a>>, i64, Vec<&'a Event>) {
    let Some(from) = crate::reference_time::validation_start(
        events,
        |e| confidence.carries_signal(e),
        VALIDATION_QUANTILE,
    ) else {
        return (Vec::new(), 0, Vec::new());
    };
    let pre: Vec<&Event> = events.iter().filter(|e| e.timestamp_ms < from).collect();
    let mut history: HashMap<&str, Vec<Event>> = HashMap::new();
    for e in &pre {
        history
            .entry(e.customer_id.as_str())
            .or_default()
            .push((*e).clone());
    }
    let window: Vec<&Event> = events
        .iter()
        .filter(|e| {
            e.timestamp_ms >= from
                && e.kind == EventType::Purchase
                && e.quantity > 0
                && has_context(e)
                && catalogue.index.contains_key(&e.item_id)
                && history.contains_key(e.customer_id.as_str())
        })
        .collect();
    let stride = window.len().div_ceil(MAX_QUERIES).max(1);
    let sampled: Vec<&Event> = window.into_iter().step_by(stride).collect();
    let max_norm = serving_items
        .first()
        .map_or(1.0, |(_, v)| dot(v, v).sqrt().max(f32::EPSILON));
    let queries = sampled
        .par_iter()
        .filter_map(|&event| {
            let past = history.get(event.customer_id.as_str())?;
            let bought_before: HashSet<u32> = past
                .iter()
                .filter(|e| e.kind == EventType::Purchase && e.quantity > 0)
                .filter_map(|e| catalogue.index.get(&e.item_id).copied())
                .collect();
            let bought = catalogue.index[&event.item_id];
            if bought_before.contains(&bought) {
                return None;
            }
            let u = fold_in.customer_vector(past, from)?;
            let u = prior.map_or(u.clone(), |p| p.query(&u));
            let u = u.as_slice();
            let norm = dot(u, u).sqrt().max(f32::EPSILON) * max_norm;
            let mut scored: Vec<(u32, f32)> = serving_items
                .iter()
                .enumerate()
                .filter(|(n, _)| !bought_before.contains(&(*n as u32)))
                .map(|(n, (_, v))| (n as u32, dot(u, v) / norm))
                .collect();
            let keep = CANDIDATES.min(scored.len());
            if keep == 0 {
                return None;
            }
            scored.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
            scored.truncate(keep);
            Some(Query {
                event,
                candidates: scored,
                bought,
            })
        })
        .collect();
    (queries, from, pre)
}
