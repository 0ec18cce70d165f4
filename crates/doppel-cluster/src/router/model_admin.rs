//! `doppel.v1.ModelAdmin` on the router.
//!
//! Version writes (imports, training) go to one node: the vectors and the version metadata
//! land in the shared store, where every node reads them. Reads of version metadata go to
//! any node; index descriptions are summed over the nodes. Activation is two-phase, so a
//! version is never active while some shard cannot answer with it:
//!
//! ```text
//!   ActivateVersion(v)
//!     every shard has a live node? ──no──▶ FAILED_PRECONDITION        (nothing changed)
//!     Shard.PrepareVersion(v), all nodes ──any fails──▶ FAILED_PRECONDITION / NOT_FOUND
//!                                                                     (nothing changed)
//!     ModelAdmin.ActivateVersion(v), one node: validates, flips the store's pointer and
//!       the version states, activates its engine ──fails──▶ its status (nothing changed)
//!     Shard.ActivateVersion(v), other nodes ──any fails──▶ UNAVAILABLE (v is active; the
//!       laggards follow the pointer when they next poll it)
//! ```
//!
//! Rollback re-activates the previous version the nodes agree on, through the same flow.

use std::sync::Arc;
use std::time::Duration;

use doppel_grpc::audit_log::{AuditTarget, set_target};
use doppel_grpc::convert::validate_version_name;
use doppel_grpc::status::store_status;
use doppel_grpc::stream_idle::next_message;
use doppel_grpc::training::TrainStream;
use doppel_proto::internal::v1 as internal;
use doppel_proto::internal::v1::shard_client::ShardClient;
use doppel_proto::v1 as pb;
use doppel_proto::v1::model_admin_client::ModelAdminClient;
use doppel_proto::v1::model_admin_server::ModelAdmin;
use doppel_store::Store;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status, Streaming};

use super::experiment_sync::{follow_everywhere, prepare_everywhere};
use super::fan_out::{on_nodes, on_other_nodes, partial};
use super::{DEFAULT_FAN_OUT_DEADLINE, DEFAULT_FORWARD_DEADLINE, Router, deadline_of, forward};
use crate::topology::NodeHandle;

/// Deadline of an activation or rollback when the client set none (nodes may have to load
/// the version's indexes first).
pub const DEFAULT_ACTIVATION_DEADLINE: Duration = Duration::from_secs(120);
/// Embedding chunks buffered between the caller's stream and the node's.
const CHUNKS_IN_FLIGHT: usize = 2;
/// Shards named in an error about shards with no live node.
const MAX_SHARDS_NAMED: usize = 32;

/// The router's ModelAdmin service.
pub struct RouterModelAdmin {
    router: Arc<Router>,
}

