//! Offers under a context: a version's context model moves offers only when the request
//! carries a context, the re-ranking is exact against a full scan, and explanations name
//! the context terms.

use std::collections::HashMap;

use doppel_engine::RecommendQuery;
use doppel_types::context_model::{CONTEXT_FEATURES, ContextCounts, ContextItem};
use doppel_types::{Context, ContextLifts, ContextModel};

use doppel_index::EXACT_SCAN_MAX_ALLOWED;

use crate::fixture::{Loaded, VERSION, loaded, loaded_with};

/// 20:00 UTC on some day.
const EVENING_MS: i64 = 1_790_000_000_000 / 86_400_000 * 86_400_000 + 20 * 3_600_000;

/// A model where, on mobile, items of `cat01` sell far more than elsewhere.
fn mobile_loves_cat01(items: &[doppel_types::Item]) -> ContextModel {
    let mut categories: Vec<String> = items.iter().map(|i| i.category.clone()).collect();
    categories.sort();
    categories.dedup();
    let model_items: Vec<ContextItem> = items
        .iter()
        .map(|i| ContextItem {
            id: i.id.clone(),
            category: categories.binary_search(&i.category).expect("known") as u32,
        })
        .collect();
    let mut counts = ContextCounts::new();
    for (n, item) in items.iter().enumerate() {
        for device in ["mobile", "desktop"] {
            let heavy = device == "mobile" && item.category == "cat01";
            let event = doppel_types::Event {
                context: Context {
                    device: device.into(),
                    ..Context::default()
                },
                timestamp_ms: EVENING_MS,
                ..doppel_types::Event::default()
            };
            counts.add(&event, n as u32, if heavy { 400.0 } else { 20.0 });
        }
    }
    let weights: HashMap<&str, f32> = CONTEXT_FEATURES.iter().map(|f| (*f, 0.0)).collect();
    let mut weights = weights;
    weights.insert("device", 0.3);
    counts.into_model(categories, model_items, &weights, 5.0)
}

fn query(customer: &str, context: Context) -> RecommendQuery {
    RecommendQuery {
        customer_id: customer.to_owned(),
        k: 10,
        context,
        timestamp_ms: Some(EVENING_MS),
        explain: true,
        ..RecommendQuery::default()
    }
}

/// Item id → category.
fn categories(fx: &Loaded) -> HashMap<&str, &str> {
    fx.data
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.category.as_str()))
        .collect()
}

fn mobile() -> Context {
    Context {
        device: "mobile".into(),
        ..Context::default()
    }
}

/// 300 items: the item index scans the allowed items, and the lift is added in the scan.
#[test]
fn context_moves_offers_only_when_the_request_has_one_and_the_ranking_is_exact() {
    context_moves_offers_exactly(&loaded(600), true);
}

/// 6,000 items: more allowed items than the index scans, so candidates come from the graph
/// by cosine and are re-ranked, with the climbers.
#[test]
fn context_reranks_graph_candidates_exactly_in_a_large_catalogue() {
    context_moves_offers_exactly(&loaded_with(300, 6_000), false);
}

