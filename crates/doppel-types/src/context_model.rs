//! What a trained version learned about context: how each item's share of the events
//! shifts with the channel, device, country, hour of day and day of week they happened in.
//!
//! For one feature (say `device`) and one of its values `v` (`mobile`), with `n_v` the
//! weighted events seen with that value, `p(c)` / `p(i)` a category's / an item's share of
//! all events where the feature was known, and `a` the prior strength in events:
//!
//! ```text
//! category lift  L(c|v) = ln((n_cv + a) / (n_v·p(c) + a))
//! item lift      L(i|v) = L(c|v) + ln((n_iv + a) / (n_v·p(i)·e^{L(c|v)} + a))
//! ```
//!
//! Observed against expected counts, each shrunk by `a` pseudo-events (a gamma–Poisson
//! estimate): a context seen a handful of times, or an item rarely bought anywhere, gets a
//! lift near 0 (no shift); an item bought much more (or much less) than expected in a
//! well-observed context gets a clear one. The item's lift is shrunk towards its
//! category's, so a new or rare item still inherits its category's shift.
//!
//! Features add up, each scaled by a weight the version fitted on a validation window:
//! `score = cosine + Σ_f weight_f × L(i|v_f)`. Besides the five single features there is
//! one cross feature, `device_daypart` (e.g. `mobile/evening`), because what people buy
//! often depends on the device *and* the time together.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::entity::{Context, Event};

/// The context features, in the order a model keeps them.
pub const CONTEXT_FEATURES: [&str; 6] = [
    "channel",
    "device",
    "country",
    "hour",
    "weekday",
    "device_daypart",
];
/// Parts of the day of `device_daypart`, six hours each from midnight UTC.
pub const DAYPARTS: [&str; 4] = ["night", "morning", "afternoon", "evening"];
/// Values of the `hour` feature.
const HOURS: [&str; 24] = [
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23",
];
/// Day names of the `weekday` feature, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Smallest prior strength a model is scored with (a stored 0, or NaN, gets this).
const MIN_PRIOR_EVENTS: f64 = 0.01;
/// Most distinct values one feature keeps (the most frequent); rarer ones count as
/// unknown.
pub const MAX_FEATURE_VALUES: usize = 256;

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;

/// The value of each context feature for an event or a request at `timestamp_ms`, in
/// [`CONTEXT_FEATURES`] order; empty where unknown. Hours and days are UTC.
pub fn feature_values(context: &Context, timestamp_ms: i64) -> [String; 6] {
    let hour = timestamp_ms.div_euclid(MS_PER_HOUR).rem_euclid(24);
    // 1970-01-01 was a Thursday.
    let weekday = (timestamp_ms.div_euclid(MS_PER_DAY) + 3).rem_euclid(7) as usize;
    [
        context.channel.clone(),
        context.device.clone(),
        context.country.clone(),
        HOURS[hour as usize].to_owned(),
        WEEKDAYS[weekday].to_owned(),
        if context.device.is_empty() {
            String::new()
        } else {
            format!("{}/{}", context.device, DAYPARTS[(hour / 6) as usize])
        },
    ]
}

/// One item the model knows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextItem {
    /// Item id.
    pub id: String,
    /// Index into [`ContextModel::categories`].
    pub category: u32,
}

/// Weighted event counts under one value of a feature.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextValue {
    /// The value, e.g. `mobile`, `France`, `20` (hour) or `sat`.
    pub value: String,
    /// `(item index, weighted events)`, sorted by item, zeros left out.
    pub item_events: Vec<(u32, f32)>,
}

/// The counts of one feature.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextFeature {
    /// One of [`CONTEXT_FEATURES`].
    pub name: String,
    /// Weight of this feature's lifts against the vector score (0: ignored).
    pub weight: f32,
    /// The values seen (at most [`MAX_FEATURE_VALUES`]).
    pub values: Vec<ContextValue>,
}

/// The context model of a version: counts, the prior and the fitted weights.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextModel {
    /// Prior strength `a`, in weighted events.
    pub prior_events: f32,
    /// Category names, by index.
    pub categories: Vec<String>,
    /// Items, by index.
    pub items: Vec<ContextItem>,
    /// One entry per feature that was seen.
    pub features: Vec<ContextFeature>,
}

/// One feature's lift contribution to one item.
#[derive(Clone, Debug, PartialEq)]
pub struct LiftTerm {
    /// The feature, e.g. `device`.
    pub feature: &'static str,
    /// Its value in the request.
    pub value: String,
    /// What it adds to the score: the feature's weight × its log-lift.
    pub lift: f32,
}

/// A value resolved for scoring: its total and category lifts.
#[derive(Clone, Debug)]
struct ValueTable {
    value: String,
    events: f64,
    category_lift: Vec<f32>,
    item_events: HashMap<u32, f32>,
}

