//! Lookalike audiences of `benches/eval/PROTOCOL.md`: the product groups (§5, StockCode
//! prefixes; §5.1, description keywords) and each group's audience from the model's
//! customer vectors (doppel's `CENTROID` strategy: cosine to the mean of the seeds' unit
//! vectors), with the random and top-spender baselines.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use doppel_engine::Strategy;
use doppel_train::Model;
use serde_json::json;

use crate::eval_data::{Row, Split};
use crate::eval_lookalike_population::Population;

/// Audience size cap (§5).
pub const AUDIENCE: usize = 200;
/// Product groups evaluated (§5, §5.1).
const GROUPS: usize = 8;
/// Words that never name a keyword group (§5.1): function and packaging words, colours,
/// sizes.
const STOP_WORDS: [&str; 27] = [
    "OF", "AND", "WITH", "IN", "THE", "FOR", "SET", "PACK", "ASSORTED", "DESIGN", "PINK", "BLUE",
    "RED", "WHITE", "BLACK", "GREEN", "SILVER", "IVORY", "CREAM", "GOLD", "PURPLE", "YELLOW",
    "COLOUR", "SMALL", "LARGE", "MINI", "JUMBO",
];
/// Shortest keyword (§5.1).
const MIN_WORD: usize = 3;
/// A keyword group's seeds must be between these shares of `U` (§5.1) ...
const SEED_SHARE: (f64, f64) = (0.05, 0.30);
/// ... and less than this share of its items may already be in a kept group.
const MAX_OVERLAP: f64 = 0.5;

/// One product group: its name, seeds (train buyers in `U`) and test buyers (anyone).
#[derive(Debug)]
pub struct Group {
    /// Prefix or keyword.
    pub name: String,
    /// Customers of `U` who bought the group before the cutoff.
    pub seeds: BTreeSet<u64>,
    /// Customers who bought the group in the test window.
    pub test_buyers: BTreeSet<u64>,
}

impl Group {
    /// Its candidates (§5): every customer of `U` but its seeds, in id order.
    pub fn candidates(&self, split: &Split) -> Vec<u64> {
        split
            .bought
            .keys()
            .filter(|c| !self.seeds.contains(c))
            .copied()
            .collect()
    }
}

/// The 8 StockCode-prefix groups with the most train buyers (§5).
pub fn prefix_groups(split: &Split) -> Vec<Group> {
    let prefix = |i: &str| i.chars().take(3).collect::<String>();
    let mut buyers: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (c, items) in &split.bought {
        for i in items {
            buyers.entry(prefix(i)).or_default().insert(*c);
        }
    }
    let mut ranked: Vec<(String, BTreeSet<u64>)> = buyers.into_iter().collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
    ranked
        .into_iter()
        .take(GROUPS)
        .map(|(name, seeds)| {
            let test_buyers = split
                .test_bought
                .iter()
                .filter(|(_, items)| items.iter().any(|i| prefix(i) == name))
                .map(|(c, _)| *c)
                .collect();
            Group {
                name,
                seeds,
                test_buyers,
            }
        })
        .collect()
}

/// The keywords of a description (§5.1): maximal runs of `A`–`Z` in its upper-cased text,
/// at least [`MIN_WORD`] letters, not a stop word.
fn keywords(description: &str) -> Vec<String> {
    description
        .to_ascii_uppercase()
        .split(|c: char| !c.is_ascii_uppercase())
        .filter(|w| w.len() >= MIN_WORD && !STOP_WORDS.contains(w))
        .map(str::to_owned)
        .collect()
}

