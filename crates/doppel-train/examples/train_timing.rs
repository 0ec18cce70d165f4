//! Times event aggregation and ALS training on a generated customer base.
//!
//! `cargo run -p doppel-train --example train_timing -- [customers] [items] [events/customer] [threads]`
//! (defaults 4,000 × 4,000 × 100 ≈ 400k events, 64 factors, 15 iterations, all cores).

use std::time::Instant;

use doppel_synth::{REFERENCE_TIME_MS, SynthConfig, generate};
use doppel_train::{AlsParams, ConfidenceConfig, Interactions, train};

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let config = SynthConfig {
        customers: arg(1, 4_000),
        items: arg(2, 4_000),
        events_per_customer: arg(3, 100),
        tastes: 16,
        ..SynthConfig::default()
    };
    let params = AlsParams {
        threads: arg(4, 0),
        ..AlsParams::default()
    };

    let start = Instant::now();
    let data = generate(&config);
    println!(
        "generated {} events in {:.2?}",
        data.events.len(),
        start.elapsed()
    );

    let start = Instant::now();
    let interactions = Interactions::from_events(
        &data.events,
        &ConfidenceConfig::default(),
        REFERENCE_TIME_MS,
    );
    println!(
        "interactions: {} customers × {} items, {} cells in {:.2?}",
        interactions.customer_ids().len(),
        interactions.item_ids().len(),
        interactions.nnz(),
        start.elapsed()
    );

    let model = train(&interactions, &params, &|step| {
        println!(
            "iteration {:>2}/{}: loss {:.6}, {:.2?}",
            step.iteration,
            step.iterations,
            step.loss.unwrap_or(f64::NAN),
            step.elapsed
        );
    });
    match model {
        Ok(model) => println!(
            "trained {} factors for {} customers and {} items",
            model.factors,
            model.customer_ids.len(),
            model.item_ids.len()
        ),
        Err(e) => eprintln!("training failed: {e}"),
    }
}
