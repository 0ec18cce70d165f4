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

    let described = admin
        .describe_version(pb::DescribeVersionRequest {
            model_version: "v2".into(),
        })
        .await
        .expect("describe v2")
        .into_inner();
    assert!(described.loaded && !described.active);
    assert_eq!(described.index.expect("index").customer_count, 2_000);
    let status = admin
        .describe_version(pb::DescribeVersionRequest {
            model_version: "v9".into(),
        })
        .await
        .expect_err("unknown version");
    assert_eq!(status.code(), tonic::Code::NotFound);

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
                    ..Default::default()
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

#[tokio::test]
async fn a_version_built_before_an_erasure_never_shows_the_erased_customer() {
    let fx = loaded().await;
    doppel_client::import_vectors(
        fx.channel(),
        "v2",
        16,
        &fx.data.customer_vectors,
        &fx.data.item_vectors,
    )
    .await
    .expect("import v2 before the erasure");
    let seeds: Vec<String> = fx
        .data
        .customers
        .iter()
        .filter(|c| c.consent.ads_personalization)
        .take(10)
        .map(|c| c.id.clone())
        .collect();
    let before = crate::fixture::audience(fx.channel(), crate::fixture::everyone(seeds.clone()))
        .await
        .expect("audience");
    let victim = crate::fixture::prospects(&before)[0].customer_id.clone();
    doppel_proto::v1::ingest_client::IngestClient::new(fx.channel())
        .delete_customer(pb::DeleteCustomerRequest {
            customer_id: victim.clone(),
        })
        .await
        .expect("erase");
    for version in ["v2", VERSION] {
        ModelAdminClient::new(fx.channel())
            .activate_version(pb::ActivateVersionRequest {
                model_version: version.to_owned(),
                ..Default::default()
            })
            .await
            .expect("activate");
        let after = crate::fixture::audience(fx.channel(), crate::fixture::everyone(seeds.clone()))
            .await
            .expect("audience");
        assert_eq!(after[0].model_version, version);
        assert!(
            crate::fixture::prospects(&after)
                .iter()
                .all(|p| p.customer_id != victim),
            "{version} brought an erased customer back"
        );
    }
    // After a restart every version is rebuilt from the store: still gone.
    let dir = fx.server.data_dir.clone();
    fx.server.stop().await;
    let server = doppel_test_support::TestServer::start(&dir).await;
    doppel_client::activate(server.channel.clone(), "v2")
        .await
        .expect("activate v2 after restart");
    let after = crate::fixture::audience(
        server.channel.clone(),
        crate::fixture::everyone(seeds.clone()),
    )
    .await
    .expect("audience");
    assert!(
        crate::fixture::prospects(&after)
            .iter()
            .all(|p| p.customer_id != victim)
    );
    server.stop().await;
}
