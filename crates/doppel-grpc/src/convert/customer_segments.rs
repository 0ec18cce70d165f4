//! Customer segments in requests and answers: segment references, the segments on a
//! profile, member page sizes and opaque page tokens.

use std::collections::BTreeMap;

use doppel_proto::v1 as pb;
use doppel_types::limits::MAX_ID_LEN;
use doppel_types::segment::{SEGMENT_KINDS, segment_key};
use tonic::Status;

use super::records::validate_id;
use crate::status::FieldViolation;

/// Largest member page.
pub const MAX_PAGE: u32 = 10_000;
/// Member page when none is asked for.
pub const DEFAULT_PAGE: u32 = 1_000;

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
