//! Checks of audience planning shared by the single-node and cluster tests: a base whose
//! customers carry a `cohort` that follows their planted taste, recounts of audits from the
//! prospects themselves, and reach points compared with the audiences that follow.

use std::collections::{BTreeMap, HashMap};

use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_client::AudiencesClient;
use doppel_proto::v1::lookalike_request::Size;
use doppel_synth::SynthData;
use tonic::transport::Channel;

/// The one customer of cohort `c` (too small a group to balance).
pub const LONE_COHORT: &str = "c";

/// [`crate::small_base`] with a `cohort` attribute: `a` for planted taste 0, `b` for the
/// rest, `c` for one customer of taste 1 with ads consent; taste-2 customers have none
/// (the value `""`).
pub fn cohort_base() -> SynthData {
    let mut data = crate::small_base();
    let mut lone = false;
    for (c, &taste) in data.customers.iter_mut().zip(&data.customer_taste) {
        let cohort = match taste {
            0 => "a",
            1 if !lone && c.consent.ads_personalization => {
                lone = true;
                LONE_COHORT
            }
            2 => continue,
            _ => "b",
        };
        c.attributes.insert("cohort".to_owned(), cohort.to_owned());
    }
    data
}

/// Each customer's value of `attribute` (`""` when it has none).
pub fn values_of<'d>(data: &'d SynthData, attribute: &str) -> HashMap<&'d str, &'d str> {
    data.customers
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.attributes.get(attribute).map_or("", String::as_str),
            )
        })
        .collect()
}

/// Runs a lookalike and collects every batch.
pub async fn find(
    channel: &Channel,
    request: pb::LookalikeRequest,
) -> Result<Vec<pb::LookalikeBatch>, tonic::Status> {
    let mut stream = AudiencesClient::new(channel.clone())
        .find_lookalikes(request)
        .await?
        .into_inner();
    let mut batches = Vec::new();
    while let Some(batch) = stream.message().await? {
        batches.push(batch);
    }
    Ok(batches)
}

/// The members of saved audience `id` as StreamAudienceMembers reads them.
pub async fn saved_members(channel: &Channel, id: &str) -> Vec<pb::Prospect> {
    let mut stream = AudiencesClient::new(channel.clone())
        .stream_audience_members(pb::StreamAudienceMembersRequest {
            audience_id: id.to_owned(),
        })
        .await
        .expect("stream members")
        .into_inner();
    let mut out = Vec::new();
    while let Some(batch) = stream.message().await.expect("page") {
        out.extend(batch.prospects);
    }
    out
}

/// The prospects of a stream, in order.
pub fn members(batches: &[pb::LookalikeBatch]) -> Vec<&pb::Prospect> {
    batches.iter().flat_map(|b| &b.prospects).collect()
}

/// Asserts that the audit rows of `attribute` equal a recount: audience counts from
/// `audience`, eligible counts from `eligible` (everyone who could have been in it).
pub fn assert_audit_recounts(
    audit: &[pb::GroupAudit],
    attribute: &str,
    audience: &[&pb::Prospect],
    eligible: &[&pb::Prospect],
    values: &HashMap<&str, &str>,
) {
    let mut counts: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for p in eligible {
        counts.entry(values[p.customer_id.as_str()]).or_default().1 += 1;
    }
    for p in audience {
        counts.entry(values[p.customer_id.as_str()]).or_default().0 += 1;
    }
    let rows: Vec<&pb::GroupAudit> = audit.iter().filter(|a| a.attribute == attribute).collect();
    let got: Vec<(&str, u64, u64)> = rows
        .iter()
        .map(|a| (a.value.as_str(), a.audience_count, a.eligible_count))
        .collect();
    let want: Vec<(&str, u64, u64)> = counts.iter().map(|(v, (a, e))| (*v, *a, *e)).collect();
    assert_eq!(got, want, "audit of `{attribute}` against a recount");
    let best = rows
        .iter()
        .map(|a| a.audience_count as f64 / a.eligible_count as f64)
        .fold(0.0, f64::max);
    for a in rows {
        let rate = a.audience_count as f64 / a.eligible_count as f64;
        assert!((a.selection_rate - rate).abs() < 1e-12, "{a:?}");
        if best > 0.0 {
            assert!((a.ratio_to_best - rate / best).abs() < 1e-9, "{a:?}");
        }
        assert_eq!(a.below_four_fifths, a.ratio_to_best < 0.8, "{a:?}");
    }
}

/// Asserts that every point of `curve` (for `query` at the `sizes` its points were asked
/// for, audited by `audit_attribute`) is the audience FindLookalikes then returns for the
/// same query at that size: its size, cut-off score, mean score and audit.
pub async fn assert_points_are_audiences(
    channel: &Channel,
    query: &pb::LookalikeRequest,
    curve: &pb::ReachCurve,
    sizes: &[Size],
    audit_attribute: &str,
    values: &HashMap<&str, &str>,
) {
    let everyone_batches = find(
        channel,
        pb::LookalikeRequest {
            size: Some(Size::TopPercent(100.0)),
            audit_attributes: Vec::new(),
            ..query.clone()
        },
    )
    .await
    .expect("everyone");
    let everyone = members(&everyone_batches);
    assert_eq!(everyone.len() as u64, curve.eligible_population);
    assert_eq!(curve.points.len(), sizes.len());
    for (point, &size) in curve.points.iter().zip(sizes) {
        assert_eq!(
            (point.size_lower, point.size_upper),
            (point.size, point.size)
        );
        let batches = find(
            channel,
            pb::LookalikeRequest {
                size: Some(size),
                ..query.clone()
            },
        )
        .await
        .expect("the audience of a point");
        let people = members(&batches);
        assert_eq!(people.len() as u64, point.size, "size of {point:?}");
        if let Some(last) = people.last() {
            match size {
                Size::TopPercent(_) => assert_eq!(last.score, point.min_score, "{point:?}"),
                _ => assert!(last.score >= point.min_score, "{point:?}"),
            }
            let mean = people.iter().map(|p| f64::from(p.score)).sum::<f64>() / people.len() as f64;
            assert!((mean as f32 - point.mean_score).abs() < 1e-4, "{point:?}");
        }
        assert_audit_recounts(&point.audit, audit_attribute, &people, &everyone, values);
        let last = batches.last().expect("a batch");
        assert_eq!(
            point.audit, last.audit,
            "the point's audit is the audience's"
        );
    }
}
