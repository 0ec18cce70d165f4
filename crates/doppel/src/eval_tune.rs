//! `doppel evaluate --tune`: the ALS hyper-parameters and the window of the offers'
//! recent-popularity prior searched on the validation split
//! (`benches/eval/PROTOCOL.md` §2.1) by NDCG@10 of offers, never on the test window.
//!
//! The search is coordinate ascent over fixed grids: each round tries every value of one
//! knob with the others held, keeps the best if it beats the current one by more than
//! [`MIN_GAIN`], and moves to the next knob; it stops after a
//! round that changed nothing (at most [`ROUNDS`]). Two knobs move λ with them so that a
//! step compares like with like: a new unobserved weight α₀ scales λ by the same ratio (the
//! data term scales with α₀), and a new exponent ν keeps the average customer's penalty
//! `λ (n̄ + α₀N)^ν` where it was.

use std::collections::HashMap;
use std::time::Instant;

use doppel_train::{AlsParams, ConfidenceConfig, Interactions, Model, PriorSettings};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::eval_data::Split;
use crate::eval_metrics::RankingMetrics;
use crate::eval_offers::offer_metrics;

/// Most coordinate-ascent rounds.
const ROUNDS: usize = 3;
/// Least relative validation gain that moves a knob: smaller gains are noise on ~1,000
/// customers, and near-equivalent settings (ν 0 with λ 30 against ν 1 with λ 0.0084 on a
/// 3,600-item catalogue) should keep the one that transfers to other catalogue sizes.
const MIN_GAIN: f64 = 0.01;

/// One setting of every tuned knob.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// ALS settings.
    pub als: AlsParams,
    /// Confidence settings.
    pub confidence: ConfidenceConfig,
    /// The offers' recent-popularity prior (no refit needed to change it; its weight is
    /// chosen per fit, as Train does, unless given).
    pub prior: PriorSettings,
}

impl Settings {
    fn key(&self) -> String {
        format!(
            "{} beta{:?} days{}",
            self.fit_key(),
            self.prior.weight,
            self.prior.days
        )
    }

    /// What the factorisation depends on (not the prior).
    fn fit_key(&self) -> String {
        let (a, c) = (&self.als, &self.confidence);
        format!(
            "f{} l{} a0{} nu{} it{} alpha{} hl{}",
            a.factors,
            a.regularization,
            a.unobserved_weight,
            a.regularization_exponent,
            a.iterations,
            c.alpha,
            c.half_life_days
        )
    }

    /// The settings as JSON.
    pub fn json(&self) -> serde_json::Value {
        let (a, c) = (&self.als, &self.confidence);
        json!({
            "factors": a.factors, "regularization": a.regularization,
            "unobserved_weight": a.unobserved_weight,
            "regularization_exponent": a.regularization_exponent,
            "iterations": a.iterations, "alpha": c.alpha, "half_life_days": c.half_life_days,
            "recent_popularity_weight": self.prior.weight,
            "recent_popularity_days": self.prior.days,
            "recency_weight": self.prior.recency_weight,
        })
    }
}

/// The knobs and their grids.
#[derive(Clone, Copy, Debug)]
enum Knob {
    Factors,
    Regularization,
    UnobservedWeight,
    Exponent,
    Alpha,
    HalfLife,
    Iterations,
    PriorDays,
}

const KNOBS: [Knob; 8] = [
    Knob::UnobservedWeight,
    Knob::Regularization,
    Knob::Exponent,
    Knob::Alpha,
    Knob::HalfLife,
    Knob::Factors,
    Knob::Iterations,
    Knob::PriorDays,
];

