//! Lookalike requests and answers: `LookalikeRequest` → [`LookalikeQuery`] (every field
//! checked), an [`Audience`] → `LookalikeBatch` pages.

use doppel_engine::{
    Audience, AudienceSize, Balance, DEFAULT_REACH_PERCENTS, GroupAudit, LookalikeQuery,
    MAX_GROUP_ATTRIBUTES, MAX_REACH_POINTS, Prospect, ReachCurve, ReachCut, ReachPoint, Strategy,
};
use doppel_proto::v1 as pb;
use doppel_types::limits::{LOOKALIKE_PAGE_SIZE, MAX_ATTRIBUTE_LEN, MAX_NEGATIVES, MAX_SEEDS};
use tonic::Status;

use super::customer_segments::segment_from_pb;
use super::records::{attributes, validate_id};
use crate::status::FieldViolation;

/// Most seed or excluded segments per request.
const MAX_SEGMENTS: usize = 64;

fn ids(field: &str, ids: Vec<String>, max: usize) -> Result<Vec<String>, Status> {
    if ids.len() > max {
        return Err(Status::resource_exhausted(format!(
            "{field}: at most {max} ids, got {}",
            ids.len()
        )));
    }
    for (i, id) in ids.iter().enumerate() {
        validate_id(&format!("{field}[{i}]"), id)?;
    }
    Ok(ids)
}

/// Converts and validates a lookalike request.
pub fn query_from_pb(request: pb::LookalikeRequest) -> Result<LookalikeQuery, Status> {
    let pb::LookalikeRequest {
        seed_customer_ids,
        negative_customer_ids,
        size,
        strategy,
        exclude_existing_customers,
        filter,
        explain,
        seed_segments,
        exclude_segments,
        audit_attributes,
        balance_attribute,
        min_selection_ratio,
    } = request;
    if seed_customer_ids.is_empty() && seed_segments.is_empty() {
        return Err(FieldViolation::new(
            "seed_customer_ids",
            "at least one seed (or a seed segment) is required",
        )
        .into());
    }
    let segments = |field: &str, list: Vec<pb::Segment>| -> Result<Vec<(String, String)>, Status> {
        if list.len() > MAX_SEGMENTS {
            return Err(Status::resource_exhausted(format!(
                "{field}: at most {MAX_SEGMENTS} segments"
            )));
        }
        list.into_iter()
            .enumerate()
            .map(|(i, s)| segment_from_pb(&format!("{field}[{i}]"), Some(s)))
            .collect()
    };
    let seed_segments = segments("seed_segments", seed_segments)?;
    let exclude_segments = segments("exclude_segments", exclude_segments)?;
    let size = match size {
        Some(pb::lookalike_request::Size::Count(n)) => AudienceSize::Count(n),
        Some(pb::lookalike_request::Size::TopPercent(p)) => AudienceSize::TopPercent(p),
        Some(pb::lookalike_request::Size::MinScore(s)) => AudienceSize::MinScore(s),
        None => {
            return Err(
                FieldViolation::new("size", "set one of count, top_percent or min_score").into(),
            );
        }
    };
    let strategy = match pb::Strategy::try_from(strategy) {
        Ok(pb::Strategy::Auto) => Strategy::Auto,
        Ok(pb::Strategy::Centroid) => Strategy::Centroid,
        Ok(pb::Strategy::MaxSimilarity) => Strategy::MaxSimilarity,
        Ok(pb::Strategy::Classifier) => Strategy::Classifier,
        Err(_) => {
            return Err(FieldViolation::new("strategy", "unknown strategy").into());
        }
    };
    // Bounded like profile attributes: a filter of a million entries cost seconds of CPU.
    let filter = attributes("filter", filter)?;
    let audit_attributes = audited(audit_attributes)?;
    let balance = balance_from_pb(balance_attribute, min_selection_ratio)?;
    if let Some(b) = &balance {
        if !audit_attributes.contains(&b.attribute)
            && audit_attributes.len() >= MAX_GROUP_ATTRIBUTES
        {
            return Err(FieldViolation::new(
                "balance_attribute",
                format!("with audit_attributes, at most {MAX_GROUP_ATTRIBUTES} attributes in all"),
            )
            .into());
        }
        if explain {
            return Err(FieldViolation::new(
                "explain",
                "not available with balance_attribute (the balanced pick comes from the whole \
                 ranking)",
            )
            .into());
        }
        if matches!(size, AudienceSize::MinScore(_)) {
            return Err(FieldViolation::new(
                "min_score",
                "a balanced audience needs a count or a top_percent: every customer above a \
                 score is already the whole answer",
            )
            .into());
        }
    }
    Ok(LookalikeQuery {
        seed_customer_ids: ids("seed_customer_ids", seed_customer_ids, MAX_SEEDS)?,
        negative_customer_ids: ids(
            "negative_customer_ids",
            negative_customer_ids,
            MAX_NEGATIVES,
        )?,
        size,
        strategy,
        exclude_existing_customers,
        filter,
        explain,
        seed_segments,
        exclude_segments,
        audit_attributes,
        balance,
        cancel: Default::default(),
    })
}

