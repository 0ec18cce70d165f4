//! RFM quintiles, segments and CLV tiers on eleven hand-made customers.
//!
//! "Today" is day 100 at noon; every event is at noon of its day, so day counts are exact.
//! Ten customers bought (a–h, j, k), `i` only browsed. Purchases are (day, value):
//!
//! | cust | purchases                          | returns       | recency | freq | net |
//! |------|------------------------------------|---------------|---------|------|-----|
//! | a    | 60 70 80 90 98, 100 each           |               | 2       | 5    | 500 |
//! | b    | 65 75 85 95, 50 each               |               | 5       | 4    | 200 |
//! | c    | 99: 30                             |               | 1       | 1    | 30  |
//! | d    | 5 10 20 30 40, 80 each             |               | 60      | 5    | 400 |
//! | e    | 10: 20                             |               | 90      | 1    | 20  |
//! | f    | 45 50, 60 each                     |               | 50      | 2    | 120 |
//! | g    | 88 97, 10 each                     |               | 3       | 2    | 20  |
//! | h    | 30: 100                            | 35: 100       | 70      | 1    | 0   |
//! | j    | 92: 40                             | 93: 10        | 8       | 1    | 30  |
//! | k    | 20: 500                            |               | 80      | 1    | 500 |
//!
//! Score = 1 + ⌊5 × position / 10⌋, position = number of buyers strictly worse.
//! * R (fewer days better): e90 k80 h70 d60 f50 j8 b5 g3 a2 c1 → positions 0..9 →
//!   e1 k1 h2 d2 f3 j3 b4 g4 a5 c5.
//! * F: five 1s (c e h j k, position 0 → 1), two 2s (f g, position 5 → 3), b's 4
//!   (position 7 → 4), two 5s (a d, position 8 → 5).
//! * M: h0 (0 → 1), e g 20 (1 → 1), c j 30 (3 → 2), f120 (5 → 3), b200 (6 → 4),
//!   d400 (7 → 4), a k 500 (8 → 5).
//!
//! Segments by (R, F): a (5,5) Champions, b (4,4) Loyal Customers, c (5,1) New Customers,
//! d (2,5) Can't Lose Them, e (1,1) Lost, f (3,3) Need Attention, g (4,3) Potential
//! Loyalists, h (2,1) Hibernating, j (3,1) About To Sleep, k (1,1) Lost, i Prospect.
//!
//! CLV = net × 0.3 × (1 + 365 / max(100 − first purchase day, 30)):
//! a 150 × (1 + 365/40) = 1518.75, b 60 × (1 + 365/35) = 685.71, c 9 × (1 + 365/30) =
//! 118.5, d 120 × (1 + 365/95) = 581.05, e 6 × (1 + 365/90) = 30.33, f 36 × (1 + 365/55)
//! = 274.91, g 6 × (1 + 365/30) = 79, j 9 × (1 + 365/30) = 118.5, k 150 × (1 + 365/80) =
//! 834.38; h and i 0.
//! Nine customers have net > 0; ascending: e(0) g(1) c j(2) f(4) d(5) b(6) k(7) a(8);
//! position / 9 ≥ 0.8 → a VeryProfitable; ≥ 0.5 → d b k Profitable; e g c j f Emerging;
//! h i Unprofitable.

use doppel_train::{
    AlsParams, ClvTier, ConfidenceConfig, Interactions, RfmScore, RfmSegment, SegmentConfig,
    no_progress, segment_customers, train,
};
use doppel_types::{Event, EventType};

const DAY_MS: i64 = 86_400_000;
const NOON_MS: i64 = DAY_MS / 2;
const NOW_MS: i64 = 100 * DAY_MS + NOON_MS;

