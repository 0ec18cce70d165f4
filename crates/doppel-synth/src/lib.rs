//! A generated customer base for demos, tests and benchmarks: customers with latent
//! tastes, items in categories, behavioural events and vectors — deterministic for a seed.
//!
//! The structure is *planted*, so results built on it can be checked: every customer and
//! every item belongs to one latent taste cluster; their vectors are the cluster's centroid
//! plus noise, in one space, so the items nearest a customer are items of its taste and the
//! customers nearest a seed set share its taste. Events mostly fall on items of the
//! customer's taste; about 20 % of customers only browse (no purchase).
//!
//! Layout:
//! * [`config`] — [`SynthConfig`] (sizes and seed) and [`SynthData`] (what is generated);
//! * [`taste_space`] — taste centroids and noisy unit vectors around them;
//! * [`catalog`] — items: categories correlated with tastes, log-normal prices, stock;
//! * [`population`] — customers: ids, country/tier attributes, consent;
//! * [`behaviour`] — the event log: views, add-to-carts, purchases and returns;
//! * [`generate`](generate()) — ties them together.

pub mod behaviour;
pub mod catalog;
pub mod config;
mod generate;
pub mod population;
pub mod taste_space;

pub use config::{REFERENCE_TIME_MS, SynthConfig, SynthData};
pub use generate::generate;
