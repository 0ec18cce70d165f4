//! `doppel evaluate --context`: NDCG@10 of offers with and without the request's context,
//! on two sets (`benches/eval/PROTOCOL.md` §10):
//!
//! * **planted** — doppel-synth with a planted effect (on mobile in the evening, most
//!   events fall on the evening category);
//! * **retail** — Online Retail with the customer's country as the context (§1–§3 split).
//!
//! Each set is split in time: the test window is the last 30 days. Training sees only the
//! events before it; the context weights are fitted inside training on its own validation
//! window (the last tenth of the training events), so the test window is looked at once,
//! for the numbers below. A query is one customer's test purchases sharing a context and
//! an hour; its relevant items are those not bought before the test window; its context
//! is the purchases' context at their time. Offers are scored as the server scores them:
//! the cosine of the serving vectors, plus the weighted lift under a context.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use doppel_synth::{REFERENCE_TIME_MS, SynthConfig};
use doppel_train::{
    AlsParams, ConfidenceConfig, ContextFitReport, Interactions, Model, ServingVectors, fit_context,
};
use doppel_types::{Context, ContextLifts, Event, EventType};
use serde_json::json;

use crate::eval_metrics::{K, MetricSum, RankingMetrics};

/// The test window: 30 days.
const TEST_WINDOW_MS: i64 = 30 * 86_400_000;

/// One set to evaluate.
pub struct ContextSet {
    /// `planted` or `retail`.
    pub name: &'static str,
    /// What the context is.
    pub context: &'static str,
    /// Events before the test window (training).
    pub train: Vec<Event>,
    /// Purchases in the test window.
    pub test: Vec<Event>,
    /// Item → category.
    pub categories: HashMap<String, String>,
}

/// The planted set: `customers` synthetic customers whose mobile evenings favour the
/// evening category with probability `effect`.
pub fn planted(customers: usize, effect: f64) -> ContextSet {
    let data = doppel_synth::generate(&SynthConfig {
        customers,
        items: 500,
        categories: 12,
        events_per_customer: 30,
        seed: 31,
        context_effect: effect,
        ..SynthConfig::default()
    });
    let cutoff = REFERENCE_TIME_MS - TEST_WINDOW_MS;
    let (train, test): (Vec<Event>, Vec<Event>) = data
        .events
        .into_iter()
        .partition(|e| e.timestamp_ms < cutoff);
    ContextSet {
        name: "planted",
        context: "channel, device, hour and weekday (planted: mobile evenings favour cat01)",
        train,
        test: test
            .into_iter()
            .filter(|e| e.kind == EventType::Purchase && e.quantity > 0)
            .collect(),
        categories: data.items.into_iter().map(|i| (i.id, i.category)).collect(),
    }
}

/// What one set gave.
pub struct ContextResult {
    /// The report as JSON.
    pub json: serde_json::Value,
    /// NDCG@10 without and with context.
    pub ndcg: (f64, f64),
}

