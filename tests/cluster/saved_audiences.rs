//! Saved audiences through a router: kept in Redis, so a new router and a takeover both
//! find them; an erased member leaves at once.

use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_test_support::audience_checks::{find, members, saved_members};
use doppel_test_support::cluster::TestRouter;

use crate::fixture::{loaded, seeds};

async fn stored(channel: tonic::transport::Channel, id: &str) -> Vec<String> {
    saved_members(&channel, id)
        .await
        .into_iter()
        .map(|p| p.customer_id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn saved_audiences_outlive_routers_and_takeovers_and_lose_erased_members() {
    let mut cluster = loaded(2).await;
    let query = pb::LookalikeRequest {
        seed_customer_ids: seeds(&cluster.data, 20),
        size: Some(Size::TopPercent(25.0)),
        ..Default::default()
    };
    let expected: Vec<String> = members(
        &find(&cluster.router.channel, query.clone())
            .await
            .expect("find"),
    )
    .iter()
    .map(|p| p.customer_id.clone())
    .collect();
    let info = AudiencesClient::new(cluster.router.channel.clone())
        .save_audience(pb::SaveAudienceRequest {
            name: "cluster audience".into(),
            query: Some(query.clone()),
        })
        .await
        .expect("save")
        .into_inner();
    assert_eq!(info.size as usize, expected.len());

    // Another router over the same Redis sees it, members and all.
    let other = TestRouter::start(&cluster.redis.url()).await;
    other.wait_for_nodes(2).await;
    assert_eq!(
        stored(other.channel.clone(), &info.audience_id).await,
        expected
    );

    // Erasure through a router: the member is gone at once.
    let erased = expected[3].clone();
    IngestClient::new(other.channel.clone())
        .delete_customer(pb::DeleteCustomerRequest {
            customer_id: erased.clone(),
        })
        .await
        .expect("erase");
    let now = stored(cluster.router.channel.clone(), &info.audience_id).await;
    assert_eq!(now.len(), expected.len() - 1);
    assert!(!now.contains(&erased));

    // A node dies; after the takeover the audience still reads and refreshes.
    cluster.shards[1].take().expect("node 1").kill();
    cluster.wait_for_sole_survivor().await;
    assert_eq!(
        stored(cluster.router.channel.clone(), &info.audience_id).await,
        now
    );
    let refreshed = AudiencesClient::new(cluster.router.channel.clone())
        .refresh_audience(pb::RefreshAudienceRequest {
            audience_id: info.audience_id.clone(),
        })
        .await
        .expect("refresh after the takeover")
        .into_inner();
    assert!(refreshed.size > 0);
    assert!(
        !stored(cluster.router.channel.clone(), &info.audience_id)
            .await
            .contains(&erased)
    );
}
