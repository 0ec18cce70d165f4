//! `doppel.v1.Audiences` on a router: a lookalike over every shard node, in two rounds.
//!
//! 1. **Seeds** — every node returns the vectors of the seeds it holds (explicit ids routed
//!    to their owner, members of seed segments from everyone). The router orders them as a
//!    single node would (explicit ids in request order, then each segment in id order) and
//!    builds one scorer ([`plan_scorer`](doppel_engine::plan_scorer)), so every node
//!    scores with the same vectors.
//! 2. **Scores** — every node streams its eligible customers, best first (ties by id). The
//!    first pages give the global eligible population, hence the audience size; a k-way
//!    merge pulls pages only as far as the audience needs and streams it on.
//!
//! Both rounds run under the request's deadline. A node that fails or misses it is left
//! out: the answer is what the others have, and `shards_answered < shards_total` says so
//! (each batch carries the coverage at the time it was sent; the last batch's is final).
//! Every node answers with the version the router pinned at the start — never a mix; if the
//! pointer moved meanwhile, the router starts again once with the new version.
//!
//! This file is the handler. The rounds live beside it, one file each — `seed_gathering`,
//! `score_streams`, `audience_merge` — over `audience_round` (the parts, the shard client,
//! how a node's failure counts). Each imports only files after it in the order
//! `audiences`, `audience_merge`, `score_streams`, `seed_gathering`, `audience_round`.

use std::sync::Arc;
use std::time::Duration;

use doppel_engine::fairness;
use doppel_engine::reach::reach_points;
use doppel_engine::{
    AudienceSize, Groups, LookalikeQuery, ReachCurve, ReachCut, audience_target, mean_score,
};
use doppel_grpc::audiences_service::{check_reach_floor, size_field};
use doppel_grpc::convert::reach_to_pb;
use doppel_grpc::saved_audiences as saved;
use doppel_store::Store;
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_server::Audiences;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::audience_merge::{Header, Merger, send};
use super::audience_round::{Part, Round};
use super::score_streams::{Opened, Ranked, open_scores};
use super::seed_gathering::{Seeds, gather_seeds};
use super::{DEFAULT_FAN_OUT_DEADLINE, Router, deadline_of};

/// Pages buffered ahead of a slow client.
const PAGES_IN_FLIGHT: usize = 4;

/// The Audiences service of a router.
pub struct RouterAudiences {
    router: Arc<Router>,
}

impl RouterAudiences {
    /// The service over `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

type BatchStream = doppel_grpc::page_stream::PageStream<pb::LookalikeBatch>;

/// The version a fan-out pins, the parts it calls, and the seeds they gathered.
struct Gathered {
    version: String,
    seeds: Seeds,
}

/// What the score round gave: the merge and what the answer needs besides.
struct Scored {
    version: String,
    seeds: Seeds,
    opened: Opened,
}

impl RouterAudiences {
    /// The seed round on the active version's parts (`None`: the version moved and a retry
    /// is allowed).
    async fn gather(
        &self,
        query: &LookalikeQuery,
        deadline: Instant,
        retry: bool,
    ) -> Result<Option<Gathered>, Status> {
        let router = &self.router;
        let version = router.active_version().await?.ok_or_else(|| {
            Status::failed_precondition(
                "model_version: no version is active; activate one with ModelAdmin.ActivateVersion",
            )
        })?;
        let parts: Vec<Part> = router
            .topology()
            .shards_by_node()
            .into_iter()
            .map(|(node, shards)| Part { node, shards })
            .collect();
        if parts.is_empty() {
            return Err(Status::unavailable("no shard node is live; retry shortly"));
        }
        match gather_seeds(parts, &version, query, router.shard_count, deadline).await? {
            Round::Done(seeds) => Ok(Some(Gathered { version, seeds })),
            Round::VersionMoved if retry => Ok(None),
            Round::VersionMoved => Err(moving(&version)),
        }
    }

    /// Both rounds, retried once if the active version moved meanwhile. The privacy floor's
    /// seed count is checked between them.
    async fn score(
        &self,
        query: &LookalikeQuery,
        size: AudienceSize,
        group_attributes: &[String],
        deadline: Instant,
    ) -> Result<Scored, Status> {
        let floor = self.router.privacy_floor();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let retry = attempts < 2;
            let Some(Gathered { version, seeds }) = self.gather(query, deadline, retry).await?
            else {
                continue;
            };
            floor
                .check_seeds(seeds.ids.len() as u64)
                .map_err(Status::failed_precondition)?;
            let round = (size, group_attributes);
            match open_scores(
                &seeds,
                &version,
                query,
                round,
                self.router.shard_count,
                deadline,
            )
            .await?
            {
                Round::Done(opened) => {
                    return Ok(Scored {
                        version,
                        seeds,
                        opened,
                    });
                }
                Round::VersionMoved if retry => continue,
                Round::VersionMoved => return Err(moving(&version)),
            }
        }
    }
}

