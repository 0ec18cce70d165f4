//! Customer segments at the edge: `doppel.v1.Segments` (sizes and member pages with opaque
//! page tokens), segment references in requests, and segments shown on a profile. (They
//! are written onto profiles by the node, at training time.)

use std::sync::Arc;

use doppel_proto::v1 as pb;
use doppel_proto::v1::segments_server::Segments;
use tonic::{Request, Response, Status};

use doppel_node::Node;

use crate::convert::{
    next_page_token, page_size_from_pb, page_token_from_pb, segment_from_pb, unknown_segment,
};
use crate::status::engine_status;

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
            .engine()
            .segment_sizes(kind.as_deref())
            .map_err(engine_status)?;
        let shards = self.node.config().engine.shard_count;
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
            .engine()
            .segment_members(&kind, &name, after.as_deref(), size as usize)
            .map_err(engine_status)?;
        // As FindLookalikes does for a seed segment. A shard node answers for its shards
        // only, so it says "none here" and the router decides.
        if page.total == 0 && self.node.placement().serves_everyone() {
            return Err(unknown_segment(&kind, &name));
        }
        let next_page_token = next_page_token(&kind, &name, page.more, page.customer_ids.last());
        let shards = self.node.config().engine.shard_count;
        Ok(Response::new(pb::ListSegmentMembersResponse {
            customer_ids: page.customer_ids,
            next_page_token,
            total: page.total,
            shards_answered: shards,
            shards_total: shards,
        }))
    }
}
