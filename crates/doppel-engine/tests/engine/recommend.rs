//! Offers: taste, exclusions, fallback, filters; similar items.

use doppel_engine::{Error, RecommendQuery};
use doppel_types::{Event, EventType};

use crate::fixture::loaded;

fn query(customer: &str, k: usize) -> RecommendQuery {
    RecommendQuery {
        customer_id: customer.to_owned(),
        k,
        explain: true,
        ..RecommendQuery::default()
    }
}

#[test]
fn offers_follow_the_customers_taste_and_skip_what_they_bought() {
    let fx = loaded(1_500);
    let item_taste: std::collections::HashMap<&str, usize> = fx
        .data
        .items
        .iter()
        .zip(&fx.data.item_taste)
        .map(|(i, t)| (i.id.as_str(), *t))
        .collect();
    let mut matching = 0;
    let mut total = 0;
    for (customer, &taste) in fx
        .data
        .customers
        .iter()
        .zip(&fx.data.customer_taste)
        .take(200)
    {
        if !customer.consent.onsite_personalization {
            continue;
        }
        let r = fx
            .engine
            .recommend(&query(&customer.id, 10))
            .expect("recommend");
        assert!(r.personalized);
        assert!(r.offers.windows(2).all(|w| w[0].score >= w[1].score));
        let bought: Vec<&str> = fx
            .data
            .events
            .iter()
            .filter(|e| e.customer_id == customer.id && e.kind == EventType::Purchase)
            .map(|e| e.item_id.as_str())
            .collect();
        for offer in &r.offers {
            assert!(!bought.contains(&offer.item_id.as_str()));
            assert!(!offer.reason.is_empty());
            matching += usize::from(item_taste[offer.item_id.as_str()] == taste);
            total += 1;
        }
    }
    // Eight tastes: chance is 1/8.
    assert!(
        matching * 2 > total,
        "{matching}/{total} offers match the taste"
    );
}

#[test]
fn a_purchase_recorded_now_removes_the_item_from_the_next_offers() {
    let fx = loaded(1_000);
    let customer = fx
        .data
        .customers
        .iter()
        .find(|c| c.consent.onsite_personalization)
        .expect("consenting customer");
    let first = fx.engine.recommend(&query(&customer.id, 5)).expect("first");
    let top = first.offers[0].item_id.clone();
    fx.engine.record_event(&Event {
        customer_id: customer.id.clone(),
        item_id: top.clone(),
        kind: EventType::Purchase,
        quantity: 1,
        ..Event::default()
    });
    let next = fx.engine.recommend(&query(&customer.id, 5)).expect("next");
    assert!(next.offers.iter().all(|o| o.item_id != top));
    let mut again = query(&customer.id, 5);
    again.include_purchased = true;
    let with = fx.engine.recommend(&again).expect("include purchased");
    assert!(with.offers.iter().any(|o| o.item_id == top));
}

#[test]
fn fallback_filters_and_errors() {
    let fx = loaded(1_000);
    let no_consent = fx
        .data
        .customers
        .iter()
        .find(|c| !c.consent.onsite_personalization)
        .expect("customer without consent");
    let r = fx
        .engine
        .recommend(&query(&no_consent.id, 7))
        .expect("fallback");
    assert!(!r.personalized);
    assert_eq!(r.offers.len(), 7);
    assert!(r.offers.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(r.offers.iter().all(|o| o.reason.starts_with("popular")));

    let category = fx.data.items[0].category.clone();
    let mut q = query(&fx.data.customers[0].id, 50);
    q.categories = vec![category.clone()];
    q.max_price = Some(20.0);
    let r = fx.engine.recommend(&q).expect("filtered");
    for o in &r.offers {
        let item = fx
            .data
            .items
            .iter()
            .find(|i| i.id == o.item_id)
            .expect("item");
        assert!(item.category == category && item.price <= 20.0 && item.in_stock);
    }

    let err = fx.engine.recommend(&query("nobody", 5)).unwrap_err();
    assert!(matches!(
        err,
        Error::NotFound {
            field: "customer_id",
            ..
        }
    ));
    let err = fx
        .engine
        .recommend(&query(&fx.data.customers[0].id, 1_001))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { field: "k", .. }));
}

#[test]
fn similar_items_are_in_stock_and_never_the_item() {
    let fx = loaded(500);
    let item = &fx.data.items[3].id;
    let r = fx.engine.similar_items(item, 10).expect("similar");
    assert_eq!(r.items.len(), 10);
    assert!(r.items.iter().all(|o| &o.item_id != item));
    for o in &r.items {
        assert!(
            fx.data
                .items
                .iter()
                .any(|i| i.id == o.item_id && i.in_stock)
        );
    }
    assert!(matches!(
        fx.engine.similar_items("no-such-item", 3),
        Err(Error::NotFound {
            field: "item_id",
            ..
        })
    ));
}