impl RouterModelAdmin {
    /// A service administering the cluster behind `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

fn admin_client(node: &NodeHandle) -> ModelAdminClient<Channel> {
    ModelAdminClient::new(node.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn shard_client(node: &NodeHandle) -> ShardClient<Channel> {
    ShardClient::new(node.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A request carrying the caller's deadline, or none: imports and training runs take as
/// long as they take unless the caller bounds them.
fn forward_long<T, M>(caller: &Request<T>, message: M) -> Request<M> {
    let mut request = Request::new(message);
    if caller.metadata().contains_key("grpc-timeout") {
        request.set_timeout(deadline_of(caller, DEFAULT_FORWARD_DEADLINE));
    }
    request
}

/// What flows from the caller's import stream to the node's.
enum Feed {
    Chunk(pb::EmbeddingChunk),
    End,
}

/// The node's side of a relayed import. When the caller's stream breaks (the channel
/// closes without [`Feed::End`]) it ends with a chunk naming no version, which the node
/// refuses, so the node fails the import instead of keeping a partial version as ready.
fn relay(rx: mpsc::Receiver<Feed>) -> impl Stream<Item = pb::EmbeddingChunk> + Send + 'static {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Feed::Chunk(chunk)) => Some((chunk, Some(rx))),
            Some(Feed::End) => None,
            None => Some((pb::EmbeddingChunk::default(), None)),
        }
    })
}

/// The shards of `topology` with no live node, for an error message.
/// Asks every node to build `version` (throttled on each node; failures are only logged:
/// an activation prepares again and reports them).
fn prepare_in_background(router: &Arc<Router>, version: &str) {
    if version.is_empty() {
        return;
    }
    for node in router.topology().nodes.iter().cloned() {
        let request = internal::PrepareVersionRequest {
            model_version: version.to_owned(),
        };
        tokio::spawn(async move {
            if let Err(status) = shard_client(&node).prepare_version(request).await {
                tracing::warn!(node.id = %node.node_id, error = %status.message(), "background build failed");
            }
        });
    }
}

fn unserved_shards(router: &Router, topology: &crate::topology::Topology) -> String {
    let missing: Vec<String> = (0..router.shard_count)
        .filter(|&s| topology.owners.get(s as usize).is_none_or(Option::is_none))
        .map(|s| s.to_string())
        .collect();
    let named = missing.len().min(MAX_SHARDS_NAMED);
    let more = match missing.len() - named {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!("{}{more}", missing[..named].join(", "))
}

impl RouterModelAdmin {
    /// The two-phase activation of `version` (see the module docs).
    async fn activate(
        &self,
        version: String,
        deadline: Duration,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        validate_version_name(&version)?;
        let topology = self.router.topology();
        if topology.routable_shards() < self.router.shard_count {
            return Err(Status::failed_precondition(format!(
                "cannot activate `{version}`: shards {} have no live node; nothing was changed",
                unserved_shards(&self.router, &topology)
            )));
        }
        let nodes = topology.nodes.clone();
        let Some(first) = nodes.first() else {
            return Err(Status::unavailable("no shard node is live; retry shortly"));
        };
        // 1. Every node loads the version; nothing is switched until all have.
        prepare_everywhere(&nodes, std::slice::from_ref(&version), deadline).await?;

        // 2. One node validates the version's state and flips the store's pointer.
        let response = admin_client(first)
            .activate_version(forward(
                pb::ActivateVersionRequest {
                    model_version: version.clone(),
                    ..Default::default()
                },
                deadline,
            ))
            .await?;
        self.router.note_active_version(Some(version.clone()));

        // 3. The others switch now rather than at their next poll of the pointer.
        self.switch_others(&first.node_id, &version, deadline)
            .await?;
        tracing::info!(
            model.version = %version,
            previous = %response.get_ref().previous_version,
            nodes = nodes.len(),
            "version activated on the cluster"
        );
        Ok(response)
    }

    /// Starts a canary: every node loads the version, the first stores the canary (as the
    /// running experiment) and the others apply it.
    async fn start_canary(
        &self,
        message: pb::ActivateVersionRequest,
        deadline: Duration,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        validate_version_name(&message.model_version)?;
        if message.canary_percent > 99 {
            return Err(Status::invalid_argument(
                "canary_percent: must be 1..=99 (0 activates fully)",
            ));
        }
        doppel_node::canary_guard::validate_guard(&doppel_grpc::convert::guard_from_pb(
            message.guard,
        ))
        .map_err(doppel_grpc::status::node_status)?;
        prepare_everywhere(
            &self.router.topology().nodes,
            std::slice::from_ref(&message.model_version),
            deadline,
        )
        .await?;
        let first = self.router.any_node()?;
        let response = admin_client(&first)
            .activate_version(forward(message, deadline))
            .await?;
        follow_everywhere(&self.router, &first.node_id, deadline).await?;
        Ok(response)
    }

    /// Every node but `done` switches to `version` (and applies the experiments); UNAVAILABLE
    /// naming the laggards, which follow the pointer.
    async fn switch_others(
        &self,
        done: &str,
        version: &str,
        deadline: Duration,
    ) -> Result<(), Status> {
        let request = internal::PrepareVersionRequest {
            model_version: version.to_owned(),
        };
        let laggards = on_other_nodes(&self.router, done, deadline, |node| {
            let mut client = shard_client(node);
            let request = forward(request.clone(), deadline);
            async move { client.activate_version(request).await }
        })
        .await;
        if !laggards.is_empty() {
            return Err(Status::unavailable(format!(
                "`{version}` is active, but some nodes did not switch yet ({}); they follow \
                 the active version within seconds",
                laggards.join("; ")
            )));
        }
        Ok(())
    }

    /// Every live node's status, or UNAVAILABLE naming the first node that did not answer.
    async fn node_statuses(
        &self,
        deadline: Duration,
    ) -> Result<Vec<(Arc<NodeHandle>, internal::NodeStatusResponse)>, Status> {
        let nodes = self.router.topology().nodes.clone();
        if nodes.is_empty() {
            return Err(Status::unavailable("no shard node is live; retry shortly"));
        }
        let statuses = on_nodes(&nodes, deadline, |node| {
            let mut client = shard_client(node);
            let request = forward(internal::NodeStatusRequest {}, deadline);
            async move { client.node_status(request).await }
        })
        .await;
        let mut out = Vec::with_capacity(nodes.len());
        for (node, answer) in nodes.iter().zip(statuses) {
            let status = answer.map_err(|s| {
                Status::unavailable(format!(
                    "node {} did not report its versions: {}; retry shortly",
                    node.node_id,
                    s.message()
                ))
            })?;
            out.push((Arc::clone(node), status));
        }
        Ok(out)
    }

    /// The version a rollback re-activates: the previous version every node agrees on.
    async fn previous_version(&self, deadline: Duration) -> Result<String, Status> {
        let statuses = self.node_statuses(deadline).await?;
        let previous: Vec<(&str, String)> = statuses
            .iter()
            .map(|(node, status)| (node.node_id.as_str(), status.previous_version.clone()))
            .collect();
        let first = previous.first().map(|(_, v)| v.clone()).unwrap_or_default();
        if previous.iter().any(|(_, v)| *v != first) {
            let listed: Vec<String> = previous
                .iter()
                .map(|(node, v)| format!("{node}: `{v}`"))
                .collect();
            return Err(Status::failed_precondition(format!(
                "the nodes disagree on the previous version ({}); activate a version explicitly",
                listed.join(", ")
            )));
        }
        if first.is_empty() {
            return Err(Status::failed_precondition(
                "no previous version is loaded to roll back to (activate a second version first)",
            ));
        }
        Ok(first)
    }
}

/// Sums the per-shard counts of the nodes' index descriptions (the catalogue and the
/// settings are the same everywhere: they come from the first).
fn sum_descriptions(answers: Vec<pb::DescribeIndexResponse>) -> Option<pb::DescribeIndexResponse> {
    let mut answers = answers.into_iter();
    let mut sum = answers.next()?;
    for d in answers {
        sum.customer_count += d.customer_count;
        sum.memory_bytes += d.memory_bytes;
        sum.deleted += d.deleted;
        sum.delta += d.delta;
        sum.memory = match (sum.memory.take(), d.memory) {
            (Some(a), Some(b)) => Some(add_memory(a, &b)),
            (a, b) => a.or(b),
        };
    }
    if let Some(m) = sum.memory.as_mut() {
        let per_customer = m.customer_vectors
            + m.customer_graph
            + m.customer_ids
            + m.customer_bitsets
            + m.customer_delta
            + m.customer_scan_codes
            + m.members
            + m.customer_profiles
            + m.id_tables;
        m.bytes_per_customer = if sum.customer_count == 0 {
            0.0
        } else {
            per_customer as f64 / sum.customer_count as f64
        };
    }
    Some(sum)
}

/// Two nodes' memory breakdowns, part by part (bytes per customer is recomputed by the caller).
fn add_memory(mut a: pb::MemoryBreakdown, b: &pb::MemoryBreakdown) -> pb::MemoryBreakdown {
    a.customer_vectors += b.customer_vectors;
    a.customer_graph += b.customer_graph;
    a.customer_ids += b.customer_ids;
    a.customer_bitsets += b.customer_bitsets;
    a.customer_delta += b.customer_delta;
    a.customer_scan_codes += b.customer_scan_codes;
    a.item_index += b.item_index;
    a.members += b.members;
    a.customer_profiles += b.customer_profiles;
    a.item_profiles += b.item_profiles;
    a.id_tables += b.id_tables;
    a
}

#[tonic::async_trait]
impl ModelAdmin for RouterModelAdmin {
    type TrainStream = TrainStream;

    #[tracing::instrument(skip_all)]
    async fn import_embeddings(
        &self,
        request: Request<Streaming<pb::EmbeddingChunk>>,
    ) -> Result<Response<pb::ImportSummary>, Status> {
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let forwarded = forward_long(&request, relay(rx));
        let audit = AuditTarget::of(&request);
        let mut inbound = request.into_inner();
        let idle = self.router.stream_idle();
        let first = next_message(&mut inbound, idle)
            .await?
            .ok_or_else(|| Status::invalid_argument("stream: no EmbeddingChunk received"))?;
        if let Some(audit) = &audit {
            audit.set(&first.model_version);
        }
        let node = self.router.any_node()?;
        tracing::debug!(node.id = %node.node_id, model.version = %first.model_version, "forwarding import");
        let mut client = admin_client(&node);
        let call = client.import_embeddings(forwarded);
        // Moves `tx`: however the pump stops, the channel closes, and only a complete
        // stream sends `End` (see `relay`).
        let pump = async move {
            let mut next = Some(first);
            while let Some(chunk) = next {
                if tx.send(Feed::Chunk(chunk)).await.is_err() {
                    // The node stopped reading: it has answered (with an error).
                    return Ok(());
                }
                next = next_message(&mut inbound, idle).await?;
            }
            // A closed channel means the node stopped reading: it has answered already,
            // and `call` reports that answer.
            let _ = tx.send(Feed::End).await;
            Ok::<(), Status>(())
        };
        tokio::pin!(call, pump);
        let answer = tokio::select! {
            answer = &mut call => answer,
            pumped = &mut pump => {
                pumped?;
                call.await
            }
        }?;
        prepare_in_background(&self.router, &answer.get_ref().model_version);
        Ok(answer)
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let page = doppel_grpc::audit_log::list(&self.router.store, request.into_inner()).await?;
        Ok(Response::new(page))
    }

    #[tracing::instrument(skip_all)]
    async fn list_versions(
        &self,
        request: Request<pb::ListVersionsRequest>,
    ) -> Result<Response<pb::ListVersionsResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        let node = self.router.any_node()?;
        admin_client(&node)
            .list_versions(forward(request.into_inner(), deadline))
            .await
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn activate_version(
        &self,
        request: Request<pb::ActivateVersionRequest>,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_ACTIVATION_DEADLINE);
        set_target(&request, &request.get_ref().model_version);
        let message = request.into_inner();
        if message.canary_percent > 0 {
            return self.start_canary(message, deadline).await;
        }
        if message.guard.is_some() {
            return Err(Status::invalid_argument("guard: only with canary_percent"));
        }
        self.activate(message.model_version, deadline).await
    }

    #[tracing::instrument(skip_all)]
    async fn promote_canary(
        &self,
        request: Request<pb::PromoteCanaryRequest>,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_ACTIVATION_DEADLINE);
        let book = self
            .router
            .store
            .experiments()
            .await
            .map_err(store_status)?;
        let Some(version) = book
            .running()
            .and_then(doppel_node::canary::canary_arm_version)
            .map(str::to_owned)
        else {
            return Err(Status::failed_precondition("no canary is running"));
        };
        set_target(&request, &version);
        let topology = self.router.topology();
        if topology.routable_shards() < self.router.shard_count {
            return Err(Status::failed_precondition(format!(
                "cannot promote `{version}`: shards {} have no live node; nothing was changed",
                unserved_shards(&self.router, &topology)
            )));
        }
        let first = self.router.any_node()?;
        // The canary's version is loaded everywhere (pinned); the first node activates it
        // and ends the canary, the others switch and apply the ended canary.
        let response = admin_client(&first)
            .promote_canary(forward(pb::PromoteCanaryRequest {}, deadline))
            .await?;
        self.router.note_active_version(Some(version.clone()));
        self.switch_others(&first.node_id, &version, deadline)
            .await?;
        Ok(response)
    }

