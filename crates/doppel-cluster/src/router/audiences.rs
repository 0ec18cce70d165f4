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
    AudienceSize, LookalikeQuery, ReachCurve, ReachCut, audience_target, mean_score,
};
use doppel_grpc::audiences_service::{apply_reach_floor, size_field};
use doppel_grpc::convert::reach_to_pb;
use doppel_grpc::saved_audiences as saved;
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_server::Audiences;
use doppel_store::Store;
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
            match open_scores(
                &seeds,
                &version,
                query,
                size,
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

/// Pulls the whole ranking but keeps at most `n` members of each group of attribute `at`
/// (balancing never takes more from one group), so memory is bounded by `n` × groups.
async fn pull_per_group(merger: &mut Merger, n: usize, at: usize) -> Vec<Ranked> {
    let mut kept: Vec<usize> = Vec::new();
    let mut out = Vec::new();
    while let Some(r) = merger.next().await {
        let g = r.groups.get(at).copied().unwrap_or(0) as usize;
        if kept.len() <= g {
            kept.resize(g + 1, 0);
        }
        if kept[g] < n {
            kept[g] += 1;
            out.push(r);
        }
    }
    out
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
        let info = saved::save(store, limits, request, |r| self.find_lookalikes(r)).await?;
        Ok(tonic::Response::new(info))
    }

    async fn get_audience(
        &self,
        request: tonic::Request<pb::GetAudienceRequest>,
    ) -> Result<tonic::Response<pb::AudienceInfo>, Status> {
        let id = request.into_inner().audience_id;
        Ok(tonic::Response::new(
            saved::get(&self.router.store, &id).await?,
        ))
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
        let floor = self.router.privacy_floor();
        let stream = saved::stream_members(store, &id, floor, self.router.shard_count).await?;
        Ok(tonic::Response::new(stream))
    }

    #[tracing::instrument(skip_all)]
    async fn refresh_audience(
        &self,
        request: tonic::Request<pb::RefreshAudienceRequest>,
    ) -> Result<tonic::Response<pb::AudienceInfo>, Status> {
        let store = &self.router.store as &dyn Store;
        let limits = self.router.saved_audience_limits();
        let info = saved::refresh(store, limits, request, |r| self.find_lookalikes(r)).await?;
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
        // Balancing re-selects from every eligible customer, so nodes send them all.
        let round_size = match query.balance {
            Some(_) => AudienceSize::TopPercent(100.0),
            None => query.size,
        };
        let Scored {
            version,
            seeds,
            opened,
        } = self.score(&query, round_size, deadline).await?;
        let Opened {
            cursors,
            population,
            strategy,
            groups,
        } = opened;
        let mut merger = Merger::start(cursors, deadline).await;
        let (n, first, mean_score_unbalanced) = match &query.balance {
            Some(balance) => {
                // Balanced sizes are counts or shares (min_score is refused at the edge).
                let n = audience_target(query.size, population as usize);
                let at = query
                    .group_attributes()
                    .iter()
                    .position(|a| *a == balance.attribute)
                    .unwrap_or(0);
                let kept = pull_per_group(&mut merger, n, at).await;
                let scores: Vec<f32> = kept.iter().map(|r| r.prospect.score).collect();
                let by_group: Vec<u32> = kept
                    .iter()
                    .map(|r| r.groups.get(at).copied().unwrap_or(0))
                    .collect();
                let picked = fairness::balance(
                    &scores,
                    &by_group,
                    groups.eligible(at),
                    n,
                    balance.min_selection_ratio,
                );
                // The best n overall are among the kept (no group gives more than n).
                let unbalanced = mean_score(scores.iter().take(n).copied());
                let mut kept: Vec<Option<Ranked>> = kept.into_iter().map(Some).collect();
                let chosen: Vec<Ranked> = picked.iter().filter_map(|&i| kept[i].take()).collect();
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
        // What goes out first was pulled already: below the floor only if fewer were
        // pulled than it needs (a min_score audience, or a node lost meanwhile), or the
        // planned size is below it.
        let must = (floor.min_audience_size as usize).min(n);
        let planned = if n == usize::MAX { first.len() } else { n };
        if first.len() < must || (planned as u64) < floor.min_audience_size {
            floor
                .check_audience(size_field, first.len().min(planned) as u64)
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
        let (query, cuts, defaults) = doppel_grpc::convert::reach_from_pb(request.into_inner())?;
        let Scored {
            version,
            seeds,
            opened,
        } = self
            .score(&query, AudienceSize::TopPercent(100.0), deadline)
            .await?;
        let Opened {
            cursors,
            population,
            groups,
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
        let codes: Vec<u32> = ranked
            .iter()
            .flat_map(|r| r.groups.iter().copied())
            .collect();
        let scores: Vec<f32> = ranked.iter().map(|r| r.prospect.score).collect();
        let points = reach_points(population as usize, &scores, &codes, &groups, &cuts)
            .map_err(doppel_grpc::status::engine_status)?;
        let mut curve = ReachCurve {
            points,
            eligible_population: population,
            model_version: version.clone(),
            seeds_used: seeds.ids.len() as u64,
        };
        apply_reach_floor(&self.router.privacy_floor(), &mut curve, &cuts, defaults)?;
        let answered = merger.answered();
        // A node left out: its customers could be in any point, so the upper bounds grow
        // by the version's customers (loose, but a bound; the lower bounds stay what was
        // counted).
        let missing = if answered < self.router.shard_count {
            self.router
                .store
                .get_version(&version)
                .await
                .map_err(doppel_grpc::status::store_status)?
                .map_or(u64::MAX, |v| v.customer_count)
        } else {
            0
        };
        let mut answer = reach_to_pb(curve, self.router.shard_count);
        answer.shards_answered = answered;
        for point in &mut answer.points {
            point.size_upper = point.size.saturating_add(missing);
        }
        Ok(tonic::Response::new(answer))
    }
}
