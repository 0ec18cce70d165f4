//! `doppel.v1.Ingest`: profiles, items, events, lookups and erasure.
//!
//! Streamed writes are validated record by record; bad records are reported in the
//! `WriteSummary` and the rest are kept. Records are written to the store in batches, and
//! each batch reaches the engine only after the store acknowledged it durably. Events with
//! an `event_id` already recorded for their customer are accepted but counted as
//! duplicates and never reach the engine (see docs/retries.md).

use std::collections::BTreeSet;
use std::sync::Arc;

use doppel_node::{CustomerView, Node};
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_server::Ingest;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{customer_from_pb, customer_to_pb, event_from_pb, item_from_pb, validate_id};
use crate::status::{FieldViolation, node_status};

/// Records written to the store per transaction.
const WRITE_BATCH: usize = 1_000;
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
        let idle = self.node.config().stream_idle;
        while let Some(record) = crate::stream_idle::next_message(&mut stream, idle).await? {
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
                node.upsert_customers(batch).await.map_err(node_status)?;
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
                node.upsert_items(batch).await.map_err(node_status)?;
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
        let convert = |record: pb::Event| {
            let event = event_from_pb(record)?;
            match node.unknown_event_ref(&event) {
                Some((field, reason)) => Err(FieldViolation::new(field, reason)),
                None => Ok(event),
            }
        };
        let applied = std::sync::Mutex::new(BTreeSet::new());
        let applied_ref = &applied;
        let last_written = std::sync::Mutex::new(None::<u64>);
        let last_ref = &last_written;
        let summary = self
            .ingest(request.into_inner(), convert, |batch| async move {
                let recorded = node.record_events(batch).await.map_err(node_status)?;
                if let Ok(mut last) = last_ref.lock() {
                    *last = (*last).max(recorded.last_written);
                }
                if let Ok(mut ids) = applied_ref.lock() {
                    ids.extend(recorded.applied_customers);
                }
                Ok(recorded.duplicates)
            })
            .await?;
        let customers = applied.into_inner().unwrap_or_default();
        let last = last_written.into_inner().unwrap_or_default();
        let folded = node
            .events_recorded(customers, last)
            .await
            .map_err(node_status)?;
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
        let CustomerView {
            customer,
            event_count,
            purchased_items,
            model_version,
            has_vector,
            cap_counts,
        } = self
            .node
            .customer_view(&customer_id)
            .await
            .map_err(node_status)?;
        Ok(Response::new(pb::GetCustomerResponse {
            segments: crate::convert::segments_of(&customer.attributes),
            customer: Some(customer_to_pb(customer)),
            has_vector,
            purchased_items,
            event_count,
            model_version,
            cap_counts: cap_counts
                .into_iter()
                .map(crate::convert::cap_count_to_pb)
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(customer.id = %request.get_ref().customer_id))]
    async fn delete_customer(
        &self,
        request: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::DeleteCustomerResponse>, Status> {
        crate::audit_log::set_target(&request, &request.get_ref().customer_id);
        let pb::DeleteCustomerRequest { customer_id } = request.into_inner();
        validate_id("customer_id", &customer_id)?;
        let existed = self
            .node
            .delete_customer(&customer_id)
            .await
            .map_err(node_status)?;
        // The store took the customer out of every saved audience; its id also leaves
        // the saved queries that name it as a seed.
        crate::saved_audiences::scrub_erased(self.node.store().as_ref(), &customer_id)
            .await
            .map_err(|s| {
                Status::unavailable(format!(
                    "customer_id: erased, but its id could not yet be taken out of the saved \
                     audience queries ({}); retry the erasure",
                    s.message()
                ))
            })?;
        Ok(Response::new(pb::DeleteCustomerResponse { existed }))
    }
}
