//! The recency shift of offers: a version trained with a recency weight moves each
//! customer's offers towards what they bought last, read from the purchases as they
//! arrive (no retraining), and records the weight; left unset, the run chooses it.

use doppel_proto::v1 as pb;
use doppel_test_support::{
    TestServer, fresh_taste_purchases, offers_of_taste, small_base, upload_base,
};

use crate::training::{listed_version, offers, request};

/// Customers whose newest purchases are of a category their offers did not show.
const SHIFTED: usize = 20;

#[tokio::test]
async fn newest_purchases_pull_the_offers_of_a_version_trained_with_a_recency_weight() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let data = small_base();
    upload_base(&server.channel, &data).await;
    for (version, weight) in [("plain", 0.0), ("recent", 3.0)] {
        doppel_client::train(
            server.channel.clone(),
            pb::TrainRequest {
                recency_weight: Some(weight),
                recent_popularity_weight: Some(0.0),
                ..request(version)
            },
            |_| {},
        )
        .await
        .expect("train");
        let info = listed_version(&server.channel, version).await;
        assert_eq!(
            info.params.get("recency_weight").map(String::as_str),
            Some(weight.to_string().as_str()),
            "{info:?}"
        );
        assert_eq!(
            info.params.get("recency_weight_source").map(String::as_str),
            Some("given")
        );
        // The shift moves the query, not the stored vectors: 16 factors and the padding.
        assert_eq!(info.dim, 17, "{info:?}");
    }
    doppel_client::activate(server.channel.clone(), "plain")
        .await
        .expect("activate plain");

    // Each chosen customer buys three items of a planted taste absent from their offers,
    // newer than any of their purchases.
    let mut planted: Vec<(String, usize)> = Vec::new();
    let mut events = Vec::new();
    for c in data
        .customers
        .iter()
        .filter(|c| c.consent.onsite_personalization)
        .take(SHIFTED)
    {
        let shown = offers(&server.channel, &c.id).await;
        let newest = doppel_synth::REFERENCE_TIME_MS;
        if let Some((fresh, bought)) = fresh_taste_purchases(&data, &c.id, &shown, newest) {
            events.extend(bought);
            planted.push((c.id.clone(), fresh));
        }
    }
    assert!(planted.len() >= SHIFTED / 2, "{} planted", planted.len());
    doppel_client::upload_events(server.channel.clone(), events, |_| {})
        .await
        .expect("new purchases");

    let mut in_fresh = Vec::new();
    for version in ["plain", "recent"] {
        doppel_client::activate(server.channel.clone(), version)
            .await
            .expect("activate");
        let mut count = 0;
        for (customer, fresh) in &planted {
            count += offers_of_taste(&data, &offers(&server.channel, customer).await, *fresh);
        }
        in_fresh.push(count);
    }
    // The purchases arrived while "plain" was active: fold-in moved its customers' vectors
    // towards the new taste (three of about thirteen purchases). "recent" was not active
    // then (fold-in re-solves the active version only): its offers move by the shift alone.
    assert!(
        in_fresh[1] >= 8 * planted.len() && in_fresh[1] * 10 >= in_fresh[0] * 13,
        "offers in the newest purchases' taste over {} customers: plain {}, recent {}",
        planted.len(),
        in_fresh[0],
        in_fresh[1]
    );

    // Left unset, the run chooses w on its log's newest part and says how.
    let auto = pb::TrainRequest {
        recency_weight: None,
        ..request("auto")
    };
    doppel_client::train(server.channel.clone(), auto, |_| {})
        .await
        .expect("train auto");
    let auto = listed_version(&server.channel, "auto").await;
    let source = auto
        .params
        .get("recency_weight_source")
        .cloned()
        .unwrap_or_default();
    assert!(source.starts_with("chosen on"), "{source}");
    let weight: f32 = auto.params["recency_weight"].parse().expect("weight");
    assert!((0.0..=10.0).contains(&weight), "{weight}");
    server.stop().await;
}
