//! The weight β of the recent-popularity prior and the weight w of the recency shift,
//! chosen per training run on the newest part of the training log (see
//! [`doppel_types::offer_prior`] and [`doppel_types::offer_recency`]).
//!
//! Whether what sells now predicts what a customer buys next depends on the business: a
//! Christmas-heavy gift shop gains a lot from it, a catalogue without trends nothing. So
//! does whether what a customer bought last predicts their next purchase (films watched in
//! a run: a lot; a wholesaler restocking: little). So a run that is not given the weights
//! measures them:
//! * **Validation window:** the newest 10 % of the log's signal events (from `from`). When
//!   fewer than [`MIN_CUSTOMERS`] customers bought both before and in it (a log where
//!   customers come and go, as MovieLens: most of the newest events are new customers'),
//!   each customer's own newest 10 % of signal events instead (customers with at least
//!   [`PER_CUSTOMER_MIN_EVENTS`]); β is then not chosen (0 unless given): popularity "now"
//!   needs one now.
//! * **Queries:** customers with events before `from` and new purchases (of catalogue items
//!   they had not bought) after it, at most [`MAX_CUSTOMERS`], evenly sampled; their
//!   newest purchases are those before `from`, by timestamp (ties: later in the log).
//! * **Scores:** a second model is fitted, with the run's settings, on the events before
//!   `from` only (the version's own factors saw the window and would flatter plain ALS);
//!   items are ranked by `z_u(q·y) + β·p`, with `q` the recency-shifted query and `p` the
//!   prior as of `from`.
//! * **Choice:** NDCG@10 of the new purchases, first for each w of [`RECENCY_WEIGHTS`]
//!   (β = 0, or as given), then for each β of [`WEIGHTS`] at the chosen w; a weight is
//!   used only if it beats 0 by more than [`MIN_GAIN`].
//!
//! The second fit costs about as much as the run's own (on 90 % of the events); a run that
//! falls back to the per-customer window fits a third.

use std::collections::{HashMap, HashSet};

use doppel_types::offer_recency::{DEFAULT_DECAY, newest_distinct};
use doppel_types::{Event, EventType, RecencyShift};
use rayon::prelude::*;

use crate::als::{no_progress, train};
use crate::als_params::AlsParams;
use crate::confidence::ConfidenceConfig;
use crate::dense::dot;
use crate::error::Result;
use crate::interactions::Interactions;
use crate::model::Model;
use crate::recent_popularity::{PriorSettings, recent_popularity};
use crate::reference_time::{reference_time_ms, validation_start};

/// Share of the log's signal events before the validation window.
const VALIDATION_QUANTILE: f64 = 0.9;
/// Share of a customer's events held out when the window is per customer.
pub const PER_CUSTOMER_SHARE: f64 = 0.1;
/// Fewest signal events of a customer with a per-customer window.
pub const PER_CUSTOMER_MIN_EVENTS: usize = 10;
/// Most validation customers.
pub const MAX_CUSTOMERS: usize = 2_000;
/// Fewest validation customers to choose a weight from (fewer: no prior).
pub const MIN_CUSTOMERS: usize = 50;
/// The weights tried.
pub const WEIGHTS: [f32; 9] = [0.0, 0.2, 0.4, 0.8, 1.6, 2.4, 3.2, 4.8, 6.4];
/// The recency weights tried.
pub const RECENCY_WEIGHTS: [f32; 7] = [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0];
/// Least relative NDCG gain over a weight of 0 for a weight to be used.
pub const MIN_GAIN: f64 = 0.01;
/// List length scored.
const K: usize = 10;

/// What the choice saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PriorFit {
    /// β, chosen or given (0: none).
    pub weight: f32,
    /// w, chosen or given (0: none).
    pub recency_weight: f32,
    /// Validation customers.
    pub customers: usize,
    /// Start of the validation window, ms (0 when `per_customer`).
    pub from_ms: i64,
    /// The window was each customer's newest [`PER_CUSTOMER_SHARE`] of events: the log's
    /// newest 10 % held fewer than [`MIN_CUSTOMERS`] customers who had bought before (a
    /// log where customers come and go, as MovieLens). β is not chosen then.
    pub per_customer: bool,
    /// NDCG@10 on the window for each β tried (empty when β was given).
    pub ndcg: Vec<(f32, f64)>,
    /// NDCG@10 on the window for each w tried (empty when w was given).
    pub recency_ndcg: Vec<(f32, f64)>,
}

/// One validation customer: their row in the held-out model, what they had bought, what
/// they bought new in the window.
struct Query {
    row: usize,
    bought: HashSet<u32>,
    /// The newest distinct purchases before the window, newest first.
    recent: Vec<u32>,
    relevant: HashSet<u32>,
}

