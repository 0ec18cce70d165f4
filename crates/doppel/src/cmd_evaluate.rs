//! `doppel evaluate`: doppel's learning on Online Retail under `benches/eval/PROTOCOL.md`
//! (time split, next-best-offer metrics, lookalike lift), as a Markdown table and JSON that
//! `benches/eval/compare_peers.py --doppel-json` puts beside the tuned peers' numbers.
//!
//! Offers come from the trained factors by exact inner product (what the serving index
//! returns through its inner-product-preserving vectors, without its approximation);
//! audiences from the cosine to the seeds' centroid (doppel's `CENTROID` strategy).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use doppel_train::{AlsParams, ConfidenceConfig, PriorSettings};
use serde_json::json;

use crate::als_flags::AlsFlags;
use crate::eval_context;
use crate::eval_data::{read_rows, split, validation_split};
use crate::eval_offers::{offer_metrics, popularity_metrics};
use crate::eval_tune::{self, Settings};
use crate::{eval_lookalike, eval_seed_sweep};

/// Where the Online Retail file is expected (CI has `../shared` beside the checkout).
pub const DEFAULT_DATA: &str = "../shared/data/online_retail.csv.gz";

/// The data sets `doppel evaluate` knows.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dataset {
    /// UCI Online Retail (PROTOCOL.md §1–§10).
    OnlineRetail,
    /// MovieLens-100k as RecBole ships it (PROTOCOL.md §11); offers only.
    #[value(name = "ml-100k")]
    Ml100k,
}

/// Flags of `doppel evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Which data set.
    #[arg(long, value_enum, default_value = "online-retail")]
    pub dataset: Dataset,
    /// The data file: the Online Retail CSV (gzip or plain), or `ml-100k.inter`
    /// (default: where `benches/eval/fetch_ml100k.sh` puts it).
    #[arg(long, default_value = DEFAULT_DATA)]
    pub data: PathBuf,
    /// Write the protocol's JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Search the ALS settings on the validation split (PROTOCOL.md §2.1), starting from
    /// the flags' settings, then report the test window once with the chosen ones.
    #[arg(long)]
    pub tune: bool,
    /// Also time how many seeds each lookalike strategy needs: keyword-group audiences from
    /// 10 to 400 sampled seeds, on the validation split and on the test window (JSON key
    /// `lookalike_seed_sweep`).
    #[arg(long)]
    pub seed_sweep: bool,
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

