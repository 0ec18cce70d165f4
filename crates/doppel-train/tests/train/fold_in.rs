//! Fold-in places new and updated customers next to the items they interacted with.

use doppel_synth::REFERENCE_TIME_MS;
use doppel_train::{ConfidenceConfig, fold_in};
use doppel_types::{Event, EventType};

use crate::support::{TASTES, als_params, planted};

const DAY_MS: i64 = 86_400_000;

fn purchase(customer: &str, item: &str, days_ago: i64) -> Event {
    Event {
        customer_id: customer.into(),
        item_id: item.into(),
        kind: EventType::Purchase,
        timestamp_ms: REFERENCE_TIME_MS - days_ago * DAY_MS,
        quantity: 1,
        value: 10.0,
        ..Event::default()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
    dot(a, b) / (dot(a, a) * dot(b, b)).sqrt()
}

/// The vector `events` fold into, against the planted model.
fn folded(events: &[Event]) -> Vec<f32> {
    let p = planted();
    let row =
        p.interactions
            .confidence_row(events, &ConfidenceConfig::default(), REFERENCE_TIME_MS);
    let m = &p.model;
    fold_in(
        &m.item_factors,
        m.factors,
        &m.item_gram(),
        &row,
        &als_params().solve_weights(),
    )
}

#[test]
fn a_new_customer_lands_among_the_items_of_their_taste() {
    let p = planted();
    for taste in 0..TASTES {
        let events: Vec<Event> = p.items_of_taste(taste)[..5]
            .iter()
            .map(|&row| purchase("brand-new", &p.model.item_ids[row], 1))
            .collect();
        let share = p.top_k_share(&folded(&events), 10, taste);
        assert!(share >= 0.8, "taste {taste}: top-10 share {share}");
    }
}

#[test]
fn folding_in_a_known_customer_reproduces_the_trained_vector() {
    let p = planted();
    for row in (0..p.model.customer_ids.len()).step_by(97) {
        let id = &p.model.customer_ids[row];
        let events: Vec<Event> = p
            .data
            .events
            .iter()
            .filter(|e| &e.customer_id == id)
            .cloned()
            .collect();
        let c = cosine(&folded(&events), p.model.customer_vector(row));
        assert!(c > 0.95, "customer {id}: cosine {c}");
    }
}

#[test]
fn new_events_move_a_customers_top_items() {
    let p = planted();
    let row = 0;
    let id = p.model.customer_ids[row].clone();
    let own = p.customer_taste(row);
    let other = (own + 1) % TASTES;
    let mut events: Vec<Event> = p
        .data
        .events
        .iter()
        .filter(|e| e.customer_id == id)
        .cloned()
        .collect();
    let before = folded(&events);
    assert!(p.top_k_share(&before, 10, own) >= 0.7);
    assert!(p.top_k_share(&before, 10, other) <= 0.2);

    // A burst of recent purchases from another taste.
    // (A week of daily purchases of ten items: with alpha = 1 the history is not swamped
    // by a short burst, which is the point of the small default.)
    for &item in &p.items_of_taste(other)[..10] {
        for days_ago in 0..7 {
            events.push(purchase(&id, &p.model.item_ids[item], days_ago));
        }
    }
    let after = folded(&events);
    let top_before: Vec<usize> = p
        .model
        .top_items(&before, 10)
        .into_iter()
        .map(|t| t.0)
        .collect();
    let top_after: Vec<usize> = p
        .model
        .top_items(&after, 10)
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_ne!(top_before, top_after);
    let share = p.top_k_share(&after, 10, other);
    // The burst outweighs a year of history, but not all of it.
    assert!(
        share >= 0.4,
        "share of the new taste after the burst: {share}"
    );
}
