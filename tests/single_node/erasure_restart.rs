//! Erasure and durability: a deleted customer never comes back (also after a restart and
//! a later import), and a restarted node gives the same answers.

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_test_support::TestServer;

use crate::fixture::{VERSION, audience, count, loaded, prospects};

fn ids(batches: &[pb::LookalikeBatch]) -> Vec<String> {
    prospects(batches)
        .iter()
        .map(|p| p.customer_id.clone())
        .collect()
}

#[tokio::test]
async fn erased_customers_never_return_and_answers_survive_restart() {
    let fx = loaded().await;
    let seeds = fx.seeds(3, 15);
    // By cosine: the erasures below move a classifier's whole order (it is fitted against
    // the population), which this test does not compare.
    let everyone = || {
        let mut r = count(seeds.clone(), 1);
        r.size = Some(Size::MinScore(-1.0));
        r.strategy = pb::Strategy::Centroid as i32;
        r
    };
    let before = ids(&audience(fx.channel(), count(seeds.clone(), 20))
        .await
        .expect("lookalike"));
    let victim = before[0].clone();

    let mut ingest = IngestClient::new(fx.channel());
    let deleted = ingest
        .delete_customer(pb::DeleteCustomerRequest {
            customer_id: victim.clone(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.existed);
    let status = ingest
        .get_customer(pb::GetCustomerRequest {
            customer_id: victim.clone(),
        })
        .await
        .expect_err("erased customer is gone");
    assert_eq!(status.code(), tonic::Code::NotFound);
    let after = ids(&audience(fx.channel(), everyone()).await.expect("lookalike"));
    assert!(
        !after.contains(&victim),
        "erased customer still in an audience"
    );

    let customer = fx
        .data
        .customers
        .iter()
        .find(|c| c.consent.onsite_personalization && c.id != victim)
        .expect("customer")
        .id
        .clone();
    let recommend = pb::RecommendRequest {
        customer_id: customer,
        k: 10,
        ..Default::default()
    };
    let offers_before = RecommendationsClient::new(fx.channel())
        .recommend_offers(recommend.clone())
        .await
        .expect("recommend")
        .into_inner();
    let all_before = ids(&audience(fx.channel(), everyone()).await.expect("lookalike"));

    // Restart on the same directory: same answers, erasure still in force.
    let dir = fx.server.data_dir.clone();
    fx.server.stop().await;
    let server = TestServer::start(&dir).await;
    let all_after = ids(&audience(server.channel.clone(), everyone())
        .await
        .expect("lookalike"));
    assert_eq!(
        all_before, all_after,
        "a restarted node answers differently"
    );
    let offers_after = RecommendationsClient::new(server.channel.clone())
        .recommend_offers(recommend)
        .await
        .expect("recommend")
        .into_inner();
    assert_eq!(offers_after.model_version, VERSION);
    let item_ids = |r: &pb::RecommendResponse| {
        r.offers
            .iter()
            .map(|o| o.item_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(item_ids(&offers_before), item_ids(&offers_after));

    // A later import that still carries the erased customer's vector cannot bring it back.
    let summary = doppel_client::import_vectors(
        server.channel.clone(),
        "v2",
        16,
        &fx.data.customer_vectors,
        &fx.data.item_vectors,
    )
    .await
    .expect("import v2");
    assert_eq!(summary.erased_skipped, 1);
    doppel_client::activate(server.channel.clone(), "v2")
        .await
        .expect("activate v2");
    let batches = audience(server.channel.clone(), everyone())
        .await
        .expect("lookalike v2");
    assert_eq!(batches[0].model_version, "v2");
    assert!(!ids(&batches).contains(&victim));
    server.stop().await;
}
