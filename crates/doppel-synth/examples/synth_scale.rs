//! Generates a large customer base and prints its size and the time it took.
//!
//! `cargo run --release -p doppel-synth --example synth_scale -- 200000`

use std::time::Instant;

use doppel_synth::{SynthConfig, generate};

fn main() {
    let customers = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let config = SynthConfig {
        customers,
        items: 5_000,
        ..SynthConfig::default()
    };
    let start = Instant::now();
    let data = generate(&config);
    println!(
        "{} customers, {} items, {} events in {:.2?}",
        data.customers.len(),
        data.items.len(),
        data.events.len(),
        start.elapsed()
    );
}
