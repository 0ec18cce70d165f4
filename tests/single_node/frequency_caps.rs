//! Frequency caps (issue 13): exact cap boundaries on rolling windows, each scope, the
//! one-call "show and count", counts on GetCustomer, and caps surviving a restart and
//! ending with erasure. Impressions carry past timestamps; nothing sleeps.

use std::collections::{BTreeMap, HashSet};

use doppel_proto::v1 as pb;
use doppel_proto::v1::frequency_cap::CapScope;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::policies_client::PoliciesClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_test_support::TestServer;
use tonic::transport::Channel;

use crate::fixture::loaded;

const HOUR: u64 = 3_600;

pub fn cap(scope: CapScope, attribute: &str, max: u32, window_seconds: u64) -> pb::FrequencyCap {
    pb::FrequencyCap {
        scope: scope as i32,
        attribute: attribute.into(),
        max_impressions: max,
        window_seconds,
    }
}

pub async fn set_policy(channel: &Channel, caps: Vec<pb::FrequencyCap>) -> pb::ContactPolicy {
    PoliciesClient::new(channel.clone())
        .set_contact_policy(pb::ContactPolicy { caps })
        .await
        .expect("SetContactPolicy")
        .into_inner()
}

pub async fn offers(
    channel: &Channel,
    customer: &str,
    k: u32,
    record: bool,
) -> pb::RecommendResponse {
    RecommendationsClient::new(channel.clone())
        .recommend_offers(pb::RecommendRequest {
            customer_id: customer.into(),
            k,
            explain: true,
            record_impressions: record,
            ..Default::default()
        })
        .await
        .expect("RecommendOffers")
        .into_inner()
}

pub fn ids(response: &pb::RecommendResponse) -> Vec<String> {
    response.offers.iter().map(|o| o.item_id.clone()).collect()
}

/// Records one impression of each of `items` for `customer`, `ago_ms` before now.
pub async fn shown(channel: &Channel, customer: &str, items: &[String], ago_ms: i64) {
    let now = doppel_types::clock::now_ms();
    let events: Vec<pb::Event> = items
        .iter()
        .map(|item| pb::Event {
            customer_id: customer.into(),
            item_id: item.clone(),
            r#type: pb::EventType::Impression as i32,
            timestamp_ms: now - ago_ms,
            quantity: 1,
            ..Default::default()
        })
        .collect();
    let summary = IngestClient::new(channel.clone())
        .record_events(tokio_stream::iter(events))
        .await
        .expect("RecordEvents")
        .into_inner();
    assert_eq!(summary.accepted as usize, items.len(), "{summary:?}");
}

async fn cap_counts(channel: &Channel, customer: &str) -> BTreeMap<(i32, String), u32> {
    IngestClient::new(channel.clone())
        .get_customer(pb::GetCustomerRequest {
            customer_id: customer.into(),
        })
        .await
        .expect("GetCustomer")
        .into_inner()
        .cap_counts
        .into_iter()
        .map(|c| ((c.cap.map_or(0, |c| c.scope), c.key), c.impressions))
        .collect()
}

