//! Admission control: a heavy call over its class's limit is refused at once with
//! RESOURCE_EXHAUSTED while cheap calls and health go on; the permit is held until the
//! heavy call's stream ends, then the next heavy call is admitted.

use doppel_grpc::ServeOptions;
use doppel_grpc::admission::AdmissionLimits;
use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use tonic_health::pb::health_client::HealthClient;

use crate::fixture::{audience, everyone, loaded_serving};

#[tokio::test]
async fn heavy_calls_over_the_limit_are_refused_at_once_and_cheap_ones_go_on() {
    let fx = loaded_serving(ServeOptions {
        admission: AdmissionLimits {
            cheap: 64,
            heavy: 1,
        },
        ..ServeOptions::default()
    })
    .await;
    let (server, data) = (&fx.server, &fx.data);
    let seeds = fx.seeds(0, 20);

    // A training run holds the one heavy permit while its progress stream is open.
    let mut training = ModelAdminClient::new(server.channel.clone())
        .train(pb::TrainRequest {
            model_version: "v2".into(),
            ..Default::default()
        })
        .await
        .expect("Train")
        .into_inner();
    training
        .message()
        .await
        .expect("progress")
        .expect("a first progress message");

    let refused = audience(server.channel.clone(), everyone(seeds.clone()))
        .await
        .expect_err("a second heavy call is over the limit");
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(refused.message().contains("heavy"), "{}", refused.message());
    for hint in ["retry-after-ms", "grpc-retry-pushback-ms"] {
        assert_eq!(
            refused.metadata().get(hint).and_then(|v| v.to_str().ok()),
            Some(
                doppel_grpc::admission::HEAVY_PUSHBACK_MS
                    .to_string()
                    .as_str()
            ),
            "{hint}"
        );
    }

    // Cheap calls and health are not affected.
    RecommendationsClient::new(server.channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: data.customers[0].id.clone(),
            k: 5,
            ..Default::default()
        })
        .await
        .expect("a cheap call is admitted");
    HealthClient::new(server.channel.clone())
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health answers");

    // Once the training stream ended, the permit is back.
    while training.message().await.expect("progress").is_some() {}
    drop(training);
    let mut admitted = None;
    for _ in 0..50 {
        match audience(server.channel.clone(), everyone(seeds.clone())).await {
            Ok(batches) => {
                admitted = Some(batches);
                break;
            }
            Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    }
    assert!(
        admitted.is_some_and(|b| !b.is_empty()),
        "the heavy permit was released"
    );
}
