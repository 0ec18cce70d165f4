//! `doppel evaluate`: doppel's learning on Online Retail under `benches/eval/PROTOCOL.md`
//! (time split, next-best-offer metrics, lookalike lift), as a Markdown table and JSON that
//! `benches/eval/compare_peers.py --doppel-json` puts beside the tuned peers' numbers.
//!
//! Offers come from the trained factors by exact inner product (what the serving index
//! returns through its inner-product-preserving vectors, without its approximation);
//! audiences from the cosine to the seeds' centroid (doppel's `CENTROID` strategy).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use doppel_train::{AlsParams, ConfidenceConfig, Model};
use serde_json::json;

use crate::als_flags::AlsFlags;
use crate::eval_context;
use crate::eval_data::{Split, read_rows, split, validation_split};
use crate::eval_offers::{offer_metrics, popularity_metrics, prior_metrics, recent_popularity};
use crate::eval_tune::{self, Settings};

/// Where the Online Retail file is expected (CI has `../shared` beside the checkout).
pub const DEFAULT_DATA: &str = "../shared/data/online_retail.csv.gz";
/// Audience size cap (§5).
const AUDIENCE: usize = 200;
/// Product groups evaluated (§5).
const GROUPS: usize = 8;

/// Flags of `doppel evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// The Online Retail CSV (gzip or plain).
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// Write the protocol's JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Search the ALS settings on the validation split (PROTOCOL.md §2.1), starting from
    /// the flags' settings, then report the test window once with the chosen ones.
    #[arg(long)]
    pub tune: bool,
    /// ALS settings (default: Train's).
    #[command(flatten)]
    pub als: AlsFlags,
    /// Report NDCG@10 with and without context instead (PROTOCOL.md §10): a planted set and
    /// Online Retail with the country as context.
    #[arg(long)]
    pub context: bool,
    /// Customers of the planted set (`--context`).
    #[arg(long, default_value_t = 20_000)]
    pub planted_customers: usize,
    /// Probability that a mobile evening event follows the planted effect (`--context`).
    #[arg(long, default_value_t = 0.6)]
    pub planted_effect: f64,
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    v.iter().map(|x| x / n).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn lookalike(split: &Split, model: &Model) -> Vec<serde_json::Value> {
    let prefix = |i: &str| i.chars().take(3).collect::<String>();
    let mut buyers: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (c, items) in &split.bought {
        for i in items {
            buyers.entry(prefix(i)).or_default().insert(*c);
        }
    }
    let mut groups: Vec<(&String, usize)> = buyers.iter().map(|(p, b)| (p, b.len())).collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let vector = |c: u64| {
        model
            .customer_position(&c.to_string())
            .map(|r| unit(model.customer_vector(r)))
    };
    groups
        .into_iter()
        .take(GROUPS)
        .map(|(g, _)| {
            let seeds = &buyers[g];
            let candidates: Vec<u64> = split
                .bought
                .keys()
                .filter(|c| !seeds.contains(c))
                .copied()
                .collect();
            let positives: BTreeSet<u64> = candidates
                .iter()
                .filter(|c| {
                    split
                        .test_bought
                        .get(c)
                        .is_some_and(|items| items.iter().any(|i| prefix(i) == *g))
                })
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
            let mut centroid = vec![0f32; model.factors];
            for v in seeds.iter().filter_map(|&c| vector(c)) {
                centroid.iter_mut().zip(&v).for_each(|(a, x)| *a += x);
            }
            let centroid = unit(&centroid);
            let mut scored: Vec<(f32, u64)> = candidates
                .iter()
                .map(|&c| {
                    (
                        vector(c).map_or(f32::NEG_INFINITY, |v| dot(&v, &centroid)),
                        c,
                    )
                })
                .collect();
            scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let audience: Vec<u64> = scored.iter().take(n).map(|(_, c)| *c).collect();
            let mut spenders = candidates.clone();
            spenders.sort_by(|a, b| {
                let (ma, mb) = (
                    split.monetary.get(a).copied().unwrap_or(0),
                    split.monetary.get(b).copied().unwrap_or(0),
                );
                mb.cmp(&ma).then(a.cmp(b))
            });
            spenders.truncate(n);
            let p = precision(&audience);
            let random = if candidates.is_empty() {
                0.0
            } else {
                positives.len() as f64 / candidates.len() as f64
            };
            let spend = precision(&spenders);
            let lift = |d: f64| if d > 0.0 { json!(p / d) } else { json!(null) };
            json!({
                "group": g, "seeds": seeds.len(), "candidates": candidates.len(),
                "positives": positives.len(), "audience": n, "precision": p,
                "lift_vs_random": lift(random), "lift_vs_top_spenders": lift(spend),
                "random_precision": random, "top_spenders_precision": spend,
            })
        })
        .collect()
}

