//! Audience planning through a router: reach curves, audits and balanced audiences merged
//! exactly across shard nodes (equal to a single node holding everything), and the privacy
//! floor checked on the whole cluster's counts.

use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_store::testing::redis_harness::RedisServer;
use doppel_test_support::audience_checks::{
    assert_audit_recounts, assert_points_are_audiences, cohort_base, find, members, values_of,
};
use doppel_test_support::{TestServer, load_base};
use doppel_types::PrivacyFloor;
use tonic::Code;

use crate::fixture::{VERSION, loaded_with};

fn same_points(single: &pb::ReachCurve, cluster: &pb::ReachCurve) {
    assert_eq!(single.eligible_population, cluster.eligible_population);
    assert_eq!(single.points.len(), cluster.points.len());
    for (s, c) in single.points.iter().zip(&cluster.points) {
        assert_eq!(
            (s.size, s.size_lower, s.size_upper),
            (c.size, c.size_lower, c.size_upper)
        );
        assert!((s.min_score - c.min_score).abs() < 1e-5, "{s:?} vs {c:?}");
        assert!((s.mean_score - c.mean_score).abs() < 1e-4, "{s:?} vs {c:?}");
        assert_eq!(s.audit, c.audit, "audits of {s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reach_audits_and_balance_through_a_router_equal_a_single_node() {
    let data = cohort_base();
    let cluster = loaded_with(RedisServer::standalone(), 2, data.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let single = TestServer::start(dir.path()).await;
    load_base(&single.channel, &data, VERSION).await;
    doppel_client::activate(single.channel.clone(), VERSION)
        .await
        .expect("activate");
    let values = values_of(&data, "cohort");
    let seeds: Vec<String> = data
        .customers
        .iter()
        .zip(&data.customer_taste)
        .filter(|(c, t)| **t == 0 && c.consent.ads_personalization)
        .take(30)
        .map(|(c, _)| c.id.clone())
        .collect();
    let query = pb::LookalikeRequest {
        seed_customer_ids: seeds,
        size: Some(Size::Count(200)),
        audit_attributes: vec!["cohort".into()],
        ..Default::default()
    };
    let router = cluster.router.channel.clone();

    // Reach: the router's curve is the single node's, and each point is the router's audience.
    let request = pb::ReachRequest {
        query: Some(query.clone()),
        top_percents: vec![2.0, 20.0],
        min_scores: vec![0.7],
    };
    let from_single = AudiencesClient::new(single.channel.clone())
        .estimate_reach(request.clone())
        .await
        .expect("single reach")
        .into_inner();
    let from_router = AudiencesClient::new(router.clone())
        .estimate_reach(request)
        .await
        .expect("router reach")
        .into_inner();
    same_points(&from_single, &from_router);
    assert_eq!(
        (from_router.shards_answered, from_router.shards_total),
        (16, 16)
    );
    let sizes = [
        Size::TopPercent(2.0),
        Size::TopPercent(20.0),
        Size::MinScore(0.7),
    ];
    assert_points_are_audiences(&router, &query, &from_router, &sizes, "cohort", &values).await;
    // The default shares too.
    let defaults = |channel| {
        let q = query.clone();
        async move {
            AudiencesClient::new(channel)
                .estimate_reach(pb::ReachRequest {
                    query: Some(q),
                    ..Default::default()
                })
                .await
                .expect("default reach")
                .into_inner()
        }
    };
    same_points(
        &defaults(single.channel.clone()).await,
        &defaults(router.clone()).await,
    );

    // Audit and balance: the router's answer is the single node's.
    let everyone_batches = find(
        &router,
        pb::LookalikeRequest {
            size: Some(Size::TopPercent(100.0)),
            audit_attributes: Vec::new(),
            ..query.clone()
        },
    )
    .await
    .expect("everyone");
    let everyone = members(&everyone_batches);
    let mut balanced = query.clone();
    balanced.balance_attribute = "cohort".into();
    balanced.min_selection_ratio = 0.8;
    for (what, request) in [("audited", query.clone()), ("balanced", balanced)] {
        let a = find(&single.channel, request.clone())
            .await
            .expect("single");
        let b = find(&router, request).await.expect("router");
        let (pa, pb_) = (members(&a), members(&b));
        assert_eq!(pa.len(), 200, "{what}");
        let ids = |p: &[&pb::Prospect]| p.iter().map(|x| x.customer_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&pa), ids(&pb_), "{what}: prospects");
        let (la, lb) = (a.last().expect("batch"), b.last().expect("batch"));
        assert_eq!(la.audit, lb.audit, "{what}: audit");
        assert!((la.mean_score - lb.mean_score).abs() < 1e-4, "{what}");
        assert!((la.mean_score_unbalanced - lb.mean_score_unbalanced).abs() < 1e-4);
        assert_audit_recounts(&lb.audit, "cohort", &pb_, &everyone, &values);
        assert_eq!((lb.shards_answered, lb.shards_total), (16, 16));
    }

    // The floor is the whole cluster's: seeds and audience counted across nodes.
    cluster.router.router.set_privacy_floor(PrivacyFloor {
        min_seed_count: 31,
        min_audience_size: 300,
    });
    let mut big = query.clone();
    big.size = Some(Size::Count(400));
    let status = find(&router, big).await.expect_err("30 seeds");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().starts_with("seed_customer_ids"),
        "{status:?}"
    );
    cluster.router.router.set_privacy_floor(PrivacyFloor {
        min_seed_count: 30,
        min_audience_size: 300,
    });
    let status = find(&router, query.clone())
        .await
        .expect_err("200 prospects");
    assert!(status.message().starts_with("count"), "{status:?}");
    let mut strict = query.clone();
    strict.size = Some(Size::MinScore(0.95));
    let status = find(&router, strict).await.expect_err("a high cut-off");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().starts_with("min_score"), "{status:?}");
    let mut loose = query.clone();
    loose.size = Some(Size::MinScore(-1.0));
    let all = find(&router, loose)
        .await
        .expect("everyone passes the floor");
    assert_eq!(members(&all).len() as u64, all[0].eligible_population);
    let status = AudiencesClient::new(router.clone())
        .estimate_reach(pb::ReachRequest {
            query: Some(query.clone()),
            top_percents: vec![50.0, 1.0],
            min_scores: Vec::new(),
        })
        .await
        .expect_err("1 % is below the floor");
    assert!(
        status.message().starts_with("top_percents[1]"),
        "{status:?}"
    );
}
