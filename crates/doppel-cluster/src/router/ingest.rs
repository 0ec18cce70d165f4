//! `doppel.v1.Ingest` on the router.
//!
//! Profiles and events are routed by customer: records are grouped by the node owning the
//! customer's shard and forwarded as client streams of up to [`FORWARD_BATCH`] records, so
//! the router holds at most one batch per node however long the caller's stream is. The
//! nodes' summaries are summed, and each `RecordError.index` is mapped back to the record's
//! position in the caller's stream. Items go to every live node (each keeps the whole
//! catalogue). Validation is the owner's: the router only refuses what it cannot route.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doppel_grpc::status::FieldViolation;
use doppel_grpc::stream_idle::next_message;
use doppel_proto::v1 as pb;
use doppel_proto::v1::ingest_client::IngestClient;
use doppel_proto::v1::ingest_server::Ingest;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use futures::future::BoxFuture;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

use super::{
    DEFAULT_FORWARD_DEADLINE, RETRY_PAUSE, Router, deadline_of, forward, refused_before_write,
};
use crate::topology::NodeHandle;

/// Records forwarded to a node per client stream.
pub const FORWARD_BATCH: usize = 1_000;
/// Errors listed in one `WriteSummary` (all are counted), as on a single node.
const MAX_LISTED_ERRORS: usize = 1_000;

/// The router's Ingest service.
pub struct RouterIngest {
    router: Arc<Router>,
}

impl RouterIngest {
    /// A service routing through `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

fn client(node: &NodeHandle) -> IngestClient<Channel> {
    IngestClient::new(node.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A batch as the client stream of one forwarded call.
type Batch<T> = tokio_stream::Iter<std::vec::IntoIter<T>>;

/// A streamed record the router routes by customer.
trait Routed: Sized + Send + 'static {
    /// The field holding the routing id (named in the error for an empty one).
    const ID_FIELD: &'static str;
    /// The customer id that picks the owner.
    fn routing_id(&self) -> &str;
    /// Forwards one batch to a node.
    fn write(
        client: IngestClient<Channel>,
        batch: Request<Batch<Self>>,
    ) -> BoxFuture<'static, Result<Response<pb::WriteSummary>, Status>>;
}

impl Routed for pb::Customer {
    // As the single node names it.
    const ID_FIELD: &'static str = "id";

    fn routing_id(&self) -> &str {
        &self.id
    }

    fn write(
        mut client: IngestClient<Channel>,
        batch: Request<Batch<Self>>,
    ) -> BoxFuture<'static, Result<Response<pb::WriteSummary>, Status>> {
        Box::pin(async move { client.upsert_customers(batch).await })
    }
}

impl Routed for pb::Event {
    const ID_FIELD: &'static str = "customer_id";

    fn routing_id(&self) -> &str {
        &self.customer_id
    }

    fn write(
        mut client: IngestClient<Channel>,
        batch: Request<Batch<Self>>,
    ) -> BoxFuture<'static, Result<Response<pb::WriteSummary>, Status>> {
        Box::pin(async move { client.record_events(batch).await })
    }
}

/// The deadline of each forwarded batch: what is left of the caller's deadline, or
/// [`DEFAULT_FORWARD_DEADLINE`] per batch when the caller set none (a long stream must not
/// be cut after the default).
struct BatchDeadline {
    until: Option<Instant>,
}

impl BatchDeadline {
    fn of<T>(request: &Request<T>) -> Self {
        let until = request
            .metadata()
            .contains_key("grpc-timeout")
            .then(|| Instant::now() + deadline_of(request, DEFAULT_FORWARD_DEADLINE));
        Self { until }
    }

    fn next(&self) -> Result<Duration, Status> {
        match self.until {
            None => Ok(DEFAULT_FORWARD_DEADLINE),
            Some(until) => {
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(Status::deadline_exceeded(
                        "deadline exceeded while forwarding",
                    ))
                } else {
                    Ok(left)
                }
            }
        }
    }
}

/// The summed outcome of a streamed write, errors indexed in the caller's stream.
#[derive(Default)]
struct Summary {
    summary: pb::WriteSummary,
}

impl Summary {
    fn reject(&mut self, index: u64, violation: FieldViolation) {
        self.summary.rejected += 1;
        self.add_errors(vec![pb::RecordError {
            index,
            field: violation.field,
            reason: violation.reason,
        }]);
    }

    /// Adds a node's summary of a batch whose record `i` was at `positions[i]`.
    fn add(&mut self, node: pb::WriteSummary, positions: &[u64]) {
        let pb::WriteSummary {
            accepted,
            rejected,
            errors,
            duplicates,
        } = node;
        self.summary.accepted += accepted;
        self.summary.rejected += rejected;
        self.summary.duplicates += duplicates;
        let errors = errors
            .into_iter()
            .filter_map(|mut e| {
                let position = usize::try_from(e.index)
                    .ok()
                    .and_then(|i| positions.get(i))
                    .copied();
                if position.is_none() {
                    tracing::warn!(index = e.index, "node reported an error outside its batch");
                }
                e.index = position?;
                Some(e)
            })
            .collect();
        self.add_errors(errors);
    }

