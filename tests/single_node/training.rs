//! Train: learned vectors serve tastes, fold-in follows new behaviour (also after a
//! restart), bad hyper-parameters are refused by field.

use std::collections::HashMap;

use doppel_grpc::convert::event_to_pb;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_test_support::upload_base;
use doppel_test_support::{TestServer, small_base};
use tonic::transport::Channel;

/// A 16-factor run without the recency shift (the tests that read it set it).
pub(crate) fn request(version: &str) -> pb::TrainRequest {
    pb::TrainRequest {
        model_version: version.to_owned(),
        factors: Some(16),
        recency_weight: Some(0.0),
        ..Default::default()
    }
}

pub(crate) async fn offers(channel: &Channel, customer: &str) -> Vec<String> {
    RecommendationsClient::new(channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer.to_owned(),
            k: 10,
            ..Default::default()
        })
        .await
        .expect("recommend")
        .into_inner()
        .offers
        .into_iter()
        .map(|o| o.item_id)
        .collect()
}

#[tokio::test]
async fn learned_vectors_serve_tastes_and_fold_in_follows_new_purchases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let data = small_base();
    upload_base(&server.channel, &data).await;

    let mut stages = Vec::new();
    let done = doppel_client::train(server.channel.clone(), request("als-1"), |p| {
        assert_eq!(p.model_version, "als-1", "every message names the version");
        stages.push((p.stage.clone(), p.iteration, p.iterations));
    })
    .await
    .expect("train");
    assert!(
        done.done && done.customers > 1_900 && done.items == 200,
        "{done:?}"
    );
    // Every iteration is reported, up to Train's default of 10 (model_admin.proto).
    assert!(
        stages
            .iter()
            .any(|(s, i, n)| s == "training" && *i == 10 && *n == 10),
        "{stages:?}"
    );
    let versions = ModelAdminClient::new(server.channel.clone())
        .list_versions(pb::ListVersionsRequest {})
        .await
        .expect("list")
        .into_inner();
    let info = versions
        .versions
        .iter()
        .find(|v| v.model_version == "als-1")
        .expect("listed");
    assert_eq!(info.params.get("factors").map(String::as_str), Some("16"));
    doppel_client::activate(server.channel.clone(), "als-1")
        .await
        .expect("activate");

    let item_taste: HashMap<&str, usize> = data
        .items
        .iter()
        .zip(&data.item_taste)
        .map(|(i, t)| (i.id.as_str(), *t))
        .collect();
    let (mut matching, mut total) = (0, 0);
    for (c, &taste) in data.customers.iter().zip(&data.customer_taste).take(150) {
        if !c.consent.onsite_personalization {
            continue;
        }
        for item in offers(&server.channel, &c.id).await {
            matching += usize::from(item_taste[item.as_str()] == taste);
            total += 1;
        }
    }
    // Eight tastes: chance is 1/8.
    assert!(
        matching * 2 > total,
        "{matching}/{total} learned offers match the taste"
    );

    // Fold-in: a burst of purchases from another taste moves the next offers there.
    let (customer, taste) = data
        .customers
        .iter()
        .zip(&data.customer_taste)
        .find(|(c, _)| c.consent.onsite_personalization)
        .map(|(c, t)| (c.id.clone(), *t))
        .expect("consenting customer");
    let other = (taste + 1) % 8;
    let count_other = |items: &[String]| {
        items
            .iter()
            .filter(|i| item_taste[i.as_str()] == other)
            .count()
    };
    let before = offers(&server.channel, &customer).await;
    let burst: Vec<pb::Event> = data
        .items
        .iter()
        .zip(&data.item_taste)
        .filter(|(_, t)| **t == other)
        .take(12)
        .map(|(item, _)| {
            event_to_pb(doppel_types::Event {
                customer_id: customer.clone(),
                item_id: item.id.clone(),
                kind: doppel_types::EventType::Purchase,
                quantity: 2,
                timestamp_ms: doppel_synth::REFERENCE_TIME_MS,
                ..Default::default()
            })
        })
        .collect();
    doppel_client::upload_events(server.channel.clone(), burst, |_| {})
        .await
        .expect("burst");
    let after = offers(&server.channel, &customer).await;
    assert!(
        count_other(&after) >= 5 && count_other(&after) > count_other(&before),
        "taste {other}: {} offers before, {} after",
        count_other(&before),
        count_other(&after)
    );

    // A brand-new customer becomes personalised by its first events.
    let newcomer = pb::Customer {
        id: "newcomer".into(),
        consent: Some(pb::Consent {
            ads_personalization: true,
            onsite_personalization: true,
        }),
        ..Default::default()
    };
    doppel_client::upload_customers(server.channel.clone(), vec![newcomer], |_| {})
        .await
        .expect("newcomer");
    let first_events: Vec<pb::Event> = data
        .items
        .iter()
        .zip(&data.item_taste)
        .filter(|(_, t)| **t == other)
        .take(5)
        .map(|(item, _)| {
            event_to_pb(doppel_types::Event {
                customer_id: "newcomer".into(),
                item_id: item.id.clone(),
                kind: doppel_types::EventType::Purchase,
                quantity: 1,
                timestamp_ms: doppel_synth::REFERENCE_TIME_MS,
                ..Default::default()
            })
        })
        .collect();
    doppel_client::upload_events(server.channel.clone(), first_events, |_| {})
        .await
        .expect("first events");
    let response = RecommendationsClient::new(server.channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: "newcomer".into(),
            k: 10,
            ..Default::default()
        })
        .await
        .expect("newcomer offers")
        .into_inner();
    assert!(response.personalized, "the newcomer has a folded-in vector");
    let newcomer_offers: Vec<String> = response.offers.into_iter().map(|o| o.item_id).collect();
    assert!(count_other(&newcomer_offers) >= 5, "{newcomer_offers:?}");

    // The folded-in vector is durable, and fold-in works again after a restart.
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    assert_eq!(offers(&server.channel, &customer).await, after);
    let view = pb::Event {
        customer_id: customer.clone(),
        item_id: data.items[0].id.clone(),
        r#type: pb::EventType::Purchase as i32,
        quantity: 50,
        timestamp_ms: doppel_synth::REFERENCE_TIME_MS,
        ..Default::default()
    };
    let mut ingest = IngestClient::new(server.channel.clone());
    ingest
        .record_events(tokio_stream::iter(vec![view]))
        .await
        .expect("event after restart");
    assert_ne!(
        offers(&server.channel, &customer).await,
        after,
        "fold-in after restart"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_training_requests_name_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let mut admin = ModelAdminClient::new(server.channel.clone());
    let cases = [
        (
            "factors",
            pb::TrainRequest {
                factors: Some(0),
                ..request("a")
            },
        ),
        (
            "regularization",
            pb::TrainRequest {
                regularization: Some(-1.0),
                ..request("b")
            },
        ),
        (
            "alpha",
            pb::TrainRequest {
                alpha: Some(f32::NAN),
                ..request("c")
            },
        ),
        (
            "iterations",
            pb::TrainRequest {
                iterations: Some(100_000),
                ..request("d")
            },
        ),
        (
            "unobserved_weight",
            pb::TrainRequest {
                unobserved_weight: Some(0.0),
                ..request("e")
            },
        ),
        (
            "regularization_exponent",
            pb::TrainRequest {
                regularization_exponent: Some(2.0),
                ..request("f")
            },
        ),
        (
            "scan_vectors",
            pb::TrainRequest {
                scan_vectors: "f16".into(),
                ..request("g")
            },
        ),
        (
            "recent_popularity_weight",
            pb::TrainRequest {
                recent_popularity_weight: Some(-1.0),
                ..request("h")
            },
        ),
        (
            "recent_popularity_days",
            pb::TrainRequest {
                recent_popularity_days: Some(0.0),
                ..request("i")
            },
        ),
        (
            "recency_weight",
            pb::TrainRequest {
                recency_weight: Some(10.5),
                ..request("j")
            },
        ),
        ("model_version", request("bad name!")),
    ];
    for (field, req) in cases {
        let status = admin.train(req).await.expect_err(field);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{field}: {status:?}"
        );
        assert!(
            status.message().contains(field),
            "{field}: {}",
            status.message()
        );
    }
    // Nothing to learn from yet: the stream reports FAILED_PRECONDITION.
    let err = doppel_client::train(server.channel.clone(), request("empty"), |_| {})
        .await
        .expect_err("no events");
    match err {
        doppel_client::Error::Rpc { status, .. } => {
            assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}")
        }
        other => panic!("unexpected {other:?}"),
    }
    server.stop().await;
}

