//! The weight β of the recent-popularity prior, chosen per training run on the newest part
//! of the training log (see [`doppel_types::offer_prior`]).
//!
//! Whether what sells now predicts what a customer buys next depends on the business: a
//! Christmas-heavy gift shop gains a lot from it, a catalogue without trends nothing. So a
//! run that is not given a weight measures it:
//! * **Validation window:** the newest 10 % of the log's signal events (from `from`).
//! * **Queries:** customers with events before `from` and new purchases (of catalogue items
//!   they had not bought) after it, at most [`MAX_CUSTOMERS`], evenly sampled.
//! * **Scores:** a second model is fitted, with the run's settings, on the events before
//!   `from` only (the version's own factors saw the window and would flatter plain ALS);
//!   items are ranked by `z_u(u·y) + β·p`, with `p` the prior as of `from`.
//! * **Choice:** NDCG@10 of the new purchases for each β of [`WEIGHTS`]; the best wins if it
//!   beats β = 0 by more than [`MIN_GAIN`], else the offers stay plain ALS.
//!
//! The second fit costs about as much as the run's own (on 90 % of the events).

use std::collections::{HashMap, HashSet};

use doppel_types::{Event, EventType};
use rayon::prelude::*;

use crate::als::{no_progress, train};
use crate::als_params::AlsParams;
use crate::confidence::ConfidenceConfig;
use crate::dense::dot;
use crate::error::Result;
use crate::interactions::Interactions;
use crate::model::Model;
use crate::recent_popularity::recent_popularity;
use crate::reference_time::{reference_time_ms, validation_start};

/// Share of the log's signal events before the validation window.
const VALIDATION_QUANTILE: f64 = 0.9;
/// Most validation customers.
pub const MAX_CUSTOMERS: usize = 2_000;
/// Fewest validation customers to choose a weight from (fewer: no prior).
pub const MIN_CUSTOMERS: usize = 50;
/// The weights tried.
pub const WEIGHTS: [f32; 9] = [0.0, 0.2, 0.4, 0.8, 1.6, 2.4, 3.2, 4.8, 6.4];
/// Least relative NDCG gain over plain ALS for a prior to be used.
pub const MIN_GAIN: f64 = 0.01;
/// List length scored.
const K: usize = 10;

/// What the choice saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriorFit {
    /// The chosen β (0: none).
    pub weight: f32,
    /// Validation customers.
    pub customers: usize,
    /// Start of the validation window, ms.
    pub from_ms: i64,
    /// NDCG@10 on the window for each weight tried.
    pub ndcg: Vec<(f32, f64)>,
}

/// One validation customer: their row in the held-out model, what they had bought, what
/// they bought new in the window.
struct Query {
    row: usize,
    bought: HashSet<u32>,
    relevant: HashSet<u32>,
}

/// Chooses β for a run with `als` and `confidence` settings on `events` (`now_ms`: the
/// server clock), the prior counting the last `days` days.
pub fn choose_prior_weight(
    events: &[Event],
    als: &AlsParams,
    confidence: &ConfidenceConfig,
    days: f32,
    now_ms: i64,
) -> Result<PriorFit> {
    let Some(from) = validation_start(
        events,
        |e| confidence.carries_signal(e),
        VALIDATION_QUANTILE,
    ) else {
        return Ok(PriorFit::default());
    };
    let before: Vec<Event> = events
        .iter()
        .filter(|e| e.timestamp_ms < from)
        .cloned()
        .collect();
    let reference = reference_time_ms(
        before
            .iter()
            .filter(|e| confidence.carries_signal(e))
            .map(|e| e.timestamp_ms),
        now_ms,
    );
    let interactions = Interactions::from_events(&before, confidence, reference);
    let mut fit = PriorFit {
        from_ms: from,
        ..PriorFit::default()
    };
    if interactions.nnz() == 0 {
        return Ok(fit);
    }
    let model = train(&interactions, als, &no_progress)?;
    let queries = validation_customers(events, &model, from);
    fit.customers = queries.len();
    if queries.len() < MIN_CUSTOMERS {
        return Ok(fit);
    }
    let prior = recent_popularity(&before, &model.item_ids, from - 1, days);
    let sums: Vec<f64> = queries
        .par_iter()
        .map(|q| ndcg_per_weight(q, &model, &prior))
        .reduce(
            || vec![0.0; WEIGHTS.len()],
            |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
        );
    let n = queries.len() as f64;
    fit.ndcg = WEIGHTS
        .iter()
        .zip(&sums)
        .map(|(w, s)| (*w, s / n))
        .collect();
    let plain = fit.ndcg[0].1;
    let best = fit
        .ndcg
        .iter()
        .copied()
        .fold((0.0, plain), |b, c| if c.1 > b.1 { c } else { b });
    if best.1 > plain * (1.0 + MIN_GAIN) {
        fit.weight = best.0;
    }
    Ok(fit)
}

