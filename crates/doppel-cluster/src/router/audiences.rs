//! `doppel.v1.Audiences` on a router: a lookalike over every shard node, in two rounds.
//!
//! 1. **Seeds** — every node returns the vectors of the seeds it holds (explicit ids routed
//!    to their owner, members of seed segments from everyone). The router orders them as a
//!    single node would (explicit ids in request order, then each segment in id order) and
//!    builds one scorer ([`plan_scorer`]), so every node scores with the same vectors.
//! 2. **Scores** — every node streams its eligible customers, best first (ties by id). The
//!    first pages give the global eligible population, hence the audience size; a k-way
//!    merge pulls pages only as far as the audience needs and streams it on.
//!
//! Both rounds run under the request's deadline. A node that fails or misses it is left
//! out: the answer is what the others have, and `shards_answered < shards_total` says so
//! (each batch carries the coverage at the time it was sent; the last batch's is final).
//! Every node answers with the version the router pinned at the start — never a mix; if the
//! pointer moved meanwhile, the router starts again once with the new version.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use doppel_engine::{
    AudienceSize, EXPLAIN_MAX_SEEDS, LookalikeQuery, Strategy, audience_target,
    check_audience_size, plan_scorer,
};
use doppel_grpc::audiences_service::strategy_to_pb;
use doppel_proto::internal::v1 as ipb;
use doppel_proto::internal::v1::shard_client::ShardClient;
use doppel_proto::v1 as pb;
use doppel_proto::v1::audiences_server::Audiences;
use doppel_types::limits::{LOOKALIKE_PAGE_SIZE, MAX_MESSAGE_BYTES};
use doppel_types::shard::shard_of;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::router::{DEFAULT_FAN_OUT_DEADLINE, Router, deadline_of};
use crate::topology::NodeHandle;

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

fn client(node: &NodeHandle) -> ShardClient<tonic::transport::Channel> {
    ShardClient::new(node.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A node's failure that leaves it out of the answer (rather than failing the request).
fn leaves_node_out(status: &Status) -> bool {
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted => false,
        tonic::Code::NotFound => status.message().starts_with("model_version"),
        _ => true,
    }
}

fn version_missing(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::NotFound | tonic::Code::FailedPrecondition
    ) && status.message().starts_with("model_version")
}

/// One node of the fan-out and the shards it answers for.
struct Part {
    node: Arc<NodeHandle>,
    shards: Vec<u32>,
}

/// What the seed round gathered.
struct Seeds {
    dim: usize,
    customers: usize,
    /// Usable seed ids and vectors, in single-node order.
    ids: Vec<String>,
    vectors: Vec<Vec<f32>>,
    negatives: Vec<Vec<f32>>,
    ignored: Vec<String>,
    /// Parts that answered.
    parts: Vec<Part>,
}

enum Round<T> {
    Done(T),
    /// Some node no longer has the pinned version: start again with the pointer's.
    VersionMoved,
}

async fn resolve_part(
    part: &Part,
    request: ipb::ResolveSeedsRequest,
    deadline: Instant,
) -> Result<Vec<ipb::SeedPage>, Status> {
    let work = async {
        let mut stream = client(&part.node)
            .resolve_seeds(request)
            .await?
            .into_inner();
        let mut pages = Vec::new();
        while let Some(page) = stream.message().await? {
            pages.push(page);
        }
        Ok(pages)
    };
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Err(Status::deadline_exceeded("seed round")))
}

