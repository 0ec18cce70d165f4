//! `doppel.v1.Recommendations` on the router: offers come from the node owning the
//! customer (it holds the customer's vector and history); similar items from any node
//! (each keeps the whole catalogue and every item vector).

use std::sync::Arc;

use doppel_grpc::status::FieldViolation;
use doppel_proto::v1 as pb;
use doppel_proto::v1::recommendations_client::RecommendationsClient;
use doppel_proto::v1::recommendations_server::Recommendations;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::{DEFAULT_FORWARD_DEADLINE, Router, deadline_of, forward};
use crate::topology::NodeHandle;

/// The router's Recommendations service.
pub struct RouterRecommendations {
    router: Arc<Router>,
}

impl RouterRecommendations {
    /// A service routing through `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

fn client(node: &NodeHandle) -> RecommendationsClient<Channel> {
    RecommendationsClient::new(node.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

#[tonic::async_trait]
impl Recommendations for RouterRecommendations {
    #[tracing::instrument(skip_all, fields(customer.id = %request.get_ref().customer_id, k = request.get_ref().k))]
    async fn recommend_offers(
        &self,
        request: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        let message = request.into_inner();
        if message.customer_id.is_empty() {
            return Err(FieldViolation::new("customer_id", "must not be empty").into());
        }
        let id = message.customer_id.clone();
        if message.record_impressions {
            // Not repeated on UNAVAILABLE: the first call may have recorded impressions.
            let node = self.router.owner(&id)?;
            return client(&node)
                .recommend_offers(forward(message, deadline))
                .await;
        }
        self.router
            .with_owner(&id, |node| {
                let message = message.clone();
                async move {
                    client(&node)
                        .recommend_offers(forward(message, deadline))
                        .await
                }
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(item.id = %request.get_ref().item_id))]
    async fn similar_items(
        &self,
        request: Request<pb::SimilarItemsRequest>,
    ) -> Result<Response<pb::SimilarItemsResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        let node = self.router.any_node()?;
        client(&node)
            .similar_items(forward(request.into_inner(), deadline))
            .await
    }
}
