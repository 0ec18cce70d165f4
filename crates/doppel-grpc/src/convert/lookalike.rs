//! Lookalike requests and answers: `LookalikeRequest` → [`LookalikeQuery`] (every field
//! checked), an [`Audience`] → `LookalikeBatch` pages.

use doppel_engine::{Audience, AudienceSize, LookalikeQuery, Prospect, Strategy};
use doppel_proto::v1 as pb;
use doppel_types::limits::{LOOKALIKE_PAGE_SIZE, MAX_NEGATIVES, MAX_SEEDS};
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
        Err(_) => {
            return Err(FieldViolation::new("strategy", "unknown strategy").into());
        }
    };
    // Bounded like profile attributes: a filter of a million entries cost seconds of CPU.
    let filter = attributes("filter", filter)?;
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
        cancel: Default::default(),
    })
}

/// The wire form of a strategy.
pub fn strategy_to_pb(strategy: Strategy) -> pb::Strategy {
    match strategy {
        Strategy::Auto => pb::Strategy::Auto,
        Strategy::Centroid => pb::Strategy::Centroid,
        Strategy::MaxSimilarity => pb::Strategy::MaxSimilarity,
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
    batches
}
