//! Customers: ids, skewed country and tier attributes, consent flags.

use std::collections::BTreeMap;

use doppel_types::{Consent, Customer};
use rand::Rng;

/// Countries and their weights (skewed towards the first).
pub const COUNTRIES: [(&str, f64); 6] = [
    ("GB", 0.50),
    ("DE", 0.15),
    ("FR", 0.12),
    ("NL", 0.08),
    ("ES", 0.08),
    ("US", 0.07),
];
/// Tiers and their weights.
pub const TIERS: [(&str, f64); 3] = [("gold", 0.10), ("silver", 0.30), ("bronze", 0.60)];
/// Probability of consent to ad personalisation.
pub const ADS_CONSENT_PROBABILITY: f64 = 0.90;
/// Probability of consent to on-site personalisation.
pub const ONSITE_CONSENT_PROBABILITY: f64 = 0.95;

/// Id of the `index`-th customer (0-based): `c00001`, `c00002`, ...
pub fn customer_id(index: usize) -> String {
    format!("c{:05}", index + 1)
}

/// Draws one entry of a weighted table (weights need not sum to exactly 1).
pub fn pick<'a, R: Rng>(rng: &mut R, table: &[(&'a str, f64)]) -> &'a str {
    let total: f64 = table.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (name, weight) in table {
        if x < *weight {
            return name;
        }
        x -= weight;
    }
    table.last().map_or("", |(name, _)| name)
}

/// The `index`-th customer profile.
pub fn customer<R: Rng>(rng: &mut R, index: usize) -> Customer {
    let mut attributes = BTreeMap::new();
    attributes.insert("country".to_owned(), pick(rng, &COUNTRIES).to_owned());
    attributes.insert("tier".to_owned(), pick(rng, &TIERS).to_owned());
    Customer {
        id: customer_id(index),
        attributes,
        consent: Consent {
            ads_personalization: rng.random_bool(ADS_CONSENT_PROBABILITY),
            onsite_personalization: rng.random_bool(ONSITE_CONSENT_PROBABILITY),
        },
    }
}
