//! Next-best-offer lists of `benches/eval/PROTOCOL.md` §4: popularity, and a trained
//! model's offers as a version serves them (its stored vectors and offer query, with the
//! recency shift and the recent-popularity prior), ranked exactly: what the serving index
//! returns without its approximation.

use std::collections::{BTreeSet, HashMap};

use doppel_train::{Model, ServingVectors};
use doppel_types::offer_recency::{DEFAULT_DECAY, newest_distinct};
use doppel_types::{EventType, OfferPrior, RecencyShift};

use crate::eval_data::Split;
use crate::eval_metrics::{K, MetricSum, RankingMetrics};
use crate::eval_tune::Settings;

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

/// A trained model as a version serves its offers: the stored vectors (with the
/// recent-popularity prior's coordinate when the settings have one) and the offer query
/// ([`OfferPrior`]), ranked exactly (the index's order without its approximation).
pub struct Served {
    serving: ServingVectors,
    prior: Option<OfferPrior>,
    recency: Option<RecencyShift>,
    /// Per customer, the item rows of their newest distinct train purchases, newest first
    /// (by timestamp, ties: later in the log), as a node holds them.
    recent: HashMap<String, Vec<usize>>,
    customer_rows: HashMap<String, usize>,
}

impl Served {
    /// `model`, fitted on the split's train rows with `settings`, served with their prior
    /// and recency shift, the weights chosen on the train rows as Train chooses them when
    /// not given (decay and the prior's window measured to the newest train event, as
    /// [`crate::eval_tune::fit`] does). Also returns the weights (β, w).
    pub fn new(split: &Split, model: &Model, settings: &Settings) -> (Self, (f32, f32)) {
        let now = crate::eval_tune::reference_ms(split);
        let prior = &settings.prior;
        let (weight, recency_weight) = match (prior.weight, prior.recency_weight) {
            (Some(b), Some(w)) => (b, w),
            (b, w) => doppel_train::choose_prior_weight(
                &split.train_events,
                &settings.als,
                &settings.confidence,
                prior,
                now,
            )
            .map_or((b.unwrap_or(0.0), w.unwrap_or(0.0)), |f| {
                (f.weight, f.recency_weight)
            }),
        };
        let popularity =
            doppel_train::recent_popularity(&split.train_events, &model.item_ids, now, prior.days);
        let serving = ServingVectors::with_prior(model, weight, &popularity);
        let prior = OfferPrior::new(
            serving.layout,
            serving.items.iter().map(|(_, v)| v.as_slice()),
        );
        let customer_rows = serving
            .customers
            .iter()
            .enumerate()
            .map(|(n, (id, _))| (id.clone(), n))
            .collect();
        let recency = (recency_weight > 0.0).then_some(RecencyShift {
            weight: recency_weight,
            decay: DEFAULT_DECAY,
        });
        let recent = match recency {
            Some(_) => newest_purchases(split, &serving),
            None => HashMap::new(),
        };
        let served = Self {
            serving,
            prior,
            recency,
            recent,
            customer_rows,
        };
        (served, (weight, recency_weight))
    }

    /// The offers for `customer` (popularity when the model does not know them).
    fn list(&self, customer: u64, bought: &BTreeSet<String>, fallback: &[String]) -> Vec<String> {
        let Some(&row) = self.customer_rows.get(&customer.to_string()) else {
            return first_unbought(fallback, bought);
        };
        let mut stored = self.serving.customers[row].1.clone();
        if let (Some(shift), Some(recent)) = (&self.recency, self.recent.get(&customer.to_string()))
        {
            let factors = self.serving.layout.factors.min(stored.len());
            let items = recent.iter().map(|&i| self.serving.items[i].1.as_slice());
            shift.apply(&mut stored[..factors], items);
        }
        let query = match &self.prior {
            Some(p) => p.query(&stored),
            None => stored,
        };
        let mut scored: Vec<(f32, usize)> = self
            .serving
            .items
            .iter()
            .enumerate()
            .filter(|(_, (id, _))| !bought.contains(id))
            .map(|(i, (_, v))| (v.iter().zip(&query).map(|(a, b)| a * b).sum(), i))
            .collect();
        let k = K.min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(k);
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .map(|(_, i)| self.serving.items[i].0.clone())
            .collect()
    }
}

/// Per customer, the serving rows of their newest distinct train purchases, newest first.
fn newest_purchases(split: &Split, serving: &ServingVectors) -> HashMap<String, Vec<usize>> {
    let rows: HashMap<&str, usize> = serving
        .items
        .iter()
        .enumerate()
        .map(|(n, (id, _))| (id.as_str(), n))
        .collect();
    let mut dated: HashMap<&str, Vec<(i64, usize, usize)>> = HashMap::new();
    for (position, e) in split.train_events.iter().enumerate() {
        if e.kind != EventType::Purchase || e.quantity <= 0 {
            continue;
        }
        if let Some(&row) = rows.get(e.item_id.as_str()) {
            dated
                .entry(e.customer_id.as_str())
                .or_default()
                .push((e.timestamp_ms, position, row));
        }
    }
    dated
        .into_iter()
        .map(|(customer, purchases)| (customer.to_owned(), newest_distinct(purchases)))
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

/// The model's offer metrics over the split's evaluated customers (§3, §4), served as
/// `settings` say, and the weights used (β, w).
pub fn offer_metrics(
    split: &Split,
    model: &Model,
    settings: &Settings,
) -> (RankingMetrics, (f32, f32)) {
    let ranking = popularity(split);
    let (served, weight) = Served::new(split, model, settings);
    (
        metrics_of(split, |c, bought| served.list(c, bought, &ranking)),
        weight,
    )
}

/// Popularity's offer metrics over the split's evaluated customers.
pub fn popularity_metrics(split: &Split) -> RankingMetrics {
    let ranking = popularity(split);
    metrics_of(split, |_, bought| first_unbought(&ranking, bought))
}
