//! Segments: written onto profiles at training time, kept across client upserts, and
//! served by `doppel.v1.Segments`.

use std::collections::BTreeMap;
use std::sync::Arc;

use doppel_proto::v1 as pb;
use doppel_proto::v1::segments_server::Segments;
use doppel_train::CustomerSegments;
use doppel_types::Customer;
use doppel_types::limits::MAX_ID_LEN;
use doppel_types::segment::{SEGMENT_KINDS, is_segment_key, segment_key, segment_value};
use tonic::{Request, Response, Status};

use crate::convert::validate_id;
use crate::node::Node;
use crate::status::{FieldViolation, engine_status, store_status};

/// Profiles written per store batch.
const BATCH: usize = 1_000;
/// Largest member page.
pub const MAX_PAGE: u32 = 10_000;
/// Member page when none is asked for.
pub const DEFAULT_PAGE: u32 = 1_000;

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
pub async fn store_segments(
    node: &Node,
    version: &str,
    segments: &[CustomerSegments],
) -> Result<usize, Status> {
    let mut updated = 0;
    for chunk in segments.chunks(BATCH) {
        let mut batch = Vec::with_capacity(chunk.len());
        for s in chunk {
            if let Some(customer) = node
                .store
                .get_customer(&s.customer_id)
                .await
                .map_err(store_status)?
            {
                batch.push(with_segments(customer, segment_attributes(s, version)));
            }
        }
        updated += batch.len();
        node.store
            .upsert_customers(batch.clone())
            .await
            .map_err(store_status)?;
        batch
            .iter()
            .filter(|c| node.engine.owns_customer(&c.id))
            .for_each(|c| node.engine.upsert_customer(c));
    }
    Ok(updated)
}

/// Copies the segments already stored for each customer of `batch` onto it, so a client
/// upsert (which may not carry `segment.*` keys) does not wipe them.
pub async fn keep_segments(node: &Node, batch: Vec<Customer>) -> Result<Vec<Customer>, Status> {
    let mut out = Vec::with_capacity(batch.len());
    for customer in batch {
        let stored = node
            .store
            .get_customer(&customer.id)
            .await
            .map_err(store_status)?;
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

/// The segments in a profile's attributes.
pub fn segments_of(attributes: &BTreeMap<String, String>) -> Vec<pb::Segment> {
    SEGMENT_KINDS
        .iter()
        .filter_map(|kind| {
            attributes.get(&segment_key(kind)).map(|name| pb::Segment {
                kind: (*kind).to_owned(),
                name: name.clone(),
            })
        })
        .collect()
}

/// Checks a segment reference from a request.
pub fn segment_from_pb(field: &str, s: Option<pb::Segment>) -> Result<(String, String), Status> {
    let s = s.ok_or_else(|| FieldViolation::new(field, "a segment is required"))?;
    if !SEGMENT_KINDS.contains(&s.kind.as_str()) {
        return Err(FieldViolation::new(
            format!("{field}.kind"),
            format!("must be one of {}", SEGMENT_KINDS.join(", ")),
        )
        .into());
    }
    if s.name.is_empty() || s.name.len() > 256 {
        return Err(FieldViolation::new(format!("{field}.name"), "must be 1..=256 bytes").into());
    }
    Ok((s.kind, s.name))
}

/// Checks a member page size from a request (`0` = [`DEFAULT_PAGE`]).
pub fn page_size_from_pb(page_size: u32) -> Result<u32, FieldViolation> {
    match page_size {
        0 => Ok(DEFAULT_PAGE),
        n if n > MAX_PAGE => Err(FieldViolation::new(
            "page_size",
            format!("at most {MAX_PAGE}"),
        )),
        n => Ok(n),
    }
}

/// The token of the page after one ending with `last`, when more members follow (empty on
/// the last page). Pages are in id order, so it carries the last id listed, bound to the
/// segment it pages through and hex-encoded: a client treats it as opaque, and a token of
/// another segment or a forged one is refused ([`page_token_from_pb`]).
pub fn next_page_token(kind: &str, name: &str, more: bool, last: Option<&String>) -> String {
    match (more, last) {
        (true, Some(last)) => format!("{kind}\0{name}\0{last}")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect(),
        _ => String::new(),
    }
}

/// The last id of the previous page from a `page_token` made by [`next_page_token`] for
/// this segment (`None` for the first page).
pub fn page_token_from_pb(
    kind: &str,
    name: &str,
    token: &str,
) -> Result<Option<String>, FieldViolation> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || {
        FieldViolation::new(
            "page_token",
            "not a token this segment's previous page returned",
        )
    };
    // Bounded before decoding: two hex digits a byte of kind, name and one id.
    if token.len() > 2 * (kind.len() + name.len() + 2 + MAX_ID_LEN)
        || !token.len().is_multiple_of(2)
    {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let last = text
        .strip_prefix(&format!("{kind}\0{name}\0"))
        .ok_or_else(bad)?;
    validate_id("page_token", last).map_err(|_| bad())?;
    Ok(Some(last.to_owned()))
}

/// NOT_FOUND for a segment no customer is in.
pub fn unknown_segment(kind: &str, name: &str) -> Status {
    Status::not_found(format!(
        "segment: `{kind}/{name}` not found (no customer is in it)"
    ))
}

/// The Segments service.
pub struct SegmentsService {
    node: Arc<Node>,
}

impl SegmentsService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

#[tonic::async_trait]
impl Segments for SegmentsService {
    #[tracing::instrument(skip_all)]
    async fn list_segments(
        &self,
        request: Request<pb::ListSegmentsRequest>,
    ) -> Result<Response<pb::ListSegmentsResponse>, Status> {
        let pb::ListSegmentsRequest { kind } = request.into_inner();
        let kind = (!kind.is_empty()).then_some(kind);
        let sizes = self
            .node
            .engine
            .segment_sizes(kind.as_deref())
            .map_err(engine_status)?;
        let shards = self.node.config.engine.shard_count;
        Ok(Response::new(pb::ListSegmentsResponse {
            shards_answered: shards,
            shards_total: shards,
            segments: sizes
                .into_iter()
                .map(|s| pb::SegmentSize {
                    segment: Some(pb::Segment {
                        kind: s.kind,
                        name: s.name,
                    }),
                    customers: s.customers,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_segment_members(
        &self,
        request: Request<pb::ListSegmentMembersRequest>,
    ) -> Result<Response<pb::ListSegmentMembersResponse>, Status> {
        let pb::ListSegmentMembersRequest {
            segment,
            page_size,
            page_token,
        } = request.into_inner();
        let (kind, name) = segment_from_pb("segment", segment)?;
        let size = page_size_from_pb(page_size)?;
        let after = page_token_from_pb(&kind, &name, &page_token)?;
        let page = self
            .node
            .engine
            .segment_members(&kind, &name, after.as_deref(), size as usize)
            .map_err(engine_status)?;
        // As FindLookalikes does for a seed segment. A shard node answers for its shards
        // only, so it says "none here" and the router decides.
        if page.total == 0 && !self.node.config.cluster {
            return Err(unknown_segment(&kind, &name));
        }
        let next_page_token = next_page_token(&kind, &name, page.more, page.customer_ids.last());
        let shards = self.node.config.engine.shard_count;
        Ok(Response::new(pb::ListSegmentMembersResponse {
            customer_ids: page.customer_ids,
            next_page_token,
            total: page.total,
            shards_answered: shards,
            shards_total: shards,
        }))
    }
}
