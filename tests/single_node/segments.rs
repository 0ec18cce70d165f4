//! Segments: computed by Train, listed and paged by the Segments service, shown by
//! GetCustomer, kept across client upserts, usable as lookalike seeds and exclusions.

use std::collections::HashSet;

use doppel_grpc::convert::customer_to_pb;
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::segments_client::SegmentsClient;
use doppel_test_support::{TestServer, small_base};

use doppel_test_support::upload_base;

use crate::fixture::{audience, prospects};

fn segment(kind: &str, name: &str) -> pb::Segment {
    pb::Segment {
        kind: kind.to_owned(),
        name: name.to_owned(),
    }
}

#[tokio::test]
async fn training_computes_segments_that_serve_audiences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let data = small_base();
    upload_base(&server.channel, &data).await;
    let request = pb::TrainRequest {
        model_version: "seg-1".into(),
        factors: Some(16),
        ..Default::default()
    };
    doppel_client::train(server.channel.clone(), request, |_| {})
        .await
        .expect("train");
    doppel_client::activate(server.channel.clone(), "seg-1")
        .await
        .expect("activate");

    let mut segments = SegmentsClient::new(server.channel.clone());
    let all = segments
        .list_segments(pb::ListSegmentsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .segments;
    let total = |kind: &str| -> u64 {
        all.iter()
            .filter(|s| s.segment.as_ref().is_some_and(|g| g.kind == kind))
            .map(|s| s.customers)
            .sum()
    };
    assert!(
        total("rfm") > 1_500 && total("rfm") <= 2_000,
        "rfm covers {}",
        total("rfm")
    );
    assert_eq!(
        total("rfm"),
        total("clv"),
        "every segmented customer has both"
    );
    assert!(total("cluster") > 1_500);

    // Page through the largest cluster.
    let biggest = all
        .iter()
        .find(|s| s.segment.as_ref().is_some_and(|g| g.kind == "cluster"))
        .expect("a cluster")
        .clone();
    let cluster = biggest.segment.clone().expect("segment");
    let mut members = Vec::new();
    let mut token = String::new();
    loop {
        let page = segments
            .list_segment_members(pb::ListSegmentMembersRequest {
                segment: Some(cluster.clone()),
                page_size: 100,
                page_token: token.clone(),
            })
            .await
            .expect("members")
            .into_inner();
        assert_eq!(page.total, biggest.customers);
        assert!(page.customer_ids.len() <= 100);
        members.extend(page.customer_ids);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(members.len() as u64, biggest.customers);
    assert!(members.windows(2).all(|w| w[0] < w[1]), "sorted and unique");

    // Issue 10: a page token is opaque and bound to its segment; garbage is refused, and
    // an unknown segment is NOT_FOUND here as it is for FindLookalikes.
    let first = segments
        .list_segment_members(pb::ListSegmentMembersRequest {
            segment: Some(cluster.clone()),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .expect("first page")
        .into_inner();
    let other = all
        .iter()
        .filter_map(|s| s.segment.clone())
        .find(|s| *s != cluster)
        .expect("a second segment");
    for (segment, token, case) in [
        (cluster.clone(), members[0].clone(), "a raw customer id"),
        (cluster.clone(), "zz-not-hex".to_owned(), "garbage"),
        (
            other,
            first.next_page_token.clone(),
            "another segment's token",
        ),
    ] {
        let status = segments
            .list_segment_members(pb::ListSegmentMembersRequest {
                segment: Some(segment),
                page_size: 10,
                page_token: token,
            })
            .await
            .expect_err(case);
        assert_eq!(
            status.code(),
            tonic::Code::InvalidArgument,
            "{case}: {status:?}"
        );
        assert!(
            status.message().contains("page_token"),
            "{case}: {status:?}"
        );
    }
    let status = segments
        .list_segment_members(pb::ListSegmentMembersRequest {
            segment: Some(segment("rfm", "no-such-segment")),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .expect_err("unknown segment");
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(status.message().contains("segment"), "{status:?}");

    // GetCustomer shows the segments; a client upsert keeps them; clients cannot set them.
    let mut ingest = IngestClient::new(server.channel.clone());
    let who = members[0].clone();
    let shown = |r: pb::GetCustomerResponse| r.segments;
    let before = shown(
        ingest
            .get_customer(pb::GetCustomerRequest {
                customer_id: who.clone(),
            })
            .await
            .expect("get")
            .into_inner(),
    );
    assert!(before.contains(&cluster), "{before:?}");
    assert_eq!(before.len(), 3, "rfm, clv and cluster");
    let profile = data
        .customers
        .iter()
        .find(|c| c.id == who)
        .expect("profile")
        .clone();
    doppel_client::upload_customers(
        server.channel.clone(),
        vec![customer_to_pb(profile.clone())],
        |_| {},
    )
    .await
    .expect("re-upsert");
    let after = shown(
        ingest
            .get_customer(pb::GetCustomerRequest {
                customer_id: who.clone(),
            })
            .await
            .expect("get")
            .into_inner(),
    );
    assert_eq!(before, after, "a client upsert must not wipe segments");
    let mut forged = customer_to_pb(profile);
    forged
        .attributes
        .insert("segment.rfm".into(), "champions".into());
    let summary = ingest
        .upsert_customers(tokio_stream::iter(vec![forged]))
        .await
        .expect("summary")
        .into_inner();
    assert_eq!((summary.accepted, summary.rejected), (0, 1));
    assert_eq!(summary.errors[0].field, "attributes[segment.rfm]");

    // A segment as seed: its members are seeds, so none is a prospect.
    let member_set: HashSet<&str> = members.iter().map(String::as_str).collect();
    let request = pb::LookalikeRequest {
        seed_segments: vec![cluster.clone()],
        size: Some(pb::lookalike_request::Size::Count(50)),
        ..Default::default()
    };
    let batches = audience(server.channel.clone(), request)
        .await
        .expect("segment seed");
    let people = prospects(&batches);
    assert_eq!(people.len(), 50);
    assert!(
        people
            .iter()
            .all(|p| !member_set.contains(p.customer_id.as_str()))
    );

    // Excluding a segment keeps its members out.
    // The largest CLV tier, so the exclusion has members to keep out.
    let excluded = all
        .iter()
        .filter_map(|s| s.segment.clone())
        .find(|g| g.kind == "clv")
        .expect("a clv tier");
    let mut request = crate::fixture::count(vec![who.clone()], 200);
    request.seed_customer_ids = members[..20].to_vec();
    request.exclude_segments = vec![excluded.clone()];
    let batches = audience(server.channel.clone(), request)
        .await
        .expect("exclusion");
    let excluded_members: HashSet<String> = {
        let page = segments
            .list_segment_members(pb::ListSegmentMembersRequest {
                segment: Some(excluded),
                page_size: 10_000,
                page_token: String::new(),
            })
            .await
            .expect("members")
            .into_inner();
        page.customer_ids.into_iter().collect()
    };
    assert!(!excluded_members.is_empty());
    assert!(
        prospects(&batches)
            .iter()
            .all(|p| !excluded_members.contains(&p.customer_id))
    );

    // Bad references name the field.
    let bad = pb::LookalikeRequest {
        seed_segments: vec![segment("mood", "happy")],
        size: Some(pb::lookalike_request::Size::Count(5)),
        ..Default::default()
    };
    let status = audience(server.channel.clone(), bad)
        .await
        .expect_err("bad kind");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("seed_segments[0].kind"),
        "{}",
        status.message()
    );
    let empty = pb::LookalikeRequest {
        seed_segments: vec![segment("rfm", "no_such_segment")],
        size: Some(pb::lookalike_request::Size::Count(5)),
        ..Default::default()
    };
    let status = audience(server.channel.clone(), empty)
        .await
        .expect_err("empty segment");
    assert_eq!(status.code(), tonic::Code::NotFound);
    server.stop().await;
}
