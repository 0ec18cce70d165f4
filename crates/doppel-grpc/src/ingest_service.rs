//! `doppel.v1.Ingest`: profiles, items, events, lookups and erasure.
//!
//! Streamed writes are validated record by record; bad records are reported in the
//! `WriteSummary` and the rest are kept. Records are written to the store in batches, and
//! each batch reaches the engine only after the store acknowledged it durably. Events with
//! an `event_id` already recorded for their customer are accepted but counted as
//! duplicates and never reach the engine (see docs/retries.md).

use std::sync::Arc;

use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_server::Ingest;
use doppel_types::{Entity, Event, EventType};
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{customer_from_pb, customer_to_pb, event_from_pb, item_from_pb, validate_id};
use crate::node::Node;
use crate::status::{FieldViolation, store_status};

/// Records written to the store per transaction.
const WRITE_BATCH: usize = 1_000;
/// Cluster: how long an event write waits for the follower to apply it (read-your-writes).
const FOLLOWER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
/// Errors listed in one `WriteSummary` (all are counted).
const MAX_LISTED_ERRORS: usize = 1_000;

/// The Ingest service.
pub struct IngestService {
    node: Arc<Node>,
}

impl IngestService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

/// Accumulates the outcome of a streamed write.
#[derive(Default)]
struct SummaryBuilder {
    summary: pb::WriteSummary,
}

impl SummaryBuilder {
    fn reject(&mut self, index: u64, violation: FieldViolation) {
        self.summary.rejected += 1;
        if self.summary.errors.len() < MAX_LISTED_ERRORS {
            self.summary.errors.push(pb::RecordError {
                index,
                field: violation.field,
                reason: violation.reason,
            });
        }
    }
}