/// The 8 description-keyword groups (§5.1): words ranked by the distinct items whose train
/// purchase rows carry them, kept when their buyers are 5–30 % of `U` and less than half
/// of their items are already in a kept group.
pub fn keyword_groups(rows: &[Row], split: &Split) -> Vec<Group> {
    let mut cache: HashMap<&str, Vec<String>> = HashMap::new();
    let mut items: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut buyers: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut test_buyers: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    // Only the split's own window: `rows` may run past it (the validation split's groups
    // must not see the test window).
    for r in rows.iter().filter(|r| r.purchase && r.ts < split.end_ms) {
        let words = cache
            .entry(&r.description)
            .or_insert_with(|| keywords(&r.description));
        for w in words.iter() {
            if r.ts < split.cutoff_ms {
                items.entry(w.clone()).or_default().insert(&r.item);
                buyers.entry(w.clone()).or_default().insert(r.customer);
            } else {
                test_buyers.entry(w.clone()).or_default().insert(r.customer);
            }
        }
    }
    let customers = split.bought.len().max(1) as f64;
    let mut ranked: Vec<(&String, &BTreeSet<&str>)> = items.iter().collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut kept_items: BTreeSet<&str> = BTreeSet::new();
    let mut groups = Vec::new();
    for (word, its) in ranked {
        if groups.len() == GROUPS {
            break;
        }
        let seeds = &buyers[word];
        let share = seeds.len() as f64 / customers;
        let overlap = its.iter().filter(|i| kept_items.contains(*i)).count() as f64;
        if share < SEED_SHARE.0 || share > SEED_SHARE.1 || overlap / its.len() as f64 >= MAX_OVERLAP
        {
            continue;
        }
        kept_items.extend(its.iter().copied());
        groups.push(Group {
            name: word.clone(),
            seeds: seeds.clone(),
            test_buyers: test_buyers.remove(word).unwrap_or_default(),
        });
    }
    groups
}

/// Each group's audience (§5) from `model`'s customer vectors, with the baselines, as the
/// JSON objects of §7. `precision` is what a node serves for the group's seeds with
/// `AUTO` (the classifier for 100 or more seeds); `centroid_precision` and
/// `classifier_precision` are those strategies asked for by name.
pub fn score(split: &Split, model: &Model, groups: &[Group]) -> Vec<serde_json::Value> {
    let population = Population::new(model, split.bought.keys().copied());
    groups
        .iter()
        .map(|g| {
            let candidates = g.candidates(split);
            let positives: BTreeSet<u64> = candidates
                .iter()
                .filter(|c| g.test_buyers.contains(c))
                .copied()
                .collect();
            let n = AUDIENCE.min(candidates.len());
            let precision = |audience: &[u64]| {
                if n == 0 {
                    0.0
                } else {
                    audience.iter().filter(|c| positives.contains(c)).count() as f64 / n as f64
                }
            };
            let usable = g.seeds.iter().any(|&c| population.unit(c).is_some());
            let audience_of = |strategy| {
                if usable {
                    population.audience(strategy, &g.seeds, &candidates, n)
                } else {
                    (Vec::new(), strategy)
                }
            };
            let (served, auto) = audience_of(Strategy::Auto);
            let (centroid, _) = audience_of(Strategy::Centroid);
            let (classifier, _) = audience_of(Strategy::Classifier);
            let mut spenders = candidates.clone();
            spenders.sort_by(|a, b| {
                let (ma, mb) = (
                    split.monetary.get(a).copied().unwrap_or(0),
                    split.monetary.get(b).copied().unwrap_or(0),
                );
                mb.cmp(&ma).then(a.cmp(b))
            });
            spenders.truncate(n);
            let p = precision(&served);
            let random = if candidates.is_empty() {
                0.0
            } else {
                positives.len() as f64 / candidates.len() as f64
            };
            let spend = precision(&spenders);
            let lift = |d: f64| if d > 0.0 { json!(p / d) } else { json!(null) };
            json!({
                "group": g.name, "seeds": g.seeds.len(), "candidates": candidates.len(),
                "positives": positives.len(), "audience": n, "precision": p,
                "lift_vs_random": lift(random), "lift_vs_top_spenders": lift(spend),
                "random_precision": random, "top_spenders_precision": spend,
                "centroid_precision": precision(&centroid),
                "classifier_precision": precision(&classifier),
                "auto_strategy": format!("{auto:?}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_letter_runs_without_stop_words() {
        assert_eq!(
            keywords("WHITE HANGING HEART T-LIGHT HOLDER"),
            ["HANGING", "HEART", "LIGHT", "HOLDER"]
        );
        assert_eq!(
            keywords("set of 3 cake tins pantry design"),
            ["CAKE", "TINS", "PANTRY"]
        );
        assert!(keywords("PACK OF 72 RED").is_empty());
    }
}
