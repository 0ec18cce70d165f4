//! Items: each belongs to one taste cluster and one category; categories correlate with
//! tastes (category `c` is "at home" in taste `c % tastes`), prices are log-normal and a
//! few items are out of stock.

use std::collections::BTreeMap;

use doppel_types::Item;
use rand::Rng;
use rand_distr::StandardNormal;

/// Probability that an item's category is one at home in its taste.
pub const HOME_CATEGORY_PROBABILITY: f64 = 0.8;
/// Probability that an item is out of stock.
pub const OUT_OF_STOCK_PROBABILITY: f64 = 0.05;
/// Log-normal price: `exp(PRICE_LOG_MEAN + PRICE_LOG_SD · N(0, 1))` (median ≈ 20).
pub const PRICE_LOG_MEAN: f64 = 3.0;
/// See [`PRICE_LOG_MEAN`].
pub const PRICE_LOG_SD: f64 = 0.8;

/// Id of the `index`-th item (0-based): `i0001`, `i0002`, ...
pub fn item_id(index: usize) -> String {
    format!("i{:04}", index + 1)
}

/// Name of the `index`-th category: `cat01`, `cat02`, ...
pub fn category_name(index: usize) -> String {
    format!("cat{:02}", index + 1)
}

/// Draws `count` items with the taste of each. `tastes` and `categories` must be ≥ 1.
pub fn items<R: Rng>(
    rng: &mut R,
    count: usize,
    tastes: usize,
    categories: usize,
) -> (Vec<Item>, Vec<usize>) {
    let names: Vec<String> = (0..categories).map(category_name).collect();
    // Categories at home in each taste (empty when there are more tastes than categories).
    let mut home: Vec<Vec<usize>> = vec![Vec::new(); tastes];
    for c in 0..categories {
        home[c % tastes].push(c);
    }
    let mut items = Vec::with_capacity(count);
    let mut item_taste = Vec::with_capacity(count);
    for index in 0..count {
        let taste = rng.random_range(0..tastes);
        let own = &home[taste];
        let category = if !own.is_empty() && rng.random_bool(HOME_CATEGORY_PROBABILITY) {
            own[rng.random_range(0..own.len())]
        } else {
            rng.random_range(0..categories)
        };
        let z: f64 = rng.sample(StandardNormal);
        let price = ((PRICE_LOG_MEAN + PRICE_LOG_SD * z).exp() * 100.0).round() / 100.0;
        items.push(Item {
            id: item_id(index),
            category: names[category].clone(),
            price: price.max(0.01),
            in_stock: !rng.random_bool(OUT_OF_STOCK_PROBABILITY),
            attributes: BTreeMap::new(),
        });
        item_taste.push(taste);
    }
    (items, item_taste)
}
