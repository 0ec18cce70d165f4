//! RecommendOffers and SimilarItems: exclusions, filters, fallback.

use std::collections::HashMap;

use doppel_proto::v1 as pb;
use doppel_proto::v1::recommendations_client::RecommendationsClient;

use crate::fixture::{VERSION, loaded};

fn request(customer: &str, k: u32) -> pb::RecommendRequest {
    pb::RecommendRequest {
        customer_id: customer.to_owned(),
        k,
        explain: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn offers_exclude_bought_and_out_of_stock_and_fall_back_without_consent() {
    let fx = loaded().await;
    let items: HashMap<&str, &doppel_types::Item> =
        fx.data.items.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut client = RecommendationsClient::new(fx.channel());

    let customer = fx
        .data
        .customers
        .iter()
        .find(|c| c.consent.onsite_personalization && !fx.purchased(&c.id).is_empty())
        .expect("a consenting buyer");
    let bought = fx.purchased(&customer.id);
    let response = client
        .recommend_offers(request(&customer.id, 10))
        .await
        .expect("recommend")
        .into_inner();
    assert_eq!(response.model_version, VERSION);
    assert!(response.personalized);
    assert_eq!(response.offers.len(), 10);
    assert!(response.offers.windows(2).all(|w| w[0].score >= w[1].score));
    for offer in &response.offers {
        assert!(!bought.contains(&offer.item_id), "already bought");
        assert!(items[offer.item_id.as_str()].in_stock, "out of stock");
        assert!(!offer.reason.is_empty(), "explain asked for a reason");
    }

    // Filters.
    let category = items[response.offers[0].item_id.as_str()].category.clone();
    let mut filtered = request(&customer.id, 5);
    filtered.filter = Some(pb::OfferFilter {
        categories: vec![category.clone()],
        max_price: Some(50.0),
    });
    let response = client
        .recommend_offers(filtered)
        .await
        .expect("filtered")
        .into_inner();
    assert!(!response.offers.is_empty());
    for offer in &response.offers {
        let item = items[offer.item_id.as_str()];
        assert_eq!(item.category, category);
        assert!(item.price <= 50.0);
    }

    // No on-site consent: the non-personalised fallback, same exclusions.
    let no_consent = fx
        .data
        .customers
        .iter()
        .find(|c| !c.consent.onsite_personalization)
        .expect("a customer without on-site consent");
    let response = client
        .recommend_offers(request(&no_consent.id, 5))
        .await
        .expect("fallback")
        .into_inner();
    assert!(!response.personalized);
    assert_eq!(response.offers.len(), 5);
    let bought = fx.purchased(&no_consent.id);
    for offer in &response.offers {
        assert!(items[offer.item_id.as_str()].in_stock);
        assert!(!bought.contains(&offer.item_id));
    }
}

#[tokio::test]
async fn customer_without_vector_gets_the_fallback_and_similar_items_skip_the_item() {
    let fx = loaded().await;
    doppel_client::upload_customers(
        fx.channel(),
        vec![pb::Customer {
            id: "newcomer".into(),
            consent: Some(pb::Consent {
                ads_personalization: true,
                onsite_personalization: true,
            }),
            ..Default::default()
        }],
        |_| {},
    )
    .await
    .expect("upsert");
    let mut client = RecommendationsClient::new(fx.channel());
    let response = client
        .recommend_offers(request("newcomer", 3))
        .await
        .expect("fallback")
        .into_inner();
    assert!(!response.personalized);
    assert_eq!(response.offers.len(), 3);

    let item = &fx.data.items[0].id;
    let similar = client
        .similar_items(pb::SimilarItemsRequest {
            item_id: item.clone(),
            k: 5,
        })
        .await
        .expect("similar")
        .into_inner();
    assert_eq!(similar.model_version, VERSION);
    assert_eq!(similar.items.len(), 5);
    assert!(similar.items.iter().all(|o| &o.item_id != item));
}
