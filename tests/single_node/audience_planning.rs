//! Planning an audience: reach curves that agree with the audiences that follow, the
//! privacy floor, fairness audits recounted from the prospects, and balanced audiences.

use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_test_support::audience_checks::{
    LONE_COHORT, assert_audit_recounts, assert_points_are_audiences, cohort_base, find, members,
    values_of,
};
use doppel_types::PrivacyFloor;
use tonic::Code;

use crate::fixture::{Loaded, count, loaded_with};

async fn cohorts(config: doppel_grpc::NodeConfig) -> Loaded {
    loaded_with(cohort_base(), config, doppel_grpc::ServeOptions::default()).await
}

fn query(fx: &Loaded, n: u64) -> pb::LookalikeRequest {
    count(fx.seeds(0, 30), n)
}

#[tokio::test]
async fn reach_points_are_the_audiences_that_follow() {
    let fx = cohorts(Default::default()).await;
    let values = values_of(&fx.data, "cohort");
    let mut q = query(&fx, 1);
    q.audit_attributes = vec!["cohort".into()];
    let mut client = AudiencesClient::new(fx.channel());

    // The default shares.
    let curve = client
        .estimate_reach(pb::ReachRequest {
            query: Some(q.clone()),
            ..Default::default()
        })
        .await
        .expect("default curve")
        .into_inner();
    let shares: Vec<f64> = curve.points.iter().map(|p| p.top_percent).collect();
    assert_eq!(
        shares,
        [
            1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0
        ]
    );
    assert!(curve.points.windows(2).all(|w| w[0].size <= w[1].size));
    assert_eq!(curve.model_version, crate::fixture::VERSION);
    assert_eq!(curve.shards_answered, curve.shards_total);

    // Shares and score cut-offs, each checked against FindLookalikes.
    let curve = client
        .estimate_reach(pb::ReachRequest {
            query: Some(q.clone()),
            top_percents: vec![1.0, 12.5, 50.0],
            min_scores: vec![0.6, 0.9],
        })
        .await
        .expect("curve")
        .into_inner();
    assert!(curve.eligible_population > 1_000);
    assert!(curve.points[3].size > 0 && curve.points[3].size > curve.points[4].size);
    let sizes = [
        Size::TopPercent(1.0),
        Size::TopPercent(12.5),
        Size::TopPercent(50.0),
        Size::MinScore(0.6),
        Size::MinScore(0.9),
    ];
    assert_points_are_audiences(&fx.channel(), &q, &curve, &sizes, "cohort", &values).await;
}

#[tokio::test]
async fn the_privacy_floor_refuses_few_seeds_and_small_audiences() {
    let config = doppel_grpc::NodeConfig {
        privacy_floor: PrivacyFloor {
            min_seed_count: 10,
            min_audience_size: 50,
        },
        ..Default::default()
    };
    let fx = cohorts(config).await;
    let refused = |r: Result<Vec<pb::LookalikeBatch>, tonic::Status>, field: &str| {
        let status = r.expect_err("below the floor");
        assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
        assert!(status.message().starts_with(field), "{status:?}");
    };
    let few = count(fx.seeds(0, 5), 100);
    refused(find(&fx.channel(), few.clone()).await, "seed_customer_ids");
    refused(find(&fx.channel(), query(&fx, 20)).await, "count");
    let mut tiny = query(&fx, 1);
    tiny.size = Some(Size::TopPercent(0.5));
    refused(find(&fx.channel(), tiny).await, "top_percent");
    let mut strict = query(&fx, 1);
    strict.size = Some(Size::MinScore(0.9999));
    refused(find(&fx.channel(), strict).await, "min_score");
    assert_eq!(
        members(
            &find(&fx.channel(), query(&fx, 50))
                .await
                .expect("at the floor")
        )
        .len(),
        50
    );

    let mut client = AudiencesClient::new(fx.channel());
    let reach = |q: pb::LookalikeRequest, top_percents: Vec<f64>| pb::ReachRequest {
        query: Some(q),
        top_percents,
        min_scores: Vec::new(),
    };
    let status = client
        .estimate_reach(reach(few, vec![10.0]))
        .await
        .expect_err("few seeds");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().starts_with("seed_customer_ids"),
        "{status:?}"
    );
    let status = client
        .estimate_reach(reach(query(&fx, 1), vec![10.0, 0.1]))
        .await
        .expect_err("a point below the floor");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().starts_with("top_percents[1]"),
        "{status:?}"
    );
    client
        .estimate_reach(reach(query(&fx, 1), vec![10.0]))
        .await
        .expect("above the floor");
    // The default shares below the floor are left out, not refused.
    let curve = client
        .estimate_reach(reach(query(&fx, 1), Vec::new()))
        .await
        .expect("default shares")
        .into_inner();
    assert!(!curve.points.is_empty() && curve.points.len() < 12);
    assert!(curve.points.iter().all(|p| p.size >= 50));
    assert_eq!(curve.points.last().map(|p| p.top_percent), Some(20.0));
}

