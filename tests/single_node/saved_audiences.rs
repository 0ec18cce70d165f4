//! Saved audiences: kept across a restart, refreshed, listed, deleted; an erased member
//! leaves at once, one who withdraws ads consent is left out of the next read; limits.

use doppel_grpc::convert::customer_to_pb;
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_test_support::TestServer;
use doppel_test_support::audience_checks::{find, members, saved_members};
use doppel_types::SavedAudienceLimits;
use tonic::Code;
use tonic::transport::Channel;

use crate::fixture::{count, loaded, loaded_with};

async fn stored(channel: &Channel, id: &str) -> Vec<pb::Prospect> {
    saved_members(channel, id).await
}

#[tokio::test]
async fn a_saved_audience_survives_a_restart_and_loses_erased_and_withdrawn_members() {
    let fx = loaded().await;
    let query = count(fx.seeds(0, 20), 1_500);
    let computed = find(&fx.channel(), query.clone()).await.expect("find");
    let expected: Vec<String> = members(&computed)
        .iter()
        .map(|p| p.customer_id.clone())
        .collect();

    let mut client = AudiencesClient::new(fx.channel());
    let info = client
        .save_audience(pb::SaveAudienceRequest {
            name: "spring lookalikes".into(),
            query: Some(query.clone()),
        })
        .await
        .expect("save")
        .into_inner();
    assert!(info.audience_id.starts_with("aud-"));
    assert_eq!(info.size, 1_500);
    assert_eq!(info.query.as_ref(), Some(&query));
    assert_eq!(info.created_ms, info.refreshed_ms);
    let got: Vec<String> = stored(&fx.channel(), &info.audience_id)
        .await
        .into_iter()
        .map(|p| p.customer_id)
        .collect();
    assert_eq!(
        got, expected,
        "the stored members are the audience, in order"
    );

    // Survives a restart.
    let crate::fixture::Loaded { server, data, _dir } = fx;
    let dir = server.data_dir.clone();
    server.stop().await;
    let server = TestServer::start(&dir).await;
    let channel = server.channel.clone();
    let mut client = AudiencesClient::new(channel.clone());
    let listed = client
        .list_audiences(pb::ListAudiencesRequest {})
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.audiences.len(), 1);
    assert_eq!(listed.audiences[0].audience_id, info.audience_id);
    assert_eq!(stored(&channel, &info.audience_id).await.len(), 1_500);

    // Erased: gone at once, and the size says so.
    let erased = expected[0].clone();
    IngestClient::new(channel.clone())
        .delete_customer(pb::DeleteCustomerRequest {
            customer_id: erased.clone(),
        })
        .await
        .expect("erase");
    let now = stored(&channel, &info.audience_id).await;
    assert!(now.iter().all(|p| p.customer_id != erased));
    assert_eq!(now.len(), 1_499);
    let after = client
        .get_audience(pb::GetAudienceRequest {
            audience_id: info.audience_id.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(after.size, 1_499);
    // An erased seed leaves the saved query too.
    let seed = query.seed_customer_ids[0].clone();
    IngestClient::new(channel.clone())
        .delete_customer(pb::DeleteCustomerRequest {
            customer_id: seed.clone(),
        })
        .await
        .expect("erase a seed");
    let saved_query = client
        .get_audience(pb::GetAudienceRequest {
            audience_id: info.audience_id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .query
        .expect("the query");
    assert!(!saved_query.seed_customer_ids.contains(&seed));
    assert_eq!(saved_query.seed_customer_ids.len(), 19);

    // Withdrawn ads consent: left out of the next read.
    let withdrawn = expected[1].clone();
    let mut customer = data
        .customers
        .iter()
        .find(|c| c.id == withdrawn)
        .expect("customer")
        .clone();
    customer.consent.ads_personalization = false;
    doppel_client::upload_customers(channel.clone(), vec![customer_to_pb(customer)], |_| {})
        .await
        .expect("withdraw consent");
    let now = stored(&channel, &info.audience_id).await;
    assert!(now.iter().all(|p| p.customer_id != withdrawn));
    assert_eq!(now.len(), 1_498);

    // Refresh re-runs the query on the active version; delete removes it.
    let refreshed = client
        .refresh_audience(pb::RefreshAudienceRequest {
            audience_id: info.audience_id.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    assert_eq!(refreshed.created_ms, info.created_ms);
    assert!(refreshed.refreshed_ms >= info.refreshed_ms);
    assert_eq!(refreshed.size, 1_500);
    assert!(
        listed.audiences[0].query.is_none(),
        "listing leaves queries out"
    );
    let members_now = stored(&channel, &info.audience_id).await;
    assert!(
        members_now
            .iter()
            .all(|p| p.customer_id != erased && p.customer_id != withdrawn)
    );
    let deleted = client
        .delete_audience(pb::DeleteAudienceRequest {
            audience_id: info.audience_id.clone(),
        })
        .await
        .expect("delete")
        .into_inner();
    assert!(deleted.deleted);
    let status = client
        .get_audience(pb::GetAudienceRequest {
            audience_id: info.audience_id.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().starts_with("audience_id"), "{status:?}");
    server.stop().await;
}

#[tokio::test]
async fn saved_audiences_are_bounded_and_their_inputs_checked() {
    let config = doppel_grpc::NodeConfig {
        saved_audience_limits: SavedAudienceLimits {
            max_audiences: 2,
            max_members: 1_000,
        },
        privacy_floor: doppel_types::PrivacyFloor {
            min_seed_count: 0,
            min_audience_size: 10,
        },
        ..Default::default()
    };
    let fx = loaded_with(
        doppel_test_support::small_base(),
        config,
        doppel_grpc::ServeOptions::default(),
    )
    .await;
    let mut client = AudiencesClient::new(fx.channel());
    let save = |name: &str, n: u64| pb::SaveAudienceRequest {
        name: name.into(),
        query: Some(count(fx.seeds(1, 10), n)),
    };
    client.save_audience(save("a", 600)).await.expect("first");
    let status = client
        .save_audience(save("b", 500))
        .await
        .expect_err("over the members");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().starts_with("query"), "{status:?}");
    let status = client
        .save_audience(save("b", 5))
        .await
        .expect_err("below the floor");
    assert_eq!(status.code(), Code::FailedPrecondition);
    client.save_audience(save("b", 400)).await.expect("second");
    let status = client
        .save_audience(save("c", 10))
        .await
        .expect_err("over the count");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().starts_with("name"), "{status:?}");

    let bad = [
        (save("", 10), "name"),
        (save(&"x".repeat(257), 10), "name"),
        (
            pb::SaveAudienceRequest {
                name: "q".into(),
                query: None,
            },
            "query",
        ),
    ];
    for (request, field) in bad {
        let status = client.save_audience(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{status:?}");
    }
    for id in ["", "../../etc", "aud-XYZ", "aud-0123456789abcdef0"] {
        let status = client
            .get_audience(pb::GetAudienceRequest {
                audience_id: id.into(),
            })
            .await
            .expect_err(id);
        assert_eq!(status.code(), Code::InvalidArgument, "{id}: {status:?}");
        assert!(status.message().starts_with("audience_id"), "{status:?}");
    }
    let status = client
        .refresh_audience(pb::RefreshAudienceRequest {
            audience_id: "aud-0123456789abcdef".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}