fn attribute_key(field: &str, key: &str) -> Result<(), Status> {
    if key.is_empty() || key.len() > MAX_ATTRIBUTE_LEN || key.chars().any(char::is_control) {
        return Err(FieldViolation::new(
            field,
            format!(
                "must be an attribute key: 1..={MAX_ATTRIBUTE_LEN} bytes, no control characters"
            ),
        )
        .into());
    }
    Ok(())
}

fn audited(list: Vec<String>) -> Result<Vec<String>, Status> {
    if list.len() > MAX_GROUP_ATTRIBUTES {
        return Err(FieldViolation::new(
            "audit_attributes",
            format!(
                "at most {MAX_GROUP_ATTRIBUTES} attributes, got {}",
                list.len()
            ),
        )
        .into());
    }
    for (i, key) in list.iter().enumerate() {
        let field = format!("audit_attributes[{i}]");
        attribute_key(&field, key)?;
        if list[..i].contains(key) {
            return Err(FieldViolation::new(field, format!("`{key}` is listed twice")).into());
        }
    }
    Ok(list)
}

fn balance_from_pb(attribute: String, ratio: f64) -> Result<Option<Balance>, Status> {
    if attribute.is_empty() {
        if ratio != 0.0 {
            return Err(FieldViolation::new(
                "balance_attribute",
                "min_selection_ratio needs the attribute to balance",
            )
            .into());
        }
        return Ok(None);
    }
    attribute_key("balance_attribute", &attribute)?;
    if !(ratio > 0.0 && ratio <= 1.0) {
        return Err(FieldViolation::new(
            "min_selection_ratio",
            "must be in (0, 1] with balance_attribute (0.8: the four-fifths rule)",
        )
        .into());
    }
    Ok(Some(Balance {
        attribute,
        min_selection_ratio: ratio,
    }))
}

/// Converts and validates a reach request: its query (size ignored) and the cuts (the
/// default shares when none are given). Errors name `top_percents[i]` / `min_scores[i]`.
pub fn reach_from_pb(
    request: pb::ReachRequest,
) -> Result<(LookalikeQuery, Vec<ReachCut>, bool), Status> {
    let pb::ReachRequest {
        query,
        top_percents,
        min_scores,
    } = request;
    let mut query = query.ok_or_else(|| FieldViolation::new("query", "required"))?;
    if !query.balance_attribute.is_empty() {
        return Err(FieldViolation::new(
            "query.balance_attribute",
            "not used by EstimateReach: balancing keeps every size; audit a balanced \
             audience with FindLookalikes",
        )
        .into());
    }
    query.size = Some(pb::lookalike_request::Size::TopPercent(100.0));
    // A curve names no prospects: explaining every eligible customer would be wasted work.
    query.explain = false;
    let query = query_from_pb(query)?;
    if top_percents.len() + min_scores.len() > MAX_REACH_POINTS {
        return Err(FieldViolation::new(
            "top_percents",
            format!("at most {MAX_REACH_POINTS} points with min_scores"),
        )
        .into());
    }
    let mut cuts = Vec::with_capacity(top_percents.len() + min_scores.len());
    for (i, p) in top_percents.into_iter().enumerate() {
        if !(p > 0.0 && p <= 100.0) {
            return Err(
                FieldViolation::new(format!("top_percents[{i}]"), "must be in (0, 100]").into(),
            );
        }
        cuts.push(ReachCut::TopPercent(p));
    }
    for (i, s) in min_scores.into_iter().enumerate() {
        if !(-1.0..=1.0).contains(&s) {
            return Err(
                FieldViolation::new(format!("min_scores[{i}]"), "must be in [-1, 1]").into(),
            );
        }
        cuts.push(ReachCut::MinScore(s));
    }
    let defaults = cuts.is_empty();
    if defaults {
        cuts = DEFAULT_REACH_PERCENTS
            .iter()
            .map(|&p| ReachCut::TopPercent(p))
            .collect();
    }
    Ok((query, cuts, defaults))
}

