//! One seeded pass over catalogue, population, vectors and behaviour.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::behaviour::{Shelf, Shopper, events_of};
use crate::catalog;
use crate::config::{SynthConfig, SynthData};
use crate::population;
use crate::taste_space::{self, MEMBER_NOISE};

/// Generates the customer base described by `config`. Deterministic: the same config
/// always yields the same data. Zero tastes, categories or dimensions are treated as one.
pub fn generate(config: &SynthConfig) -> SynthData {
    let tastes = config.tastes.max(1);
    let categories = config.categories.max(1);
    let dim = config.dim.max(1);
    let mut rng = StdRng::seed_from_u64(config.seed);

    let centroids = taste_space::centroids(&mut rng, tastes, dim);
    let (items, item_taste) = catalog::items(&mut rng, config.items, tastes, categories);
    let item_vectors = items
        .iter()
        .zip(&item_taste)
        .map(|(item, &t)| {
            let v = taste_space::member(&mut rng, &centroids[t], MEMBER_NOISE);
            (item.id.clone(), v)
        })
        .collect();
    let mut by_taste = vec![Vec::new(); tastes];
    for (index, &t) in item_taste.iter().enumerate() {
        by_taste[t].push(index);
    }
    let evening_category = catalog::category_name(0);
    let evening: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, item)| item.category == evening_category)
        .map(|(n, _)| n)
        .collect();
    let shelf = Shelf {
        items: &items,
        by_taste: &by_taste,
        evening: &evening,
        context_effect: config.context_effect,
    };

    let mut customers = Vec::with_capacity(config.customers);
    let mut customer_taste = Vec::with_capacity(config.customers);
    let mut customer_vectors = Vec::with_capacity(config.customers);
    let mut events = Vec::with_capacity(config.customers * config.events_per_customer);
    for index in 0..config.customers {
        let customer = population::customer(&mut rng, index);
        let taste = rng.random_range(0..tastes);
        let vector = taste_space::member(&mut rng, &centroids[taste], MEMBER_NOISE);
        let country = customer
            .attributes
            .get("country")
            .map_or("", String::as_str);
        let shopper = Shopper {
            customer_id: &customer.id,
            country,
            taste,
        };
        events_of(
            &mut rng,
            &shopper,
            &shelf,
            config.events_per_customer,
            &mut events,
        );
        customer_vectors.push((customer.id.clone(), vector));
        customer_taste.push(taste);
        customers.push(customer);
    }
    let events = in_time_order(events);

    SynthData {
        customers,
        items,
        events,
        customer_vectors,
        item_vectors,
        customer_taste,
        item_taste,
    }
}

/// One global log in time order, as a shop would have recorded it. Sorts small
/// (timestamp, position) keys rather than moving whole events around; ties keep generation
/// order, so the output stays deterministic.
fn in_time_order(mut events: Vec<doppel_types::Event>) -> Vec<doppel_types::Event> {
    let mut order: Vec<(i64, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| (e.timestamp_ms, i))
        .collect();
    order.sort_unstable();
    order
        .into_iter()
        .map(|(_, i)| std::mem::take(&mut events[i]))
        .collect()
}
