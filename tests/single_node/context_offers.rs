//! Context-aware offers end to end: a version trained on a planted world (mobile evenings
//! favour the evening category) learns the effect, offers move with the context, requests
//! without one get the plain ranking, and the model survives a restart.

use std::collections::HashMap;

use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_test_support::{TestServer, planted_context_base, upload_train_activate};
use tonic::transport::Channel;

/// 20:00 UTC yesterday (well inside the allowed past, never ahead of the clock).
fn evening_ms() -> i64 {
    let now = doppel_types::clock::now_ms();
    (now / 86_400_000 - 1) * 86_400_000 + 20 * 3_600_000
}

async fn offers(
    channel: &Channel,
    customer: &str,
    context: Option<pb::Context>,
    timestamp_ms: i64,
) -> Vec<pb::Offer> {
    RecommendationsClient::new(channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer.to_owned(),
            k: 10,
            context,
            timestamp_ms,
            explain: true,
            ..Default::default()
        })
        .await
        .expect("recommend")
        .into_inner()
        .offers
}

fn ids(offers: &[pb::Offer]) -> Vec<&str> {
    offers.iter().map(|o| o.item_id.as_str()).collect()
}

#[tokio::test]
async fn a_trained_version_learns_a_planted_context_effect_and_offers_follow_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let data = planted_context_base();
    upload_train_activate(&server.channel, &data, "ctx-1").await;
    let versions = ModelAdminClient::new(server.channel.clone())
        .list_versions(pb::ListVersionsRequest {})
        .await
        .expect("list")
        .into_inner();
    let params = &versions.versions[0].params;
    let weights = params.get("context_weights").cloned().unwrap_or_default();
    assert!(!weights.is_empty(), "context weights recorded: {params:?}");

    let category: HashMap<&str, &str> = data
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.category.as_str()))
        .collect();
    let evening_share = |offers: &[pb::Offer]| {
        offers
            .iter()
            .filter(|o| category[o.item_id.as_str()] == "cat01")
            .count()
    };
    let mobile = pb::Context {
        channel: "app".into(),
        device: "mobile".into(),
        country: String::new(),
    };
    let customers: Vec<&str> = data
        .customers
        .iter()
        .filter(|c| c.consent.onsite_personalization)
        .take(30)
        .map(|c| c.id.as_str())
        .collect();
    let (mut plain_cat01, mut mobile_cat01, mut named) = (0, 0, 0);
    let mut before = Vec::new();
    for customer in &customers {
        let plain = offers(&server.channel, customer, None, 0).await;
        let empty = offers(&server.channel, customer, Some(pb::Context::default()), 0).await;
        assert_eq!(ids(&plain), ids(&empty), "an empty context is no context");
        let evening = offers(
            &server.channel,
            customer,
            Some(mobile.clone()),
            evening_ms(),
        )
        .await;
        plain_cat01 += evening_share(&plain);
        mobile_cat01 += evening_share(&evening);
        named += evening
            .iter()
            .filter(|o| o.reason.contains("; context "))
            .count();
        assert!(plain.iter().all(|o| !o.reason.contains("; context ")));
        before.push(
            ids(&plain)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        mobile_cat01 > plain_cat01 + 30,
        "evening-category offers: {plain_cat01} without context, {mobile_cat01} on mobile at 20:00"
    );
    assert!(named > 0, "explanations name the context");

    // Bad times are refused by field.
    let err = RecommendationsClient::new(server.channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customers[0].to_owned(),
            k: 10,
            timestamp_ms: -5,
            ..Default::default()
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("timestamp_ms"), "{}", err.message());

    // After a restart the model comes back from the store (the snapshot path).
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    let mut after_cat01 = 0;
    for (customer, plain) in customers.iter().zip(&before) {
        let again = offers(&server.channel, customer, None, 0).await;
        assert_eq!(&ids(&again), plain, "{customer}: plain offers unchanged");
        let evening = offers(
            &server.channel,
            customer,
            Some(mobile.clone()),
            evening_ms(),
        )
        .await;
        after_cat01 += evening_share(&evening);
    }
    assert_eq!(
        after_cat01, mobile_cat01,
        "the context model survives a restart"
    );
}
