//! `doppel.v1.Recommendations`: next-best offers and similar items.

use std::sync::Arc;

use doppel_engine::{Offer, RecommendQuery};
use doppel_proto::v1 as pb;
use doppel_proto::v1::recommendations_server::Recommendations;
use doppel_types::limits::MAX_K;
use tonic::{Request, Response, Status};

use crate::convert::{check_event_time, context_from_pb, validate_id};
use crate::status::{FieldViolation, engine_status, node_status};
use doppel_node::Node;

/// The Recommendations service.
pub struct RecommendationsService {
    node: Arc<Node>,
}

impl RecommendationsService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

fn k_from_pb(k: u32) -> Result<usize, FieldViolation> {
    let k = k as usize;
    if k == 0 || k > MAX_K {
        return Err(FieldViolation::new("k", format!("must be 1..={MAX_K}")));
    }
    Ok(k)
}

fn offers_to_pb(offers: Vec<Offer>) -> Vec<pb::Offer> {
    offers
        .into_iter()
        .map(
            |Offer {
                 item_id,
                 score,
                 reason,
             }| pb::Offer {
                item_id,
                score,
                reason,
            },
        )
        .collect()
}

/// Converts and validates a recommendation request.
pub fn query_from_pb(request: pb::RecommendRequest) -> Result<RecommendQuery, FieldViolation> {
    let pb::RecommendRequest {
        customer_id,
        k,
        context,
        filter,
        include_purchased,
        explain,
        record_impressions,
        timestamp_ms,
    } = request;
    validate_id("customer_id", &customer_id)?;
    let timestamp_ms = match timestamp_ms {
        0 => None,
        t => {
            check_event_time(t, doppel_types::clock::now_ms())?;
            Some(t)
        }
    };
    let pb::OfferFilter {
        categories,
        max_price,
    } = filter.unwrap_or_default();
    if let Some(p) = max_price
        && (!p.is_finite() || p < 0.0)
    {
        return Err(FieldViolation::new(
            "filter.max_price",
            "must be a finite number ≥ 0",
        ));
    }
    if categories.len() > 1_000 {
        return Err(FieldViolation::new(
            "filter.categories",
            "at most 1000 categories",
        ));
    }
    Ok(RecommendQuery {
        customer_id,
        k: k_from_pb(k)?,
        context: context_from_pb(context)?,
        categories,
        max_price,
        include_purchased,
        explain,
        record_impressions,
        timestamp_ms,
    })
}

#[tonic::async_trait]
impl Recommendations for RecommendationsService {
    #[tracing::instrument(skip_all, fields(customer.id = %request.get_ref().customer_id, k = request.get_ref().k))]
    async fn recommend_offers(
        &self,
        request: Request<pb::RecommendRequest>,
    ) -> Result<Response<pb::RecommendResponse>, Status> {
        let query = query_from_pb(request.into_inner())?;
        // A few hundred microseconds of CPU: cheaper inline than a hop to the blocking pool.
        let doppel_node::Offers {
            recommendation,
            route,
        } = self.node.recommend(&query).await.map_err(node_status)?;
        let (experiment, arm) = route.map(|r| (r.experiment, r.arm)).unwrap_or_default();
        Ok(Response::new(pb::RecommendResponse {
            experiment,
            arm,
            offers: offers_to_pb(recommendation.offers),
            model_version: recommendation.model_version,
            personalized: recommendation.personalized,
            capped: if query.explain {
                recommendation.capped
            } else {
                0
            },
        }))
    }

    #[tracing::instrument(skip_all, fields(item.id = %request.get_ref().item_id))]
    async fn similar_items(
        &self,
        request: Request<pb::SimilarItemsRequest>,
    ) -> Result<Response<pb::SimilarItemsResponse>, Status> {
        let pb::SimilarItemsRequest { item_id, k } = request.into_inner();
        validate_id("item_id", &item_id)?;
        let k = k_from_pb(k)?;
        let result = self
            .node
            .engine()
            .similar_items(&item_id, k)
            .map_err(engine_status)?;
        Ok(Response::new(pb::SimilarItemsResponse {
            items: offers_to_pb(result.items),
            model_version: result.model_version,
        }))
    }
}