/// Runs the evaluation.
pub fn run(args: &EvaluateArgs) -> anyhow::Result<()> {
    if args.context {
        return run_context(args);
    }
    if args.dataset == Dataset::Ml100k {
        return run_movielens(args);
    }
    let rows = read_data(&args.data)?;
    let (als, confidence) = settings(args)?;
    let prior = args.als.prior()?;
    let mut settings = Settings {
        als,
        confidence,
        prior,
    };
    let mut tuning = serde_json::Value::Null;
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
        settings = tuned.best.settings.clone();
    }
    let split = split(&rows);
    let (model, _) = eval_tune::fit(&split, &settings)?;
    let train_timing = eval_tune::TrainTiming::measure(&split, &settings)?;
    let train_seconds = train_timing.median_seconds;
    let (als, confidence, prior) = (&settings.als, &settings.confidence, &settings.prior);
    let ((ours, (weight, recency_weight)), popular) = (
        offer_metrics(&split, &model, &settings),
        popularity_metrics(&split),
    );
    let plain = Settings {
        prior: PriorSettings {
            weight: Some(0.0),
            recency_weight: Some(0.0),
            ..*prior
        },
        ..settings.clone()
    };
    let (without_prior, _) = offer_metrics(&split, &model, &plain);
    let groups = eval_lookalike::score(&split, &model, &eval_lookalike::prefix_groups(&split));
    let keyword_groups = eval_lookalike::score(
        &split,
        &model,
        &eval_lookalike::keyword_groups(&rows, &split),
    );
    let seed_sweep = if args.seed_sweep {
        let validation = validation_split(&rows);
        let (validation_model, _) = eval_tune::fit(&validation, &settings)?;
        let on_validation = eval_seed_sweep::sweep(
            &validation,
            &validation_model,
            &eval_lookalike::keyword_groups(&rows, &validation),
        );
        let on_test = eval_seed_sweep::sweep(
            &split,
            &model,
            &eval_lookalike::keyword_groups(&rows, &split),
        );
        eval_seed_sweep::print(
            "seed sweep, keyword groups, validation split:",
            &on_validation,
        );
        eval_seed_sweep::print("seed sweep, keyword groups, test window:", &on_test);
        json!({"validation": on_validation, "test": on_test})
    } else {
        serde_json::Value::Null
    };
    let report = json!({
        "lookalike_seed_sweep": seed_sweep,
        "protocol": "doppel-eval-v1",
        "cutoff": split.cutoff,
        "counts": split.counts,
        "nbo": {"doppel": ours, "popularity": popular, "doppel_without_prior": without_prior},
        "train_seconds": train_seconds,
        "train_timing": train_timing.json(),
        "threads": rayon_threads(),
        "model": {
            "factors": als.factors, "iterations": als.iterations, "regularization": als.regularization,
            "unobserved_weight": als.unobserved_weight,
            "regularization_exponent": als.regularization_exponent,
            "alpha": confidence.alpha, "half_life_days": confidence.half_life_days,
            "recent_popularity_weight": weight,
            "recent_popularity_weight_source": if prior.weight.is_some() { "given" } else { "chosen on the train rows' newest 10 % (as Train)" },
            "recent_popularity_days": prior.days,
            "recency_weight": recency_weight,
            "recency_weight_source": if prior.recency_weight.is_some() { "given" } else { "chosen on the train rows' newest 10 % (as Train)" },
            "offers": "served: z(q·y) + weight × z(ln(1 + recent distinct buyers)), q = u shifted towards the newest purchases by recency_weight, exact",
            "confidence": "1 + alpha * strength (event weights, ln quantity, recency decay, returns subtract)",
            "lookalike": "as served with AUTO: CLASSIFIER (ridge-LDA, raw factors, lambda 10) for 100+ seeds, centroid for 10-99, else centroid or max-similarity; see auto_strategy per group"
        },
        "lookalike": groups,
        "lookalike_keyword": keyword_groups,
        "tuning": tuning,
    });
    print_offers(&[
        ("doppel (served, with prior)", ours),
        ("doppel ALS without prior", without_prior),
        ("popularity", popular),
    ]);
    println!(
        "\ntraining: {train_seconds:.2}s on {} threads; recent-popularity weight {weight} ({}), window {} days; recency weight {recency_weight}; counts {:?}",
        rayon_threads(),
        if prior.weight.is_some() {
            "given"
        } else {
            "chosen on the train rows"
        },
        prior.days,
        split.counts
    );
    for (kind, scored) in [("prefix", &groups), ("keyword", &keyword_groups)] {
        let lifts: Vec<f64> = scored
            .iter()
            .filter_map(|g| g["lift_vs_random"].as_f64())
            .collect();
        let names: Vec<&str> = scored.iter().filter_map(|g| g["group"].as_str()).collect();
        let mean_lift = |key: &str| {
            let l: Vec<f64> = scored
                .iter()
                .filter_map(|g| Some(g[key].as_f64()? / g["random_precision"].as_f64()?))
                .filter(|x| x.is_finite())
                .collect();
            l.iter().sum::<f64>() / l.len().max(1) as f64
        };
        let picks: Vec<&str> = scored
            .iter()
            .filter_map(|g| g["auto_strategy"].as_str())
            .collect();
        println!(
            "{kind} groups: AUTO (served) picks {picks:?}; mean lift vs random: served {:.2}, CENTROID {:.2}, CLASSIFIER {:.2}",
            mean_lift("precision"),
            mean_lift("centroid_precision"),
            mean_lift("classifier_precision")
        );
        println!(
            "lookalike mean lift vs random, {kind} groups ({}): {:.2} over {} groups",
            names.join(", "),
            lifts.iter().sum::<f64>() / lifts.len().max(1) as f64,
            lifts.len()
        );
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The offer metrics as a Markdown table on stdout.
fn print_offers(rows: &[(&str, crate::eval_metrics::RankingMetrics)]) {
    println!("| model | Recall@10 | NDCG@10 | HitRate@10 | Precision@10 |\n|---|---|---|---|---|");
    for (name, m) in rows {
        println!(
            "| {name} | {:.4} | {:.4} | {:.4} | {:.4} |",
            m.recall_at_10, m.ndcg_at_10, m.hit_rate_at_10, m.precision_at_10
        );
    }
}

/// Where `benches/eval/fetch_ml100k.sh` puts `ml-100k.inter`.
fn default_movielens_path() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("doppel/ml-100k/ml-100k.inter")
}

