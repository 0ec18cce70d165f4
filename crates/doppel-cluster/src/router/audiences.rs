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

use doppel_engine::{AudienceSize, audience_target};
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_server::Audiences;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::audience_merge::{Header, merge};
use super::audience_round::{Part, Round};
use super::score_streams::open_scores;
use super::seed_gathering::gather_seeds;
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

#[tonic::async_trait]
impl Audiences for RouterAudiences {
    type FindLookalikesStream = BatchStream;

    #[tracing::instrument(skip_all, fields(seeds = request.get_ref().seed_customer_ids.len()))]
    async fn find_lookalikes(
        &self,
        request: tonic::Request<pb::LookalikeRequest>,
    ) -> Result<tonic::Response<Self::FindLookalikesStream>, Status> {
        let timeout: Duration = deadline_of(&request, DEFAULT_FAN_OUT_DEADLINE);
        let deadline = Instant::now() + timeout;
        let query = doppel_grpc::convert::query_from_pb(request.into_inner())?;
        let router = &self.router;
        let shard_count = router.shard_count;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let retry = attempts < 2;
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
            let seeds = match gather_seeds(parts, &version, &query, shard_count, deadline).await? {
                Round::Done(seeds) => seeds,
                Round::VersionMoved if retry => continue,
                Round::VersionMoved => {
                    return Err(Status::unavailable(format!(
                        "model_version: `{version}` is changing on the shard nodes; retry shortly"
                    )));
                }
            };
            let ignored = seeds.ignored.clone();
            let (cursors, population, strategy) = match open_scores(
                &seeds,
                &version,
                &query,
                shard_count,
                deadline,
            )
            .await?
            {
                Round::Done(opened) => opened,
                Round::VersionMoved if retry => continue,
                Round::VersionMoved => {
                    return Err(Status::unavailable(format!(
                        "model_version: `{version}` is changing on the shard nodes; retry shortly"
                    )));
                }
            };
            let n = match query.size {
                AudienceSize::MinScore(_) => usize::MAX,
                size => audience_target(size, population as usize),
            };
            tracing::info!(
                customers = seeds.customers,
                population,
                n,
                nodes = cursors.len(),
                "audience fan-out scored"
            );
            let header = Header {
                version,
                strategy,
                ignored,
                population,
                shards_total: shard_count,
            };
            let (tx, rx) = mpsc::channel(PAGES_IN_FLIGHT);
            tokio::spawn(merge(
                cursors.into_iter().map(Some).collect(),
                n,
                header,
                deadline,
                tx,
            ));
            return Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))));
        }
    }
}
