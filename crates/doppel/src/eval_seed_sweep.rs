//! How many seeds each lookalike strategy needs, to choose when `AUTO` fits the classifier
//! (issue 12: "AUTO should then choose well"). Each keyword group (§5.1) gets audiences from
//! a sample of `k` of its seeds, for `k` in [`SEED_COUNTS`], with every strategy asked for by
//! name and with `AUTO`, over [`DRAWS`] independent samples. The candidates stay the full
//! protocol's (every customer of `U` but the group's train buyers), so precision is
//! comparable across `k`.

use std::collections::BTreeSet;

use doppel_engine::Strategy;
use doppel_train::Model;
use serde_json::{Value, json};

use crate::eval_data::Split;
use crate::eval_lookalike::{AUDIENCE, Group};
use crate::eval_lookalike_population::Population;

/// Seeds drawn per group.
pub const SEED_COUNTS: [usize; 6] = [10, 25, 50, 100, 200, 400];
/// Independent samples per seed count.
pub const DRAWS: u64 = 5;

/// Draw `draw`'s pseudo-random order of customers (a salted multiplicative hash, then the
/// id).
fn draw_order(c: u64, draw: u64) -> (u64, u64) {
    let salted = c ^ draw.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (salted.wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 32, c)
}

const STRATEGIES: [(&str, Strategy); 4] = [
    ("centroid", Strategy::Centroid),
    ("max_similarity", Strategy::MaxSimilarity),
    ("classifier", Strategy::Classifier),
    ("auto", Strategy::Auto),
];

/// Mean precision per strategy over the groups with at least `k` seeds, for one draw; the
/// groups counted; AUTO's picks.
fn one_draw(
    split: &Split,
    population: &Population,
    groups: &[Group],
    k: usize,
    draw: u64,
) -> ([f64; 4], usize, Vec<String>) {
    let mut sums = [0.0f64; 4];
    let mut picks = Vec::new();
    let mut counted = 0;
    for g in groups {
        let mut ordered: Vec<u64> = g.seeds.iter().copied().collect();
        ordered.sort_by_key(|&c| draw_order(c, draw));
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
        for (i, (_, strategy)) in STRATEGIES.iter().enumerate() {
            let (audience, used) = population.audience(*strategy, &seeds, &candidates, n);
            sums[i] += hits(&audience);
            if *strategy == Strategy::Auto {
                picks.push(format!("{used:?}"));
            }
        }
        counted += 1;
    }
    let means = sums.map(|s| s / counted.max(1) as f64);
    (means, counted, picks)
}

/// One row per seed count: per strategy the mean precision over draws and groups, and the
/// lowest and highest draw's mean; AUTO's picks of the first draw.
pub fn sweep(split: &Split, model: &Model, groups: &[Group]) -> Vec<Value> {
    let population = Population::new(model, split.bought.keys().copied());
    let random = {
        let p: Vec<f64> = groups
            .iter()
            .map(|g| {
                let candidates = g.candidates(split);
                let positives = candidates
                    .iter()
                    .filter(|c| g.test_buyers.contains(c))
                    .count();
                positives as f64 / candidates.len().max(1) as f64
            })
            .collect();
        p.iter().sum::<f64>() / p.len().max(1) as f64
    };
    SEED_COUNTS
        .iter()
        .map(|&k| {
            let draws: Vec<([f64; 4], usize, Vec<String>)> = (0..DRAWS)
                .map(|d| one_draw(split, &population, groups, k, d))
                .collect();
            let mut row = json!({
                "seeds": k,
                "groups": draws[0].1,
                "draws": DRAWS,
                "random": random,
                "auto_picks": draws[0].2,
            });
            for (i, (name, _)) in STRATEGIES.iter().enumerate() {
                let values: Vec<f64> = draws.iter().map(|d| d.0[i]).collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let low = values.iter().copied().fold(f64::INFINITY, f64::min);
                let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                row[*name] = json!(mean);
                row[format!("{name}_range")] = json!([low, high]);
            }
            row
        })
        .collect()
}

/// The sweep as a Markdown table on stdout: mean P over the draws, and its range.
pub fn print(title: &str, rows: &[Value]) {
    println!(
        "\n{title}\n\n| seeds | groups | random P | CENTROID P | MAX_SIMILARITY P | CLASSIFIER P | AUTO P | AUTO picks (draw 0) |\n|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for r in rows {
        let cell = |key: &str| {
            let range = &r[format!("{key}_range")];
            format!(
                "{:.4} ({:.4}–{:.4})",
                r[key].as_f64().unwrap_or(0.0),
                range[0].as_f64().unwrap_or(0.0),
                range[1].as_f64().unwrap_or(0.0)
            )
        };
        let picks: Vec<&str> = r["auto_picks"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "| {} | {} | {:.4} | {} | {} | {} | {} | {} |",
            r["seeds"],
            r["groups"],
            r["random"].as_f64().unwrap_or(0.0),
            cell("centroid"),
            cell("max_similarity"),
            cell("classifier"),
            cell("auto"),
            picks.join(", ")
        );
    }
}
