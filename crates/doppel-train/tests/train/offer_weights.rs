//! The offer weights a run chooses on its own log: the recency shift's w where what a
//! customer buys next follows what they bought last, none where order says nothing.

use doppel_train::{AlsParams, ConfidenceConfig, PriorSettings, choose_prior_weight};
use doppel_types::{Event, EventType};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const GENRES: usize = 30;
const ITEMS_PER_GENRE: usize = 10;
const CUSTOMERS: usize = 600;
/// Genres a customer goes through, one after another.
const RUNS: usize = 4;
const PER_RUN: usize = 6;
const DAY_MS: i64 = 86_400_000;

/// Each customer buys six items of one genre, then six of another, and so on (four genres,
/// one purchase a day, starting on a random day of 200); with `shuffled`, the same
/// purchases on the same days in a random order.
fn genre_runs(shuffled: bool) -> Vec<Event> {
    genre_runs_spaced(shuffled, DAY_MS)
}

/// [`genre_runs`] with `spacing` ms between a customer's purchases.
fn genre_runs_spaced(shuffled: bool, spacing: i64) -> Vec<Event> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut events = Vec::new();
    for c in 0..CUSTOMERS {
        let mut genres: Vec<usize> = (0..GENRES).collect();
        genres.shuffle(&mut rng);
        let mut items = Vec::new();
        for &g in &genres[..RUNS] {
            let mut own: Vec<usize> = (0..ITEMS_PER_GENRE)
                .map(|i| g * ITEMS_PER_GENRE + i)
                .collect();
            own.shuffle(&mut rng);
            items.extend_from_slice(&own[..PER_RUN]);
        }
        if shuffled {
            items.shuffle(&mut rng);
        }
        let start = rng.random_range(0..200) * DAY_MS;
        for (day, item) in items.into_iter().enumerate() {
            events.push(Event {
                customer_id: format!("c{c}"),
                item_id: format!("i{item}"),
                kind: EventType::Purchase,
                quantity: 1,
                timestamp_ms: start + day as i64 * spacing,
                ..Event::default()
            });
        }
    }
    events.sort_by_key(|e| e.timestamp_ms);
    events
}

fn als() -> AlsParams {
    AlsParams {
        factors: 16,
        iterations: 8,
        seed: 3,
        ..AlsParams::default()
    }
}

fn no_prior() -> PriorSettings {
    PriorSettings {
        weight: Some(0.0),
        ..PriorSettings::default()
    }
}

/// The weights a run chooses on `events` (the clock at the newest), `given` kept.
fn choose(events: &[Event], given: &PriorSettings) -> doppel_train::PriorFit {
    let now = events.last().map_or(0, |e| e.timestamp_ms);
    choose_prior_weight(events, &als(), &ConfidenceConfig::default(), given, now).expect("fit")
}

#[test]
fn a_log_where_the_next_purchase_follows_the_last_gets_a_recency_weight() {
    let fit = choose(&genre_runs(false), &no_prior());
    assert!(fit.customers >= 50, "{fit:?}");
    assert_eq!(fit.recency_ndcg.len(), 7, "{fit:?}");
    let plain = fit.recency_ndcg[0].1;
    let chosen = fit
        .recency_ndcg
        .iter()
        .find(|(w, _)| *w == fit.recency_weight)
        .map(|t| t.1)
        .expect("chosen weight tried");
    assert!(
        fit.recency_weight > 0.0 && chosen > plain * 1.2,
        "recency weight {} (NDCG {chosen:.4} against {plain:.4} without): {fit:?}",
        fit.recency_weight
    );
    assert!(fit.ndcg.is_empty(), "β was given");
    assert_eq!(fit.weight, 0.0);
}

#[test]
fn customers_who_come_and_go_are_validated_on_their_own_newest_purchases() {
    // Every customer's 24 purchases fall within one session (a minute apart), sessions
    // spread over 200 days: the log's newest 10 % is almost only customers seen for the
    // first time, so the run holds out each customer's own newest 10 % instead.
    let given = PriorSettings {
        weight: None,
        ..no_prior()
    };
    let fit = choose(&genre_runs_spaced(false, 60_000), &given);
    assert!(fit.per_customer && fit.customers >= 50, "{fit:?}");
    assert!(fit.recency_weight > 0.0, "{fit:?}");
    assert!(
        fit.ndcg.is_empty() && fit.weight == 0.0,
        "β is not chosen per customer: {fit:?}"
    );
}

#[test]
fn shuffled_runs_gain_less_from_the_newest_purchases() {
    let gain = |shuffled: bool| {
        let fit = choose(&genre_runs(shuffled), &no_prior());
        let plain = fit.recency_ndcg[0].1;
        let best = fit.recency_ndcg.iter().map(|t| t.1).fold(plain, f64::max);
        best / plain
    };
    let (ordered, shuffled) = (gain(false), gain(true));
    assert!(
        ordered > shuffled + 0.1,
        "best NDCG over plain: runs in order {ordered:.3}, shuffled {shuffled:.3}"
    );
}

#[test]
fn a_given_recency_weight_is_kept_not_chosen() {
    let given = PriorSettings {
        recency_weight: Some(0.75),
        ..no_prior()
    };
    let fit = choose(&genre_runs(false), &given);
    assert_eq!(fit.recency_weight, 0.75);
    assert!(fit.recency_ndcg.is_empty(), "{fit:?}");
}
