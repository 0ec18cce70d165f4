//! What to generate and what comes out.

use doppel_types::{Customer, Event, Item};

/// End of the generated event window (2026-11-01T00:00:00Z, ms since the Unix epoch).
/// A constant rather than "now", so a seed always yields the same data.
pub const REFERENCE_TIME_MS: i64 = 1_793_491_200_000;

/// Length of the generated event window: events fall in the 365 days before
/// [`REFERENCE_TIME_MS`].
pub const EVENT_WINDOW_MS: i64 = 365 * 24 * 60 * 60 * 1_000;

/// Sizes and seed of a generated customer base.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Number of customers (`c00001`, ...).
    pub customers: usize,
    /// Number of items (`i0001`, ...).
    pub items: usize,
    /// Number of item categories.
    pub categories: usize,
    /// Vector dimension.
    pub dim: usize,
    /// Number of latent taste clusters.
    pub tastes: usize,
    /// Events generated per customer.
    pub events_per_customer: usize,
    /// Seed of every random choice: the same config gives the same data.
    pub seed: u64,
    /// Planted context effect: the probability that an event on a mobile device in the
    /// evening (18:00–23:59 UTC) falls on an item of the evening category (the first,
    /// `cat01`; its first items far more often than its last) instead of following the
    /// customer's taste. 0 (the default) plants nothing and draws nothing extra, so older seeds give
    /// the same data.
    pub context_effect: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            customers: 5_000,
            items: 500,
            categories: 12,
            dim: 32,
            tastes: 8,
            events_per_customer: 20,
            seed: 7,
            context_effect: 0.0,
        }
    }
}

/// A generated customer base with its planted structure.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SynthData {
    /// Customer profiles, in id order.
    pub customers: Vec<Customer>,
    /// Items, in id order.
    pub items: Vec<Item>,
    /// The event log, in timestamp order.
    pub events: Vec<Event>,
    /// One unit vector per customer, same order as `customers`.
    pub customer_vectors: Vec<(String, Vec<f32>)>,
    /// One unit vector per item, same order as `items`, in the customers' space.
    pub item_vectors: Vec<(String, Vec<f32>)>,
    /// Planted taste cluster of each customer, same order as `customers`.
    pub customer_taste: Vec<usize>,
    /// Planted taste cluster of each item, same order as `items`.
    pub item_taste: Vec<usize>,
}
