//! Same data and seed → bit-identical factors, whatever the thread count.

use doppel_synth::{REFERENCE_TIME_MS, SynthConfig, generate};
use doppel_train::{AlsParams, ConfidenceConfig, Interactions, Model, no_progress, train};

fn interactions() -> Interactions {
    let data = generate(&SynthConfig {
        customers: 400,
        items: 120,
        tastes: 4,
        events_per_customer: 20,
        seed: 3,
        ..SynthConfig::default()
    });
    Interactions::from_events(
        &data.events,
        &ConfidenceConfig::default(),
        REFERENCE_TIME_MS,
    )
}

fn bits(model: &Model) -> (Vec<u32>, Vec<u32>) {
    (
        model.customer_factors.iter().map(|x| x.to_bits()).collect(),
        model.item_factors.iter().map(|x| x.to_bits()).collect(),
    )
}

fn params(threads: usize, seed: u64) -> AlsParams {
    AlsParams {
        factors: 24,
        iterations: 5,
        threads,
        seed,
        ..AlsParams::default()
    }
}

#[test]
fn same_seed_gives_the_same_bits_on_any_thread_count() {
    let data = interactions();
    let reference = bits(&train(&data, &params(1, 9), &no_progress).expect("trains"));
    for threads in [1, 2, 3, 0] {
        let again = train(&data, &params(threads, 9), &no_progress).expect("trains");
        assert!(
            bits(&again) == reference,
            "threads = {threads} changed the factors"
        );
    }
}

#[test]
fn another_seed_gives_other_factors() {
    let data = interactions();
    let a = train(&data, &params(0, 1), &no_progress).expect("trains");
    let b = train(&data, &params(0, 2), &no_progress).expect("trains");
    assert_ne!(bits(&a), bits(&b));
}

#[test]
fn progress_reports_every_iteration_and_the_loss_falls() {
    let data = interactions();
    let steps = std::cell::RefCell::new(Vec::new());
    train(&data, &params(2, 4), &|step| steps.borrow_mut().push(step)).expect("trains");
    let steps = steps.into_inner();
    assert_eq!(steps.len(), 5);
    assert!(
        steps
            .iter()
            .enumerate()
            .all(|(n, s)| s.iteration == n + 1 && s.iterations == 5)
    );
    let losses: Vec<f64> = steps.iter().map(|s| s.loss.expect("loss on")).collect();
    assert!(losses[4] < losses[0], "{losses:?}");
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0));
}