/// `scanned`: the allowed items are few enough for the index's exact scan (else it walks
/// its graph); checked from the in-stock count, with room for what a customer bought.
fn context_moves_offers_exactly(fx: &Loaded, scanned: bool) {
    let in_stock = fx.data.items.iter().filter(|i| i.in_stock).count();
    if scanned {
        assert!(in_stock <= EXACT_SCAN_MAX_ALLOWED, "{in_stock} in stock");
    } else {
        assert!(
            in_stock > EXACT_SCAN_MAX_ALLOWED + 500,
            "{in_stock} in stock"
        );
    }
    let customers: Vec<String> = fx
        .data
        .customers
        .iter()
        .filter(|c| c.consent.onsite_personalization)
        .take(40)
        .map(|c| c.id.clone())
        .collect();
    let plain = |id: &str| {
        fx.engine
            .recommend(&RecommendQuery {
                customer_id: id.to_owned(),
                k: 10,
                explain: true,
                ..RecommendQuery::default()
            })
            .expect("recommend")
            .offers
    };
    let before: Vec<_> = customers.iter().map(|c| plain(c)).collect();
    let model = mobile_loves_cat01(&fx.data.items);
    fx.engine.set_context_model(VERSION, Some(&model));
    let after: Vec<_> = customers.iter().map(|c| plain(c)).collect();
    assert_eq!(
        before, after,
        "no context: the same offers, scores and reasons"
    );

    let category = categories(fx);
    let lifts = ContextLifts::new(&model);
    let (mut cat01_plain, mut cat01_mobile, mut moved) = (0, 0, 0);
    for (customer, plain) in customers.iter().zip(&before) {
        let offers = fx
            .engine
            .recommend(&query(customer, mobile()))
            .expect("recommend")
            .offers;
        cat01_plain += plain
            .iter()
            .filter(|o| category[o.item_id.as_str()] == "cat01")
            .count();
        cat01_mobile += offers
            .iter()
            .filter(|o| category[o.item_id.as_str()] == "cat01")
            .count();
        moved += usize::from(
            offers
                .iter()
                .map(|o| &o.item_id)
                .ne(plain.iter().map(|o| &o.item_id)),
        );
        assert!(
            offers.windows(2).all(|w| w[0].score >= w[1].score),
            "best first"
        );
        for o in offers
            .iter()
            .filter(|o| category[o.item_id.as_str()] == "cat01")
        {
            assert!(o.reason.contains("context device=mobile +"), "{}", o.reason);
        }
        // Exact: no offer is beaten by an unoffered item's cosine + lift. The plain
        // ranking gives cosines; an item missing from the top 10 by cosine can still be
        // checked through a deeper plain query.
        let deep = fx
            .engine
            .recommend(&RecommendQuery {
                customer_id: customer.clone(),
                k: fx.data.items.len().min(doppel_types::limits::MAX_K),
                ..RecommendQuery::default()
            })
            .expect("recommend")
            .offers;
        let active = lifts.resolve(&mobile(), EVENING_MS);
        let mut rescored: Vec<(f32, &str)> = deep
            .iter()
            .map(|o| {
                let lift = lifts.lift(&active, lifts.item(&o.item_id).expect("known"));
                (o.score + lift, o.item_id.as_str())
            })
            .collect();
        rescored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let kth = offers.last().expect("ten offers").score;
        let better_unoffered = rescored
            .iter()
            .take_while(|(s, _)| *s > kth + 1e-4)
            .filter(|(_, id)| !offers.iter().any(|o| o.item_id == *id))
            .count();
        assert_eq!(better_unoffered, 0, "{customer}: exact re-ranking");
    }
    assert!(moved >= 20, "mobile moved {moved} of 40 answers");
    assert!(
        cat01_mobile > 2 * cat01_plain.max(1),
        "cat01 offers: {cat01_plain} plain, {cat01_mobile} on mobile"
    );

    // A value the model never saw shifts nothing; dropping the model restores the plain
    // ranking whatever the context.
    let tablet = Context {
        device: "tablet".into(),
        ..Context::default()
    };
    let unseen = fx
        .engine
        .recommend(&query(&customers[0], tablet))
        .expect("ok");
    assert_eq!(
        unseen.offers.iter().map(|o| &o.item_id).collect::<Vec<_>>(),
        before[0].iter().map(|o| &o.item_id).collect::<Vec<_>>()
    );
    fx.engine.set_context_model(VERSION, None);
    let dropped = fx
        .engine
        .recommend(&query(&customers[0], mobile()))
        .expect("ok");
    assert_eq!(
        dropped
            .offers
            .iter()
            .map(|o| &o.item_id)
            .collect::<Vec<_>>(),
        before[0].iter().map(|o| &o.item_id).collect::<Vec<_>>()
    );
}

/// A cap that skips most of the first scan's picks (one offer per category) makes the scan
/// run again over every allowed item: the answer still holds one offer from each of the
/// best categories, each its category's best by cosine + lift.
#[test]
fn caps_that_skip_candidates_under_a_context_still_fill_the_answer_exactly() {
    use doppel_types::{CapScope, ContactPolicy, FrequencyCap};
    let fx = loaded(300);
    fx.engine
        .set_context_model(VERSION, Some(&mobile_loves_cat01(&fx.data.items)));
    let customer = fx
        .data
        .customers
        .iter()
        .find(|c| c.consent.onsite_personalization)
        .expect("a consenting customer")
        .id
        .clone();
    let category = categories(&fx);
    let uncapped = fx
        .engine
        .recommend(&RecommendQuery {
            k: 300,
            ..query(&customer, mobile())
        })
        .expect("recommend")
        .offers;
    let mut best_per_category: Vec<&str> = Vec::new();
    let mut seen = Vec::new();
    for offer in &uncapped {
        let c = category[offer.item_id.as_str()];
        if !seen.contains(&c) {
            seen.push(c);
            best_per_category.push(offer.item_id.as_str());
        }
    }
    fx.engine.set_contact_policy(ContactPolicy {
        caps: vec![FrequencyCap {
            scope: CapScope::Category,
            max_impressions: 1,
            window_seconds: 86_400,
        }],
    });
    let capped = fx
        .engine
        .recommend(&query(&customer, mobile()))
        .expect("recommend");
    let ids: Vec<&str> = capped.offers.iter().map(|o| o.item_id.as_str()).collect();
    let want: Vec<&str> = best_per_category.iter().take(10).copied().collect();
    assert_eq!(
        ids, want,
        "one offer per category, each its category's best"
    );
    assert!(capped.capped > 0, "the cap skipped candidates");
}
