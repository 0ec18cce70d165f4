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

use doppel_engine::{AudienceSize, ReachCurve, ReachCut};
use doppel_types::PrivacyFloor;

use crate::convert::{cut_field, pages, query_from_pb, reach_from_pb, reach_to_pb};
use crate::page_stream::{PageStream, stream_pages};
use crate::saved_audiences as saved;
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
    type StreamAudienceMembersStream = PageStream<pb::LookalikeBatch>;

    #[tracing::instrument(skip_all)]
    async fn save_audience(
        &self,
        request: Request<pb::SaveAudienceRequest>,
    ) -> Result<Response<pb::AudienceInfo>, Status> {
        let store = self.node.store().as_ref();
        let limits = self.node.config().saved_audience_limits;
        let info = saved::save(store, limits, request, |r| self.find_lookalikes(r)).await?;
        Ok(Response::new(info))
    }

    async fn get_audience(
        &self,
        request: Request<pb::GetAudienceRequest>,
    ) -> Result<Response<pb::AudienceInfo>, Status> {
        let id = request.into_inner().audience_id;
        Ok(Response::new(
            saved::get(self.node.store().as_ref(), &id).await?,
        ))
    }

    async fn list_audiences(
        &self,
        _request: Request<pb::ListAudiencesRequest>,
    ) -> Result<Response<pb::ListAudiencesResponse>, Status> {
        Ok(Response::new(
            saved::list(self.node.store().as_ref()).await?,
        ))
    }

    async fn stream_audience_members(
        &self,
        request: Request<pb::StreamAudienceMembersRequest>,
    ) -> Result<Response<Self::StreamAudienceMembersStream>, Status> {
        let id = request.into_inner().audience_id;
        let store = std::sync::Arc::clone(self.node.store());
        let config = self.node.config();
        let stream =
            saved::stream_members(store, &id, config.privacy_floor, config.engine.shard_count)
                .await?;
        Ok(Response::new(stream))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_audience(
        &self,
        request: Request<pb::RefreshAudienceRequest>,
    ) -> Result<Response<pb::AudienceInfo>, Status> {
        let store = self.node.store().as_ref();
        let limits = self.node.config().saved_audience_limits;
        let info = saved::refresh(store, limits, request, |r| self.find_lookalikes(r)).await?;
        Ok(Response::new(info))
    }

    async fn delete_audience(
        &self,
        request: Request<pb::DeleteAudienceRequest>,
    ) -> Result<Response<pb::DeleteAudienceResponse>, Status> {
        let id = request.into_inner().audience_id;
        Ok(Response::new(
            saved::delete(self.node.store().as_ref(), &id).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(seeds = request.get_ref().seed_customer_ids.len()))]
    async fn find_lookalikes(
        &self,
        request: Request<pb::LookalikeRequest>,
    ) -> Result<Response<Self::FindLookalikesStream>, Status> {
        let query = query_from_pb(request.into_inner())?;
        let floor = self.node.config().privacy_floor;
        if let AudienceSize::Count(n) = query.size {
            floor
                .check_audience("count", n)
                .map_err(Status::failed_precondition)?;
        }
        // Dropped with this call when the client goes away: the scan then stops.
        let _stop_when_abandoned = query.cancel.guard();
        let size_field = size_field(query.size);
        let engine = Arc::clone(self.node.engine());
        let audience = tokio::task::spawn_blocking(move || engine.lookalike(&query))
            .await
            .map_err(|e| Status::internal(format!("lookalike task: {e}")))?
            .map_err(engine_status)?;
        floor
            .check_seeds(audience.seeds_used)
            .and_then(|()| floor.check_audience(size_field, audience.prospects.len() as u64))
            .map_err(Status::failed_precondition)?;
        tracing::info!(prospects = audience.prospects.len(), "audience computed");
        let batches = pages(audience, self.node.config().engine.shard_count);
        Ok(Response::new(stream_pages(batches)))
    }

    #[tracing::instrument(skip_all)]
    async fn estimate_reach(
        &self,
        request: Request<pb::ReachRequest>,
    ) -> Result<Response<pb::ReachCurve>, Status> {
        let (query, cuts, defaults) = reach_from_pb(request.into_inner())?;
        let _stop_when_abandoned = query.cancel.guard();
        let engine = Arc::clone(self.node.engine());
        let task_cuts = cuts.clone();
        let mut curve =
            tokio::task::spawn_blocking(move || engine.estimate_reach(&query, &task_cuts))
                .await
                .map_err(|e| Status::internal(format!("reach task: {e}")))?
                .map_err(engine_status)?;
        apply_reach_floor(
            &self.node.config().privacy_floor,
            &mut curve,
            &cuts,
            defaults,
        )?;
        tracing::info!(
            points = curve.points.len(),
            eligible = curve.eligible_population,
            "reach estimated"
        );
        Ok(Response::new(reach_to_pb(
            curve,
            self.node.config().engine.shard_count,
        )))
    }
}

/// The request field of an audience size, for errors.
pub fn size_field(size: AudienceSize) -> &'static str {
    match size {
        AudienceSize::Count(_) => "count",
        AudienceSize::TopPercent(_) => "top_percent",
        AudienceSize::MinScore(_) => "min_score",
    }
}

/// Applies the privacy floor to a curve: FAILED_PRECONDITION when its seeds are below it,
/// or a point the client asked for is (naming the point's field). Default points below the
/// floor are left out instead; FAILED_PRECONDITION naming `top_percents` when none is left.
pub fn apply_reach_floor(
    floor: &PrivacyFloor,
    curve: &mut ReachCurve,
    cuts: &[ReachCut],
    defaults: bool,
) -> Result<(), Status> {
    floor
        .check_seeds(curve.seeds_used)
        .map_err(Status::failed_precondition)?;
    if defaults {
        curve.points.retain(|p| p.size >= floor.min_audience_size);
        if curve.points.is_empty() {
            return Err(Status::failed_precondition(format!(
                "top_percents: even the largest default share (20 %) is below the privacy \
                 floor of {} prospects (min_audience_size)",
                floor.min_audience_size
            )));
        }
        return Ok(());
    }
    for (i, point) in curve.points.iter().enumerate() {
        floor
            .check_audience(&cut_field(cuts, i), point.size)
            .map_err(Status::failed_precondition)?;
    }
    Ok(())
}
