//! Model versions in requests and answers: version names, embedding chunks, training
//! requests and progress, index descriptions.

use doppel_node::{TrainPlan, TrainProgress};
use doppel_proto::v1 as pb;
use doppel_train::{AlsParams, ConfidenceConfig, PriorSettings};
use doppel_types::limits::MAX_IMPORT_ROWS_PER_CHUNK;
use doppel_types::version::VERSION_NAME_RULE;
use doppel_types::{Entity, is_valid_version_name, validate_vector};
use tonic::Status;

use super::records::validate_id;
use crate::status::{FieldViolation, train_status};

/// Checks a model version name (see [`doppel_types::version::is_valid_version_name`]).
pub fn validate_version_name(name: &str) -> Result<(), FieldViolation> {
    if is_valid_version_name(name) {
        Ok(())
    } else {
        Err(FieldViolation::new("model_version", VERSION_NAME_RULE))
    }
}

/// Reads `scan_vectors` (of an import's first chunk or a training request): true for
/// `int8`; `f32` and empty mean floats.
pub fn scan_vectors_of(value: &str) -> Result<bool, FieldViolation> {
    match value {
        "" | "f32" => Ok(false),
        "int8" => Ok(true),
        _ => Err(FieldViolation::new(
            "scan_vectors",
            "must be `f32` (the default) or `int8`",
        )),
    }
}

/// One validated chunk of an import.
pub struct Rows {
    /// Customer or item vectors.
    pub entity: Entity,
    /// `(id, vector)` rows.
    pub rows: Vec<(String, Vec<f32>)>,
}

/// Checks one chunk of an import (same version and dimension as the first, valid ids and
/// vectors); repeated ids are the node's to refuse.
pub fn chunk_rows(
    chunk: pb::EmbeddingChunk,
    version: &str,
    dim: u32,
) -> Result<Rows, FieldViolation> {
    let pb::EmbeddingChunk {
        model_version,
        entity,
        dim: chunk_dim,
        ids,
        values,
        scan_vectors: _,
    } = chunk;
    if model_version != version {
        return Err(FieldViolation::new(
            "model_version",
            "every chunk of one import must name the same version",
        ));
    }
    if chunk_dim != dim {
        return Err(FieldViolation::new(
            "dim",
            format!("chunk has dim {chunk_dim}, the import started with {dim}"),
        ));
    }
    let entity = match pb::Entity::try_from(entity) {
        Ok(pb::Entity::Customer) => Entity::Customer,
        Ok(pb::Entity::Item) => Entity::Item,
        Ok(pb::Entity::Unspecified) | Err(_) => {
            return Err(FieldViolation::new("entity", "must be CUSTOMER or ITEM"));
        }
    };
    if ids.len() > MAX_IMPORT_ROWS_PER_CHUNK {
        return Err(FieldViolation::new(
            "ids",
            format!("at most {MAX_IMPORT_ROWS_PER_CHUNK} rows per chunk"),
        ));
    }
    let dim = dim as usize;
    if values.len() != ids.len() * dim {
        return Err(FieldViolation::new(
            "values",
            format!(
                "expected ids × dim = {} floats, got {}",
                ids.len() * dim,
                values.len()
            ),
        ));
    }
    let mut rows = Vec::with_capacity(ids.len());
    for (row, id) in ids.into_iter().enumerate() {
        validate_id(&format!("ids[{row}]"), &id)?;

        let vector = values[row * dim..(row + 1) * dim].to_vec();
        validate_vector(&vector, dim).map_err(|e| {
            FieldViolation::new(format!("values[row {row}, id {id}]"), e.to_string())
        })?;
        if vector.iter().all(|&x| x == 0.0) {
            return Err(FieldViolation::new(
                format!("values[row {row}, id {id}]"),
                "zero vector has no direction",
            ));
        }
        rows.push((id, vector));
    }
    Ok(Rows { entity, rows })
}

