//! Shared checks of experiments and canaries (single node and cluster): a second version
//! unrelated to behaviour, traffic driven through `RecommendOffers` with impressions
//! recorded, and the report recounted from what the test saw.

use std::collections::{BTreeMap, HashSet};

use doppel_proto::v1 as pb;
use doppel_proto::v1::experiments_client::ExperimentsClient;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_synth::SynthData;
use doppel_types::experiment::{Allocation, allocate};
use doppel_types::{Arm, Experiment};
use tonic::transport::Channel;

/// Imports `version` with each customer given another customer's vector (the next one's):
/// a version whose customer vectors are unrelated to their behaviour.
pub async fn import_unrelated(channel: &Channel, data: &SynthData, version: &str) {
    let n = data.customer_vectors.len();
    let shuffled: Vec<(String, Vec<f32>)> = (0..n)
        .map(|i| {
            (
                data.customer_vectors[i].0.clone(),
                data.customer_vectors[(i + 1) % n].1.clone(),
            )
        })
        .collect();
    let dim = shuffled.first().map_or(0, |(_, v)| v.len()) as u32;
    doppel_client::import_vectors(channel.clone(), version, dim, &shuffled, &data.item_vectors)
        .await
        .expect("import the unrelated version");
}

/// An arm as a request carries it.
pub fn arm(name: &str, version: &str, weight: u32) -> pb::Arm {
    pb::Arm {
        name: name.into(),
        model_version: version.into(),
        weight,
    }
}

/// The experiment a client expects from its arms (weights) and salt: what the server's
/// assignment must equal.
pub fn expected(salt: &str, arms: &[pb::Arm], traffic_percent: u32) -> Experiment {
    let weights: Vec<u32> = arms.iter().map(|a| a.weight).collect();
    Experiment {
        salt: salt.into(),
        arms: arms
            .iter()
            .map(|a| Arm {
                name: a.name.clone(),
                version: a.model_version.clone(),
                weight: a.weight,
            })
            .collect(),
        traffic_percent,
        allocations: vec![Allocation {
            from_ms: 0,
            buckets: allocate(None, &weights, traffic_percent),
        }],
        ..Default::default()
    }
}

/// What the test saw per arm ("" = outside the experiment).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    /// Offers shown (impressions recorded).
    pub impressions: u64,
    /// Clicks recorded.
    pub clicks: u64,
    /// Customers shown at least one offer.
    pub exposed: HashSet<String>,
    /// Attributed purchases recorded and their value.
    pub purchases: u64,
    /// Value of those.
    pub revenue: f64,
}

/// Traffic driven through `RecommendOffers`.
#[derive(Debug, Default)]
pub struct Driven {
    /// Per arm name.
    pub arms: BTreeMap<String, Seen>,
    /// Each customer's answer: (experiment, arm, model version, offered items).
    pub answers: Vec<(String, String, String, String, Vec<String>)>,
}

/// Asks `k` offers for each of `customers` with impressions recorded; then, for every
/// customer answered by an arm in `click_arms`, records a CLICK on the first offer, and for
/// every third such customer a PURCHASE of it (value 10).
pub async fn drive(channel: &Channel, customers: &[String], k: u32, click_arms: &[&str]) -> Driven {
    let mut driven = Driven::default();
    let mut events = Vec::new();
    let mut clicked = 0usize;
    for customer in customers {
        let response = RecommendationsClient::new(channel.clone())
            .recommend_offers(pb::RecommendRequest {
                customer_id: customer.clone(),
                k,
                record_impressions: true,
                ..Default::default()
            })
            .await
            .expect("RecommendOffers")
            .into_inner();
        let items: Vec<String> = response.offers.iter().map(|o| o.item_id.clone()).collect();
        let seen = driven.arms.entry(response.arm.clone()).or_default();
        seen.impressions += items.len() as u64;
        if !items.is_empty() {
            seen.exposed.insert(customer.clone());
        }
        if click_arms.contains(&response.arm.as_str())
            && let Some(first) = items.first()
        {
            seen.clicks += 1;
            events.push(event(customer, first, pb::EventType::Click, 0.0));
            if clicked.is_multiple_of(3) {
                seen.purchases += 1;
                seen.revenue += 10.0;
                events.push(event(customer, first, pb::EventType::Purchase, 10.0));
            }
            clicked += 1;
        }
        driven.answers.push((
            customer.clone(),
            response.experiment,
            response.arm,
            response.model_version,
            items,
        ));
    }
    if !events.is_empty() {
        let count = events.len();
        let summary = IngestClient::new(channel.clone())
            .record_events(tokio_stream::iter(events))
            .await
            .expect("RecordEvents")
            .into_inner();
        assert_eq!(summary.accepted as usize, count, "{summary:?}");
    }
    driven
}

