//! An engine loaded with a generated customer base.

use std::collections::HashMap;

use doppel_engine::{AudienceSize, Engine, EngineConfig, LoadVersion, LookalikeQuery, Strategy};
use doppel_index::NoProgress;
use doppel_synth::{SynthConfig, SynthData, generate};
use doppel_types::{VersionInfo, VersionState};

pub const VERSION: &str = "v1";

pub struct Loaded {
    pub engine: Engine,
    pub data: SynthData,
}

pub fn info(version: &str, dim: usize) -> VersionInfo {
    VersionInfo {
        version: version.to_owned(),
        dim: dim as u32,
        state: VersionState::Ready,
        ..VersionInfo::default()
    }
}

/// A lookalike query of `seeds` with `strategy` and `size`, nothing else set.
pub fn query(seeds: &[String], strategy: Strategy, size: AudienceSize) -> LookalikeQuery {
    LookalikeQuery {
        seed_customer_ids: seeds.to_vec(),
        negative_customer_ids: Vec::new(),
        size,
        strategy,
        exclude_existing_customers: false,
        filter: std::collections::BTreeMap::new(),
        explain: false,
        seed_segments: Vec::new(),
        exclude_segments: Vec::new(),
        audit_attributes: Vec::new(),
        balance: None,
        cancel: Default::default(),
    }
}

/// `customers` generated customers, 300 items, dim 16, loaded and active as `v1`.
pub fn loaded(customers: usize) -> Loaded {
    loaded_with(customers, 300)
}

/// [`loaded`] with `items` items.
pub fn loaded_with(customers: usize, items: usize) -> Loaded {
    let data = generate(&SynthConfig {
        customers,
        items,
        dim: 16,
        events_per_customer: 8,
        ..SynthConfig::default()
    });
    let engine = Engine::new(EngineConfig {
        shard_count: 4,
        ..EngineConfig::default()
    });
    data.customers
        .iter()
        .for_each(|c| engine.upsert_customer(c));
    data.items.iter().for_each(|i| engine.upsert_item(i));
    data.events.iter().for_each(|e| engine.record_event(e));
    engine
        .load_version(
            LoadVersion {
                info: info(VERSION, 16),
                customer_vectors: data.customer_vectors.clone(),
                item_vectors: data.item_vectors.clone(),
            },
            &NoProgress,
        )
        .expect("load");
    engine.activate(VERSION).expect("activate");
    Loaded { engine, data }
}

impl Loaded {
    /// Ids of consenting customers of `taste`.
    pub fn seeds(&self, taste: usize, n: usize) -> Vec<String> {
        self.data
            .customers
            .iter()
            .zip(&self.data.customer_taste)
            .filter(|(c, t)| **t == taste && c.consent.ads_personalization)
            .take(n)
            .map(|(c, _)| c.id.clone())
            .collect()
    }

    pub fn taste_of(&self) -> HashMap<&str, usize> {
        self.data
            .customers
            .iter()
            .zip(&self.data.customer_taste)
            .map(|(c, t)| (c.id.as_str(), *t))
            .collect()
    }
}