    /// Keeps the first [`MAX_LISTED_ERRORS`] errors in stream order, as a single node does
    /// (batches of different nodes complete out of order).
    fn add_errors(&mut self, errors: Vec<pb::RecordError>) {
        let listed = &mut self.summary.errors;
        listed.extend(errors);
        listed.sort_by_key(|e| e.index);
        listed.truncate(MAX_LISTED_ERRORS);
    }
}

/// Records waiting for one node, and their positions in the caller's stream.
struct Pending<T> {
    node: Arc<NodeHandle>,
    records: Vec<T>,
    positions: Vec<u64>,
}

impl<T: Routed + Clone> Pending<T> {
    /// Sends the batch; when its node refused it before writing anything (the shard moved),
    /// re-routes the records on the new shard map once.
    async fn flush(
        self,
        router: &Router,
        deadline: Duration,
        summary: &mut Summary,
    ) -> Result<(), Status> {
        let Pending {
            node,
            records,
            positions,
        } = self;
        tracing::debug!(node.id = %node.node_id, records = records.len(), "forwarding batch");
        let batch = forward(tokio_stream::iter(records.clone()), deadline);
        match T::write(client(&node), batch).await {
            Ok(answer) => {
                summary.add(answer.into_inner(), &positions);
                Ok(())
            }
            Err(status) if refused_before_write(&status) => {
                tracing::debug!(node.id = %node.node_id, error = %status.message(), "batch refused; re-routing");
                tokio::time::sleep(RETRY_PAUSE).await;
                router.refresh().await?;
                let mut groups: BTreeMap<String, Pending<T>> = BTreeMap::new();
                for (record, position) in records.into_iter().zip(positions) {
                    let owner = router.owner(record.routing_id())?;
                    let group = groups
                        .entry(owner.node_id.clone())
                        .or_insert_with(|| Pending {
                            node: owner,
                            records: Vec::new(),
                            positions: Vec::new(),
                        });
                    group.records.push(record);
                    group.positions.push(position);
                }
                for group in groups.into_values() {
                    let batch = forward(tokio_stream::iter(group.records), deadline);
                    let answer = T::write(client(&group.node), batch).await?.into_inner();
                    summary.add(answer, &group.positions);
                }
                Ok(())
            }
            Err(status) => Err(status),
        }
    }
}

impl RouterIngest {
    /// Drains the caller's stream, forwarding each record to its owner in batches.
    async fn route<T: Routed + Clone>(
        &self,
        request: Request<Streaming<T>>,
    ) -> Result<pb::WriteSummary, Status> {
        let deadline = BatchDeadline::of(&request);
        let mut stream = request.into_inner();
        let mut summary = Summary::default();
        let mut pending: BTreeMap<String, Pending<T>> = BTreeMap::new();
        let mut index = 0u64;
        let idle = self.router.stream_idle();
        while let Some(record) = next_message(&mut stream, idle).await? {
            let position = index;
            index += 1;
            if record.routing_id().is_empty() {
                summary.reject(
                    position,
                    FieldViolation::new(T::ID_FIELD, "must not be empty"),
                );
                continue;
            }
            let node = self.router.owner(record.routing_id())?;
            let batch = pending
                .entry(node.node_id.clone())
                .or_insert_with(|| Pending {
                    node,
                    records: Vec::with_capacity(FORWARD_BATCH),
                    positions: Vec::with_capacity(FORWARD_BATCH),
                });
            batch.records.push(record);
            batch.positions.push(position);
            if batch.records.len() == FORWARD_BATCH {
                let node_id = batch.node.node_id.clone();
                if let Some(full) = pending.remove(&node_id) {
                    full.flush(&self.router, deadline.next()?, &mut summary)
                        .await?;
                }
            }
        }
        for batch in pending.into_values() {
            batch
                .flush(&self.router, deadline.next()?, &mut summary)
                .await?;
        }
        Ok(summary.summary)
    }

    /// Sends one batch of items to every live node; the summary is the first node's.
    async fn broadcast_items(
        &self,
        items: Vec<pb::Item>,
        deadline: Duration,
    ) -> Result<pb::WriteSummary, Status> {
        let nodes = self.router.topology().nodes.clone();
        if nodes.is_empty() {
            return Err(Status::unavailable("no shard node is live; retry shortly"));
        }
        let calls = nodes.iter().map(|node| {
            let mut client = client(node);
            let batch = forward(tokio_stream::iter(items.clone()), deadline);
            async move { client.upsert_items(batch).await }
        });
        let mut first = None;
        for (node, answer) in nodes.iter().zip(futures::future::join_all(calls).await) {
            match answer {
                Ok(summary) => {
                    first.get_or_insert(summary.into_inner());
                }
                Err(status) => {
                    tracing::warn!(node.id = %node.node_id, error = %status.message(), "item write failed");
                    return Err(status);
                }
            }
        }
        first.ok_or_else(|| Status::unavailable("no shard node answered"))
    }
}