/// Chooses β and w for a run with `als` and `confidence` settings on `events` (`now_ms`:
/// the server clock), the prior counting the last `given.days` days; a weight set in
/// `given` is kept, not chosen.
pub fn choose_prior_weight(
    events: &[Event],
    als: &AlsParams,
    confidence: &ConfidenceConfig,
    given: &PriorSettings,
    now_ms: i64,
) -> Result<PriorFit> {
    let mut fit = PriorFit {
        weight: given.weight.unwrap_or(0.0),
        recency_weight: given.recency_weight.unwrap_or(0.0),
        ..PriorFit::default()
    };
    let mut round = match Holdout::newest_share(events, confidence) {
        Some(holdout) => Round::fit(events, holdout, als, confidence, now_ms)?,
        None => None,
    };
    if round
        .as_ref()
        .is_none_or(|r| r.queries.len() < MIN_CUSTOMERS)
        && let Some(holdout) = Holdout::per_customer(events, confidence)
    {
        round = Round::fit(events, holdout, als, confidence, now_ms)?;
    }
    let Some(Round {
        model,
        queries,
        holdout,
        kept,
    }) = round
    else {
        return Ok(fit);
    };
    fit.customers = queries.len();
    fit.from_ms = holdout.from.unwrap_or_default();
    fit.per_customer = holdout.from.is_none();
    if queries.len() < MIN_CUSTOMERS {
        return Ok(fit);
    }
    // Popularity "now" needs one now: per-customer windows have none, and β stays 0 there.
    let prior = match holdout.from {
        Some(from) => recent_popularity(&kept, &model.item_ids, from - 1, given.days),
        None => vec![0.0; model.item_ids.len()],
    };
    // Each pass scores a customer's catalogue and drops it: two catalogue-long vectors per
    // thread, not per validation customer (2,000 × 100k items would be 3.2 GB).
    let mean_ndcg = |pairs: &[(f32, f32)]| -> Vec<f64> {
        let sums = queries
            .par_iter()
            .map(|q| QueryScores::new(q, &model).ndcg(q, &prior, pairs))
            .reduce(
                || vec![0.0; pairs.len()],
                |a, b| a.iter().zip(&b).map(|(x, y)| x + y).collect(),
            );
        let n = queries.len() as f64;
        sums.iter().map(|s| s / n).collect()
    };
    if given.recency_weight.is_none() {
        let pairs: Vec<(f32, f32)> = RECENCY_WEIGHTS.iter().map(|&w| (w, fit.weight)).collect();
        fit.recency_ndcg = RECENCY_WEIGHTS
            .iter()
            .copied()
            .zip(mean_ndcg(&pairs))
            .collect();
        fit.recency_weight = best_weight(&fit.recency_ndcg);
    }
    if given.weight.is_none() && holdout.from.is_some() {
        let pairs: Vec<(f32, f32)> = WEIGHTS.iter().map(|&b| (fit.recency_weight, b)).collect();
        fit.ndcg = WEIGHTS.iter().copied().zip(mean_ndcg(&pairs)).collect();
        fit.weight = best_weight(&fit.ndcg);
    }
    Ok(fit)
}

/// The weight of the best NDCG in `trials` (the first is weight 0), when it beats 0 by
/// more than [`MIN_GAIN`]; else 0.
fn best_weight(trials: &[(f32, f64)]) -> f32 {
    let Some(&(_, plain)) = trials.first() else {
        return 0.0;
    };
    let best = trials
        .iter()
        .copied()
        .fold((0.0, plain), |b, c| if c.1 > b.1 { c } else { b });
    if best.1 > plain * (1.0 + MIN_GAIN) {
        best.0
    } else {
        0.0
    }
}

/// Which events a validation round holds out.
struct Holdout {
    /// By position in the log.
    held_out: Vec<bool>,
    /// Start of the log-wide window (`None`: per customer).
    from: Option<i64>,
}

impl Holdout {
    /// The log's newest 10 % of signal events.
    fn newest_share(events: &[Event], confidence: &ConfidenceConfig) -> Option<Self> {
        let from = validation_start(
            events,
            |e| confidence.carries_signal(e),
            VALIDATION_QUANTILE,
        )?;
        Some(Self {
            held_out: events.iter().map(|e| e.timestamp_ms >= from).collect(),
            from: Some(from),
        })
    }

    /// Each customer's newest [`PER_CUSTOMER_SHARE`] of signal events (by timestamp, ties:
    /// later in the log), for customers with at least [`PER_CUSTOMER_MIN_EVENTS`]; `None`
    /// when no customer has that many.
    fn per_customer(events: &[Event], confidence: &ConfidenceConfig) -> Option<Self> {
        let mut by_customer: HashMap<&str, Vec<(i64, usize)>> = HashMap::new();
        for (position, e) in events.iter().enumerate() {
            if confidence.carries_signal(e) {
                by_customer
                    .entry(e.customer_id.as_str())
                    .or_default()
                    .push((e.timestamp_ms, position));
            }
        }
        let mut held_out = vec![false; events.len()];
        for mut own in by_customer.into_values() {
            if own.len() < PER_CUSTOMER_MIN_EVENTS {
                continue;
            }
            own.sort_unstable();
            let keep = own.len() - (own.len() as f64 * PER_CUSTOMER_SHARE).ceil() as usize;
            for &(_, position) in &own[keep..] {
                held_out[position] = true;
            }
        }
        held_out.contains(&true).then_some(Self {
            held_out,
            from: None,
        })
    }
}