    #[tracing::instrument(skip_all)]
    async fn describe_index(
        &self,
        request: Request<pb::DescribeIndexRequest>,
    ) -> Result<Response<pb::DescribeIndexResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FAN_OUT_DEADLINE);
        set_target(&request, &request.get_ref().model_version);
        let message = request.into_inner();
        let described = partial(&self.router, deadline, |node| {
            let mut client = admin_client(node);
            let request = forward(message.clone(), deadline);
            async move { client.describe_index(request).await }
        })
        .await?;
        sum_descriptions(described.answers)
            .map(Response::new)
            .ok_or_else(|| Status::unavailable("no shard node is live; retry shortly"))
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn train(
        &self,
        request: Request<pb::TrainRequest>,
    ) -> Result<Response<Self::TrainStream>, Status> {
        // A trained version is registered ready, never activated (TrainRequest has no such
        // option), so the node's progress stream is relayed as is.
        let node = self.router.any_node()?;
        set_target(&request, &request.get_ref().model_version);
        let forwarded = forward_long(&request, request.get_ref().clone());
        let progress = admin_client(&node).train(forwarded).await?.into_inner();
        // Once trained, every other node builds the version in the background, so an
        // activation later only flips the pointer.
        let router = Arc::clone(&self.router);
        let progress = progress.inspect(move |message| {
            if let Ok(p) = message
                && p.done
            {
                prepare_in_background(&router, &p.model_version);
            }
        });
        Ok(Response::new(Box::pin(progress)))
    }

    #[tracing::instrument(skip_all)]
    async fn rollback(
        &self,
        request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::ActivateVersionResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_ACTIVATION_DEADLINE);
        let previous = self
            .previous_version(deadline.min(DEFAULT_FAN_OUT_DEADLINE))
            .await?;
        let response = self.activate(previous, deadline).await?;
        tracing::info!(model.version = %response.get_ref().model_version, "rolled back");
        Ok(response)
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn delete_version(
        &self,
        request: Request<pb::DeleteVersionRequest>,
    ) -> Result<Response<pb::DeleteVersionResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FAN_OUT_DEADLINE);
        set_target(&request, &request.get_ref().model_version);
        let pb::DeleteVersionRequest { model_version } = request.into_inner();
        self.delete(model_version, deadline).await
    }

    #[tracing::instrument(skip_all, fields(model.version = %request.get_ref().model_version))]
    async fn describe_version(
        &self,
        request: Request<pb::DescribeVersionRequest>,
    ) -> Result<Response<pb::DescribeVersionResponse>, Status> {
        // Metadata and state come from the shared store; across nodes, the version is
        // loaded (active) when it is on every node, building when on any, the build
        // progress and index sizes are summed.
        let deadline = deadline_of(&request, DEFAULT_FAN_OUT_DEADLINE);
        set_target(&request, &request.get_ref().model_version);
        let message = request.into_inner();
        let described = partial(&self.router, deadline, |node| {
            let mut client = admin_client(node);
            let request = forward(message.clone(), deadline);
            async move { client.describe_version(request).await }
        })
        .await?;
        let mut merged: Option<pb::DescribeVersionResponse> = None;
        let mut indexes = Vec::new();
        for answer in described.answers {
            indexes.extend(answer.index.clone());
            merged = Some(match merged {
                None => answer,
                Some(m) => pb::DescribeVersionResponse {
                    loaded: m.loaded && answer.loaded,
                    active: m.active && answer.active,
                    building: m.building || answer.building,
                    build_done: m.build_done + answer.build_done,
                    build_total: m.build_total + answer.build_total,
                    canary: m.canary || answer.canary,
                    ..m
                },
            });
        }
        let mut merged =
            merged.ok_or_else(|| Status::unavailable("no shard node is live; retry shortly"))?;
        merged.index = if merged.loaded {
            sum_descriptions(indexes)
        } else {
            None
        };
        Ok(Response::new(merged))
    }
}

