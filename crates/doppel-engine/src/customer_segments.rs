//! Customer segments (RFM, CLV tiers, k-means clusters) of the last training run: their
//! sizes and member pages, read from the reserved `segment.*` attributes of profiles.
//!
//! "Segment" in this crate always means a customer segment; the vector index's on-disk
//! graphs are "frozen graphs" / index files, never segments.

use std::collections::BTreeMap;

use doppel_types::segment::{SEGMENT_KINDS, segment_key};

use crate::error::{Error, Result};
use crate::profiles::Profiles;

/// One customer segment and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSize {
    /// `rfm`, `clv` or `cluster`.
    pub kind: String,
    /// The segment's value, e.g. `champions`.
    pub name: String,
    /// Customers in it.
    pub customers: u64,
}

/// A page of a customer segment's members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentPage {
    /// Member ids in id order, after the requested one.
    pub customer_ids: Vec<String>,
    /// True if more members follow.
    pub more: bool,
    /// Members in all.
    pub total: u64,
}

/// Refuses a customer segment kind other than `rfm`, `clv` or `cluster`.
pub(crate) fn check_customer_segment_kind(field: &'static str, kind: &str) -> Result<()> {
    if SEGMENT_KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "unknown segment kind `{kind}` (one of {})",
                SEGMENT_KINDS.join(", ")
            ),
        ))
    }
}

/// Sizes of every customer segment (of `kind` only, when given): by kind, largest first, then name.
pub(crate) fn sizes(profiles: &Profiles, kind: Option<&str>) -> Result<Vec<SegmentSize>> {
    if let Some(k) = kind {
        check_customer_segment_kind("kind", k)?;
    }
    let mut out = Vec::new();
    for k in SEGMENT_KINDS
        .iter()
        .filter(|k| kind.is_none_or(|want| want == **k))
    {
        let key = segment_key(k);
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, c) in profiles.customers() {
            if let Some(v) = c.attributes.get(&key) {
                *counts.entry(v.as_str()).or_default() += 1;
            }
        }
        let mut sizes: Vec<SegmentSize> = counts
            .into_iter()
            .map(|(name, customers)| SegmentSize {
                kind: (*k).to_owned(),
                name: name.to_owned(),
                customers,
            })
            .collect();
        sizes.sort_by(|a, b| b.customers.cmp(&a.customers).then(a.name.cmp(&b.name)));
        out.extend(sizes);
    }
    Ok(out)
}

/// Up to `limit` members of `(kind, name)` with ids after `after`.
pub(crate) fn members(
    profiles: &Profiles,
    kind: &str,
    name: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<SegmentPage> {
    check_customer_segment_kind("segment.kind", kind)?;
    let mut ids: Vec<&str> = profiles
        .customers()
        .filter(|(_, c)| c.in_customer_segment(kind, name))
        .filter_map(|(slot, _)| profiles.customer_slots.name(slot))
        .collect();
    let total = ids.len() as u64;
    ids.sort_unstable();
    let start = after.map_or(0, |a| ids.partition_point(|id| *id <= a));
    let page: Vec<String> = ids[start..]
        .iter()
        .take(limit)
        .map(|id| (*id).to_owned())
        .collect();
    let more = start + page.len() < ids.len();
    Ok(SegmentPage {
        customer_ids: page,
        more,
        total,
    })
}