fn moving(version: &str) -> Status {
    Status::unavailable(format!(
        "model_version: `{version}` is changing on the shard nodes; retry shortly"
    ))
}

/// Pulls up to `n` prospects off the merge.
async fn pull(merger: &mut Merger, n: usize) -> Vec<Ranked> {
    let mut out = Vec::new();
    while out.len() < n {
        match merger.next().await {
            Some(r) => out.push(r),
            None => break,
        }
    }
    out
}

/// Group codes of pulled prospects (one per attribute of `groups`, prospect after prospect).
fn codes_of(groups: &mut Groups, ranked: &[Ranked]) -> Vec<u32> {
    let width = groups.attributes().len();
    let mut codes = Vec::with_capacity(ranked.len() * width);
    for r in ranked {
        for attr in 0..width {
            let value = r.groups.get(attr).map_or("", String::as_str);
            codes.push(groups.code(attr, value).unwrap_or(0));
        }
    }
    codes
}

#[tonic::async_trait]
impl Audiences for RouterAudiences {
    type FindLookalikesStream = BatchStream;
    type StreamAudienceMembersStream = BatchStream;

    #[tracing::instrument(skip_all)]
    async fn save_audience(
        &self,
        request: tonic::Request<pb::SaveAudienceRequest>,
    ) -> Result<tonic::Response<pb::AudienceInfo>, Status> {
        let store = &self.router.store as &dyn Store;
        let limits = self.router.saved_audience_limits();
        let save = saved::check_save(store, limits, request.into_inner()).await?;
        let computed = self
            .find_lookalikes(tonic::Request::new(save.query.clone()))
            .await?
            .into_inner();
        let batches = saved::drain(computed).await?;
        let info =
            saved::store_audience(store, limits, save.name, &save.query, batches, None).await?;
        Ok(tonic::Response::new(info))
    }

    async fn get_audience(
        &self,
        request: tonic::Request<pb::GetAudienceRequest>,
    ) -> Result<tonic::Response<pb::AudienceInfo>, Status> {
        let id = request.into_inner().audience_id;
        let info = saved::find(&self.router.store, &id).await?;
        Ok(tonic::Response::new(saved::info_to_pb(info)))
    }

    async fn list_audiences(
        &self,
        _request: tonic::Request<pb::ListAudiencesRequest>,
    ) -> Result<tonic::Response<pb::ListAudiencesResponse>, Status> {
        Ok(tonic::Response::new(saved::list(&self.router.store).await?))
    }