fn unit_norm(v: &[f32]) -> f32 {
    v.iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Trains on `set.train`, fits the context model, and scores the test queries.
pub fn evaluate(
    set: &ContextSet,
    als: &AlsParams,
    confidence: &ConfidenceConfig,
) -> anyhow::Result<ContextResult> {
    let started = Instant::now();
    let now = set.train.iter().map(|e| e.timestamp_ms).max().unwrap_or(0);
    let interactions = Interactions::from_events(&set.train, confidence, now);
    let model = doppel_train::train(&interactions, als, &doppel_train::no_progress)?;
    let serving = ServingVectors::from_model(&model);
    let fit = fit_context(
        &set.train,
        &serving.items,
        serving.layout,
        &set.categories,
        als.solve_weights(),
        confidence,
    );
    let lifts = ContextLifts::new(&fit.model);
    let bought = bought_before(&set.train);
    let queries = queries(&set.test);
    // M of the serving vectors, once for every query.
    let max_norm = (0..model.item_ids.len())
        .map(|i| unit_norm(model.item_vector(i)))
        .fold(f32::EPSILON, f32::max);
    let (mut without, mut with) = (MetricSum::default(), MetricSum::default());
    let mut evaluated = 0;
    for q in &queries {
        let Some(row) = model.customer_position(&q.customer) else {
            continue;
        };
        let seen = bought.get(&q.customer);
        let relevant: BTreeSet<String> = q
            .items
            .iter()
            .filter(|i| model.item_position(i).is_some() && seen.is_none_or(|b| !b.contains(*i)))
            .cloned()
            .collect();
        if relevant.is_empty() {
            continue;
        }
        evaluated += 1;
        let scores = served_scores(&model, max_norm, row);
        let candidates: Vec<(usize, f32)> = scores
            .into_iter()
            .enumerate()
            .filter(|(i, _)| seen.is_none_or(|b| !b.contains(&model.item_ids[*i])))
            .collect();
        without.add(&top(&model, candidates.clone()), &relevant);
        let active = lifts.resolve(&q.context, q.timestamp_ms);
        let shifted: Vec<(usize, f32)> = candidates
            .into_iter()
            .map(|(i, s)| {
                let lift = lifts
                    .item(&model.item_ids[i])
                    .map_or(0.0, |x| lifts.lift(&active, x));
                (i, s + lift)
            })
            .collect();
        with.add(&top(&model, shifted), &relevant);
    }
    let (without, with) = (without.mean(), with.mean());
    let json = json!({
        "set": set.name,
        "context": set.context,
        "train_events": set.train.len(),
        "test_purchases": set.test.len(),
        "queries": evaluated,
        "without_context": metrics_json(&without),
        "with_context": metrics_json(&with),
        "ndcg_ratio": if without.ndcg_at_10 > 0.0 { json!(with.ndcg_at_10 / without.ndcg_at_10) } else { json!(null) },
        "fit": fit_json(&fit.report),
        "seconds": started.elapsed().as_secs_f64(),
    });
    Ok(ContextResult {
        json,
        ndcg: (without.ndcg_at_10, with.ndcg_at_10),
    })
}

fn metrics_json(m: &RankingMetrics) -> serde_json::Value {
    json!({"ndcg_at_10": m.ndcg_at_10, "recall_at_10": m.recall_at_10, "hit_rate_at_10": m.hit_rate_at_10})
}

fn fit_json(r: &ContextFitReport) -> serde_json::Value {
    json!({
        "weights": r.weights.iter().map(|(f, w)| (f.to_string(), json!(w))).collect::<serde_json::Map<_, _>>(),
        "prior_events": r.prior_events,
        "validation_queries": r.queries,
        "validation_ndcg_without": r.ndcg_without,
        "validation_ndcg_with": r.ndcg_with,
        "validation_gain_z": r.gain_z,
        "validation_from_ms": r.validation_from_ms,
    })
}

/// The served score of every item for customer `row`: `u·y / (|u| M)`, the cosine of the
/// serving vectors (`M` = `max_norm`, the largest item norm).
fn served_scores(model: &Model, max_norm: f32, row: usize) -> Vec<f32> {
    let u = model.customer_vector(row);
    let scale = unit_norm(u) * max_norm;
    (0..model.item_ids.len())
        .map(|i| dot(u, model.item_vector(i)) / scale)
        .collect()
}

fn top(model: &Model, mut scored: Vec<(usize, f32)>) -> Vec<String> {
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
        .into_iter()
        .take(K)
        .map(|(i, _)| model.item_ids[i].clone())
        .collect()
}

fn bought_before(train: &[Event]) -> HashMap<String, BTreeSet<String>> {
    let mut out: HashMap<String, BTreeSet<String>> = HashMap::new();
    for e in train
        .iter()
        .filter(|e| e.kind == EventType::Purchase && e.quantity > 0)
    {
        out.entry(e.customer_id.clone())
            .or_default()
            .insert(e.item_id.clone());
    }
    out
}

/// One customer's test purchases in one context and hour.
struct Query {
    customer: String,
    context: Context,
    timestamp_ms: i64,
    items: BTreeSet<String>,
}

fn queries(test: &[Event]) -> Vec<Query> {
    let mut groups: BTreeMap<(String, String, String, String, i64), Query> = BTreeMap::new();
    for e in test {
        let hour = e.timestamp_ms.div_euclid(3_600_000);
        let key = (
            e.customer_id.clone(),
            e.context.channel.clone(),
            e.context.device.clone(),
            e.context.country.clone(),
            hour,
        );
        groups
            .entry(key)
            .or_insert_with(|| Query {
                customer: e.customer_id.clone(),
                context: e.context.clone(),
                timestamp_ms: e.timestamp_ms,
                items: BTreeSet::new(),
            })
            .items
            .insert(e.item_id.clone());
    }
    groups.into_values().collect()
}

/// The Markdown table row of one set.
pub fn table_row(result: &ContextResult) -> String {
    let j = &result.json;
    let (without, with) = result.ndcg;
    format!(
        "| {} | {} | {:.4} | {:.4} | {} | {} |",
        j["set"].as_str().unwrap_or(""),
        j["queries"],
        without,
        with,
        if without > 0.0 {
            format!("{:.3}", with / without)
        } else {
            "–".into()
        },
        j["fit"]["weights"]
    )
}