/// The request field a reach cut came from (for errors): `top_percents[i]` or
/// `min_scores[i]`, counted separately as in the request.
pub fn cut_field(cuts: &[ReachCut], at: usize) -> String {
    let percent = matches!(cuts[at], ReachCut::TopPercent(_));
    let index = cuts[..at]
        .iter()
        .filter(|c| matches!(c, ReachCut::TopPercent(_)) == percent)
        .count();
    match percent {
        true => format!("top_percents[{index}]"),
        false => format!("min_scores[{index}]"),
    }
}

/// One group audit, as sent.
pub fn group_audit_to_pb(a: GroupAudit) -> pb::GroupAudit {
    pb::GroupAudit {
        attribute: a.attribute,
        value: a.value,
        audience_count: a.audience_count,
        eligible_count: a.eligible_count,
        selection_rate: a.selection_rate,
        ratio_to_best: a.ratio_to_best,
        below_four_fifths: a.below_four_fifths,
    }
}

/// A reach curve, as sent (exact sizes: lower = size = upper).
pub fn reach_to_pb(curve: ReachCurve, shards_total: u32) -> pb::ReachCurve {
    pb::ReachCurve {
        points: curve.points.into_iter().map(reach_point_to_pb).collect(),
        eligible_population: curve.eligible_population,
        model_version: curve.model_version,
        shards_answered: shards_total,
        shards_total,
    }
}

/// One point of a reach curve, as sent.
pub fn reach_point_to_pb(p: ReachPoint) -> pb::ReachPoint {
    pb::ReachPoint {
        top_percent: p.top_percent,
        min_score: p.min_score,
        size: p.size,
        size_lower: p.size,
        size_upper: p.size,
        mean_score: p.mean_score,
        audit: p.audit.into_iter().map(group_audit_to_pb).collect(),
    }
}

/// The wire form of a strategy.
pub fn strategy_to_pb(strategy: Strategy) -> pb::Strategy {
    match strategy {
        Strategy::Auto => pb::Strategy::Auto,
        Strategy::Centroid => pb::Strategy::Centroid,
        Strategy::MaxSimilarity => pb::Strategy::MaxSimilarity,
        Strategy::Classifier => pb::Strategy::Classifier,
    }
}

/// One prospect of an audience, as sent.
pub fn prospect_to_pb(p: &Prospect) -> pb::Prospect {
    pb::Prospect {
        customer_id: p.customer_id.clone(),
        score: p.score,
        nearest_seed_ids: p.nearest_seed_ids.clone(),
    }
}

/// Splits an audience into stream pages; the first page carries the audience-wide fields.
pub fn pages(audience: Audience, shards_total: u32) -> Vec<pb::LookalikeBatch> {
    let Audience {
        model_version,
        prospects,
        ignored_seed_ids,
        strategy_used,
        eligible_population,
        seeds_used: _,
        audit,
        mean_score,
        mean_score_unbalanced,
    } = audience;
    let mut batches: Vec<pb::LookalikeBatch> = prospects
        .chunks(LOOKALIKE_PAGE_SIZE)
        .map(|page| pb::LookalikeBatch {
            prospects: page.iter().map(prospect_to_pb).collect(),
            ..Default::default()
        })
        .collect();
    if batches.is_empty() {
        batches.push(pb::LookalikeBatch::default());
    }
    for (i, batch) in batches.iter_mut().enumerate() {
        batch.model_version = model_version.clone();
        batch.shards_answered = shards_total;
        batch.shards_total = shards_total;
        batch.batch_index = i as u32;
        batch.strategy_used = strategy_to_pb(strategy_used) as i32;
    }
    if let Some(first) = batches.first_mut() {
        first.ignored_seed_ids = ignored_seed_ids;
        first.eligible_population = eligible_population;
    }
    if let Some(last) = batches.last_mut() {
        last.audit = audit.into_iter().map(group_audit_to_pb).collect();
        last.mean_score = mean_score;
        last.mean_score_unbalanced = mean_score_unbalanced;
    }
    batches
}