/// A validation round: the model fitted on the kept events and its queries.
struct Round {
    model: Model,
    queries: Vec<Query>,
    holdout: Holdout,
    kept: Vec<Event>,
}

impl Round {
    /// Fits the run's settings on what `holdout` keeps (`None` when that is nothing).
    fn fit(
        events: &[Event],
        holdout: Holdout,
        als: &AlsParams,
        confidence: &ConfidenceConfig,
        now_ms: i64,
    ) -> Result<Option<Self>> {
        let kept: Vec<Event> = events
            .iter()
            .zip(&holdout.held_out)
            .filter(|(_, held)| !**held)
            .map(|(e, _)| e.clone())
            .collect();
        let reference = reference_time_ms(
            kept.iter()
                .filter(|e| confidence.carries_signal(e))
                .map(|e| e.timestamp_ms),
            now_ms,
        );
        let interactions = Interactions::from_events(&kept, confidence, reference);
        if interactions.nnz() == 0 {
            return Ok(None);
        }
        let model = train(&interactions, als, &no_progress)?;
        let queries = validation_customers(events, &model, &holdout.held_out);
        Ok(Some(Self {
            model,
            queries,
            holdout,
            kept,
        }))
    }
}

fn validation_customers(events: &[Event], model: &Model, held_out: &[bool]) -> Vec<Query> {
    let item_rows: HashMap<&str, u32> = model
        .item_ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.as_str(), n as u32))
        .collect();
    let mut bought: HashMap<&str, HashSet<u32>> = HashMap::new();
    let mut later: HashMap<&str, HashSet<u32>> = HashMap::new();
    // (timestamp, log position, item) of purchases before the window, per customer.
    let mut dated: HashMap<&str, Vec<(i64, usize, u32)>> = HashMap::new();
    for (position, e) in events.iter().enumerate() {
        if e.kind != EventType::Purchase || e.quantity <= 0 {
            continue;
        }
        let Some(&row) = item_rows.get(e.item_id.as_str()) else {
            continue;
        };
        let customer = e.customer_id.as_str();
        if !held_out[position] {
            bought.entry(customer).or_default().insert(row);
            dated
                .entry(customer)
                .or_default()
                .push((e.timestamp_ms, position, row));
        } else {
            later.entry(customer).or_default().insert(row);
        }
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
            let recent = newest_distinct(dated.remove(c).unwrap_or_default());
            (!relevant.is_empty()).then_some(Query {
                row,
                bought,
                recent,
                relevant,
            })
        })
        .collect()
}

/// One validation customer's inner products: with their vector (`plain`) and with the
/// recency shift of weight 1 alone (`shift`), so a weight w scores `plain + w·shift`.
struct QueryScores {
    plain: Vec<f64>,
    shift: Vec<f64>,
}

impl QueryScores {
    fn new(q: &Query, model: &Model) -> Self {
        let u = model.customer_vector(q.row);
        let mut shifted = u.to_vec();
        RecencyShift {
            weight: 1.0,
            decay: DEFAULT_DECAY,
        }
        .apply(
            &mut shifted,
            q.recent.iter().map(|&i| model.item_vector(i as usize)),
        );
        let delta: Vec<f32> = shifted.iter().zip(u).map(|(s, x)| s - x).collect();
        let items = 0..model.item_ids.len();
        Self {
            plain: items
                .clone()
                .map(|i| f64::from(dot(u, model.item_vector(i))))
                .collect(),
            shift: items
                .map(|i| f64::from(dot(&delta, model.item_vector(i))))
                .collect(),
        }
    }

    /// NDCG@10 of the customer's new purchases for each (w, β) of `pairs`.
    fn ndcg(&self, q: &Query, prior: &[f32], pairs: &[(f32, f32)]) -> Vec<f64> {
        let ideal: f64 = (0..q.relevant.len().min(K))
            .map(|r| 1.0 / ((r + 2) as f64).log2())
            .sum();
        pairs
            .iter()
            .map(|&(w, beta)| {
                let scores: Vec<f64> = self
                    .plain
                    .iter()
                    .zip(&self.shift)
                    .map(|(a, b)| a + f64::from(w) * b)
                    .collect();
                let n = scores.len().max(1) as f64;
                let mean = scores.iter().sum::<f64>() / n;
                let sd = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n)
                    .sqrt()
                    .max(1e-12);
                let mut ranked: Vec<(f64, u32)> = scores
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !q.bought.contains(&(*i as u32)))
                    .map(|(i, s)| ((s - mean) / sd + f64::from(beta * prior[i]), i as u32))
                    .collect();
                let k = K.min(ranked.len());
                if k == 0 {
                    return 0.0;
                }
                ranked
                    .select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
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
}