#[derive(Clone, Debug)]
struct FeatureTable {
    name: &'static str,
    weight: f32,
    by_value: HashMap<String, usize>,
    values: Vec<ValueTable>,
    /// `p(i)` over the events where this feature was known.
    item_share: Vec<f32>,
}

/// A [`ContextModel`] ready to score: shares and category lifts precomputed, items
/// addressable by id.
#[derive(Clone, Debug)]
pub struct ContextLifts {
    prior: f64,
    item_index: HashMap<String, u32>,
    items: Vec<ContextItem>,
    features: Vec<FeatureTable>,
}

/// A request's context resolved against a model: `(feature, value)` table positions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActiveContext(Vec<(usize, usize)>);

impl ActiveContext {
    /// True when no feature value of the request is known to the model.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl ContextLifts {
    /// Precomputes the shares and category lifts of `model`.
    pub fn new(model: &ContextModel) -> Self {
        // A stored model is trusted for shape only: a prior of 0 (ln 0) or a non-finite
        // weight would make NaN scores, so the prior has a floor and such weights count 0.
        let prior = f64::from(model.prior_events)
            .max(MIN_PRIOR_EVENTS)
            .min(f64::from(f32::MAX));
        let n_items = model.items.len();
        let n_categories = model.categories.len();
        let features = model
            .features
            .iter()
            .filter_map(|f| {
                let name = CONTEXT_FEATURES.iter().find(|n| **n == f.name)?;
                let mut item_totals = vec![0f64; n_items];
                let mut category_totals = vec![0f64; n_categories];
                for v in &f.values {
                    for &(i, n) in &v.item_events {
                        let Some(item) = model.items.get(i as usize) else {
                            continue;
                        };
                        item_totals[i as usize] += f64::from(n);
                        if let Some(c) = category_totals.get_mut(item.category as usize) {
                            *c += f64::from(n);
                        }
                    }
                }
                let total: f64 = item_totals.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                let values: Vec<ValueTable> = f
                    .values
                    .iter()
                    .map(|v| {
                        let mut per_category = vec![0f64; n_categories];
                        let mut events = 0f64;
                        for &(i, n) in &v.item_events {
                            if let Some(item) = model.items.get(i as usize) {
                                events += f64::from(n);
                                if let Some(c) = per_category.get_mut(item.category as usize) {
                                    *c += f64::from(n);
                                }
                            }
                        }
                        let category_lift = per_category
                            .iter()
                            .zip(&category_totals)
                            .map(|(&n_cv, &n_c)| {
                                let expected = events * n_c / total;
                                ((n_cv + prior) / (expected + prior).max(f64::MIN_POSITIVE)).ln()
                                    as f32
                            })
                            .collect();
                        ValueTable {
                            value: v.value.clone(),
                            events,
                            category_lift,
                            item_events: v.item_events.iter().copied().collect(),
                        }
                    })
                    .collect();
                Some(FeatureTable {
                    name,
                    weight: if f.weight.is_finite() { f.weight } else { 0.0 },
                    by_value: values
                        .iter()
                        .enumerate()
                        .map(|(n, v)| (v.value.clone(), n))
                        .collect(),
                    values,
                    item_share: item_totals.iter().map(|&n| (n / total) as f32).collect(),
                })
            })
            .collect();
        Self {
            prior,
            item_index: model
                .items
                .iter()
                .enumerate()
                .map(|(n, i)| (i.id.clone(), n as u32))
                .collect(),
            items: model.items.clone(),
            features,
        }
    }

    /// False when every weight is 0: the version ignores context.
    pub fn is_used(&self) -> bool {
        self.features.iter().any(|f| f.weight != 0.0)
    }