async fn gather_seeds(
    parts: Vec<Part>,
    version: &str,
    query: &LookalikeQuery,
    shard_count: u32,
    deadline: Instant,
) -> Result<Round<Seeds>, Status> {
    let segments: Vec<pb::Segment> = query
        .seed_segments
        .iter()
        .map(|(kind, name)| pb::Segment {
            kind: kind.clone(),
            name: name.clone(),
        })
        .collect();
    let calls = parts.iter().map(|part| {
        let held: HashSet<u32> = part.shards.iter().copied().collect();
        let mine = |ids: &[String]| -> Vec<String> {
            ids.iter()
                .filter(|id| held.contains(&shard_of(id, shard_count)))
                .cloned()
                .collect()
        };
        let request = ipb::ResolveSeedsRequest {
            model_version: version.to_owned(),
            shards: part.shards.clone(),
            customer_ids: mine(&query.seed_customer_ids),
            negative_customer_ids: mine(&query.negative_customer_ids),
            seed_segments: segments.clone(),
        };
        resolve_part(part, request, deadline)
    });
    let results = futures::future::join_all(calls).await;
    let mut answered = Vec::new();
    let mut found: HashMap<String, ipb::SeedVector> = HashMap::new();
    let mut unknown: HashSet<String> = HashSet::new();
    let mut members: Vec<Vec<ipb::SeedVector>> = vec![Vec::new(); segments.len()];
    let (mut dim, mut customers) = (0usize, 0usize);
    let mut answered_shards: HashSet<u32> = HashSet::new();
    for (part, result) in parts.into_iter().zip(results) {
        let pages = match result {
            Ok(pages) => pages,
            Err(status) if version_missing(&status) => return Ok(Round::VersionMoved),
            Err(status) if leaves_node_out(&status) => {
                tracing::warn!(node.id = %part.node.node_id, error = %status.message(), "node left out of the seed round");
                continue;
            }
            Err(status) => return Err(status),
        };
        for page in pages {
            if page.dim > 0 {
                dim = page.dim as usize;
            }
            customers += page.customers as usize;
            answered_shards.extend(page.shards);
            unknown.extend(page.unknown_ids);
            for seed in page.seeds {
                match seed.segment {
                    0 => {
                        found.insert(seed.customer_id.clone(), seed);
                    }
                    n => {
                        if let Some(list) = members.get_mut(n as usize - 1) {
                            list.push(seed);
                        }
                    }
                }
            }
        }
        answered.push(part);
    }
    if answered.is_empty() {
        return Err(Status::unavailable(
            "no shard node answered the seed round; retry shortly",
        ));
    }
    check_audience_size(query.size, customers).map_err(doppel_grpc::status::engine_status)?;
    let reachable = |id: &str| answered_shards.contains(&shard_of(id, shard_count));

    let mut seeds = Seeds {
        dim,
        customers,
        ids: Vec::new(),
        vectors: Vec::new(),
        negatives: Vec::new(),
        ignored: Vec::new(),
        parts: answered,
    };
    let mut seen = HashSet::new();
    let mut take = |seeds: &mut Seeds, id: &str, seed: Option<&ipb::SeedVector>| {
        if !seen.insert(id.to_owned()) {
            return;
        }
        match seed {
            Some(s) if !s.vector.is_empty() => {
                seeds.ids.push(id.to_owned());
                seeds.vectors.push(s.vector.clone());
            }
            _ => seeds.ignored.push(id.to_owned()),
        }
    };
    for id in &query.seed_customer_ids {
        if reachable(id) && unknown.contains(id) {
            return Err(Status::not_found(format!(
                "seed_customer_ids: `{id}` not found"
            )));
        }
        take(&mut seeds, id, found.get(id).filter(|s| !s.negative));
    }
    for (i, mut list) in members.into_iter().enumerate() {
        if list.is_empty() {
            let (kind, name) = &query.seed_segments[i];
            let field = if i < 4 {
                format!("seed_segments[{i}]")
            } else {
                "seed_segments".to_owned()
            };
            return Err(Status::not_found(format!(
                "{field}: `{kind}/{name}` not found"
            )));
        }
        list.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        for seed in &list {
            take(&mut seeds, &seed.customer_id, Some(seed));
        }
    }
    let mut seen_negative = HashSet::new();
    for id in &query.negative_customer_ids {
        if reachable(id) && unknown.contains(id) {
            return Err(Status::not_found(format!(
                "negative_customer_ids: `{id}` not found"
            )));
        }
        if !seen_negative.insert(id.clone()) {
            continue;
        }
        match found.get(id).filter(|s| s.negative && !s.vector.is_empty()) {
            Some(s) => seeds.negatives.push(s.vector.clone()),
            None => seeds.ignored.push(id.clone()),
        }
    }
    if seeds.vectors.is_empty() {
        return Err(Status::invalid_argument(format!(
            "seed_customer_ids: none of the {} seeds can be used: each lacks ads consent or a vector in version `{version}`",
            seeds.ignored.len()
        )));
    }
    Ok(Round::Done(seeds))
}