impl IngestService {
    /// Drains `stream`, validating each record with `convert`, and hands full batches to
    /// `write` (which stores them durably, then applies them to the engine, and returns how
    /// many of the batch were duplicates).
    async fn ingest<P, T, C, W, Fut>(
        &self,
        mut stream: Streaming<P>,
        mut convert: C,
        mut write: W,
    ) -> Result<pb::WriteSummary, Status>
    where
        C: FnMut(P) -> Result<T, FieldViolation>,
        W: FnMut(Vec<T>) -> Fut,
        Fut: Future<Output = Result<u64, Status>>,
    {
        let mut builder = SummaryBuilder::default();
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        let mut index = 0u64;
        while let Some(record) = stream.message().await? {
            match convert(record) {
                Ok(value) => batch.push(value),
                Err(violation) => builder.reject(index, violation),
            }
            index += 1;
            if batch.len() == WRITE_BATCH {
                let n = batch.len() as u64;
                builder.summary.duplicates += write(std::mem::take(&mut batch)).await?;
                builder.summary.accepted += n;
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            builder.summary.duplicates += write(batch).await?;
            builder.summary.accepted += n;
        }
        Ok(builder.summary)
    }
}

#[tonic::async_trait]
impl Ingest for IngestService {
    #[tracing::instrument(skip_all)]
    async fn upsert_customers(
        &self,
        request: Request<Streaming<pb::Customer>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        let node = &self.node;
        let summary = self
            .ingest(request.into_inner(), customer_from_pb, |batch| async move {
                for c in &batch {
                    node.check_holds(&c.id, true)?;
                }
                let batch = crate::segments::keep_segments(node, batch).await?;
                node.store
                    .upsert_customers(batch.clone())
                    .await
                    .map_err(store_status)?;
                batch.iter().for_each(|c| node.engine.upsert_customer(c));
                Ok(0)
            })
            .await?;
        Ok(Response::new(summary))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_items(
        &self,
        request: Request<Streaming<pb::Item>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        let node = &self.node;
        let summary = self
            .ingest(request.into_inner(), item_from_pb, |batch| async move {
                node.store
                    .upsert_items(batch.clone())
                    .await
                    .map_err(store_status)?;
                batch.iter().for_each(|i| node.engine.upsert_item(i));
                Ok(0)
            })
            .await?;
        Ok(Response::new(summary))
    }

    #[tracing::instrument(skip_all)]
    async fn record_events(
        &self,
        request: Request<Streaming<pb::Event>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        let node = &self.node;
        let engine = Arc::clone(&node.engine);
        let convert = move |record: pb::Event| {
            let event = event_from_pb(record)?;
            if !engine.known_customer(&event.customer_id) {
                return Err(FieldViolation::new(
                    "customer_id",
                    format!("unknown customer `{}` (upsert it first)", event.customer_id),
                ));
            }
            if !engine.known_item(&event.item_id) {
                return Err(FieldViolation::new(
                    "item_id",
                    format!("unknown item `{}` (upsert it first)", event.item_id),
                ));
            }
            Ok(event)
        };
        let touched = std::sync::Mutex::new(std::collections::BTreeSet::new());
        let touched_ref = &touched;
        let last_seq = std::sync::atomic::AtomicU64::new(0);
        let last_ref = &last_seq;
        let summary = self
            .ingest(request.into_inner(), convert, |batch| async move {
                for e in &batch {
                    node.check_holds(&e.customer_id, true)?;
                }
                let appended = node
                    .store
                    .append_events(batch.clone())
                    .await
                    .map_err(store_status)?;
                let duplicates = appended.duplicates.len() as u64;
                // The last seq this call wrote, not the counter: seqs of dropped events are
                // never filled, so the follower would not reach them.
                if let Some(seq) = appended.last_written {
                    last_ref.fetch_max(seq, std::sync::atomic::Ordering::Relaxed);
                }
                if node.config.cluster {
                    // The follower applies (and folds in) every stored event exactly once.
                    return Ok(duplicates);
                }
                let mut dropped = appended.duplicates.into_iter().peekable();
                let stored: Vec<Event> = batch
                    .into_iter()
                    .enumerate()
                    .filter_map(|(position, event)| {
                        if dropped.next_if_eq(&position).is_some() {
                            None
                        } else {
                            Some(event)
                        }
                    })
                    .collect();
                stored.iter().for_each(|e| node.engine.record_event(e));
                if let Ok(mut ids) = touched_ref.lock() {
                    ids.extend(stored.into_iter().map(|e| e.customer_id));
                }
                Ok(duplicates)
            })
            .await?;
        if node.config.cluster {
            let seq = last_seq.into_inner();
            if !node.wait_applied(seq, FOLLOWER_PATIENCE).await {
                tracing::warn!(seq, "events stored; the follower has not applied them yet");
            }
            return Ok(Response::new(summary));
        }
        // Fold-in: the next recommendation of these customers reflects their new events.
        let ids: Vec<String> = touched
            .into_inner()
            .map(|ids| ids.into_iter().collect())
            .unwrap_or_default();
        let folded = crate::training::fold_in_customers(node, ids).await?;
        tracing::debug!(folded, "customers folded in");
        Ok(Response::new(summary))
    }

    #[tracing::instrument(skip_all, fields(customer.id = %request.get_ref().customer_id))]
    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        let pb::GetCustomerRequest { customer_id } = request.into_inner();
        validate_id("customer_id", &customer_id)?;
        self.node.check_holds(&customer_id, false)?;
        let store = &self.node.store;
        let customer = store
            .get_customer(&customer_id)
            .await
            .map_err(store_status)?
            .ok_or_else(|| Status::not_found(format!("customer_id: `{customer_id}` not found")))?;
        let events = store
            .customer_events(&customer_id)
            .await
            .map_err(store_status)?;
        let mut net_units: std::collections::HashMap<&str, i64> = Default::default();
        for event in &events {
            let units = i64::from(event.quantity.max(1));
            match event.kind {
                EventType::Purchase => *net_units.entry(&event.item_id).or_default() += units,
                EventType::Return => *net_units.entry(&event.item_id).or_default() -= units,
                EventType::View | EventType::AddToCart => {}
            }
        }
        let model_version = self.node.engine.active_version().unwrap_or_default();
        let has_vector = if model_version.is_empty() {
            false
        } else {
            store
                .get_vector(&model_version, Entity::Customer, &customer_id)
                .await
                .map_err(store_status)?
                .is_some()
        };
        let segments = crate::segments::segments_of(&customer.attributes);
        Ok(Response::new(pb::GetCustomerResponse {
            segments,
            customer: Some(customer_to_pb(customer)),
            has_vector,
            purchased_items: net_units.values().filter(|&&u| u > 0).count() as u64,
            event_count: events.len() as u64,
            model_version,
        }))
    }

    #[tracing::instrument(skip_all, fields(customer.id = %request.get_ref().customer_id))]
    async fn delete_customer(
        &self,
        request: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::DeleteCustomerResponse>, Status> {
        let pb::DeleteCustomerRequest { customer_id } = request.into_inner();
        validate_id("customer_id", &customer_id)?;
        self.node.check_holds(&customer_id, true)?;
        // Store first: once this returns, the erasure is durable and in the ledger, so no
        // rebuild or import can bring the customer back; then drop it from every index.
        let existed = self
            .node
            .store
            .delete_customer(&customer_id)
            .await
            .map_err(store_status)?;
        let in_memory = self.node.engine.erase_customer(&customer_id);
        tracing::info!(existed = existed || in_memory, "customer erased");
        Ok(Response::new(pb::DeleteCustomerResponse {
            existed: existed || in_memory,
        }))
    }
}