    /// Features, in the model's order (with [`Self::unweighted`], for weight fitting).
    pub fn feature_names(&self) -> Vec<&'static str> {
        self.features.iter().map(|f| f.name).collect()
    }

    /// Per feature (model order), the unweighted log-lift of `item` under `active` (0
    /// where the request has no known value).
    pub fn unweighted(&self, active: &ActiveContext, item: u32) -> Vec<f32> {
        let mut out = vec![0.0; self.features.len()];
        for &(f, v) in &active.0 {
            out[f] = self.term(f, v, item);
        }
        out
    }

    /// Index of an item the model knows.
    pub fn item(&self, id: &str) -> Option<u32> {
        self.item_index.get(id).copied()
    }

    /// Items the model knows (indexes run from 0).
    pub fn item_count(&self) -> usize {
        self.items.len()
    }

    /// The id of the item at `index`.
    pub fn item_id(&self, index: u32) -> Option<&str> {
        self.items.get(index as usize).map(|i| i.id.as_str())
    }

    /// Resolves a request's context at `timestamp_ms` (values the model never saw are
    /// left out: they shift nothing).
    pub fn resolve(&self, context: &Context, timestamp_ms: i64) -> ActiveContext {
        let hour = timestamp_ms.div_euclid(MS_PER_HOUR).rem_euclid(24) as usize;
        let weekday = (timestamp_ms.div_euclid(MS_PER_DAY) + 3).rem_euclid(7) as usize;
        // Only the cross feature needs a new string (requests resolve on every call).
        let daypart = (!context.device.is_empty())
            .then(|| format!("{}/{}", context.device, DAYPARTS[hour / 6]));
        ActiveContext(
            self.features
                .iter()
                .enumerate()
                .filter_map(|(f, table)| {
                    let value: &str = match table.name {
                        "channel" => &context.channel,
                        "device" => &context.device,
                        "country" => &context.country,
                        "hour" => HOURS[hour],
                        "weekday" => WEEKDAYS[weekday],
                        "device_daypart" => daypart.as_deref()?,
                        _ => return None,
                    };
                    if value.is_empty() {
                        return None;
                    }
                    table.by_value.get(value).map(|&v| (f, v))
                })
                .collect(),
        )
    }

    /// `L(i|v)` of one feature value (see the module docs).
    fn term(&self, feature: usize, value: usize, item: u32) -> f32 {
        let table = &self.features[feature];
        let v = &table.values[value];
        let Some(category) = self.items.get(item as usize).map(|i| i.category as usize) else {
            return 0.0;
        };
        let category_lift = v.category_lift.get(category).copied().unwrap_or(0.0);
        let observed = f64::from(v.item_events.get(&item).copied().unwrap_or(0.0));
        let share = f64::from(table.item_share.get(item as usize).copied().unwrap_or(0.0));
        let expected = v.events * share * f64::from(category_lift).exp();
        let own = ((observed + self.prior) / (expected + self.prior).max(f64::MIN_POSITIVE)).ln();
        category_lift + own as f32
    }

    /// The weighted sum of an item's log-lifts under `active`: what context adds to its
    /// score (0 for an item the model never saw).
    pub fn lift(&self, active: &ActiveContext, item: u32) -> f32 {
        active
            .0
            .iter()
            .map(|&(f, v)| self.features[f].weight * self.term(f, v, item))
            .sum()
    }

    /// The per-feature terms of [`Self::lift`], largest magnitude first (explanations).
    pub fn terms(&self, active: &ActiveContext, item: u32) -> Vec<LiftTerm> {
        let mut terms: Vec<LiftTerm> = active
            .0
            .iter()
            .filter(|&&(f, _)| self.features[f].weight != 0.0)
            .map(|&(f, v)| LiftTerm {
                feature: self.features[f].name,
                value: self.features[f].values[v].value.clone(),
                lift: self.features[f].weight * self.term(f, v, item),
            })
            .collect();
        terms.sort_by(|a, b| b.lift.abs().total_cmp(&a.lift.abs()));
        terms
    }
}

/// `(item index, weighted events)` pairs.
type ItemEvents = Vec<(u32, f32)>;

/// Event counts per feature value, filled event by event, then turned into a model.
#[derive(Clone, Debug, Default)]
pub struct ContextCounts {
    /// `[feature][value] → item → weighted events`.
    counts: Vec<HashMap<String, HashMap<u32, f64>>>,
}

impl ContextCounts {
    /// Empty counts.
    pub fn new() -> Self {
        Self {
            counts: vec![HashMap::new(); CONTEXT_FEATURES.len()],
        }
    }

    /// Adds `weight` events of item `item` in `event`'s context (non-positive weights and
    /// unknown feature values are skipped).
    pub fn add(&mut self, event: &Event, item: u32, weight: f64) {
        if weight <= 0.0 || !weight.is_finite() {
            return;
        }
        for (f, value) in feature_values(&event.context, event.timestamp_ms)
            .into_iter()
            .enumerate()
        {
            if !value.is_empty() {
                *self.counts[f]
                    .entry(value)
                    .or_default()
                    .entry(item)
                    .or_default() += weight;
            }
        }
    }