/// A node's score stream and the page being merged.
struct Cursor {
    stream: Streaming<ipb::ScoredPage>,
    page: std::vec::IntoIter<pb::Prospect>,
    shards: u32,
}

/// A heap entry: best score first, then smallest id.
struct Head {
    prospect: pb::Prospect,
    cursor: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prospect
            .score
            .total_cmp(&other.prospect.score)
            .then_with(|| other.prospect.customer_id.cmp(&self.prospect.customer_id))
    }
}

fn size_to_pb(size: AudienceSize) -> ipb::score_audience_request::Size {
    use ipb::score_audience_request::Size;
    match size {
        AudienceSize::Count(n) => Size::Count(n),
        AudienceSize::TopPercent(p) => Size::TopPercent(p),
        AudienceSize::MinScore(s) => Size::MinScore(s),
    }
}

fn to_vectors(list: &[Vec<f32>]) -> Vec<ipb::Vector> {
    list.iter()
        .map(|v| ipb::Vector { values: v.clone() })
        .collect()
}

/// The audience-wide fields sent in the first batch.
struct Header {
    version: String,
    strategy: Strategy,
    ignored: Vec<String>,
    population: u64,
    shards_total: u32,
}

async fn open_scores(
    seeds: &Seeds,
    version: &str,
    query: &LookalikeQuery,
    shard_count: u32,
    deadline: Instant,
) -> Result<Round<(Vec<Cursor>, u64, Strategy)>, Status> {
    let (scorer, strategy_used) =
        plan_scorer(query.strategy, &seeds.vectors, &seeds.negatives, seeds.dim);
    let (explain_ids, explain_vectors) = if query.explain {
        let stride = seeds.ids.len().div_ceil(EXPLAIN_MAX_SEEDS).max(1);
        (
            seeds.ids.iter().step_by(stride).cloned().collect(),
            seeds.vectors.iter().step_by(stride).cloned().collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let explain_vectors = to_vectors(&explain_vectors);
    let segments = |list: &[(String, String)]| -> Vec<pb::Segment> {
        list.iter()
            .map(|(kind, name)| pb::Segment {
                kind: kind.clone(),
                name: name.clone(),
            })
            .collect()
    };
    let calls = seeds.parts.iter().map(|part| {
        let held: HashSet<u32> = part.shards.iter().copied().collect();
        let excluded_ids = query
            .seed_customer_ids
            .iter()
            .chain(&query.negative_customer_ids)
            .filter(|id| held.contains(&shard_of(id, shard_count)))
            .cloned()
            .collect();
        let request = ipb::ScoreAudienceRequest {
            model_version: version.to_owned(),
            shards: part.shards.clone(),
            positives: to_vectors(&scorer.positives),
            negatives: to_vectors(&scorer.negatives),
            excluded_ids,
            seed_segments: segments(&query.seed_segments),
            exclude_segments: segments(&query.exclude_segments),
            filter: query.filter.clone().into_iter().collect(),
            exclude_existing_customers: query.exclude_existing_customers,
            size: Some(size_to_pb(query.size)),
            explain_seed_ids: explain_ids.clone(),
            explain_seed_vectors: explain_vectors.clone(),
        };
        let node = Arc::clone(&part.node);
        async move {
            let work = async {
                let mut stream = client(&node).score_audience(request).await?.into_inner();
                let first = stream
                    .message()
                    .await?
                    .ok_or_else(|| Status::internal("a node sent no score page"))?;
                Ok::<_, Status>((stream, first))
            };
            let result = tokio::time::timeout_at(deadline, work)
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("score round")));
            (node, result)
        }
    });
    let mut cursors = Vec::new();
    let mut population = 0;
    for (node, result) in futures::future::join_all(calls).await {
        match result {
            Ok((_, first)) if first.model_version != version => return Ok(Round::VersionMoved),
            Ok((stream, first)) => {
                population += first.eligible_population;
                cursors.push(Cursor {
                    stream,
                    page: first.prospects.into_iter(),
                    // What the node answered for (it may have handed a shard off).
                    shards: first.shards.len() as u32,
                });
            }
            Err(status) if version_missing(&status) => return Ok(Round::VersionMoved),
            Err(status) if leaves_node_out(&status) => {
                tracing::warn!(node.id = %node.node_id, error = %status.message(), "node left out of the score round");
            }
            Err(status) => return Err(status),
        }
    }
    if cursors.is_empty() {
        return Err(Status::unavailable(
            "no shard node answered the score round; retry shortly",
        ));
    }
    Ok(Round::Done((cursors, population, strategy_used)))
}