#[tokio::test]
async fn item_caps_are_exact_at_the_boundary_and_roll_with_the_window() {
    let fx = loaded().await;
    let ch = fx.channel();
    let buyers: Vec<&str> = {
        let mut b: Vec<&str> = fx.buyers().into_iter().collect();
        b.sort_unstable();
        b
    };
    let (a, b, c) = (buyers[0], buyers[1], buyers[2]);
    let top = ids(&offers(&ch, a, 5, false).await)[0].clone();
    set_policy(&ch, vec![cap(CapScope::Item, "", 2, HOUR)]).await;
    let window_ms = (HOUR * 1_000) as i64;

    // Two impressions inside the window: the third is never shown; k offers still come.
    shown(&ch, a, &[top.clone(), top.clone()], 10 * 60_000).await;
    let capped = offers(&ch, a, 5, false).await;
    assert!(!ids(&capped).contains(&top), "{:?}", ids(&capped));
    assert_eq!(
        capped.offers.len(),
        5,
        "the next best eligible items fill in"
    );
    assert!(capped.capped >= 1, "explain counts the capped candidates");

    // One impression: below the cap, still shown.
    let top_b = ids(&offers(&ch, b, 5, false).await)[0].clone();
    shown(&ch, b, std::slice::from_ref(&top_b), 10 * 60_000).await;
    assert!(ids(&offers(&ch, b, 5, false).await).contains(&top_b));

    // Two impressions whose window has rolled past (just outside) do not count; just
    // inside, they do.
    let top_c = ids(&offers(&ch, c, 5, false).await)[0].clone();
    shown(&ch, c, &[top_c.clone(), top_c.clone()], window_ms + 30_000).await;
    assert!(ids(&offers(&ch, c, 5, false).await).contains(&top_c));
    shown(&ch, c, std::slice::from_ref(&top_c), window_ms - 30_000).await;
    assert!(ids(&offers(&ch, c, 5, false).await).contains(&top_c));
    shown(&ch, c, std::slice::from_ref(&top_c), window_ms - 30_000).await;
    assert!(!ids(&offers(&ch, c, 5, false).await).contains(&top_c));
}

#[tokio::test]
async fn category_all_and_attribute_caps_each_hold_within_one_answer_too() {
    let fx = loaded().await;
    let ch = fx.channel();
    let mut buyers: Vec<&str> = fx.buyers().into_iter().collect();
    buyers.sort_unstable();
    let category_of: BTreeMap<&str, &str> = fx
        .data
        .items
        .iter()
        .map(|i| (i.id.as_str(), i.category.as_str()))
        .collect();

    // CATEGORY, at most 1 a day: one offer per category, none of a category just shown.
    let customer = buyers[3];
    let before = ids(&offers(&ch, customer, 10, false).await);
    let shown_category = category_of[before[0].as_str()];
    set_policy(&ch, vec![cap(CapScope::Category, "", 1, 24 * HOUR)]).await;
    shown(&ch, customer, &before[..1], 60_000).await;
    let after = ids(&offers(&ch, customer, 10, false).await);
    let categories: Vec<&str> = after.iter().map(|i| category_of[i.as_str()]).collect();
    let distinct: HashSet<&&str> = categories.iter().collect();
    assert_eq!(
        distinct.len(),
        categories.len(),
        "one per category: {categories:?}"
    );
    assert!(!categories.contains(&shown_category), "{categories:?}");

    // ALL, at most 3 a day, shown and counted in one call: 2 left after one impression,
    // then none.
    let customer = buyers[4];
    set_policy(&ch, vec![cap(CapScope::All, "", 3, 24 * HOUR)]).await;
    let first = ids(&offers(&ch, customer, 1, false).await);
    shown(&ch, customer, &first, 60_000).await;
    assert_eq!(offers(&ch, customer, 10, true).await.offers.len(), 2);
    assert!(offers(&ch, customer, 10, true).await.offers.is_empty());

    // ATTRIBUTE `campaign`, at most 1 a day: of two items of one campaign only the better
    // is offered; once it was shown, neither.
    let customer = buyers[5];
    set_policy(&ch, vec![]).await;
    let top = ids(&offers(&ch, customer, 2, false).await);
    let items: Vec<pb::Item> = fx
        .data
        .items
        .iter()
        .filter(|i| top.contains(&i.id))
        .map(|i| {
            let mut item = doppel_grpc::convert::item_to_pb(i.clone());
            item.attributes.insert("campaign".into(), "spring".into());
            item
        })
        .collect();
    doppel_client::upload_items(ch.clone(), items, |_| {})
        .await
        .expect("items");
    set_policy(
        &ch,
        vec![cap(CapScope::Attribute, "campaign", 1, 24 * HOUR)],
    )
    .await;
    let one = ids(&offers(&ch, customer, 10, false).await);
    assert!(one.contains(&top[0]) && !one.contains(&top[1]), "{one:?}");
    shown(&ch, customer, &top[..1], 60_000).await;
    let none = ids(&offers(&ch, customer, 10, false).await);
    assert!(
        !none.contains(&top[0]) && !none.contains(&top[1]),
        "{none:?}"
    );
}

