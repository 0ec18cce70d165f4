//! Next-best-offer lists of `benches/eval/PROTOCOL.md` §4: popularity, and a trained
//! model's exact inner-product ranking (what the serving index returns through its
//! inner-product-preserving vectors, without its approximation).

use std::collections::BTreeSet;

use doppel_train::Model;

use crate::eval_data::Split;
use crate::eval_metrics::{K, MetricSum, RankingMetrics};

/// Popularity ranking of `I` (§4).
pub fn popularity(split: &Split) -> Vec<String> {
    let mut items: Vec<(&String, &u64)> = split.item_buyers.iter().collect();
    items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    items.into_iter().map(|(i, _)| i.clone()).collect()
}

/// The first [`K`] items of `ranking` not in `bought`.
pub fn first_unbought(ranking: &[String], bought: &BTreeSet<String>) -> Vec<String> {
    ranking
        .iter()
        .filter(|i| !bought.contains(*i))
        .take(K)
        .cloned()
        .collect()
}

/// The model's list for `customer` (popularity when the model does not know them).
pub fn model_list(
    model: &Model,
    customer: u64,
    bought: &BTreeSet<String>,
    fallback: &[String],
) -> Vec<String> {
    let Some(row) = model.customer_position(&customer.to_string()) else {
        return first_unbought(fallback, bought);
    };
    model
        .top_items(model.customer_vector(row), K + bought.len())
        .into_iter()
        .map(|(i, _)| model.item_ids[i].clone())
        .filter(|i| !bought.contains(i))
        .take(K)
        .collect()
}

/// Mean metrics over the split's evaluated customers (§3) of the lists `list` makes from a
/// customer and their train purchases.
fn metrics_of(
    split: &Split,
    list: impl Fn(u64, &BTreeSet<String>) -> Vec<String>,
) -> RankingMetrics {
    let mut sum = MetricSum::default();
    for (c, bought) in &split.bought {
        let relevant = split.relevant(*c, bought);
        if !relevant.is_empty() {
            sum.add(&list(*c, bought), &relevant);
        }
    }
    sum.mean()
}

/// The model's offer metrics over the split's evaluated customers (§3, §4).
pub fn offer_metrics(split: &Split, model: &Model) -> RankingMetrics {
    let ranking = popularity(split);
    metrics_of(split, |c, bought| model_list(model, c, bought, &ranking))
}

/// Popularity's offer metrics over the split's evaluated customers.
pub fn popularity_metrics(split: &Split) -> RankingMetrics {
    let ranking = popularity(split);
    metrics_of(split, |_, bought| first_unbought(&ranking, bought))
}

/// Days of the recent-popularity prior.
pub const PRIOR_DAYS: i64 = 14;

/// `z(ln(1 + distinct buyers in the last PRIOR_DAYS before the split's cutoff))` per model
/// item row (0 for items nobody bought then).
pub fn recent_popularity(split: &Split, model: &Model) -> Vec<f32> {
    let from = split.cutoff_ms - PRIOR_DAYS * 86_400_000;
    let mut buyers: std::collections::HashMap<&str, BTreeSet<&str>> =
        std::collections::HashMap::new();
    for e in &split.train_events {
        if e.timestamp_ms >= from && e.kind == doppel_types::EventType::Purchase {
            buyers.entry(&e.item_id).or_default().insert(&e.customer_id);
        }
    }
    let raw: Vec<f64> = model
        .item_ids
        .iter()
        .map(|i| (1.0 + buyers.get(i.as_str()).map_or(0, BTreeSet::len) as f64).ln())
        .collect();
    let (mean, sd) = mean_sd(&raw);
    raw.iter().map(|p| ((p - mean) / sd) as f32).collect()
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len().max(1) as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt().max(1e-12))
}

/// Offer metrics of `z_u(u·y) + beta × prior` (`standardise`: the customer's scores
/// standardised over the catalogue) or `u·y + beta × prior`, with the recent-popularity
/// prior (an experiment towards issue 12's offers).
pub fn prior_metrics(
    split: &Split,
    model: &Model,
    prior: &[f32],
    beta: f32,
    standardise: bool,
) -> RankingMetrics {
    let ranking = popularity(split);
    metrics_of(split, |c, bought| {
        let Some(row) = model.customer_position(&c.to_string()) else {
            return first_unbought(&ranking, bought);
        };
        let u = model.customer_vector(row);
        let scores: Vec<f64> = (0..model.item_ids.len())
            .map(|i| f64::from(dot(u, model.item_vector(i))))
            .collect();
        let (mean, sd) = if standardise {
            mean_sd(&scores)
        } else {
            (0.0, 1.0)
        };
        let mut ranked: Vec<(f64, usize)> = scores
            .iter()
            .enumerate()
            .map(|(i, s)| ((s - mean) / sd + f64::from(beta * prior[i]), i))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranked
            .into_iter()
            .map(|(_, i)| model.item_ids[i].clone())
            .filter(|i| !bought.contains(i))
            .take(K)
            .collect()
    })
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The prior's form and weight chosen on `validation` (`model` fitted there with the
/// chosen ALS settings): `(beta, standardise, NDCG@10)`, beta 0 when no weight beats the
/// plain ranking (`plain_ndcg`).
pub fn tune_prior(validation: &Split, model: &Model, plain_ndcg: f64) -> (f32, bool, f64) {
    const STANDARDISED: [f32; 10] = [0.2, 0.4, 0.8, 1.2, 1.6, 2.4, 3.2, 4.8, 6.4, 9.6];
    const RAW: [f32; 7] = [0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8];
    let prior = recent_popularity(validation, model);
    let mut best = (0f32, false, plain_ndcg);
    let grids = [(true, &STANDARDISED[..]), (false, &RAW[..])];
    for (standardise, beta) in grids
        .iter()
        .flat_map(|(s, g)| g.iter().map(move |b| (*s, *b)))
    {
        let ndcg = prior_metrics(validation, model, &prior, beta, standardise).ndcg_at_10;
        eprintln!("prior beta {beta} standardised {standardise}: validation NDCG@10 {ndcg:.4}");
        if ndcg > best.2 {
            best = (beta, standardise, ndcg);
        }
    }
    best
}