/// The next prospect of cursor `i`, pulling its next page when the current one is spent.
/// A node that fails or misses the deadline is dropped (its shards no longer count).
async fn advance(
    cursors: &mut [Option<Cursor>],
    i: usize,
    deadline: Instant,
) -> Option<pb::Prospect> {
    let cursor = cursors[i].as_mut()?;
    loop {
        if let Some(p) = cursor.page.next() {
            return Some(p);
        }
        match tokio::time::timeout_at(deadline, cursor.stream.message()).await {
            Ok(Ok(Some(page))) => cursor.page = page.prospects.into_iter(),
            Ok(Ok(None)) => return None,
            Ok(Err(status)) => {
                tracing::warn!(error = %status.message(), "a node's score stream broke; its shards are left out");
                cursors[i] = None;
                return None;
            }
            Err(_) => {
                tracing::warn!(
                    "a node's score stream missed the deadline; its shards are left out"
                );
                cursors[i] = None;
                return None;
            }
        }
    }
}

fn answered(cursors: &[Option<Cursor>], finished: &[u32]) -> u32 {
    cursors.iter().flatten().map(|c| c.shards).sum::<u32>() + finished.iter().sum::<u32>()
}

/// Merges the nodes' sorted streams into the client's stream, `n` prospects at most.
/// Puts cursor `i`'s next prospect on the heap; a spent or failed cursor is retired, its
/// shards counted as answered only if it ended cleanly.
async fn refill(
    heap: &mut BinaryHeap<Head>,
    cursors: &mut [Option<Cursor>],
    finished: &mut Vec<u32>,
    i: usize,
    deadline: Instant,
) {
    match advance(cursors, i, deadline).await {
        Some(prospect) => heap.push(Head {
            prospect,
            cursor: i,
        }),
        None => finished.extend(cursors[i].take().map(|c| c.shards)),
    }
}

async fn merge(
    mut cursors: Vec<Option<Cursor>>,
    n: usize,
    header: Header,
    deadline: Instant,
    tx: mpsc::Sender<Result<pb::LookalikeBatch, Status>>,
) {
    let Header {
        version,
        strategy,
        ignored,
        population,
        shards_total,
    } = header;
    let mut first_page_fields = Some((ignored, population));
    let mut heap = BinaryHeap::new();
    let mut finished = Vec::new();
    for i in 0..cursors.len() {
        refill(&mut heap, &mut cursors, &mut finished, i, deadline).await;
    }
    let mut batch_index = 0u32;
    let mut sent = 0usize;
    let mut page = Vec::with_capacity(LOOKALIKE_PAGE_SIZE.min(n));
    loop {
        let next = if sent < n { heap.pop() } else { None };
        let done = next.is_none();
        if let Some(Head { prospect, cursor }) = next {
            page.push(prospect);
            sent += 1;
            refill(&mut heap, &mut cursors, &mut finished, cursor, deadline).await;
        }
        if page.len() == LOOKALIKE_PAGE_SIZE || (done && (!page.is_empty() || batch_index == 0)) {
            let mut batch = pb::LookalikeBatch {
                prospects: std::mem::take(&mut page),
                model_version: version.clone(),
                shards_answered: answered(&cursors, &finished),
                shards_total,
                strategy_used: strategy_to_pb(strategy) as i32,
                batch_index,
                ..Default::default()
            };
            if let Some((ignored, population)) = first_page_fields.take() {
                batch.ignored_seed_ids = ignored;
                batch.eligible_population = population;
            }
            batch_index += 1;
            if tx.send(Ok(batch)).await.is_err() {
                tracing::debug!("client went away; audience stream stopped");
                return;
            }
        }
        if done {
            return;
        }
    }
}

type BatchStream = doppel_grpc::audiences_service::PageStream<pb::LookalikeBatch>;

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
        let query = doppel_grpc::audiences_service::query_from_pb(request.into_inner())?;
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