    async fn stream_audience_members(
        &self,
        request: tonic::Request<pb::StreamAudienceMembersRequest>,
    ) -> Result<tonic::Response<Self::StreamAudienceMembersStream>, Status> {
        let id = request.into_inner().audience_id;
        let store: Arc<dyn Store> = Arc::new(self.router.store.clone());
        let stream = saved::stream_members(store, &id, self.router.shard_count).await?;
        Ok(tonic::Response::new(stream))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_audience(
        &self,
        request: tonic::Request<pb::RefreshAudienceRequest>,
    ) -> Result<tonic::Response<pb::AudienceInfo>, Status> {
        let store = &self.router.store as &dyn Store;
        let limits = self.router.saved_audience_limits();
        let info = saved::find(store, &request.into_inner().audience_id).await?;
        let query = saved::saved_query(&info)?;
        let computed = self
            .find_lookalikes(tonic::Request::new(query.clone()))
            .await?
            .into_inner();
        let batches = saved::drain(computed).await?;
        let name = info.name.clone();
        let info = saved::store_audience(store, limits, name, &query, batches, Some(info)).await?;
        Ok(tonic::Response::new(info))
    }

    async fn delete_audience(
        &self,
        request: tonic::Request<pb::DeleteAudienceRequest>,
    ) -> Result<tonic::Response<pb::DeleteAudienceResponse>, Status> {
        let id = request.into_inner().audience_id;
        Ok(tonic::Response::new(
            saved::delete(&self.router.store, &id).await?,
        ))
    }

    #[tracing::instrument(skip_all, fields(seeds = request.get_ref().seed_customer_ids.len()))]
    async fn find_lookalikes(
        &self,
        request: tonic::Request<pb::LookalikeRequest>,
    ) -> Result<tonic::Response<Self::FindLookalikesStream>, Status> {
        let timeout: Duration = deadline_of(&request, DEFAULT_FAN_OUT_DEADLINE);
        let deadline = Instant::now() + timeout;
        let query = doppel_grpc::convert::query_from_pb(request.into_inner())?;
        let floor = self.router.privacy_floor();
        let size_field = size_field(query.size);
        if let AudienceSize::Count(n) = query.size {
            floor
                .check_audience(size_field, n)
                .map_err(Status::failed_precondition)?;
        }
        let group_attributes = query.group_attributes();
        // Balancing re-selects from every eligible customer, so nodes send them all.
        let round_size = match query.balance {
            Some(_) => AudienceSize::TopPercent(100.0),
            None => query.size,
        };
        let Scored {
            version,
            seeds,
            opened,
        } = self
            .score(&query, round_size, &group_attributes, deadline)
            .await?;
        let Opened {
            cursors,
            population,
            strategy,
            mut groups,
        } = opened;
        let mut merger = Merger::start(cursors, deadline).await;
        let (n, first, mean_score_unbalanced) = match &query.balance {
            Some(balance) => {
                let everyone = pull(&mut merger, usize::MAX).await;
                let n = match query.size {
                    AudienceSize::MinScore(s) => {
                        everyone.partition_point(|r| r.prospect.score >= s)
                    }
                    size => audience_target(size, everyone.len()),
                };
                let codes = codes_of(&mut groups, &everyone);
                let width = group_attributes.len();
                let at = group_attributes
                    .iter()
                    .position(|a| *a == balance.attribute)
                    .unwrap_or(0);
                let by_group: Vec<u32> = codes.chunks_exact(width).map(|c| c[at]).collect();
                let picked = fairness::balance(&by_group, n, balance.min_selection_ratio);
                let unbalanced = mean_score(everyone[..n].iter().map(|r| r.prospect.score));
                let mut everyone: Vec<Option<Ranked>> = everyone.into_iter().map(Some).collect();
                let chosen: Vec<Ranked> =
                    picked.iter().filter_map(|&i| everyone[i].take()).collect();
                (chosen.len(), chosen, Some(unbalanced))
            }
            None => {
                let n = match query.size {
                    AudienceSize::MinScore(_) => usize::MAX,
                    size => audience_target(size, population as usize),
                };
                // With a floor, what is sent first must reach it: pull that much now, so
                // a too-small audience is refused before the stream starts.
                let must = (floor.min_audience_size as usize).min(n);
                (n, pull(&mut merger, must).await, None)
            }
        };
        let known = if n == usize::MAX { first.len() } else { n };
        if n == usize::MAX && !merger.is_spent() {
            // A min_score audience at least as big as the floor: the rest streams on.
        } else {
            floor
                .check_audience(size_field, known as u64)
                .map_err(Status::failed_precondition)?;
        }
        tracing::info!(
            customers = seeds.customers,
            population,
            n,
            "audience fan-out scored"
        );
        let header = Header {
            version,
            strategy,
            ignored: seeds.ignored,
            population,
            shards_total: self.router.shard_count,
            groups,
            mean_score_unbalanced,
        };
        let (tx, rx) = mpsc::channel(PAGES_IN_FLIGHT);
        tokio::spawn(send(merger, first, n, header, tx));
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    #[tracing::instrument(skip_all)]
    async fn estimate_reach(
        &self,
        request: tonic::Request<pb::ReachRequest>,
    ) -> Result<tonic::Response<pb::ReachCurve>, Status> {
        let timeout: Duration = deadline_of(&request, DEFAULT_FAN_OUT_DEADLINE);
        let deadline = Instant::now() + timeout;
        let (query, cuts) = doppel_grpc::convert::reach_from_pb(request.into_inner())?;
        let Scored {
            version,
            seeds,
            opened,
        } = self
            .score(
                &query,
                AudienceSize::TopPercent(100.0),
                &query.audit_attributes,
                deadline,
            )
            .await?;
        let Opened {
            cursors,
            population,
            mut groups,
            ..
        } = opened;
        // Pull the ranking only as deep as the deepest cut: the largest share, and past the
        // lowest score cut-off.
        let deepest_share = cuts
            .iter()
            .filter_map(|c| match *c {
                ReachCut::TopPercent(p) => Some(audience_target(
                    AudienceSize::TopPercent(p),
                    population as usize,
                )),
                ReachCut::MinScore(_) => None,
            })
            .max()
            .unwrap_or(0);
        let lowest_score = cuts
            .iter()
            .filter_map(|c| match *c {
                ReachCut::MinScore(s) => Some(s),
                ReachCut::TopPercent(_) => None,
            })
            .reduce(f32::min);
        let mut merger = Merger::start(cursors, deadline).await;
        let mut ranked = pull(&mut merger, deepest_share).await;
        if let Some(lowest) = lowest_score {
            while ranked.last().is_none_or(|r| r.prospect.score >= lowest) {
                match merger.next().await {
                    Some(r) => ranked.push(r),
                    None => break,
                }
            }
        }
        let codes = codes_of(&mut groups, &ranked);
        let scores: Vec<f32> = ranked.iter().map(|r| r.prospect.score).collect();
        // The nodes' eligible counts are the population; a node lost mid-merge shrinks
        // what was pulled, and the answer says so through shards_answered.
        let curve = ReachCurve {
            points: reach_points(population as usize, &scores, &codes, &groups, &cuts),
            eligible_population: population,
            model_version: version,
            seeds_used: seeds.ids.len() as u64,
        };
        check_reach_floor(&self.router.privacy_floor(), &curve, &cuts)?;
        let mut answer = reach_to_pb(curve, self.router.shard_count);
        answer.shards_answered = merger.answered();
        Ok(tonic::Response::new(answer))
    }
}
