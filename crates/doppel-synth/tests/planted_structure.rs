//! The generated data is deterministic and its planted structure is recoverable.

use std::collections::HashSet;

use doppel_synth::{SynthConfig, SynthData, generate};
use doppel_types::EventType;

fn small() -> SynthConfig {
    SynthConfig {
        customers: 1_000,
        items: 200,
        ..SynthConfig::default()
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let a = generate(&small());
    let b = generate(&small());
    assert_eq!(a, b);
    let c = generate(&SynthConfig { seed: 8, ..small() });
    assert_ne!(a.customer_vectors, c.customer_vectors);
}

#[test]
fn ids_are_unique_and_shapes_match() {
    let config = small();
    let data = generate(&config);
    let customer_ids: HashSet<&str> = data.customers.iter().map(|c| c.id.as_str()).collect();
    let item_ids: HashSet<&str> = data.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(customer_ids.len(), config.customers);
    assert_eq!(item_ids.len(), config.items);
    assert_eq!(data.customers[0].id, "c00001");
    assert_eq!(data.items[0].id, "i0001");
    assert_eq!(data.customer_vectors.len(), config.customers);
    assert_eq!(data.item_vectors.len(), config.items);
    assert_eq!(data.customer_taste.len(), config.customers);
    assert_eq!(data.item_taste.len(), config.items);
    assert_eq!(
        data.events.len(),
        config.customers * config.events_per_customer
    );
    for (_, v) in data.customer_vectors.iter().chain(&data.item_vectors) {
        assert_eq!(v.len(), config.dim);
        assert!((dot(v, v) - 1.0).abs() < 1e-4);
    }
    for e in &data.events {
        assert!(customer_ids.contains(e.customer_id.as_str()));
        assert!(item_ids.contains(e.item_id.as_str()));
    }
    assert!(
        data.events
            .windows(2)
            .all(|w| w[0].timestamp_ms <= w[1].timestamp_ms)
    );
}

#[test]
fn nearest_items_are_mostly_of_the_customers_taste() {
    let data = generate(&small());
    let k = 10;
    let mut hits = 0usize;
    let mut total = 0usize;
    for (c, (_, cv)) in data.customer_vectors.iter().enumerate() {
        let mut scored: Vec<(f32, usize)> = data
            .item_vectors
            .iter()
            .enumerate()
            .map(|(i, (_, iv))| (dot(cv, iv), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        hits += scored[..k]
            .iter()
            .filter(|(_, i)| data.item_taste[*i] == data.customer_taste[c])
            .count();
        total += k;
    }
    let share = hits as f64 / total as f64;
    assert!(
        share > 0.9,
        "only {share:.3} of nearest items share the taste"
    );
}

#[test]
fn behaviour_follows_taste_and_some_customers_never_buy() {
    let data: SynthData = generate(&small());
    let taste_of_item = |id: &str| {
        data.items
            .iter()
            .position(|i| i.id == id)
            .map(|i| data.item_taste[i])
    };
    let own = data
        .events
        .iter()
        .filter(|e| {
            let c: usize = e.customer_id[1..].parse::<usize>().unwrap_or(1) - 1;
            taste_of_item(&e.item_id) == Some(data.customer_taste[c])
        })
        .count();
    assert!(own as f64 / data.events.len() as f64 > 0.75);

    let buyers: HashSet<&str> = data
        .events
        .iter()
        .filter(|e| e.kind == EventType::Purchase)
        .map(|e| e.customer_id.as_str())
        .collect();
    let browsers = data.customers.len() - buyers.len();
    let share = browsers as f64 / data.customers.len() as f64;
    assert!((0.15..0.25).contains(&share), "browser share {share:.3}");

    let ads = data
        .customers
        .iter()
        .filter(|c| c.consent.ads_personalization)
        .count();
    assert!((850..950).contains(&ads), "ads consent {ads}");
    let out_of_stock = data.items.iter().filter(|i| !i.in_stock).count();
    assert!(out_of_stock < 30, "out of stock {out_of_stock}");
}