#[tokio::test]
async fn audits_recount_and_balance_meets_its_ratio_where_it_can() {
    let fx = cohorts(Default::default()).await;
    let values = values_of(&fx.data, "cohort");
    let countries = values_of(&fx.data, "country");
    let mut q = query(&fx, 200);
    q.audit_attributes = vec!["cohort".into(), "country".into()];
    let everyone_batches = find(
        &fx.channel(),
        pb::LookalikeRequest {
            size: Some(Size::TopPercent(100.0)),
            audit_attributes: Vec::new(),
            ..q.clone()
        },
    )
    .await
    .expect("everyone");
    let everyone = members(&everyone_batches);

    // Unbalanced: taste-0 seeds pull cohort `a` far ahead of `b`.
    let batches = find(&fx.channel(), q.clone()).await.expect("audited");
    let last = batches.last().expect("a batch");
    let people = members(&batches);
    assert_eq!(people.len(), 200);
    assert_audit_recounts(&last.audit, "cohort", &people, &everyone, &values);
    assert_audit_recounts(&last.audit, "country", &people, &everyone, &countries);
    let row = |audit: &[pb::GroupAudit], v: &str| {
        audit
            .iter()
            .find(|a| a.attribute == "cohort" && a.value == v)
            .cloned()
            .expect("a row")
    };
    assert!(row(&last.audit, "b").below_four_fifths, "{:?}", last.audit);
    assert_eq!(last.mean_score, last.mean_score_unbalanced);
    let unbalanced_mean = last.mean_score;

    // Balanced at four-fifths: same size, every group big enough meets the ratio, the lone
    // member of `c` cannot (reported, not faked), and the price is a lower mean score.
    q.balance_attribute = "cohort".into();
    q.min_selection_ratio = 0.8;
    let batches = find(&fx.channel(), q.clone()).await.expect("balanced");
    let last = batches.last().expect("a batch");
    let people = members(&batches);
    assert_eq!(people.len(), 200, "the size stays as asked");
    assert!(people.windows(2).all(|w| w[0].score >= w[1].score));
    assert_audit_recounts(&last.audit, "cohort", &people, &everyone, &values);
    for v in ["a", "b", ""] {
        assert!(row(&last.audit, v).ratio_to_best >= 0.8, "{:?}", last.audit);
    }
    let lone = row(&last.audit, LONE_COHORT);
    assert_eq!((lone.audience_count, lone.eligible_count), (0, 1));
    assert!(lone.below_four_fifths);
    assert_eq!(last.mean_score_unbalanced, unbalanced_mean);
    assert!(last.mean_score < last.mean_score_unbalanced);
    // Best scores first within each group: each group's members are its best eligible.
    for v in ["a", "b", ""] {
        let picked: Vec<&str> = people
            .iter()
            .filter(|p| values[p.customer_id.as_str()] == v)
            .map(|p| p.customer_id.as_str())
            .collect();
        let best: Vec<&str> = everyone
            .iter()
            .filter(|p| values[p.customer_id.as_str()] == v)
            .take(picked.len())
            .map(|p| p.customer_id.as_str())
            .collect();
        assert_eq!(picked, best, "cohort {v:?}");
    }
}