impl RouterModelAdmin {
    /// DeleteVersion across the cluster: refused while any node has the version active or
    /// as its rollback target; then every node drops what it holds of it (indexes,
    /// snapshots) and the first to get there deletes it from the shared store.
    async fn delete(
        &self,
        version: String,
        deadline: Duration,
    ) -> Result<Response<pb::DeleteVersionResponse>, Status> {
        validate_version_name(&version)?;
        let statuses = self.node_statuses(deadline).await?;
        for (node, status) in &statuses {
            if status.active_version == version || status.previous_version == version {
                return Err(Status::failed_precondition(format!(
                    "model_version: `{version}` is active or the rollback target on node {}; \
                     activate another version first",
                    node.node_id
                )));
            }
        }
        let nodes: Vec<Arc<NodeHandle>> = statuses.into_iter().map(|(node, _)| node).collect();
        let request = pb::DeleteVersionRequest {
            model_version: version.clone(),
        };
        let answers = on_nodes(&nodes, deadline, |node| {
            let mut client = admin_client(node);
            let request = forward(request.clone(), deadline);
            async move { client.delete_version(request).await }
        })
        .await;
        let mut deleted: Option<pb::DeleteVersionResponse> = None;
        let mut refused: Option<Status> = None;
        for answer in answers {
            match answer {
                Ok(response) => {
                    // The node that found it in the store knows the state it was in; the
                    // others only dropped their copies (empty state).
                    if deleted.as_ref().is_none_or(|d| d.state.is_empty()) {
                        deleted = Some(response);
                    }
                }
                Err(status) if status.code() == Code::NotFound => {}
                Err(status) => refused = Some(status),
            }
        }
        if let Some(status) = refused {
            return Err(status);
        }
        let deleted = deleted
            .ok_or_else(|| Status::not_found(format!("model_version: `{version}` not found")))?;
        tracing::info!(model.version = %version, state = %deleted.state, "version deleted on the cluster");
        Ok(Response::new(deleted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[test]
    fn descriptions_sum_per_shard_counts() {
        let d = |customers, memory| pb::DescribeIndexResponse {
            model_version: "v1".to_owned(),
            customer_count: customers,
            item_count: 50,
            memory_bytes: memory,
            deleted: 1,
            delta: 2,
            memory: Some(pb::MemoryBreakdown {
                customer_vectors: memory / 2,
                customer_graph: memory / 4,
                item_index: memory / 4,
                customer_profiles: 10,
                bytes_per_customer: 1.0,
                ..Default::default()
            }),
            ..Default::default()
        };
        let sum = sum_descriptions(vec![d(10, 100), d(5, 50)]);
        let sum = sum.unwrap_or_default();
        assert_eq!(sum.customer_count, 15);
        assert_eq!(sum.memory_bytes, 150);
        let memory = sum.memory.unwrap_or_default();
        assert_eq!(
            (
                memory.customer_vectors,
                memory.customer_graph,
                memory.item_index
            ),
            (75, 37, 37)
        );
        // (75 + 37 + 20 profile bytes) / 15 customers; the item index is not a customer's.
        assert!((memory.bytes_per_customer - 132.0 / 15.0).abs() < 1e-9);
        assert_eq!(sum.item_count, 50);
        assert_eq!((sum.deleted, sum.delta), (2, 4));
        assert!(sum_descriptions(Vec::new()).is_none());
    }

    #[tokio::test]
    async fn a_broken_import_ends_with_a_chunk_the_node_refuses() {
        let chunk = pb::EmbeddingChunk {
            model_version: "v1".to_owned(),
            ..Default::default()
        };
        let (tx, rx) = mpsc::channel(4);
        assert!(tx.send(Feed::Chunk(chunk.clone())).await.is_ok());
        drop(tx);
        let relayed: Vec<_> = relay(rx).collect().await;
        assert_eq!(relayed, vec![chunk.clone(), pb::EmbeddingChunk::default()]);

        let (tx, rx) = mpsc::channel(4);
        assert!(tx.send(Feed::Chunk(chunk.clone())).await.is_ok());
        assert!(tx.send(Feed::End).await.is_ok());
        drop(tx);
        let relayed: Vec<_> = relay(rx).collect().await;
        assert_eq!(relayed, vec![chunk]);
    }
}