/// Version `name` as ListVersions shows it.
pub(crate) async fn listed_version(channel: &Channel, name: &str) -> pb::VersionInfo {
    ModelAdminClient::new(channel.clone())
        .list_versions(pb::ListVersionsRequest {})
        .await
        .expect("list")
        .into_inner()
        .versions
        .into_iter()
        .find(|v| v.model_version == name)
        .expect("listed")
}

/// How many of the first `n` consenting customers get `item` among their offers.
async fn customers_offered(
    channel: &Channel,
    data: &doppel_synth::SynthData,
    item: &str,
    n: usize,
) -> usize {
    let mut offered = 0;
    for c in data
        .customers
        .iter()
        .filter(|c| c.consent.onsite_personalization)
        .take(n)
    {
        offered += usize::from(offers(channel, &c.id).await.iter().any(|i| i == item));
    }
    offered
}

#[tokio::test]
async fn the_recent_popularity_prior_lifts_what_sells_now_and_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let data = small_base();
    upload_base(&server.channel, &data).await;
    // One item nobody much bought becomes the week's hit: 150 customers buy it in the last
    // days before training.
    let hot = data.items[199].id.clone();
    let hit = doppel_test_support::recent_hit(&data, &hot);
    doppel_client::upload_events(server.channel.clone(), hit, |_| {})
        .await
        .expect("hit");

    let mut reach = Vec::new();
    for (version, weight) in [("plain", 0.0), ("prior", 6.4)] {
        doppel_client::train(
            server.channel.clone(),
            pb::TrainRequest {
                recent_popularity_weight: Some(weight),
                ..request(version)
            },
            |_| {},
        )
        .await
        .expect("train");
        let info = listed_version(&server.channel, version).await;
        assert_eq!(
            info.params
                .get("recent_popularity_weight")
                .map(String::as_str),
            Some(weight.to_string().as_str())
        );
        // 16 factors, the prior's coordinate when there is one, the norm padding.
        assert_eq!(info.dim, if weight > 0.0 { 18 } else { 17 }, "{info:?}");
        doppel_client::activate(server.channel.clone(), version)
            .await
            .expect("activate");
        reach.push(customers_offered(&server.channel, &data, &hot, 100).await);
    }
    // Left unset, the run chooses the weight on its log's newest events and says so.
    doppel_client::train(server.channel.clone(), request("auto"), |_| {})
        .await
        .expect("train auto");
    let auto = listed_version(&server.channel, "auto").await;
    let source = auto
        .params
        .get("recent_popularity_weight_source")
        .cloned()
        .unwrap_or_default();
    assert!(source.starts_with("chosen on"), "{source}");
    let weight: f32 = auto.params["recent_popularity_weight"]
        .parse()
        .expect("weight");
    assert_eq!(auto.dim, if weight > 0.0 { 18 } else { 17 }, "{auto:?}");
    assert!(
        reach[1] >= 50 && reach[1] > reach[0] * 2,
        "customers offered the hit: plain {}, with the prior {}",
        reach[0],
        reach[1]
    );
    // Lookalikes read the customer vectors, which the prior leaves alone.
    let seeds: Vec<String> = data
        .customers
        .iter()
        .take(20)
        .map(|c| c.id.clone())
        .collect();
    let batches = doppel_test_support::audience_checks::find(
        &server.channel,
        pb::LookalikeRequest {
            seed_customer_ids: seeds,
            size: Some(pb::lookalike_request::Size::Count(50)),
            ..Default::default()
        },
    )
    .await
    .expect("lookalike");
    assert_eq!(
        doppel_test_support::audience_checks::members(&batches).len(),
        50
    );
    // The prior survives a restart (its covariance is rebuilt from the loaded items).
    let before = customers_offered(&server.channel, &data, &hot, 100).await;
    server.stop().await;
    let server = TestServer::start(dir.path()).await;
    assert_eq!(
        customers_offered(&server.channel, &data, &hot, 100).await,
        before
    );
    server.stop().await;
}
