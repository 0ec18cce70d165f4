//! Customer segments (RFM, CLV tiers, behavioural clusters) as `segment.*` attributes on
//! profiles: written at training time, kept across client upserts that do not carry them.
//! ("Segment" here always means a customer segment; the index's frozen graphs are never
//! called that.)

use std::collections::BTreeMap;

use doppel_train::CustomerSegments;
use doppel_types::Customer;
use doppel_types::segment::{is_segment_key, segment_key, segment_value};

use crate::error::Result;
use crate::node::Node;

/// Profiles written per store batch.
const BATCH: usize = 1_000;

impl Node {
    /// Writes every customer's segments onto its stored profile and into the engine;
    /// returns how many profiles were updated (customers without a profile are skipped).
    pub(crate) async fn store_segments(
        &self,
        version: &str,
        segments: &[CustomerSegments],
    ) -> Result<usize> {
        store_segments(self, version, segments).await
    }
}

/// The `segment.*` attributes of one customer's segments.
pub fn segment_attributes(s: &CustomerSegments, version: &str) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(segment_key("rfm"), segment_value(s.rfm_segment.name()));
    a.insert(segment_key("clv"), segment_value(&s.clv_tier.to_string()));
    a.insert(
        segment_key("clv_estimate"),
        format!("{:.2}", s.clv_estimate),
    );
    if let Some(r) = &s.rfm {
        a.insert(segment_key("rfm_score"), format!("{}-{}-{}", r.r, r.f, r.m));
    }
    if let Some(c) = s.cluster {
        a.insert(segment_key("cluster"), c.to_string());
    }
    a.insert(segment_key("version"), version.to_owned());
    a
}

/// Replaces the `segment.*` attributes of `customer` with `segments`.
fn with_segments(mut customer: Customer, segments: BTreeMap<String, String>) -> Customer {
    customer.attributes.retain(|k, _| !is_segment_key(k));
    customer.attributes.extend(segments);
    customer
}

/// Writes every customer's segments onto its stored profile and into the engine; returns
/// how many profiles were updated (customers without a profile are skipped).
pub(crate) async fn store_segments(
    node: &Node,
    version: &str,
    segments: &[CustomerSegments],
) -> Result<usize> {
    let mut updated = 0;
    for chunk in segments.chunks(BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        for s in chunk {
            if let Some(customer) = node.store.get_customer(&s.customer_id).await? {
                batch.push(with_segments(customer, segment_attributes(s, version)));
            }
        }
        updated += batch.len();
        node.store.upsert_customers(batch.clone()).await?;
        batch.retain(|c| node.engine.owns_customer(&c.id));
        node.engine.upsert_customers(batch);
    }
    Ok(updated)
}

/// Copies the segments already stored for each customer of `batch` onto it, so a client
/// upsert (which may not carry `segment.*` keys) does not wipe them.
pub(crate) async fn keep_segments(node: &Node, batch: Vec<Customer>) -> Result<Vec<Customer>> {
    let mut out = Vec::with_capacity(batch.len());
    for customer in batch {
        let stored = node.store.get_customer(&customer.id).await?;
        let kept: BTreeMap<String, String> = stored
            .map(|c| {
                c.attributes
                    .into_iter()
                    .filter(|(k, _)| is_segment_key(k))
                    .collect()
            })
            .unwrap_or_default();
        out.push(with_segments(customer, kept));
    }
    Ok(out)
}