fn event(customer: &str, item: &str, kind: pb::EventType, value: f64) -> pb::Event {
    pb::Event {
        customer_id: customer.into(),
        item_id: item.into(),
        r#type: kind as i32,
        timestamp_ms: doppel_types::clock::now_ms() + 1,
        quantity: 1,
        value,
        ..Default::default()
    }
}

/// Checks that every answer of `driven` came from the arm the client computes itself with
/// `local` (experiment `name`, the arm's version), or from `active` outside every arm.
pub fn assert_routed(driven: &Driven, local: &Experiment, name: &str, active: &str) {
    for (customer, experiment, arm, version, _) in &driven.answers {
        match local.arm_of(customer) {
            Some(a) => {
                assert_eq!(experiment, name, "{customer}");
                assert_eq!(arm, &local.arms[a].name, "{customer}");
                assert_eq!(version, &local.arms[a].version, "{customer}");
            }
            None => assert_eq!((experiment.as_str(), version.as_str()), ("", active)),
        }
    }
}

/// How many of `data`'s customers each arm of `local` holds (by arm name).
pub fn assigned(data: &SynthData, local: &Experiment) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for c in &data.customers {
        if let Some(a) = local.arm_of(&c.id) {
            *counts.entry(local.arms[a].name.clone()).or_default() += 1;
        }
    }
    counts
}

/// The report of `name`.
pub async fn report(channel: &Channel, name: &str) -> pb::ExperimentReport {
    ExperimentsClient::new(channel.clone())
        .get_experiment_report(pb::GetExperimentReportRequest {
            name: name.into(),
            attribution_seconds: 0,
        })
        .await
        .expect("GetExperimentReport")
        .into_inner()
}

/// Checks a report's counts against what the test saw and the customers it expects
/// assigned (`assigned`: per arm name).
pub fn assert_report_recounts(
    report: &pb::ExperimentReport,
    driven: &Driven,
    assigned: &BTreeMap<String, u64>,
) {
    for arm in &report.arms {
        let seen = driven.arms.get(&arm.name).cloned().unwrap_or_default();
        assert_eq!(
            arm.impressions, seen.impressions,
            "impressions of {}",
            arm.name
        );
        assert_eq!(arm.clicks, seen.clicks, "clicks of {}", arm.name);
        assert_eq!(arm.purchases, seen.purchases, "purchases of {}", arm.name);
        assert_eq!(
            arm.conversions, seen.purchases,
            "conversions of {}",
            arm.name
        );
        assert!(
            (arm.revenue - seen.revenue).abs() < 1e-9,
            "revenue of {}",
            arm.name
        );
        assert_eq!(
            arm.customers_exposed,
            seen.exposed.len() as u64,
            "exposed of {}",
            arm.name
        );
        assert_eq!(
            arm.customers_assigned,
            assigned.get(&arm.name).copied().unwrap_or(0),
            "assigned to {}",
            arm.name
        );
        let ctr = arm.ctr.as_ref().expect("ctr");
        if arm.impressions > 0 {
            let value = arm.clicks as f64 / arm.impressions as f64;
            assert!((ctr.value - value).abs() < 1e-12);
            assert!(ctr.lower <= value && value <= ctr.upper);
        }
    }
    assert!((0.0..=1.0).contains(&report.srm_p_value));
}
