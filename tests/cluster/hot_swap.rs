//! Model versions across the cluster under continuous load: activation is two-phase (every
//! node loads, then the pointer flips, then every node switches), so no request fails and
//! none mixes versions; a rollback is the same flip back; a node killed during an
//! activation leaves the cluster on one version — never split.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use doppel_proto::internal::v1 as ipb;
use doppel_proto::internal::v1::shard_client::ShardClient;
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_synth::SynthData;
use parking_lot::Mutex;
use tonic::transport::Channel;

use crate::fixture::{Cluster, VERSION, batches, loaded, seeds};

/// A second model: every vector with its components reversed (valid, and different).
async fn import_reversed(channel: &Channel, data: &SynthData, version: &str) {
    let reverse = |rows: &[(String, Vec<f32>)]| -> Vec<(String, Vec<f32>)> {
        rows.iter()
            .map(|(id, v)| (id.clone(), v.iter().rev().copied().collect()))
            .collect()
    };
    let dim = data.customer_vectors[0].1.len() as u32;
    doppel_client::import_vectors(
        channel.clone(),
        version,
        dim,
        &reverse(&data.customer_vectors),
        &reverse(&data.item_vectors),
    )
    .await
    .expect("import");
}

/// Active version of every live node.
async fn node_versions(cluster: &Cluster) -> Vec<String> {
    cluster.router.router.refresh().await.expect("refresh");
    let mut out = Vec::new();
    for node in &cluster.router.router.topology().nodes {
        let status = ShardClient::new(node.channel.clone())
            .node_status(ipb::NodeStatusRequest {})
            .await
            .expect("node status")
            .into_inner();
        out.push(status.active_version);
    }
    out
}

#[derive(Default)]
struct Seen {
    ok: usize,
    failed: Vec<String>,
    /// (when the request was sent, the version that answered it).
    versions: Vec<(Instant, String)>,
}