impl Knob {
    fn name(self) -> &'static str {
        match self {
            Knob::Factors => "factors",
            Knob::Regularization => "regularization",
            Knob::UnobservedWeight => "unobserved_weight",
            Knob::Exponent => "regularization_exponent",
            Knob::Alpha => "alpha",
            Knob::HalfLife => "half_life_days",
            Knob::Iterations => "iterations",
            Knob::PriorDays => "recent_popularity_days",
        }
    }

    fn grid(self) -> &'static [f32] {
        match self {
            Knob::Factors => &[32.0, 64.0, 128.0],
            Knob::Regularization => &[
                1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0,
            ],
            Knob::UnobservedWeight => &[0.01, 0.03, 0.1, 0.3, 1.0],
            Knob::Exponent => &[0.0, 0.5, 1.0],
            Knob::Alpha => &[0.3, 1.0, 3.0, 10.0, 30.0],
            Knob::HalfLife => &[15.0, 30.0, 60.0, 120.0, 0.0],
            Knob::Iterations => &[10.0, 15.0, 25.0],
            Knob::PriorDays => &[3.0, 7.0, 14.0, 28.0, 56.0],
        }
    }

    fn get(self, s: &Settings) -> f32 {
        match self {
            Knob::Factors => s.als.factors as f32,
            Knob::Regularization => s.als.regularization,
            Knob::UnobservedWeight => s.als.unobserved_weight,
            Knob::Exponent => s.als.regularization_exponent,
            Knob::Alpha => s.confidence.alpha,
            Knob::HalfLife => s.confidence.half_life_days,
            Knob::Iterations => s.als.iterations as f32,
            Knob::PriorDays => s.prior.days,
        }
    }

    /// `s` with this knob at `value` (λ moved along where the module docs say).
    fn set(self, s: &Settings, value: f32, shape: &DataShape) -> Settings {
        let mut out = s.clone();
        let a = &mut out.als;
        match self {
            Knob::Factors => a.factors = value as usize,
            Knob::Regularization => a.regularization = value,
            Knob::UnobservedWeight => {
                a.regularization *= value / a.unobserved_weight;
                a.unobserved_weight = value;
            }
            Knob::Exponent => {
                let mass = shape.mean_row + f64::from(a.unobserved_weight) * shape.columns;
                let scale = mass.powf(f64::from(a.regularization_exponent - value));
                a.regularization = (f64::from(a.regularization) * scale) as f32;
                a.regularization_exponent = value;
            }
            Knob::Alpha => out.confidence.alpha = value,
            Knob::HalfLife => out.confidence.half_life_days = value,
            Knob::Iterations => a.iterations = value as usize,
            Knob::PriorDays => out.prior.days = value,
        }
        out
    }
}

/// What the λ moves need of the data.
struct DataShape {
    /// Mean observed cells per customer.
    mean_row: f64,
    /// Items.
    columns: f64,
}

/// One fit on the validation split.
#[derive(Clone, Debug)]
pub struct Trial {
    /// The settings tried.
    pub settings: Settings,
    /// Offers on the validation window.
    pub metrics: RankingMetrics,
    /// Fit time, seconds.
    pub seconds: f64,
}

/// The search's outcome.
#[derive(Debug)]
pub struct Tuned {
    /// The best settings on validation.
    pub best: Trial,
    /// Every fit, in the order tried.
    pub trials: Vec<Trial>,
}

impl Tuned {
    /// The search as JSON (chosen settings, validation score, every trial).
    pub fn json(&self, validation: &Split) -> serde_json::Value {
        json!({
            "validation_cutoff": validation.cutoff,
            "validation_evaluated_customers": validation.counts.get("evaluated_customers"),
            "chosen": self.best.settings.json(),
            "validation": self.best.metrics,
            "trials": self.trials.iter().map(|t| json!({
                "settings": t.settings.json(),
                "validation_ndcg_at_10": t.metrics.ndcg_at_10,
                "seconds": t.seconds,
            })).collect::<Vec<_>>(),
        })
    }
}

/// Fits `settings` on the split's train rows; the seconds are the factorisation's only
/// (like `fit()` on the Python side), not building the matrix.
pub fn fit(split: &Split, settings: &Settings) -> anyhow::Result<(Model, f64)> {
    let now = reference_ms(split);
    let interactions = Interactions::from_events(&split.train_events, &settings.confidence, now);
    let started = Instant::now();
    let model = doppel_train::train(&interactions, &settings.als, &doppel_train::no_progress)?;
    Ok((model, started.elapsed().as_secs_f64()))
}

/// Fits timed in [`TrainTiming::measure`]: the median of several is what the reports compare, since
/// one fit's wall time on a shared 2-core machine varies by ±40 %.
pub const FIT_REPEATS: usize = 5;

/// The final fit's wall time: the median of [`FIT_REPEATS`] fits (every run gives the same
/// model), of the chosen settings and of the same settings at 64 factors, where issue 12
/// compares training cost with the peers.
pub struct TrainTiming {
    /// Median seconds of the chosen settings' fits.
    pub median_seconds: f64,
    /// Every fit's seconds, in run order.
    pub runs: Vec<f64>,
    /// Median seconds at 64 factors.
    pub factors_64_median_seconds: f64,
    /// Every 64-factor fit's seconds.
    pub factors_64_runs: Vec<f64>,
    /// ALS iterations of every fit.
    pub iterations: usize,
}

