//! Hot-swap and rollback under continuous load: no failed request, one version per
//! response, and once a client has seen the new version it never sees the old one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;

use crate::fixture::{VERSION, loaded};

/// Requests until `stop`; returns (failures, the version of every response in order).
async fn hammer(
    channel: tonic::transport::Channel,
    customers: Arc<Vec<String>>,
    stop: Arc<AtomicBool>,
) -> (usize, Vec<String>) {
    let mut client = RecommendationsClient::new(channel);
    let (mut failures, mut versions) = (0, Vec::new());
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let request = pb::RecommendRequest {
            customer_id: customers[i % customers.len()].clone(),
            k: 10,
            ..Default::default()
        };
        match client.recommend_offers(request).await {
            Ok(r) => versions.push(r.into_inner().model_version),
            Err(_) => failures += 1,
        }
    }
    (failures, versions)
}

#[tokio::test]
async fn activation_and_rollback_under_load_fail_nothing_and_never_mix() {
    let fx = loaded().await;
    let mut admin = ModelAdminClient::new(fx.channel());
    let status = admin
        .rollback(pb::RollbackRequest {})
        .await
        .expect_err("nothing to roll back to");
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);

    doppel_client::import_vectors(
        fx.channel(),
        "v2",
        16,
        &fx.data.customer_vectors,
        &fx.data.item_vectors,
    )
    .await
    .expect("import v2");

    let customers: Arc<Vec<String>> =
        Arc::new(fx.data.customers.iter().map(|c| c.id.clone()).collect());
    for (target, step) in [
        ("v2", "activate"),
        (VERSION, "rollback"),
        ("v2", "rollback"),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(hammer(
                    fx.channel(),
                    Arc::clone(&customers),
                    Arc::clone(&stop),
                ))
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let response = if step == "activate" {
            admin
                .activate_version(pb::ActivateVersionRequest {
                    model_version: target.to_owned(),
                })
                .await
        } else {
            admin.rollback(pb::RollbackRequest {}).await
        }
        .expect(step)
        .into_inner();
        assert_eq!(response.model_version, target);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            let (failures, versions) = client.await.expect("client task");
            assert_eq!(failures, 0, "{step} to {target}: failed requests");
            assert!(versions.len() > 10, "the load kept running");
            let switched = versions.iter().position(|v| v == target).expect("switched");
            assert!(
                versions[switched..].iter().all(|v| v == target),
                "{step} to {target}: an old version answered after the new one"
            );
            assert!(versions.iter().all(|v| v == "v1" || v == "v2"));
        }
    }
}
