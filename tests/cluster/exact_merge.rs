//! The router's answers equal a single node's on the same data: the fan-out merge is
//! exact, not an approximation over partial top lists.

use doppel_proto::v1 as pb;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_test_support::TestServer;
use doppel_test_support::load_base;

use crate::fixture::{VERSION, batches, loaded, seeds};

fn flatten(batches: &[pb::LookalikeBatch]) -> Vec<(String, f32, Vec<String>)> {
    batches
        .iter()
        .flat_map(|b| &b.prospects)
        .map(|p| (p.customer_id.clone(), p.score, p.nearest_seed_ids.clone()))
        .collect()
}

/// Same prospects in the same order, scores equal up to float summation order.
fn assert_same(single: &[pb::LookalikeBatch], cluster: &[pb::LookalikeBatch], what: &str) {
    let (a, b) = (flatten(single), flatten(cluster));
    assert_eq!(a.len(), b.len(), "{what}: audience sizes differ");
    assert!(!a.is_empty(), "{what}: empty audience proves nothing");
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x.1 - y.1).abs() < 1e-5,
            "{what}: score {i} differs: {x:?} vs {y:?}"
        );
        // Ids must match except where two scores tie within float noise.
        if x.0 != y.0 {
            let tied = a.iter().any(|z| z.0 == y.0 && (z.1 - x.1).abs() < 1e-5);
            assert!(tied, "{what}: prospect {i} differs: {x:?} vs {y:?}");
        } else {
            assert_eq!(x.2, y.2, "{what}: explanations of {} differ", x.0);
        }
    }
    let (s, c) = (&single[0], &cluster[0]);
    assert_eq!(
        s.eligible_population, c.eligible_population,
        "{what}: population"
    );
    assert_eq!(
        s.ignored_seed_ids, c.ignored_seed_ids,
        "{what}: ignored seeds"
    );
    assert_eq!(s.strategy_used, c.strategy_used, "{what}: strategy");
    assert_eq!(c.model_version, VERSION);
    let last = cluster.last().expect("a batch");
    assert_eq!(
        (last.shards_answered, last.shards_total),
        (16, 16),
        "{what}: coverage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_equal_a_single_node_on_the_same_data() {
    let cluster = loaded(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let single = TestServer::start(dir.path()).await;
    load_base(&single.channel, &cluster.data, VERSION).await;
    doppel_client::activate(single.channel.clone(), VERSION)
        .await
        .expect("activate");

    let seeds = seeds(&cluster.data, 40);
    let negatives: Vec<String> = seeds.iter().rev().take(3).cloned().collect();
    let positive: Vec<String> = seeds[..30].to_vec();
    let cases: Vec<(&str, pb::LookalikeRequest)> = vec![
        (
            "top 10 percent",
            pb::LookalikeRequest {
                seed_customer_ids: positive.clone(),
                size: Some(Size::TopPercent(10.0)),
                ..Default::default()
            },
        ),
        (
            "count 300, explained, max-similarity",
            pb::LookalikeRequest {
                seed_customer_ids: positive.clone(),
                size: Some(Size::Count(300)),
                strategy: pb::Strategy::MaxSimilarity as i32,
                explain: true,
                ..Default::default()
            },
        ),
        (
            "min score with negatives and new customers only",
            pb::LookalikeRequest {
                seed_customer_ids: positive[..5].to_vec(),
                negative_customer_ids: negatives,
                size: Some(Size::MinScore(0.3)),
                exclude_existing_customers: true,
                ..Default::default()
            },
        ),
        (
            "classifier, count 300, explained",
            pb::LookalikeRequest {
                seed_customer_ids: positive.clone(),
                size: Some(Size::Count(300)),
                strategy: pb::Strategy::Classifier as i32,
                explain: true,
                ..Default::default()
            },
        ),
        (
            "classifier, min score with negatives",
            pb::LookalikeRequest {
                seed_customer_ids: positive.clone(),
                negative_customer_ids: seeds.iter().rev().take(3).cloned().collect(),
                size: Some(Size::MinScore(0.2)),
                strategy: pb::Strategy::Classifier as i32,
                ..Default::default()
            },
        ),
        (
            "whole population (2 pages and more)",
            pb::LookalikeRequest {
                seed_customer_ids: positive[..1].to_vec(),
                size: Some(Size::TopPercent(100.0)),
                ..Default::default()
            },
        ),
    ];
    for (what, request) in cases {
        let a = batches(single.channel.clone(), request.clone())
            .await
            .unwrap_or_else(|e| panic!("{what}: single node: {e}"));
        let b = batches(cluster.router.channel.clone(), request)
            .await
            .unwrap_or_else(|e| panic!("{what}: router: {e}"));
        assert_same(&a, &b, what);
    }

    // Bad input is refused by the router the way a single node refuses it.
    let unknown = pb::LookalikeRequest {
        seed_customer_ids: vec!["nobody".into()],
        size: Some(Size::Count(10)),
        ..Default::default()
    };
    let status = batches(cluster.router.channel.clone(), unknown)
        .await
        .expect_err("unknown seed");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(status.message().contains("seed_customer_ids"), "{status:?}");
    let too_many = pb::LookalikeRequest {
        seed_customer_ids: positive.clone(),
        size: Some(Size::Count(1_000_000)),
        ..Default::default()
    };
    let status = batches(cluster.router.channel.clone(), too_many)
        .await
        .expect_err("count above the population");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("count"), "{status:?}");

    // Per-customer calls reach the owning node and answer as the single node does.
    for customer in cluster.data.customers.iter().step_by(97).take(12) {
        let request = pb::RecommendRequest {
            customer_id: customer.id.clone(),
            k: 10,
            ..Default::default()
        };
        let a = RecommendationsClient::new(single.channel.clone())
            .recommend_offers(request.clone())
            .await
            .expect("single node")
            .into_inner();
        let b = RecommendationsClient::new(cluster.router.channel.clone())
            .recommend_offers(request)
            .await
            .expect("router")
            .into_inner();
        let ids = |r: &pb::RecommendResponse| -> Vec<String> {
            r.offers.iter().map(|o| o.item_id.clone()).collect()
        };
        // Each process builds its own item graph (hnsw_rs inserts in parallel, not
        // deterministically), so an approximate search may differ in the last places, as it
        // does between two builds on one node.
        let (a_ids, b_ids) = (ids(&a), ids(&b));
        let common = a_ids.iter().filter(|id| b_ids.contains(id)).count();
        assert!(
            common + 2 >= a_ids.len() && a_ids[..3] == b_ids[..3],
            "offers of {}: {a_ids:?} vs {b_ids:?}",
            customer.id
        );
        assert_eq!(a.personalized, b.personalized);
        assert_eq!(b.model_version, VERSION);
    }
    single.stop().await;

    // A router started with another shard count would route to the wrong shards: refused.
    let store = doppel_store::RedisStore::connect(doppel_store::RedisConfig::standalone(
        cluster.redis.url(),
    ))
    .await
    .expect("redis");
    let refused = doppel_cluster::router::Router::connect(store, 8)
        .await
        .err()
        .expect("a mismatched --shards is refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("16 logical shards"),
        "{refused:?}"
    );
}