    /// The model of these counts over `items` / `categories`, with the prior and the
    /// weight of each feature (by name; missing ones are 0). Each feature keeps its
    /// [`MAX_FEATURE_VALUES`] most frequent values; a feature seen with fewer than two
    /// values is dropped (it cannot shift anything).
    pub fn into_model(
        self,
        categories: Vec<String>,
        items: Vec<ContextItem>,
        weights: &HashMap<&str, f32>,
        prior_events: f32,
    ) -> ContextModel {
        let features = self
            .counts
            .into_iter()
            .zip(CONTEXT_FEATURES)
            .filter_map(|(values, name)| {
                let mut values: Vec<(String, f64, ItemEvents)> = values
                    .into_iter()
                    .map(|(value, per_item)| {
                        let total = per_item.values().sum::<f64>();
                        let mut item_events: Vec<(u32, f32)> =
                            per_item.into_iter().map(|(i, n)| (i, n as f32)).collect();
                        item_events.sort_unstable_by_key(|(i, _)| *i);
                        (value, total, item_events)
                    })
                    .collect();
                values.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                values.truncate(MAX_FEATURE_VALUES);
                (values.len() >= 2).then(|| ContextFeature {
                    name: name.to_owned(),
                    weight: weights.get(name).copied().unwrap_or(0.0),
                    values: values
                        .into_iter()
                        .map(|(value, _, item_events)| ContextValue { value, item_events })
                        .collect(),
                })
            })
            .collect();
        ContextModel {
            prior_events,
            categories,
            items,
            features,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(device: &str, hour: i64) -> Event {
        Event {
            context: Context {
                device: device.into(),
                ..Context::default()
            },
            timestamp_ms: hour * MS_PER_HOUR,
            ..Event::default()
        }
    }

    /// Items 0, 1 in category 0 ("garden"), item 2 in category 1 ("toys"). On mobile, toys
    /// sell four times as often as on desktop.
    fn model(scale: f64) -> ContextLifts {
        let mut counts = ContextCounts::new();
        for (device, item, n) in [
            ("desktop", 0, 40.0),
            ("desktop", 1, 40.0),
            ("desktop", 2, 20.0),
            ("mobile", 0, 20.0),
            ("mobile", 1, 20.0),
            ("mobile", 2, 80.0),
        ] {
            counts.add(&event(device, 10), item, n * scale);
        }
        let items = [0, 0, 1]
            .into_iter()
            .enumerate()
            .map(|(n, c)| ContextItem {
                id: format!("i{n}"),
                category: c,
            })
            .collect();
        let weights = CONTEXT_FEATURES.iter().map(|f| (*f, 1.0)).collect();
        ContextLifts::new(&counts.into_model(
            vec!["garden".into(), "toys".into()],
            items,
            &weights,
            5.0,
        ))
    }

    #[test]
    fn a_context_that_favours_a_category_lifts_its_items_and_lowers_the_others() {
        let lifts = model(10.0);
        let mobile = lifts.resolve(
            &Context {
                device: "mobile".into(),
                ..Context::default()
            },
            10 * MS_PER_HOUR,
        );
        assert!(!mobile.is_empty());
        let toy = lifts.lift(&mobile, 2);
        let garden = lifts.lift(&mobile, 0);
        assert!(toy > 0.3, "toys on mobile: {toy}");
        assert!(garden < -0.3, "garden on mobile: {garden}");
        // Hour 10 is the only hour seen: a feature with one value is dropped; the cross
        // feature device_daypart moves with device.
        let terms = lifts.terms(&mobile, 2);
        let names: Vec<&str> = terms.iter().map(|t| t.feature).collect();
        assert_eq!(names.len(), 2, "{terms:?}");
        assert!(names.contains(&"device") && names.contains(&"device_daypart"));
    }

    #[test]
    fn rare_contexts_shrink_to_no_shift_and_unknown_values_shift_nothing() {
        let seen_a_lot = model(10.0);
        let seen_once = model(0.001);
        let mobile = |l: &ContextLifts| {
            l.resolve(
                &Context {
                    device: "mobile".into(),
                    ..Context::default()
                },
                0,
            )
        };
        let strong = seen_a_lot.lift(&mobile(&seen_a_lot), 2);
        let weak = seen_once.lift(&mobile(&seen_once), 2);
        assert!(
            weak.abs() < 0.05 && weak.abs() < strong.abs() / 10.0,
            "{weak} vs {strong}"
        );
        let tablet = seen_a_lot.resolve(
            &Context {
                device: "tablet".into(),
                ..Context::default()
            },
            0,
        );
        assert!(tablet.is_empty());
        assert_eq!(seen_a_lot.lift(&tablet, 2), 0.0);
    }

    #[test]
    fn hours_and_weekdays_are_utc() {
        // 2024-06-01T20:30:00Z was a Saturday.
        let v = feature_values(&Context::default(), 1_717_273_800_000);
        assert_eq!(v[3], "20");
        assert_eq!(v[4], "sat");
        assert_eq!(v[5], "");
        let on_mobile = Context {
            device: "mobile".into(),
            ..Context::default()
        };
        assert_eq!(
            feature_values(&on_mobile, 1_717_273_800_000)[5],
            "mobile/evening"
        );
        assert_eq!(feature_values(&Context::default(), 0)[4], "thu");
    }
}