fn validation_customers(events: &[Event], model: &Model, from: i64) -> Vec<Query> {
    let item_rows: HashMap<&str, u32> = model
        .item_ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.as_str(), n as u32))
        .collect();
    let mut bought: HashMap<&str, HashSet<u32>> = HashMap::new();
    let mut later: HashMap<&str, HashSet<u32>> = HashMap::new();
    for e in events {
        if e.kind != EventType::Purchase || e.quantity <= 0 {
            continue;
        }
        let Some(&row) = item_rows.get(e.item_id.as_str()) else {
            continue;
        };
        let side = if e.timestamp_ms < from {
            &mut bought
        } else {
            &mut later
        };
        side.entry(e.customer_id.as_str()).or_default().insert(row);
    }
    let mut customers: Vec<(&str, usize)> = later
        .keys()
        .filter_map(|c| Some((*c, model.customer_position(c)?)))
        .collect();
    customers.sort_unstable();
    let stride = customers.len().div_ceil(MAX_CUSTOMERS).max(1);
    customers
        .into_iter()
        .step_by(stride)
        .filter_map(|(c, row)| {
            let bought = bought.remove(c).unwrap_or_default();
            let relevant: HashSet<u32> = later[c].difference(&bought).copied().collect();
            (!relevant.is_empty()).then_some(Query {
                row,
                bought,
                relevant,
            })
        })
        .collect()
}

/// NDCG@10 of one customer's new purchases under each weight of [`WEIGHTS`].
fn ndcg_per_weight(q: &Query, model: &Model, prior: &[f32]) -> Vec<f64> {
    let u = model.customer_vector(q.row);
    let scores: Vec<f64> = (0..model.item_ids.len())
        .map(|i| f64::from(dot(u, model.item_vector(i))))
        .collect();
    let n = scores.len().max(1) as f64;
    let mean = scores.iter().sum::<f64>() / n;
    let sd = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n)
        .sqrt()
        .max(1e-12);
    let ideal: f64 = (0..q.relevant.len().min(K))
        .map(|r| 1.0 / ((r + 2) as f64).log2())
        .sum();
    WEIGHTS
        .iter()
        .map(|&w| {
            let mut ranked: Vec<(f64, u32)> = scores
                .iter()
                .enumerate()
                .filter(|(i, _)| !q.bought.contains(&(*i as u32)))
                .map(|(i, s)| ((s - mean) / sd + f64::from(w * prior[i]), i as u32))
                .collect();
            let k = K.min(ranked.len());
            if k == 0 {
                return 0.0;
            }
            ranked.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            ranked.truncate(k);
            ranked.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let dcg: f64 = ranked
                .iter()
                .enumerate()
                .filter(|(_, (_, i))| q.relevant.contains(i))
                .map(|(r, _)| 1.0 / ((r + 2) as f64).log2())
                .sum();
            dcg / ideal
        })
        .collect()
}