#[tokio::test]
async fn recorded_impressions_are_counted_survive_a_restart_and_go_with_erasure() {
    let mut fx = loaded().await;
    let ch = fx.channel();
    let customer = {
        let mut b: Vec<&str> = fx.buyers().into_iter().collect();
        b.sort_unstable();
        b[6].to_owned()
    };
    let policy = set_policy(&ch, vec![cap(CapScope::Item, "", 1, 24 * HOUR)]).await;
    let first = ids(&offers(&ch, &customer, 5, true).await);
    let second = ids(&offers(&ch, &customer, 5, true).await);
    assert_eq!(second.len(), 5);
    assert!(
        first.iter().all(|i| !second.contains(i)),
        "shown once, never again: {first:?} then {second:?}"
    );
    let counts = cap_counts(&ch, &customer).await;
    for item in first.iter().chain(&second) {
        assert_eq!(counts.get(&(CapScope::Item as i32, item.clone())), Some(&1));
    }

    // A restart keeps the policy and the exposure memory.
    let dir = fx.server.data_dir.clone();
    fx.server.stop().await;
    fx.server = TestServer::start(&dir).await;
    let ch = fx.channel();
    let got = PoliciesClient::new(ch.clone())
        .get_contact_policy(pb::GetContactPolicyRequest {})
        .await
        .expect("GetContactPolicy")
        .into_inner();
    assert_eq!(got, policy);
    let third = ids(&offers(&ch, &customer, 5, false).await);
    assert!(
        third
            .iter()
            .all(|i| !first.contains(i) && !second.contains(i)),
        "after a restart: {third:?}"
    );

    // Erasure removes the exposure state: the customer upserted again starts afresh.
    IngestClient::new(ch.clone())
        .delete_customer(pb::DeleteCustomerRequest {
            customer_id: customer.clone(),
        })
        .await
        .expect("DeleteCustomer");
    doppel_client::upload_customers(
        ch.clone(),
        vec![pb::Customer {
            id: customer.clone(),
            ..Default::default()
        }],
        |_| {},
    )
    .await
    .expect("upsert");
    assert!(cap_counts(&ch, &customer).await.is_empty());
}

#[tokio::test]
async fn bad_policies_name_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(dir.path()).await;
    let cases: Vec<(Vec<pb::FrequencyCap>, &str)> = vec![
        (
            vec![cap(CapScope::Unspecified, "", 1, HOUR)],
            "caps[0].scope",
        ),
        (
            vec![cap(CapScope::Attribute, "", 1, HOUR)],
            "caps[0].attribute",
        ),
        (
            vec![cap(CapScope::Item, "campaign", 1, HOUR)],
            "caps[0].attribute",
        ),
        (
            vec![cap(CapScope::Item, "", 0, HOUR)],
            "caps[0].max_impressions",
        ),
        (vec![cap(CapScope::All, "", 1, 0)], "caps[0].window_seconds"),
        (
            vec![
                cap(CapScope::All, "", 1, HOUR),
                cap(CapScope::All, "", 1, 401 * 24 * HOUR),
            ],
            "caps[1].window_seconds",
        ),
        (vec![cap(CapScope::All, "", 1, HOUR); 65], "caps"),
    ];
    for (caps, field) in cases {
        let status = PoliciesClient::new(server.channel.clone())
            .set_contact_policy(pb::ContactPolicy { caps })
            .await
            .expect_err(field);
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{field}");
        assert!(
            status.message().starts_with(&format!("{field}:")),
            "{field}: {}",
            status.message()
        );
    }
    // Nothing was stored.
    let policy = PoliciesClient::new(server.channel.clone())
        .get_contact_policy(pb::GetContactPolicyRequest {})
        .await
        .expect("GetContactPolicy")
        .into_inner();
    assert!(policy.caps.is_empty());
}