/// `--dataset ml-100k`: offers on MovieLens-100k (PROTOCOL.md §11), settings tuned on the
/// validation evaluation when `--tune`, the test evaluation read once.
fn run_movielens(args: &EvaluateArgs) -> anyhow::Result<()> {
    let path = if args.data.as_os_str() == DEFAULT_DATA {
        default_movielens_path()
    } else {
        args.data.clone()
    };
    let file = File::open(&path).with_context(|| {
        format!(
            "opening {} (run benches/eval/fetch_ml100k.sh first)",
            path.display()
        )
    })?;
    let ml = crate::eval_movielens::read(BufReader::new(file))?;
    let (als, confidence) = settings(args)?;
    let mut settings = Settings {
        als,
        confidence,
        prior: args.als.prior()?,
    };
    let mut tuning = serde_json::Value::Null;
    if args.tune {
        let tuned = eval_tune::tune(&ml.validation, settings)?;
        eprintln!(
            "chosen on validation ({} fits): {} → NDCG@10 {:.4}",
            tuned.trials.len(),
            tuned.best.settings.json(),
            tuned.best.metrics.ndcg_at_10
        );
        tuning = tuned.json(&ml.validation);
        settings = tuned.best.settings.clone();
    }
    let (model, _) = eval_tune::fit(&ml.test, &settings)?;
    let train_timing = eval_tune::TrainTiming::measure(&ml.test, &settings)?;
    let train_seconds = train_timing.median_seconds;
    let ((ours, (weight, recency_weight)), popular) = (
        offer_metrics(&ml.test, &model, &settings),
        popularity_metrics(&ml.test),
    );
    let plain = Settings {
        prior: PriorSettings {
            weight: Some(0.0),
            recency_weight: Some(0.0),
            ..settings.prior
        },
        ..settings.clone()
    };
    let (without_prior, _) = offer_metrics(&ml.test, &model, &plain);
    print_offers(&[
        ("doppel (served, with prior)", ours),
        ("doppel ALS without prior", without_prior),
        ("popularity", popular),
    ]);
    println!(
        "\ntraining: {train_seconds:.2}s on {} threads; recent-popularity weight {weight}; recency weight {recency_weight}; counts {:?}, validation {:?}, test {:?}",
        rayon_threads(),
        ml.counts,
        ml.validation.counts,
        ml.test.counts
    );
    if let Some(out) = &args.json {
        let mut counts = serde_json::to_value(&ml.counts)?;
        counts["validation"] = serde_json::to_value(&ml.validation.counts)?;
        counts["test"] = serde_json::to_value(&ml.test.counts)?;
        let mut model_json = settings.json();
        model_json["recent_popularity_weight"] = json!(weight);
        model_json["recency_weight"] = json!(recency_weight);
        let report = json!({
            "protocol": "doppel-eval-ml100k-v1",
            "counts": counts,
            "cutoff_ms": {"validation": ml.validation.cutoff_ms, "test": ml.test.cutoff_ms},
            "nbo": {"doppel": ours, "popularity": popular, "doppel_without_prior": without_prior},
            "train_seconds": train_seconds,
            "train_timing": train_timing.json(),
            "threads": rayon_threads(),
            "model": model_json,
            "tuning": tuning,
        });
        std::fs::write(out, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", out.display()))?;
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