/// An index description as `DescribeIndexResponse`.
pub fn description_to_pb(d: doppel_engine::IndexDescription) -> pb::DescribeIndexResponse {
    pb::DescribeIndexResponse {
        model_version: d.version,
        dim: d.dim as u32,
        metric: "cosine".to_owned(),
        customer_count: d.customer_count as u64,
        item_count: d.item_count as u64,
        shard_count: d.shard_count,
        memory_bytes: d.memory_bytes as u64,
        m: d.m as u32,
        ef_construction: d.ef_construction as u32,
        ef_search: d.ef_search as u32,
        deleted: d.deleted as u64,
        delta: d.delta as u64,
        loaded_from_snapshot: d.from_snapshot,
        memory: Some(memory_to_pb(&d.memory, d.customer_count)),
        scan_vectors: if d.int8_scan { "int8" } else { "f32" }.to_owned(),
    }
}

/// A memory breakdown as `MemoryBreakdown`.
fn memory_to_pb(m: &doppel_engine::MemoryBreakdown, customers: usize) -> pb::MemoryBreakdown {
    pb::MemoryBreakdown {
        customer_vectors: m.customers.vectors as u64,
        customer_graph: m.customers.graph as u64,
        customer_ids: m.customers.ids as u64,
        customer_bitsets: m.customers.bitsets as u64,
        customer_delta: m.customers.delta as u64,
        customer_scan_codes: m.customers.scan_codes as u64,
        item_index: m.items.total() as u64,
        members: m.members as u64,
        customer_profiles: m.profiles.customers as u64,
        item_profiles: m.profiles.items as u64,
        id_tables: m.profiles.id_tables as u64,
        bytes_per_customer: m.bytes_per_customer(customers),
    }
}

/// A training plan from a request: defaults overridden by what it sets, every value
/// checked.
pub fn plan_from_pb(request: pb::TrainRequest) -> Result<TrainPlan, Status> {
    let version = if request.model_version.is_empty() {
        format!("als-{}", doppel_types::clock::now_ms())
    } else {
        request.model_version
    };
    validate_version_name(&version)?;
    let int8_scan = scan_vectors_of(&request.scan_vectors)?;
    let mut als = AlsParams::default();
    if let Some(f) = request.factors {
        als.factors = f as usize;
    }
    if let Some(r) = request.regularization {
        als.regularization = r;
    }
    if let Some(w) = request.unobserved_weight {
        als.unobserved_weight = w;
    }
    if let Some(e) = request.regularization_exponent {
        als.regularization_exponent = e;
    }
    if let Some(i) = request.iterations {
        als.iterations = i as usize;
    }
    if let Some(s) = request.seed {
        als.seed = s;
    }
    let mut confidence = ConfidenceConfig::default();
    let floats = [
        (request.alpha, &mut confidence.alpha),
        (request.half_life_days, &mut confidence.half_life_days),
        (request.purchase_weight, &mut confidence.purchase_weight),
        (
            request.add_to_cart_weight,
            &mut confidence.add_to_cart_weight,
        ),
        (request.view_weight, &mut confidence.view_weight),
        (request.return_weight, &mut confidence.return_weight),
        (request.impression_weight, &mut confidence.impression_weight),
        (request.click_weight, &mut confidence.click_weight),
    ];
    for (value, slot) in floats {
        if let Some(v) = value {
            *slot = v;
        }
    }
    let mut prior = PriorSettings::default();
    if let Some(w) = request.recent_popularity_weight {
        prior.weight = Some(w);
    }
    if let Some(d) = request.recent_popularity_days {
        prior.days = d;
    }
    if let Some(w) = request.recency_weight {
        prior.recency_weight = Some(w);
    }
    als.validate().map_err(train_status)?;
    confidence.validate().map_err(train_status)?;
    prior.validate().map_err(train_status)?;
    Ok(TrainPlan {
        version,
        als,
        confidence,
        int8_scan,
        prior,
    })
}

/// A run's progress report as a `TrainProgress` message.
pub fn progress_to_pb(p: TrainProgress) -> pb::TrainProgress {
    let TrainProgress {
        version,
        stage,
        iteration,
        iterations,
        loss,
        elapsed_seconds,
        events,
        customers,
        items,
        done,
    } = p;
    pb::TrainProgress {
        model_version: version,
        stage: stage.to_owned(),
        iteration,
        iterations,
        loss,
        elapsed_seconds,
        events,
        customers,
        items,
        done,
    }
}