/// Refuses an empty customer id, as the owner would (it cannot be routed).
fn routable_id(id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Err(FieldViolation::new("customer_id", "must not be empty").into());
    }
    Ok(())
}

#[tonic::async_trait]
impl Ingest for RouterIngest {
    #[tracing::instrument(skip_all)]
    async fn upsert_customers(
        &self,
        request: Request<Streaming<pb::Customer>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        Ok(Response::new(self.route(request).await?))
    }

    #[tracing::instrument(skip_all)]
    async fn upsert_items(
        &self,
        request: Request<Streaming<pb::Item>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        let deadline = BatchDeadline::of(&request);
        let mut stream = request.into_inner();
        let mut summary = Summary::default();
        let mut batch = Vec::with_capacity(FORWARD_BATCH);
        let mut positions: Vec<u64> = Vec::with_capacity(FORWARD_BATCH);
        let mut index = 0u64;
        let idle = self.router.stream_idle();
        loop {
            let next = next_message(&mut stream, idle).await?;
            let done = next.is_none();
            if let Some(item) = next {
                batch.push(item);
                positions.push(index);
                index += 1;
            }
            if batch.len() == FORWARD_BATCH || (done && !batch.is_empty()) {
                let answer = self
                    .broadcast_items(std::mem::take(&mut batch), deadline.next()?)
                    .await?;
                summary.add(answer, &positions);
                positions.clear();
            }
            if done {
                return Ok(Response::new(summary.summary));
            }
        }
    }

    #[tracing::instrument(skip_all)]
    async fn record_events(
        &self,
        request: Request<Streaming<pb::Event>>,
    ) -> Result<Response<pb::WriteSummary>, Status> {
        Ok(Response::new(self.route(request).await?))
    }

    #[tracing::instrument(skip_all, fields(customer.id = %request.get_ref().customer_id))]
    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        doppel_grpc::audit_log::set_target(&request, &request.get_ref().customer_id);
        let message = request.into_inner();
        routable_id(&message.customer_id)?;
        let id = message.customer_id.clone();
        self.router
            .with_owner(&id, |node| {
                let message = message.clone();
                async move { client(&node).get_customer(forward(message, deadline)).await }
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(customer.id = %request.get_ref().customer_id))]
    async fn delete_customer(
        &self,
        request: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::DeleteCustomerResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        doppel_grpc::audit_log::set_target(&request, &request.get_ref().customer_id);
        let message = request.into_inner();
        routable_id(&message.customer_id)?;
        let id = message.customer_id.clone();
        self.router
            .with_owner(&id, |node| {
                let message = message.clone();
                async move {
                    client(&node)
                        .delete_customer(forward(message, deadline))
                        .await
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(index: u64) -> pb::RecordError {
        pb::RecordError {
            index,
            field: "id".to_owned(),
            reason: "bad".to_owned(),
        }
    }

    #[test]
    fn node_errors_map_back_to_stream_positions() {
        let mut summary = Summary::default();
        summary.reject(1, FieldViolation::new("id", "must not be empty"));
        summary.add(
            pb::WriteSummary {
                accepted: 2,
                rejected: 1,
                errors: vec![error(1)],
                duplicates: 1,
            },
            &[7, 3, 5],
        );
        assert_eq!(summary.summary.accepted, 2);
        assert_eq!(summary.summary.rejected, 2);
        assert_eq!(summary.summary.duplicates, 1);
        let indexes: Vec<u64> = summary.summary.errors.iter().map(|e| e.index).collect();
        assert_eq!(indexes, vec![1, 3]);
    }

    #[test]
    fn listed_errors_keep_the_first_in_stream_order() {
        let mut summary = Summary::default();
        let positions: Vec<u64> = (0..2_000).rev().collect();
        let errors = (0..MAX_LISTED_ERRORS as u64).map(error).collect();
        summary.add(
            pb::WriteSummary {
                accepted: 0,
                rejected: 1_000,
                errors,
                duplicates: 0,
            },
            &positions,
        );
        summary.reject(0, FieldViolation::new("id", "must not be empty"));
        assert_eq!(summary.summary.errors.len(), MAX_LISTED_ERRORS);
        assert_eq!(summary.summary.errors[0].index, 0);
        assert_eq!(summary.summary.rejected, 1_001);
    }
}