/// Recommendations and audiences from 4 clients until `running` turns false.
fn drive(
    cluster: &Cluster,
    running: Arc<AtomicBool>,
    skip: &str,
) -> (Arc<Mutex<Seen>>, Vec<tokio::task::JoinHandle<()>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let customers: Vec<String> = cluster
        .data
        .customers
        .iter()
        .map(|c| c.id.clone())
        .filter(|id| id != skip)
        .collect();
    let audience = pb::LookalikeRequest {
        seed_customer_ids: seeds(&cluster.data, 20),
        size: Some(Size::Count(200)),
        ..Default::default()
    };
    let tasks = (0..4usize)
        .map(|worker| {
            let (seen, running) = (seen.clone(), running.clone());
            let channel = cluster.router.channel.clone();
            let (customers, audience) = (customers.clone(), audience.clone());
            tokio::spawn(async move {
                let mut n = worker;
                while running.load(Ordering::Relaxed) {
                    n += 4;
                    let began = Instant::now();
                    let result: Result<String, String> = if n % 4 == 0 {
                        match batches(channel.clone(), audience.clone()).await {
                            Ok(b) => {
                                let first = b[0].model_version.clone();
                                if b.iter().any(|x| x.model_version != first) {
                                    Err(format!("an audience mixed versions: {first} and others"))
                                } else if b.last().is_some_and(|l| l.shards_answered != 16) {
                                    Err("an audience was partial".into())
                                } else {
                                    Ok(first)
                                }
                            }
                            Err(s) => Err(format!("audience: {s:?}")),
                        }
                    } else {
                        RecommendationsClient::new(channel.clone())
                            .recommend_offers(pb::RecommendRequest {
                                customer_id: customers[(n * 31) % customers.len()].clone(),
                                k: 10,
                                ..Default::default()
                            })
                            .await
                            .map(|r| r.into_inner().model_version)
                            .map_err(|s| format!("recommend: {s:?}"))
                    };
                    let mut s = seen.lock();
                    match result {
                        Ok(version) => {
                            s.ok += 1;
                            s.versions.push((began, version));
                        }
                        Err(e) => s.failed.push(e),
                    }
                }
            })
        })
        .collect();
    (seen, tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn activation_and_rollback_under_load_fail_nothing_and_never_mix_versions() {
    let cluster = loaded(2).await;
    import_reversed(&cluster.router.channel, &cluster.data, "v2").await;
    // Erased after v2 was imported: no version may bring the customer back.
    let erased = cluster
        .data
        .customers
        .iter()
        .rev()
        .find(|c| c.consent.ads_personalization)
        .expect("a customer")
        .id
        .clone();
    IngestClient::new(cluster.router.channel.clone())
        .delete_customer(pb::DeleteCustomerRequest {
            customer_id: erased.clone(),
        })
        .await
        .expect("erase");
    let running = Arc::new(AtomicBool::new(true));
    let (seen, tasks) = drive(&cluster, running.clone(), &erased);
    let mut admin = ModelAdminClient::new(cluster.router.channel.clone());

    tokio::time::sleep(Duration::from_millis(400)).await;
    // A version that does not exist or is not ready changes nothing.
    let refused = admin
        .activate_version(pb::ActivateVersionRequest {
            model_version: "nope".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown version");
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    assert_eq!(node_versions(&cluster).await, [VERSION, VERSION]);
    let started = Instant::now();
    let activated = admin
        .activate_version(pb::ActivateVersionRequest {
            model_version: "v2".into(),
            ..Default::default()
        })
        .await
        .expect("activate v2")
        .into_inner();
    let swapped_at = Instant::now();
    let swap = swapped_at - started;
    assert_eq!(activated.previous_version, VERSION);
    assert_eq!(
        node_versions(&cluster).await,
        ["v2", "v2"],
        "every node switched"
    );

    tokio::time::sleep(Duration::from_millis(600)).await;
    let rollback_started = Instant::now();
    let rolled = admin
        .rollback(pb::RollbackRequest {})
        .await
        .expect("roll back")
        .into_inner();
    let rolled_at = Instant::now();
    let rollback = rolled_at - rollback_started;
    eprintln!("activation {swap:?}, rollback {rollback:?} (debug build, under load)");
    assert!(
        rollback < Duration::from_secs(1),
        "rollback took {rollback:?}"
    );
    assert_eq!(rolled.model_version, VERSION);
    assert_eq!(node_versions(&cluster).await, [VERSION, VERSION]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    running.store(false, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("load task");
    }

    let seen = std::mem::take(&mut *seen.lock());
    assert!(seen.ok > 50, "the load ran ({})", seen.ok);
    assert!(
        seen.failed.is_empty(),
        "{} requests failed, e.g. {:?}",
        seen.failed.len(),
        &seen.failed[..seen.failed.len().min(5)]
    );
    for (at, version) in &seen.versions {
        assert!(
            version == VERSION || version == "v2",
            "unknown version {version}"
        );
        // A request sent after an activation returned, and before the rollback began, is
        // never answered by the version it replaced (requests in flight during a switch
        // finish on the version they began; one sent while the rollback is under way may
        // meet a node already switched back, so the window ends where the rollback starts).
        if *at > swapped_at && *at < rollback_started {
            assert_eq!(version, "v2", "a v1 answer after the activation returned");
        }
        if *at > rolled_at {
            assert_eq!(version, VERSION, "a v2 answer after the rollback returned");
        }
    }
    assert!(
        seen.versions.iter().any(|(_, v)| v == "v2"),
        "v2 answered at some point"
    );
    assert!(swap < Duration::from_secs(30), "activation took {swap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_during_activation_never_leaves_a_split_cluster() {
    let mut cluster = loaded(2).await;
    import_reversed(&cluster.router.channel, &cluster.data, "v2").await;
    let mut admin = ModelAdminClient::new(cluster.router.channel.clone());
    let activation = tokio::spawn(async move {
        admin
            .activate_version(pb::ActivateVersionRequest {
                model_version: "v2".into(),
                ..Default::default()
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(5)).await;
    cluster.shards[1].take().expect("node 1").kill();
    let outcome = activation.await.expect("activation task");
    let pointer = cluster
        .router
        .router
        .active_version()
        .await
        .expect("pointer")
        .expect("a version is active");
    match &outcome {
        Ok(r) => assert_eq!(r.get_ref().model_version, pointer),
        Err(status) => {
            assert!(
                matches!(
                    status.code(),
                    tonic::Code::FailedPrecondition | tonic::Code::Unavailable
                ),
                "{status:?}"
            );
        }
    }
    // Whatever happened, the survivor takes the dead node's shards over and the whole
    // cluster answers with the one version the pointer names.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        cluster.router.router.refresh().await.expect("refresh");
        let topology = cluster.router.router.topology();
        if topology.nodes.len() == 1 && topology.routable_shards() == 16 {
            break;
        }
        assert!(Instant::now() < deadline, "no failover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pointer = cluster
        .router
        .router
        .active_version()
        .await
        .expect("pointer")
        .expect("active");
    let deadline = Instant::now() + Duration::from_secs(10);
    while node_versions(&cluster).await != [pointer.clone()] {
        assert!(
            Instant::now() < deadline,
            "the survivor did not converge on {pointer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let audience = batches(
        cluster.router.channel.clone(),
        pb::LookalikeRequest {
            seed_customer_ids: seeds(&cluster.data, 10),
            size: Some(Size::Count(50)),
            ..Default::default()
        },
    )
    .await
    .expect("audience");
    assert!(audience.iter().all(|b| b.model_version == pointer));
    assert_eq!(audience.last().expect("batch").shards_answered, 16);
}
