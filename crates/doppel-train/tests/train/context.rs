//! Context lifts learned from a planted world: mobile evenings favour the evening
//! categories whoever the customer is, and the fit finds a weight for it on validation;
//! in a world without the effect it keeps the weight at 0.

use std::collections::HashMap;

use doppel_synth::{REFERENCE_TIME_MS, SynthConfig, generate};
use doppel_train::{
    AlsParams, ConfidenceConfig, Interactions, ServingVectors, fit_context, no_progress, train,
};
use doppel_types::{Context, ContextLifts};

fn fit(context_effect: f64) -> (doppel_train::ContextFit, HashMap<String, String>) {
    let data = generate(&SynthConfig {
        customers: 2_000,
        items: 200,
        categories: 8,
        events_per_customer: 30,
        seed: 21,
        context_effect,
        ..SynthConfig::default()
    });
    let confidence = ConfidenceConfig::default();
    let interactions = Interactions::from_events(&data.events, &confidence, REFERENCE_TIME_MS);
    let als = AlsParams {
        factors: 16,
        iterations: 8,
        ..AlsParams::default()
    };
    let model = train(&interactions, &als, &no_progress).expect("training succeeds");
    let serving = ServingVectors::from_model(&model);
    let categories: HashMap<String, String> = data
        .items
        .iter()
        .map(|i| (i.id.clone(), i.category.clone()))
        .collect();
    let fit = fit_context(
        &data.events,
        &serving.items,
        serving.layout,
        &categories,
        als.solve_weights(),
        &confidence,
    );
    (fit, categories)
}

#[test]
fn a_planted_context_effect_is_learned_and_weighted_on_validation() {
    let (fit, categories) = fit(0.8);
    let r = &fit.report;
    assert!(r.queries >= 200, "{r:?}");
    assert!(!r.weights.is_empty(), "{r:?}");
    assert!(r.ndcg_with > r.ndcg_without * 1.05, "{r:?}");
    let lifts = ContextLifts::new(&fit.model);
    let evening_mobile = lifts.resolve(
        &Context {
            device: "mobile".into(),
            ..Context::default()
        },
        REFERENCE_TIME_MS + 20 * 3_600_000,
    );
    let morning_desktop = lifts.resolve(
        &Context {
            device: "desktop".into(),
            ..Context::default()
        },
        REFERENCE_TIME_MS + 9 * 3_600_000,
    );
    // cat01 is the evening category.
    let mean_lift = |active, evening: bool| {
        let items: Vec<u32> = categories
            .iter()
            .filter(|(_, c)| (c.as_str() == "cat01") == evening)
            .filter_map(|(id, _)| lifts.item(id))
            .collect();
        items.iter().map(|&i| lifts.lift(active, i)).sum::<f32>() / items.len() as f32
    };
    let (up, others, morning) = (
        mean_lift(&evening_mobile, true),
        mean_lift(&evening_mobile, false),
        mean_lift(&morning_desktop, true),
    );
    assert!(
        up > 0.02 && others < 0.0 && morning < 0.0,
        "{up} {others} {morning}"
    );
}

#[test]
fn without_a_planted_effect_the_weight_stays_zero() {
    let (fit, _) = fit(0.0);
    assert!(fit.report.queries >= 200, "{:?}", fit.report);
    assert!(fit.report.weights.is_empty(), "{:?}", fit.report);
}
