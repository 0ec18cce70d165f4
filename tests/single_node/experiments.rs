//! Experiments and canaries (issue 17) on a single node: sticky arms equal to the
//! client's own computation, offers answered by the arm's version, a weight change that
//! moves customers only into the arm that grew, a report whose counts equal the test's
//! recount, persistence across a restart, a canary that rolls itself back when its CTR
//! guard trips, a promoted canary, and the bad inputs.

use std::time::{Duration, Instant};

use doppel_proto::v1 as pb;
use doppel_proto::v1::experiments_client::ExperimentsClient;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_test_support::TestServer;
use doppel_test_support::experiment_checks::{
    arm, assert_report_recounts, assert_routed, assigned, drive, expected, import_unrelated, report,
};
use tonic::Code;
use tonic::transport::Channel;

use crate::fixture::{VERSION, loaded, loaded_with};

/// A create request named `name` with `arms` (salt and traffic defaulted).
fn request(name: &str, arms: Vec<pb::Arm>) -> pb::CreateExperimentRequest {
    pb::CreateExperimentRequest {
        name: name.into(),
        arms,
        ..Default::default()
    }
}

pub async fn create(
    channel: &Channel,
    name: &str,
    arms: Vec<pb::Arm>,
    salt: &str,
) -> Result<pb::ExperimentInfo, tonic::Status> {
    ExperimentsClient::new(channel.clone())
        .create_experiment(pb::CreateExperimentRequest {
            name: name.into(),
            arms,
            salt: salt.into(),
            traffic_percent: 0,
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn arms_are_sticky_answer_with_their_version_and_report_exact_counts() {
    let mut fx = loaded().await;
    let ch = fx.channel();
    import_unrelated(&ch, &fx.data, "v2").await;
    let arms = vec![arm("a", VERSION, 50), arm("b", "v2", 50)];
    let info = create(&ch, "exp1", arms.clone(), "salt-1")
        .await
        .expect("CreateExperiment");
    assert_eq!(info.state, "running");
    assert_eq!(info.kind, "experiment");
    assert_eq!(info.arm_buckets, [5_000, 5_000]);
    assert!(info.loaded_memory_bytes > 0);

    // Every answer comes from the arm the client computes itself, with its version.
    let local = expected("salt-1", &arms, 100);
    let customers: Vec<String> = fx
        .data
        .customers
        .iter()
        .take(400)
        .map(|c| c.id.clone())
        .collect();
    let driven = drive(&ch, &customers, 4, &["a", "b"]).await;
    assert!(driven.answers.iter().all(|a| local.arm_of(&a.0).is_some()));
    assert_routed(&driven, &local, "exp1", VERSION);
    assert!(driven.arms.len() == 2, "{:?}", driven.arms.keys());

    let got = report(&ch, "exp1").await;
    assert_eq!(got.state, "running");
    assert_eq!(got.attribution_seconds, 7 * 86_400);
    assert_report_recounts(&got, &driven, &assigned(&fx.data, &local));
    let b = &got.arms[1];
    assert!(b.versus_first.is_some() && got.arms[0].versus_first.is_none());
    // 2,000 customers hashed 50/50: no sample-ratio mismatch.
    assert!(got.srm_p_value > 0.001, "{}", got.srm_p_value);

    // b grows: customers move only from a into b.
    let grown = ExperimentsClient::new(ch.clone())
        .update_weights(pb::UpdateWeightsRequest {
            name: "exp1".into(),
            arms: vec![arm("a", "", 50), arm("b", "", 150)],
            traffic_percent: 0,
        })
        .await
        .expect("UpdateWeights")
        .into_inner();
    assert_eq!(grown.arm_buckets, [2_500, 7_500]);
    assert_eq!(grown.updates, 1);
    let after = drive(&ch, &customers, 1, &[]).await;
    let mut moved = 0;
    for (before, now) in driven.answers.iter().zip(&after.answers) {
        if before.2 != now.2 {
            assert_eq!(
                (before.2.as_str(), now.2.as_str()),
                ("a", "b"),
                "{}",
                before.0
            );
            moved += 1;
        }
    }
    assert!(moved > 50, "half of a's customers move: {moved}");

    // The experiment survives a restart: the same assignment.
    let dir = fx.server.data_dir.clone();
    fx.server.stop().await;
    fx.server = TestServer::start(&dir).await;
    let ch = fx.channel();
    let again = drive(&ch, &customers[..50], 1, &[]).await;
    for (before, now) in after.answers.iter().zip(&again.answers) {
        assert_eq!(before.2, now.2, "{}", before.0);
        assert_eq!(before.3, now.3);
    }

    // Stopped: everyone is back on the active version.
    let stopped = ExperimentsClient::new(ch.clone())
        .stop_experiment(pb::StopExperimentRequest {
            name: "exp1".into(),
        })
        .await
        .expect("StopExperiment")
        .into_inner();
    assert_eq!(stopped.state, "stopped");
    assert!(stopped.stopped_ms > 0);
    let outside = drive(&ch, &customers[..20], 2, &[]).await;
    for (_, experiment, arm_name, version, _) in &outside.answers {
        assert_eq!(
            (experiment.as_str(), arm_name.as_str(), version.as_str()),
            ("", "", VERSION)
        );
    }
    let listed = ExperimentsClient::new(ch.clone())
        .list_experiments(pb::ListExperimentsRequest {})
        .await
        .expect("ListExperiments")
        .into_inner();
    assert_eq!(listed.experiments.len(), 1);
    assert_eq!(report(&ch, "exp1").await.state, "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_experiments_are_refused_naming_the_field() {
    let config = doppel_grpc::NodeConfig {
        max_loaded_versions: 2,
        ..Default::default()
    };
    let fx = loaded_with(
        doppel_test_support::small_base(),
        config,
        doppel_grpc::ServeOptions::default(),
    )
    .await;
    let ch = fx.channel();
    import_unrelated(&ch, &fx.data, "v2").await;
    import_unrelated(&ch, &fx.data, "v3").await;
    let one = || vec![arm("a", VERSION, 1)];
    let with = |edit: fn(&mut pb::CreateExperimentRequest)| {
        let mut request = request("e", one());
        edit(&mut request);
        request
    };
    let cases: Vec<(pb::CreateExperimentRequest, Code, &str)> = vec![
        (request("", one()), Code::InvalidArgument, "name"),
        (request("../x", one()), Code::InvalidArgument, "name"),
        (request("e", vec![]), Code::InvalidArgument, "arms"),
        (
            request("e", vec![arm("a", VERSION, 1), arm("b", "v2", 10_001)]),
            Code::InvalidArgument,
            "arms[1].weight",
        ),
        (
            request("e", vec![arm("a", VERSION, 0), arm("b", "v2", 0)]),
            Code::InvalidArgument,
            "arms",
        ),
        (
            request("e", vec![arm("a", VERSION, 1), arm("a", "v2", 1)]),
            Code::InvalidArgument,
            "arms[1].name",
        ),
        (
            request("e", vec![arm("a", "..", 1)]),
            Code::InvalidArgument,
            "arms[0].model_version",
        ),
        (
            request("e", vec![arm("a", "nope", 1)]),
            Code::NotFound,
            "arms[0].model_version",
        ),
        (
            with(|r| r.traffic_percent = 101),
            Code::InvalidArgument,
            "traffic_percent",
        ),
        (
            with(|r| r.salt = "s".repeat(129)),
            Code::InvalidArgument,
            "salt",
        ),
        (request("canary", one()), Code::InvalidArgument, "name"),
        // v1 active + v2 + v3 is over --max-loaded-versions 2.
        (
            request("e", vec![arm("a", "v2", 1), arm("b", "v3", 1)]),
            Code::FailedPrecondition,
            "max-loaded-versions",
        ),
    ];
    let mut client = ExperimentsClient::new(ch.clone());
    for (request, code, field) in cases {
        let status = client
            .create_experiment(request.clone())
            .await
            .expect_err(&format!("{request:?}"));
        assert_eq!(status.code(), code, "{request:?}: {status:?}");
        assert!(
            status.message().contains(field),
            "{field}: {}",
            status.message()
        );
    }
    create(&ch, "e1", vec![arm("a", VERSION, 1), arm("b", "v2", 1)], "")
        .await
        .expect("a good one");
    let status = create(&ch, "e2", vec![arm("a", VERSION, 1)], "")
        .await
        .expect_err("one at a time");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("e1"), "{}", status.message());
    let status = create(&ch, "e1", vec![arm("a", VERSION, 1)], "")
        .await
        .expect_err("name in use");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().starts_with("name"), "{}", status.message());
    // A version serving an arm cannot be deleted.
    let status = ModelAdminClient::new(ch.clone())
        .delete_version(pb::DeleteVersionRequest {
            model_version: "v2".into(),
        })
        .await
        .expect_err("pinned");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    let updates: Vec<(Vec<pb::Arm>, &str)> = vec![
        (vec![arm("a", "", 1)], "arms"),
        (vec![arm("a", "", 1), arm("c", "", 1)], "arms[1].name"),
        (
            vec![arm("a", "", 1), arm("b", "v3", 1)],
            "arms[1].model_version",
        ),
        (vec![arm("a", "", 0), arm("b", "", 0)], "arms"),
    ];
    for (arms, field) in updates {
        let status = client
            .update_weights(pb::UpdateWeightsRequest {
                name: "e1".into(),
                arms: arms.clone(),
                traffic_percent: 0,
            })
            .await
            .expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{arms:?}");
        assert!(
            status.message().starts_with(field),
            "{field}: {}",
            status.message()
        );
    }
    let status = client
        .get_experiment_report(pb::GetExperimentReportRequest {
            name: "e1".into(),
            attribution_seconds: 91 * 86_400,
        })
        .await
        .expect_err("too long");
    assert!(
        status.message().starts_with("attribution_seconds"),
        "{status:?}"
    );
    let status = client
        .stop_experiment(pb::StopExperimentRequest {
            name: "nope".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let status = ModelAdminClient::new(ch.clone())
        .activate_version(pb::ActivateVersionRequest {
            model_version: "v2".into(),
            canary_percent: 100,
            guard: None,
        })
        .await
        .expect_err("percent");
    assert!(status.message().starts_with("canary_percent"), "{status:?}");
}

/// Polls `DescribeVersion(version)` until its rollback reason is set (at most 20 s).
pub async fn wait_for_rollback(channel: &Channel, version: &str) -> pb::DescribeVersionResponse {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let described = ModelAdminClient::new(channel.clone())
            .describe_version(pb::DescribeVersionRequest {
                model_version: version.into(),
            })
            .await
            .expect("DescribeVersion")
            .into_inner();
        if !described.rollback_reason.is_empty() {
            return described;
        }
        assert!(Instant::now() < deadline, "the canary did not roll back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn canary(
    version: &str,
    percent: u32,
    guard: Option<pb::CanaryGuard>,
) -> pb::ActivateVersionRequest {
    pb::ActivateVersionRequest {
        model_version: version.into(),
        canary_percent: percent,
        guard,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_canary_rolls_itself_back_when_its_ctr_guard_trips_and_a_good_one_is_promoted() {
    let fx = loaded().await;
    let ch = fx.channel();
    import_unrelated(&ch, &fx.data, "v2").await;
    let mut admin = ModelAdminClient::new(ch.clone());
    let guard = pb::CanaryGuard {
        min_ctr_ratio: 0.5,
        min_impressions: 100,
        ..Default::default()
    };
    let started = admin
        .activate_version(canary("v2", 40, Some(guard)))
        .await
        .expect("canary")
        .into_inner();
    assert!(started.canary);
    assert_eq!(started.previous_version, VERSION);
    let described = admin
        .describe_version(pb::DescribeVersionRequest {
            model_version: "v2".into(),
        })
        .await
        .expect("describe")
        .into_inner();
    assert!(described.canary && !described.active);

    // Customers click on the stable version's offers only.
    let customers: Vec<String> = fx
        .data
        .customers
        .iter()
        .take(300)
        .map(|c| c.id.clone())
        .collect();
    let driven = drive(&ch, &customers, 4, &["stable"]).await;
    assert!(
        driven.arms["canary"].impressions >= 100,
        "{:?}",
        driven.arms.keys()
    );
    let rolled = wait_for_rollback(&ch, "v2").await;
    assert!(
        rolled.rollback_reason.contains("CTR"),
        "{}",
        rolled.rollback_reason
    );
    assert!(!rolled.canary && !rolled.active);
    let listed = ExperimentsClient::new(ch.clone())
        .list_experiments(pb::ListExperimentsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.experiments[0].kind, "canary");
    assert_eq!(listed.experiments[0].state, "stopped");
    assert_eq!(listed.experiments[0].stop_reason, rolled.rollback_reason);
    let after = drive(&ch, &customers[..30], 2, &[]).await;
    assert!(
        after
            .answers
            .iter()
            .all(|a| a.1.is_empty() && a.3 == VERSION)
    );

    // A full activation while a canary runs ends the canary first.
    admin
        .activate_version(canary("v2", 30, None))
        .await
        .expect("canary to end");
    admin
        .activate_version(pb::ActivateVersionRequest {
            model_version: VERSION.into(),
            ..Default::default()
        })
        .await
        .expect("full activation");
    let listed = ExperimentsClient::new(ch.clone())
        .list_experiments(pb::ListExperimentsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.experiments[0].state, "stopped");
    assert!(
        listed.experiments[0]
            .stop_reason
            .contains("ended by the activation"),
        "{:?}",
        listed.experiments[0]
    );

    // A canary without guards, promoted: v2 becomes active, v1 the rollback target.
    admin
        .activate_version(canary("v2", 10, None))
        .await
        .expect("second canary");
    let promoted = admin
        .promote_canary(pb::PromoteCanaryRequest {})
        .await
        .expect("PromoteCanary")
        .into_inner();
    assert_eq!(
        (
            promoted.model_version.as_str(),
            promoted.previous_version.as_str()
        ),
        ("v2", VERSION)
    );
    let after = drive(&ch, &customers[..30], 2, &[]).await;
    assert!(after.answers.iter().all(|a| a.1.is_empty() && a.3 == "v2"));
    let status = admin
        .promote_canary(pb::PromoteCanaryRequest {})
        .await
        .expect_err("none running");
    assert_eq!(status.code(), Code::FailedPrecondition);
}
