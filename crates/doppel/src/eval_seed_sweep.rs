//! How many seeds each lookalike strategy needs, to choose when `AUTO` fits the classifier
//! (issue 12: "AUTO should then choose well"). Each keyword group (§5.1) gets audiences from
//! a sample of `k` of its seeds, for `k` in [`SEED_COUNTS`], with every strategy asked for by
//! name and with `AUTO`. The candidates stay the full protocol's (every customer of `U` but
//! the group's train buyers), so precision is comparable across `k`.

use std::collections::BTreeSet;

use doppel_engine::Strategy;
use doppel_train::Model;
use serde_json::{Value, json};

use crate::eval_data::Split;
use crate::eval_lookalike::{AUDIENCE, Group};
use crate::eval_lookalike_population::Population;

/// Seeds drawn per group.
pub const SEED_COUNTS: [usize; 6] = [10, 25, 50, 100, 200, 400];

/// A fixed pseudo-random order of customers (Knuth's multiplicative hash, then the id).
fn draw_order(c: u64) -> (u64, u64) {
    (c.wrapping_mul(2_654_435_761) % (1 << 32), c)
}

/// One row per seed count: mean precision over the groups per strategy, and AUTO's picks.
pub fn sweep(split: &Split, model: &Model, groups: &[Group]) -> Vec<Value> {
    let population = Population::new(model, split.bought.keys().copied());
    let strategies = [
        ("centroid", Strategy::Centroid),
        ("max_similarity", Strategy::MaxSimilarity),
        ("classifier", Strategy::Classifier),
        ("auto", Strategy::Auto),
    ];
    SEED_COUNTS
        .iter()
        .map(|&k| {
            let mut sums = [0.0f64; 4];
            let mut random = 0.0;
            let mut picks = Vec::new();
            let mut counted = 0;
            for g in groups {
                let mut ordered: Vec<u64> = g.seeds.iter().copied().collect();
                ordered.sort_by_key(|&c| draw_order(c));
                if ordered.len() < k {
                    continue;
                }
                let seeds: BTreeSet<u64> = ordered[..k].iter().copied().collect();
                // The full group's candidates, whatever the sample.
                let candidates = g.candidates(split);
                let n = AUDIENCE.min(candidates.len());
                if n == 0 {
                    continue;
                }
                let hits = |audience: &[u64]| {
                    audience
                        .iter()
                        .filter(|c| g.test_buyers.contains(c))
                        .count() as f64
                        / n as f64
                };
                for (i, (_, strategy)) in strategies.iter().enumerate() {
                    let (audience, used) = population.audience(*strategy, &seeds, &candidates, n);
                    sums[i] += hits(&audience);
                    if *strategy == Strategy::Auto {
                        picks.push(format!("{used:?}"));
                    }
                }
                let positives = candidates
                    .iter()
                    .filter(|c| g.test_buyers.contains(c))
                    .count();
                random += positives as f64 / candidates.len() as f64;
                counted += 1;
            }
            let mean = |x: f64| x / counted.max(1) as f64;
            let mut row =
                json!({"seeds": k, "groups": counted, "random": mean(random), "auto_picks": picks});
            for (i, (name, _)) in strategies.iter().enumerate() {
                row[*name] = json!(mean(sums[i]));
            }
            row
        })
        .collect()
}

/// The sweep as a Markdown table on stdout.
pub fn print(title: &str, rows: &[Value]) {
    println!(
        "\n{title}\n\n| seeds | groups | random P | CENTROID P | MAX_SIMILARITY P | CLASSIFIER P | AUTO P | AUTO picks |\n|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in rows {
        let p = |key: &str| r[key].as_f64().unwrap_or(0.0);
        let picks: Vec<&str> = r["auto_picks"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {} |",
            r["seeds"],
            r["groups"],
            p("random"),
            p("centroid"),
            p("max_similarity"),
            p("classifier"),
            p("auto"),
            picks.join(", ")
        );
    }
}
