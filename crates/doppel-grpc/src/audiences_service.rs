//! `doppel.v1.Audiences`: lookalike audiences, streamed in pages.
//!
//! The audience is computed on the blocking pool (it can scan every customer), then sent
//! by a spawned task through a bounded channel, page by page, so 100k+ prospects never
//! build one giant message and a client that goes away stops the sending.

use std::sync::Arc;

use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_server::Audiences;
use tonic::{Request, Response, Status};

use doppel_node::Node;

use crate::convert::{pages, query_from_pb};
use crate::page_stream::{PageStream, stream_pages};
use crate::status::engine_status;

/// The Audiences service.
pub struct AudiencesService {
    node: Arc<Node>,
}

impl AudiencesService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

#[tonic::async_trait]
impl Audiences for AudiencesService {
    type FindLookalikesStream = PageStream<pb::LookalikeBatch>;

    #[tracing::instrument(skip_all, fields(seeds = request.get_ref().seed_customer_ids.len()))]
    async fn find_lookalikes(
        &self,
        request: Request<pb::LookalikeRequest>,
    ) -> Result<Response<Self::FindLookalikesStream>, Status> {
        let query = query_from_pb(request.into_inner())?;
        // Dropped with this call when the client goes away: the scan then stops.
        let _stop_when_abandoned = query.cancel.guard();
        let engine = Arc::clone(self.node.engine());
        let audience = tokio::task::spawn_blocking(move || engine.lookalike(&query))
            .await
            .map_err(|e| Status::internal(format!("lookalike task: {e}")))?
            .map_err(engine_status)?;
        tracing::info!(prospects = audience.prospects.len(), "audience computed");
        let batches = pages(audience, self.node.config().engine.shard_count);
        Ok(Response::new(stream_pages(batches)))
    }
}
