//! A planted customer base (doppel-synth), trained once and shared by the tests.

use std::sync::OnceLock;

use doppel_synth::{REFERENCE_TIME_MS, SynthConfig, SynthData, generate};
use doppel_train::{AlsParams, ConfidenceConfig, Interactions, Model, no_progress, train};

/// Number of planted tastes.
pub const TASTES: usize = 6;

/// The generated data, its interactions and a model trained on them.
pub struct Planted {
    pub data: SynthData,
    pub interactions: Interactions,
    pub model: Model,
}

pub fn synth_config() -> SynthConfig {
    SynthConfig {
        customers: 1_200,
        items: 240,
        tastes: TASTES,
        events_per_customer: 30,
        seed: 11,
        ..SynthConfig::default()
    }
}

pub fn als_params() -> AlsParams {
    AlsParams {
        factors: 32,
        iterations: 10,
        seed: 5,
        ..AlsParams::default()
    }
}

pub fn planted() -> &'static Planted {
    static PLANTED: OnceLock<Planted> = OnceLock::new();
    PLANTED.get_or_init(|| {
        let data = generate(&synth_config());
        let interactions = Interactions::from_events(
            &data.events,
            &ConfidenceConfig::default(),
            REFERENCE_TIME_MS,
        );
        let model = train(&interactions, &als_params(), &no_progress).expect("training succeeds");
        Planted {
            data,
            interactions,
            model,
        }
    })
}

impl Planted {
    /// Planted taste of an item by model row.
    pub fn item_taste(&self, row: usize) -> usize {
        self.data.item_taste[synth_index(&self.model.item_ids[row])]
    }

    /// Planted taste of a customer by model row.
    pub fn customer_taste(&self, row: usize) -> usize {
        self.data.customer_taste[synth_index(&self.model.customer_ids[row])]
    }

    /// Model rows of the items of one taste.
    pub fn items_of_taste(&self, taste: usize) -> Vec<usize> {
        (0..self.model.item_ids.len())
            .filter(|&row| self.item_taste(row) == taste)
            .collect()
    }

    /// Share of `vector`'s top-`k` items that have `taste`.
    pub fn top_k_share(&self, vector: &[f32], k: usize, taste: usize) -> f64 {
        let top = self.model.top_items(vector, k);
        top.iter()
            .filter(|(row, _)| self.item_taste(*row) == taste)
            .count() as f64
            / k as f64
    }
}

/// doppel-synth numbers ids from 1 (`c00001`, `i0001`): the index is the number − 1.
fn synth_index(id: &str) -> usize {
    id[1..].parse::<usize>().expect("synth id") - 1
}
