//! The event log: what each customer viewed, put in the basket, bought and returned.
//!
//! About [`BROWSER_ONLY_PROBABILITY`] of customers never buy. Buyers' first event is a
//! purchase, so "has purchases" is exactly "is not a browser". Events mostly fall on items
//! of the customer's taste ([`OWN_TASTE_PROBABILITY`]).

use doppel_types::{Context, Event, EventType, Item};
use rand::Rng;

use crate::config::{EVENT_WINDOW_MS, REFERENCE_TIME_MS};
use crate::population::pick;

/// Probability that a customer only browses (views and add-to-carts, no purchase).
pub const BROWSER_ONLY_PROBABILITY: f64 = 0.20;
/// Probability that an event falls on an item of the customer's own taste.
pub const OWN_TASTE_PROBABILITY: f64 = 0.85;
/// Channels and their weights.
pub const CHANNELS: [(&str, f64); 3] = [("web", 0.50), ("app", 0.35), ("email", 0.15)];

/// Who generates events, and what they can choose from.
pub struct Shopper<'a> {
    /// Customer id.
    pub customer_id: &'a str,
    /// Country, copied into the event context.
    pub country: &'a str,
    /// Planted taste cluster.
    pub taste: usize,
}

/// First evening hour (UTC) of the planted context effect.
pub const EVENING_FROM_HOUR: i64 = 18;

/// The catalogue as seen by event generation.
pub struct Shelf<'a> {
    /// All items.
    pub items: &'a [Item],
    /// Indexes into `items`, per taste.
    pub by_taste: &'a [Vec<usize>],
    /// Indexes into `items` of the evening category (see `SynthConfig::context_effect`).
    pub evening: &'a [usize],
    /// `SynthConfig::context_effect`.
    pub context_effect: f64,
}

/// True for a mobile event in the evening, UTC: where the planted effect applies.
pub fn is_mobile_evening(device: &str, timestamp_ms: i64) -> bool {
    let hour = timestamp_ms.div_euclid(3_600_000).rem_euclid(24);
    device == "mobile" && hour >= EVENING_FROM_HOUR
}

/// Appends `count` events of `shopper` to `out`, in timestamp order.
pub fn events_of<R: Rng>(
    rng: &mut R,
    shopper: &Shopper<'_>,
    shelf: &Shelf<'_>,
    count: usize,
    out: &mut Vec<Event>,
) {
    if shelf.items.is_empty() || count == 0 {
        return;
    }
    let buyer = !rng.random_bool(BROWSER_ONLY_PROBABILITY);
    let start = out.len();
    for n in 0..count {
        let own = shelf.by_taste.get(shopper.taste).filter(|v| !v.is_empty());
        let mut item = match own {
            Some(own) if rng.random_bool(OWN_TASTE_PROBABILITY) => {
                &shelf.items[own[rng.random_range(0..own.len())]]
            }
            _ => &shelf.items[rng.random_range(0..shelf.items.len())],
        };
        let kind = if buyer && n == 0 {
            EventType::Purchase
        } else {
            kind_of(rng, buyer)
        };
        let quantity = match kind {
            EventType::View | EventType::Return | EventType::Impression | EventType::Click => 1,
            EventType::AddToCart => rng.random_range(1..=3),
            EventType::Purchase => rng.random_range(1..=4),
        };
        let channel = pick(rng, &CHANNELS);
        let device = if channel == "app" || rng.random_bool(0.5) {
            "mobile"
        } else {
            "desktop"
        };
        let timestamp_ms = REFERENCE_TIME_MS - rng.random_range(0..EVENT_WINDOW_MS);
        if shelf.context_effect > 0.0
            && !shelf.evening.is_empty()
            && is_mobile_evening(device, timestamp_ms)
            && rng.random_bool(shelf.context_effect.min(1.0))
        {
            // Skewed towards the first evening items (a few evening favourites).
            let u = rng.random::<f64>();
            let pick =
                ((shelf.evening.len() as f64 * u * u * u) as usize).min(shelf.evening.len() - 1);
            item = &shelf.items[shelf.evening[pick]];
        }
        out.push(Event {
            customer_id: shopper.customer_id.to_owned(),
            item_id: item.id.clone(),
            kind,
            timestamp_ms,
            quantity,
            value: f64::from(quantity) * item.price,
            context: Context {
                channel: channel.to_owned(),
                device: device.to_owned(),
                country: shopper.country.to_owned(),
            },
            ..Event::default()
        });
    }
    out[start..].sort_by_key(|e| e.timestamp_ms);
}

fn kind_of<R: Rng>(rng: &mut R, buyer: bool) -> EventType {
    let x = rng.random::<f64>();
    if !buyer {
        return if x < 0.85 {
            EventType::View
        } else {
            EventType::AddToCart
        };
    }
    match x {
        x if x < 0.60 => EventType::View,
        x if x < 0.80 => EventType::AddToCart,
        x if x < 0.97 => EventType::Purchase,
        _ => EventType::Return,
    }
}
