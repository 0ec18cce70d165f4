//! Experiments and canaries through a router (issue 17): every node routes a customer to
//! the arm the client computes itself, the report read through the router equals the
//! test's recount over both nodes' customers, and a canary started through the router
//! rolls itself back when its CTR guard trips, then a second one is promoted.

use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_proto::v1::experiments_client::ExperimentsClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_test_support::experiment_checks::{
    arm, assert_report_recounts, assert_routed, assigned, drive, expected, import_unrelated, report,
};

use crate::fixture::{VERSION, loaded};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn experiments_and_canaries_work_through_the_router() {
    let cluster = loaded(2).await;
    let ch = cluster.router.channel.clone();
    import_unrelated(&ch, &cluster.data, "v2").await;
    let arms = vec![arm("control", VERSION, 1), arm("treatment", "v2", 1)];
    let info = ExperimentsClient::new(ch.clone())
        .create_experiment(pb::CreateExperimentRequest {
            name: "exp-cluster".into(),
            arms: arms.clone(),
            salt: "cluster-salt".into(),
            traffic_percent: 80,
        })
        .await
        .expect("CreateExperiment through the router")
        .into_inner();
    assert_eq!(info.arm_buckets, [4_000, 4_000]);

    let local = expected("cluster-salt", &arms, 80);
    let customers: Vec<String> = cluster
        .data
        .customers
        .iter()
        .take(400)
        .map(|c| c.id.clone())
        .collect();
    let driven = drive(&ch, &customers, 3, &["control", "treatment"]).await;
    assert_routed(&driven, &local, "exp-cluster", VERSION);
    assert_report_recounts(
        &report(&ch, "exp-cluster").await,
        &driven,
        &assigned(&cluster.data, &local),
    );
    ExperimentsClient::new(ch.clone())
        .stop_experiment(pb::StopExperimentRequest {
            name: "exp-cluster".into(),
        })
        .await
        .expect("StopExperiment through the router");

    // A canary whose version gets no clicks rolls itself back on every node.
    let mut admin = ModelAdminClient::new(ch.clone());
    let started = admin
        .activate_version(pb::ActivateVersionRequest {
            model_version: "v2".into(),
            canary_percent: 50,
            guard: Some(pb::CanaryGuard {
                min_ctr_ratio: 0.5,
                min_impressions: 100,
                ..Default::default()
            }),
        })
        .await
        .expect("canary through the router")
        .into_inner();
    assert!(started.canary);
    let driven = drive(&ch, &customers, 4, &["stable"]).await;
    assert!(driven.arms["canary"].impressions >= 100);
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        let described = admin
            .describe_version(pb::DescribeVersionRequest {
                model_version: "v2".into(),
            })
            .await
            .expect("DescribeVersion")
            .into_inner();
        if !described.rollback_reason.is_empty() && !described.canary {
            break described.rollback_reason;
        }
        assert!(Instant::now() < deadline, "the canary did not roll back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(reason.contains("CTR"), "{reason}");
    // Every node has followed within a lease renewal: all offers from v1 again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let after = drive(&ch, &customers[..40], 2, &[]).await;
        if after
            .answers
            .iter()
            .all(|a| a.1.is_empty() && a.3 == VERSION)
        {
            break;
        }
        assert!(Instant::now() < deadline, "a node still serves the canary");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A second canary, promoted through the router: v2 active on every node.
    admin
        .activate_version(pb::ActivateVersionRequest {
            model_version: "v2".into(),
            canary_percent: 20,
            guard: None,
        })
        .await
        .expect("second canary");
    let promoted = admin
        .promote_canary(pb::PromoteCanaryRequest {})
        .await
        .expect("PromoteCanary through the router")
        .into_inner();
    assert_eq!(promoted.model_version, "v2");
    let after = drive(&ch, &customers[..40], 2, &[]).await;
    assert!(after.answers.iter().all(|a| a.1.is_empty() && a.3 == "v2"));
    let listed = ExperimentsClient::new(ch.clone())
        .list_experiments(pb::ListExperimentsRequest {})
        .await
        .expect("ListExperiments")
        .into_inner();
    assert!(listed.experiments.iter().all(|e| e.state == "stopped"));
}
