//! The hyper-parameters a trained version records in its `params`, and what is read back
//! from them: the fold-in state of a stored version needs the regularisation and the
//! confidence settings it was trained with.

use std::collections::BTreeMap;

use doppel_types::offer_prior::{DAYS_PARAM, WEIGHT_PARAM};
use doppel_types::offer_recency;
use doppel_types::{VectorLayout, VersionInfo, VersionSource};

use crate::als_params::SolveWeights;
use crate::{AlsParams, ConfidenceConfig, FoldInModel};

/// The settings of a training run as recorded in `VersionInfo.params`.
pub fn params_of(als: &AlsParams, confidence: &ConfidenceConfig) -> BTreeMap<String, String> {
    let (a, c) = (als, confidence);
    [
        ("algorithm", "implicit-als-cg".to_owned()),
        ("factors", a.factors.to_string()),
        ("regularization", a.regularization.to_string()),
        ("unobserved_weight", a.unobserved_weight.to_string()),
        (
            "regularization_exponent",
            a.regularization_exponent.to_string(),
        ),
        ("iterations", a.iterations.to_string()),
        ("cg_steps", a.cg_steps.to_string()),
        ("seed", a.seed.to_string()),
        ("alpha", c.alpha.to_string()),
        ("half_life_days", c.half_life_days.to_string()),
        ("purchase_weight", c.purchase_weight.to_string()),
        ("add_to_cart_weight", c.add_to_cart_weight.to_string()),
        ("view_weight", c.view_weight.to_string()),
        ("return_weight", c.return_weight.to_string()),
        ("impression_weight", c.impression_weight.to_string()),
        ("click_weight", c.click_weight.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Records how a version ranks its offers: the recent-popularity prior's weight β (0:
/// none) and window, the recency shift's weight w (0: none) and decay, and how each weight
/// was set: given in `settings`, or chosen on the log's newest part (`fit`, with what each
/// weight tried scored). Returns (β, w).
pub fn record_prior(
    params: &mut BTreeMap<String, String>,
    settings: &crate::PriorSettings,
    fit: Option<&crate::PriorFit>,
) -> (f32, f32) {
    let weight = settings.weight.or(fit.map(|f| f.weight)).unwrap_or(0.0);
    let recency_weight = settings
        .recency_weight
        .or(fit.map(|f| f.recency_weight))
        .unwrap_or(0.0);
    params.insert(WEIGHT_PARAM.to_owned(), weight.to_string());
    params.insert(DAYS_PARAM.to_owned(), settings.days.to_string());
    params.insert(
        offer_recency::WEIGHT_PARAM.to_owned(),
        recency_weight.to_string(),
    );
    params.insert(
        offer_recency::DECAY_PARAM.to_owned(),
        offer_recency::DEFAULT_DECAY.to_string(),
    );
    let how = |given: bool, trials: Option<&[(f32, f64)]>| match (fit, trials) {
        _ if given => "given".to_owned(),
        (Some(f), Some(trials)) if !trials.is_empty() => {
            let tried = trials
                .iter()
                .map(|(w, n)| format!("{w}:{n:.4}"))
                .collect::<Vec<_>>()
                .join(",");
            let window = if f.per_customer {
                "each one's newest 10 % of events".to_owned()
            } else {
                format!("from {} ms", f.from_ms)
            };
            format!(
                "chosen on {} customers' purchases {window} (NDCG@10 by weight {tried})",
                f.customers
            )
        }
        (Some(f), Some(_)) if f.per_customer && f.customers >= crate::prior_fit::MIN_CUSTOMERS => {
            "0: not chosen on a per-customer window (popularity \"now\" needs one now)".to_owned()
        }
        (Some(f), _) => format!(
            "0: {} customers with new purchases in {}, {} needed to choose",
            f.customers,
            if f.per_customer {
                "their own newest 10 %"
            } else {
                "the log's newest 10 %"
            },
            crate::prior_fit::MIN_CUSTOMERS
        ),
        (None, _) => "0: not chosen".to_owned(),
    };
    params.insert(
        format!("{WEIGHT_PARAM}_source"),
        how(settings.weight.is_some(), fit.map(|f| f.ndcg.as_slice())),
    );
    params.insert(
        format!("{}_source", offer_recency::WEIGHT_PARAM),
        how(
            settings.recency_weight.is_some(),
            fit.map(|f| f.recency_ndcg.as_slice()),
        ),
    );
    (weight, recency_weight)
}

/// The solve weights and confidence settings read back from recorded `params` (defaults
/// for what is missing or unreadable: a version trained before α₀ and ν existed was
/// trained with their defaults).
pub fn recorded_settings(params: &BTreeMap<String, String>) -> (SolveWeights, ConfidenceConfig) {
    let get = |key: &str, default: f32| {
        params
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let d = ConfidenceConfig::default();
    let confidence = ConfidenceConfig {
        alpha: get("alpha", d.alpha),
        half_life_days: get("half_life_days", d.half_life_days),
        purchase_weight: get("purchase_weight", d.purchase_weight),
        add_to_cart_weight: get("add_to_cart_weight", d.add_to_cart_weight),
        view_weight: get("view_weight", d.view_weight),
        return_weight: get("return_weight", d.return_weight),
        impression_weight: get("impression_weight", d.impression_weight),
        click_weight: get("click_weight", d.click_weight),
    };
    let a = AlsParams::default();
    let weights = SolveWeights {
        regularization: get("regularization", a.regularization),
        unobserved_weight: get("unobserved_weight", a.unobserved_weight),
        regularization_exponent: get("regularization_exponent", a.regularization_exponent),
    };
    // Unreadable numbers fall back as a whole rather than poison every fold-in.
    let weights = if weights.validate().is_ok() {
        weights
    } else {
        a.solve_weights()
    };
    (weights, confidence)
}

/// The fold-in state of a trained version, from its stored item vectors (none for an
/// imported version: its vectors did not come from this model).
pub fn fold_in_model(info: &VersionInfo, items: &[(String, Vec<f32>)]) -> Option<FoldInModel> {
    if info.source != VersionSource::Trained {
        return None;
    }
    let layout = VectorLayout::of(info)?;
    let (weights, confidence) = recorded_settings(&info.params);
    FoldInModel::from_serving_items(items, layout, weights, confidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_settings_round_trip() {
        let als = AlsParams {
            regularization: 0.2,
            unobserved_weight: 0.3,
            regularization_exponent: 0.5,
            ..AlsParams::default()
        };
        let confidence = ConfidenceConfig {
            alpha: 7.5,
            half_life_days: 12.0,
            ..ConfidenceConfig::default()
        };
        let (weights, back) = recorded_settings(&params_of(&als, &confidence));
        assert_eq!(weights, als.solve_weights());
        assert_eq!(back.alpha, 7.5);
        assert_eq!(back.half_life_days, 12.0);
    }
}