/// Runs the evaluation.
pub fn run(args: &EvaluateArgs) -> anyhow::Result<()> {
    if args.context {
        return run_context(args);
    }
    let rows = read_data(&args.data)?;
    let (als, confidence) = settings(args)?;
    let mut settings = Settings { als, confidence };
    let mut tuning = serde_json::Value::Null;
    let mut prior_beta = None;
    if args.tune {
        let validation = validation_split(&rows);
        eprintln!(
            "validation: train before {}, {} evaluated customers",
            validation.cutoff, validation.counts["evaluated_customers"]
        );
        let tuned = eval_tune::tune(&validation, settings)?;
        eprintln!(
            "chosen on validation ({} fits): {} → NDCG@10 {:.4}",
            tuned.trials.len(),
            tuned.best.settings.json(),
            tuned.best.metrics.ndcg_at_10
        );
        tuning = tuned.json(&validation);
        settings = tuned.best.settings;
        // The prior's weight, on validation too (with the chosen ALS settings).
        let (model, _) = eval_tune::fit(&validation, &settings)?;
        let prior = recent_popularity(&validation, &model);
        let mut best = (0f32, false, offer_metrics(&validation, &model).ndcg_at_10);
        for (standardise, grid) in [
            (
                true,
                vec![0.2f32, 0.4, 0.8, 1.2, 1.6, 2.4, 3.2, 4.8, 6.4, 9.6],
            ),
            (false, vec![0.01f32, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8]),
        ] {
            for beta in grid {
                let ndcg = prior_metrics(&validation, &model, &prior, beta, standardise).ndcg_at_10;
                eprintln!(
                    "prior beta {beta} standardised {standardise}: validation NDCG@10 {ndcg:.4}"
                );
                if ndcg > best.2 {
                    best = (beta, standardise, ndcg);
                }
            }
        }
        prior_beta = Some(best);
    }
    let split = split(&rows);
    let (model, train_seconds) = eval_tune::fit(&split, &settings)?;
    let (als, confidence) = (&settings.als, &settings.confidence);
    let (ours, popular) = (offer_metrics(&split, &model), popularity_metrics(&split));
    let with_prior = prior_beta.map(|(beta, standardise, validation_ndcg)| {
        let prior = recent_popularity(&split, &model);
        let m = prior_metrics(&split, &model, &prior, beta, standardise);
        println!(
            "ALS + recent-popularity prior (beta {beta}, standardised {standardise}, chosen on validation, NDCG@10 {validation_ndcg:.4} there): test NDCG@10 {:.4}, Recall@10 {:.4}, HitRate@10 {:.4}",
            m.ndcg_at_10, m.recall_at_10, m.hit_rate_at_10
        );
        json!({"beta": beta, "standardised": standardise, "prior_days": crate::eval_offers::PRIOR_DAYS,
               "validation_ndcg_at_10": validation_ndcg, "test": m})
    });
    let groups = lookalike(&split, &model);
    let report = json!({
        "protocol": "doppel-eval-v1",
        "cutoff": split.cutoff,
        "counts": split.counts,
        "nbo": {"doppel": ours, "popularity": popular},
        "train_seconds": train_seconds,
        "threads": rayon_threads(),
        "model": {
            "factors": als.factors, "iterations": als.iterations, "regularization": als.regularization,
            "unobserved_weight": als.unobserved_weight,
            "regularization_exponent": als.regularization_exponent,
            "alpha": confidence.alpha, "half_life_days": confidence.half_life_days,
            "confidence": "1 + alpha * strength (event weights, ln quantity, recency decay, returns subtract)",
            "lookalike": "centroid"
        },
        "lookalike": groups,
        "tuning": tuning,
        "experiment_recent_popularity_prior": with_prior,
    });
    println!("| model | Recall@10 | NDCG@10 | HitRate@10 | Precision@10 |\n|---|---|---|---|---|");
    for (name, m) in [("doppel ALS", ours), ("popularity", popular)] {
        println!(
            "| {name} | {:.4} | {:.4} | {:.4} | {:.4} |",
            m.recall_at_10, m.ndcg_at_10, m.hit_rate_at_10, m.precision_at_10
        );
    }
    println!(
        "\ntraining: {train_seconds:.2}s on {} threads; counts {:?}",
        rayon_threads(),
        split.counts
    );
    let lifts: Vec<f64> = groups
        .iter()
        .filter_map(|g| g["lift_vs_random"].as_f64())
        .collect();
    println!(
        "lookalike mean lift vs random: {:.2} over {} groups",
        lifts.iter().sum::<f64>() / lifts.len().max(1) as f64,
        lifts.len()
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `--context`: the context report on the planted set and, when its file is there, on
/// Online Retail.
fn run_context(args: &EvaluateArgs) -> anyhow::Result<()> {
    let (als, confidence) = settings(args)?;
    let mut sets = vec![eval_context::planted(
        args.planted_customers,
        args.planted_effect,
    )];
    if args.data.exists() {
        let split = split(&read_data(&args.data)?);
        sets.push(eval_context::ContextSet {
            name: "retail",
            context: "country (and hour, weekday)",
            train: split.train_events,
            test: split.test_events,
            categories: std::collections::HashMap::new(),
        });
    } else {
        eprintln!("{} not found: Online Retail skipped", args.data.display());
    }
    println!(
        "| set | queries | NDCG@10 without context | with context | ratio | weights chosen on validation |\n|---|---|---|---|---|---|"
    );
    let mut results = Vec::new();
    for set in &sets {
        let result = eval_context::evaluate(set, &als, &confidence)?;
        println!("{}", eval_context::table_row(&result));
        results.push(result.json);
    }
    if let Some(path) = &args.json {
        let report = json!({"protocol": "doppel-eval-v1 §10 (context)", "sets": results});
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The ALS and confidence settings of the flags.
fn settings(args: &EvaluateArgs) -> anyhow::Result<(AlsParams, ConfidenceConfig)> {
    let (als, confidence) = args.als.settings()?;
    // Like implicit's default (calculate_training_loss=False): no loss pass.
    let als = AlsParams {
        compute_loss: false,
        ..als
    };
    Ok((als, confidence))
}

/// Reads the Online Retail rows (gzip or plain).
fn read_data(path: &std::path::Path) -> anyhow::Result<Vec<crate::eval_data::Row>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        read_rows(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        read_rows(BufReader::new(file))
    }
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
