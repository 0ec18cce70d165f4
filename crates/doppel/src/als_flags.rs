//! The ALS hyper-parameter flags `doppel train` and `doppel evaluate` share. Unset ones
//! take Train's defaults (chosen by `doppel evaluate --tune` on a validation window).

use clap::Args;
use doppel_train::{AlsParams, ConfidenceConfig, PriorSettings};

/// ALS and confidence flags.
#[derive(Args, Clone, Debug, Default)]
pub struct AlsFlags {
    /// Latent factors.
    #[arg(long)]
    pub factors: Option<u32>,
    /// L2 regularisation λ.
    #[arg(long)]
    pub regularization: Option<f32>,
    /// Weight of the cells a customer never touched (α₀), in (0, 1000].
    #[arg(long)]
    pub unobserved_weight: Option<f32>,
    /// Frequency scaling ν of the regularisation, in [0, 1]: λ × (n + α₀N)^ν.
    #[arg(long)]
    pub regularization_exponent: Option<f32>,
    /// Confidence scale: c = 1 + alpha × strength.
    #[arg(long)]
    pub alpha: Option<f32>,
    /// ALS iterations.
    #[arg(long)]
    pub iterations: Option<u32>,
    /// Half-life of event weight, days (0: no decay).
    #[arg(long)]
    pub half_life_days: Option<f32>,
    /// Weight β of the recent-popularity prior of offers, in [0, 100] (0: plain ALS;
    /// default: chosen by the run on the newest 10 % of the log).
    #[arg(long)]
    pub recent_popularity_weight: Option<f32>,
    /// Window of the recent-popularity prior, days, in (0, 365].
    #[arg(long)]
    pub recent_popularity_days: Option<f32>,
    /// Weight w of the offers' recency shift towards the customer's newest purchases, in
    /// [0, 10] (0: none; default: chosen by the run with β).
    #[arg(long)]
    pub recency_weight: Option<f32>,
}

impl AlsFlags {
    /// Train's defaults overridden by the flags set, every value checked.
    pub fn settings(&self) -> anyhow::Result<(AlsParams, ConfidenceConfig)> {
        let mut confidence = ConfidenceConfig::default();
        if let Some(a) = self.alpha {
            confidence.alpha = a;
        }
        if let Some(h) = self.half_life_days {
            confidence.half_life_days = h;
        }
        let d = AlsParams::default();
        let als = AlsParams {
            factors: self.factors.map_or(d.factors, |f| f as usize),
            iterations: self.iterations.map_or(d.iterations, |i| i as usize),
            regularization: self.regularization.unwrap_or(d.regularization),
            unobserved_weight: self.unobserved_weight.unwrap_or(d.unobserved_weight),
            regularization_exponent: self
                .regularization_exponent
                .unwrap_or(d.regularization_exponent),
            ..d
        };
        als.validate()?;
        confidence.validate()?;
        Ok((als, confidence))
    }

    /// Train's recent-popularity prior overridden by the flags set, checked.
    pub fn prior(&self) -> anyhow::Result<PriorSettings> {
        let d = PriorSettings::default();
        let prior = PriorSettings {
            weight: self.recent_popularity_weight.or(d.weight),
            days: self.recent_popularity_days.unwrap_or(d.days),
            recency_weight: self.recency_weight.or(d.recency_weight),
        };
        prior.validate()?;
        Ok(prior)
    }
}