/// Id, (R, F, M), segment, CLV tier, CLV estimate.
type Expected = (&'static str, Option<(u8, u8, u8)>, RfmSegment, ClvTier, f64);

fn event(customer: &str, kind: EventType, day: i64, value: f64) -> Event {
    Event {
        customer_id: customer.into(),
        // Distinct items per customer, so returns cancel only their own purchase.
        item_id: format!("item-{customer}-{day}"),
        kind,
        timestamp_ms: day * DAY_MS + NOON_MS,
        quantity: 1,
        value,
        ..Event::default()
    }
}

fn fixture() -> Vec<Event> {
    use EventType::{Purchase, Return, View};
    let mut events = Vec::new();
    let mut buys = |customer: &str, days: &[i64], value: f64| {
        for &day in days {
            events.push(event(customer, Purchase, day, value));
        }
    };
    buys("a", &[60, 70, 80, 90, 98], 100.0);
    buys("b", &[65, 75, 85, 95], 50.0);
    buys("c", &[99], 30.0);
    buys("d", &[5, 10, 20, 30, 40], 80.0);
    buys("e", &[10], 20.0);
    buys("f", &[45, 50], 60.0);
    buys("g", &[88, 97], 10.0);
    buys("h", &[30], 100.0);
    buys("j", &[92], 40.0);
    buys("k", &[20], 500.0);
    events.push(Event {
        item_id: "item-h-30".into(),
        ..event("h", Return, 35, 100.0)
    });
    events.push(Event {
        item_id: "item-j-92".into(),
        ..event("j", Return, 93, 10.0)
    });
    events.push(event("i", View, 50, 0.0));
    events.push(event("i", View, 51, 0.0));
    events
}

#[test]
fn hand_computed_rfm_segments_and_clv_tiers() {
    use ClvTier::{Emerging, Profitable, Unprofitable, VeryProfitable};
    use RfmSegment::*;
    let events = fixture();
    let interactions = Interactions::from_events(&events, &ConfidenceConfig::default(), NOW_MS);
    let params = AlsParams {
        factors: 4,
        iterations: 3,
        ..AlsParams::default()
    };
    let model = train(&interactions, &params, &no_progress).expect("trains");
    let mut cfg = SegmentConfig::new(NOW_MS);
    cfg.clusters = 3;
    let segments = segment_customers(&events, &model, &cfg).expect("valid config");

    let expected: [Expected; 11] = [
        ("a", Some((5, 5, 5)), Champions, VeryProfitable, 1518.75),
        (
            "b",
            Some((4, 4, 4)),
            LoyalCustomers,
            Profitable,
            60.0 * (1.0 + 365.0 / 35.0),
        ),
        ("c", Some((5, 1, 2)), NewCustomers, Emerging, 118.5),
        (
            "d",
            Some((2, 5, 4)),
            CantLoseThem,
            Profitable,
            120.0 * (1.0 + 365.0 / 95.0),
        ),
        (
            "e",
            Some((1, 1, 1)),
            Lost,
            Emerging,
            6.0 * (1.0 + 365.0 / 90.0),
        ),
        (
            "f",
            Some((3, 3, 3)),
            NeedAttention,
            Emerging,
            36.0 * (1.0 + 365.0 / 55.0),
        ),
        ("g", Some((4, 3, 1)), PotentialLoyalists, Emerging, 79.0),
        ("h", Some((2, 1, 1)), Hibernating, Unprofitable, 0.0),
        ("i", None, Prospect, Unprofitable, 0.0),
        ("j", Some((3, 1, 2)), AboutToSleep, Emerging, 118.5),
        ("k", Some((1, 1, 5)), Lost, Profitable, 834.375),
    ];
    assert_eq!(segments.len(), expected.len());
    for (s, (id, rfm, segment, tier, clv)) in segments.iter().zip(expected) {
        assert_eq!(s.customer_id, id);
        assert_eq!(s.rfm, rfm.map(|(r, f, m)| RfmScore { r, f, m }), "{id}");
        assert_eq!(s.rfm_segment, segment, "{id}");
        assert_eq!(s.clv_tier, tier, "{id}");
        // The margin rate is an f32 (0.3 is not exact in it), hence the tolerance.
        assert!(
            (s.clv_estimate - clv).abs() < 1e-4 * clv.max(1.0),
            "{id}: {}",
            s.clv_estimate
        );
    }
    // h returned everything, so it has no positive interaction and no vector; i's views do.
    let cluster = |id: &str| {
        segments
            .iter()
            .find(|s| s.customer_id == id)
            .and_then(|s| s.cluster)
    };
    assert_eq!(cluster("h"), None);
    assert!(cluster("i").is_some_and(|c| c < 3));
    assert!(cluster("a").is_some());
}