impl TrainTiming {
    /// Times fits of `settings` on the split's train rows.
    pub fn measure(split: &Split, settings: &Settings) -> anyhow::Result<Self> {
        let runs_of = |settings: &Settings| -> anyhow::Result<Vec<f64>> {
            (0..FIT_REPEATS)
                .map(|_| fit(split, settings).map(|(_, seconds)| seconds))
                .collect()
        };
        let at_64 = Settings {
            als: AlsParams {
                factors: 64,
                ..settings.als.clone()
            },
            ..settings.clone()
        };
        let runs = runs_of(settings)?;
        let factors_64_runs = if settings.als.factors == 64 {
            runs.clone()
        } else {
            runs_of(&at_64)?
        };
        Ok(Self {
            median_seconds: median(&runs),
            factors_64_median_seconds: median(&factors_64_runs),
            runs,
            factors_64_runs,
            iterations: settings.als.iterations,
        })
    }

    /// The timing as JSON.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "repeats": FIT_REPEATS,
            "median_seconds": self.median_seconds,
            "runs": self.runs,
            "factors_64_median_seconds": self.factors_64_median_seconds,
            "factors_64_runs": self.factors_64_runs,
            "iterations": self.iterations,
        })
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The time decay and the prior's window are measured to: the newest train event.
pub fn reference_ms(split: &Split) -> i64 {
    split
        .train_events
        .iter()
        .map(|e| e.timestamp_ms)
        .max()
        .unwrap_or(0)
}

/// Scores offers of `model` (fitted with `settings` in `seconds`) on the split's test
/// window.
fn trial(split: &Split, settings: &Settings, model: &Model, seconds: f64) -> Trial {
    Trial {
        settings: settings.clone(),
        metrics: offer_metrics(split, model, settings).0,
        seconds,
    }
}

/// Coordinate ascent from `start` on the validation split.
pub fn tune(validation: &Split, start: Settings) -> anyhow::Result<Tuned> {
    let interactions = Interactions::from_events(&validation.train_events, &start.confidence, 0);
    let rows = interactions.by_customer();
    let shape = DataShape {
        mean_row: rows.nnz() as f64 / rows.rows().max(1) as f64,
        columns: rows.cols() as f64,
    };
    let bar =
        ProgressBar::new((ROUNDS * KNOBS.iter().map(|k| k.grid().len()).sum::<usize>()) as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "tuning on validation [{bar:30}] {pos}/{len} fits {elapsed} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    // Models by what the fit depends on: a new prior re-scores without refitting.
    let mut fitted: HashMap<String, (Model, f64)> = HashMap::new();
    let mut trials: Vec<Trial> = Vec::new();
    let mut run = |s: &Settings, trials: &mut Vec<Trial>| -> anyhow::Result<usize> {
        if let Some(&i) = seen.get(&s.key()) {
            return Ok(i);
        }
        let (model, seconds) = match fitted.entry(s.fit_key()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(fit(validation, s)?),
        };
        let t = trial(validation, s, model, *seconds);
        trials.push(t);
        seen.insert(s.key(), trials.len() - 1);
        Ok(trials.len() - 1)
    };
    let mut best = run(&start, &mut trials)?;
    for _ in 0..ROUNDS {
        let before = best;
        for knob in KNOBS {
            let current = trials[best].settings.clone();
            for &value in knob.grid() {
                bar.inc(1);
                if value == knob.get(&current) {
                    continue;
                }
                let candidate = knob.set(&current, value, &shape);
                if candidate.als.validate().is_err()
                    || candidate.confidence.validate().is_err()
                    || candidate.prior.validate().is_err()
                {
                    continue;
                }
                let i = run(&candidate, &mut trials)?;
                if trials[i].metrics.ndcg_at_10 > trials[best].metrics.ndcg_at_10 * (1.0 + MIN_GAIN)
                {
                    best = i;
                }
            }
            bar.set_message(format!(
                "{} → best NDCG@10 {:.4}",
                knob.name(),
                trials[best].metrics.ndcg_at_10
            ));
        }
        if best == before {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(Tuned {
        best: trials[best].clone(),
        trials,
    })
}
