//! The seed round of an audience fan-out: every node returns the vectors of the seeds it
//! holds (explicit ids routed to their owner, members of seed segments from everyone), and
//! the router orders them as a single node would, so every node later scores with the
//! same vectors.

use std::collections::{HashMap, HashSet};

use doppel_engine::{
    AUTO_CLASSIFIER_MIN_SEEDS, LookalikeQuery, Moments, Strategy, check_audience_size,
};
use doppel_proto::internal::v1 as ipb;
use doppel_proto::v1 as pb;
use doppel_types::shard::shard_of;
use tokio::time::Instant;
use tonic::Status;

use super::audience_round::{Part, Round, client, leaves_node_out, version_missing};

/// What the seed round gathered.
pub(super) struct Seeds {
    /// Vector dimension of the pinned version.
    pub(super) dim: usize,
    /// Customers on the shards that answered.
    pub(super) customers: usize,
    /// Usable seed ids, vectors and vector lengths, in single-node order.
    pub(super) ids: Vec<String>,
    pub(super) vectors: Vec<Vec<f32>>,
    pub(super) lengths: Vec<f32>,
    /// With a classifier possible: the moments of every customer on the answered shards,
    /// added in shard order (as a single node adds them).
    pub(super) moments: Option<Moments>,
    /// Vectors of the usable negative seeds.
    pub(super) negatives: Vec<Vec<f32>>,
    /// Seed ids left out (no consent, no vector, or on no answering node).
    pub(super) ignored: Vec<String>,
    /// Parts that answered.
    pub(super) parts: Vec<Part>,
}

/// One part's seed pages, under the round's deadline.
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

/// The seed round: asks every part for the seeds it holds and orders them as a single
/// node would (explicit ids in request order, then each seed segment in id order).
pub(super) async fn gather_seeds(
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
    // Moments are asked for whenever the classifier may be fitted: the seed count is
    // known only once segments are resolved.
    let moments = match query.strategy {
        Strategy::Classifier => true,
        Strategy::Auto => {
            !query.seed_segments.is_empty()
                || query.seed_customer_ids.len() >= AUTO_CLASSIFIER_MIN_SEEDS
        }
        Strategy::Centroid | Strategy::MaxSimilarity => false,
    };
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
            moments,
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
    let mut shard_moments: Vec<ipb::ShardMoments> = Vec::new();
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
            shard_moments.extend(page.moments);
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

    let moments = if moments {
        add_in_shard_order(shard_moments, &answered_shards, dim)
    } else {
        None
    };
    let mut seeds = Seeds {
        dim,
        customers,
        ids: Vec::new(),
        vectors: Vec::new(),
        lengths: Vec::new(),
        moments,
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
                seeds.lengths.push(s.length);
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

/// The shards' moments added up in shard order (each shard once), or none unless every
/// answered shard sent moments of the version's shape (a node over the classifier's
/// dimension limit sends none): the fit then falls back to the cosine strategies rather
/// than fitting against part of the population.
fn add_in_shard_order(
    mut list: Vec<ipb::ShardMoments>,
    answered: &HashSet<u32>,
    dim: usize,
) -> Option<Moments> {
    list.sort_by_key(|m| m.shard);
    list.dedup_by_key(|m| m.shard);
    let covered: HashSet<u32> = list.iter().map(|m| m.shard).collect();
    if !answered.iter().all(|s| covered.contains(s)) {
        return None;
    }
    let mut total = Moments::new(dim);
    for m in list {
        let m = Moments {
            n: m.n,
            sum: m.sum,
            gram: m.gram,
        };
        if !m.fits(dim) {
            return None;
        }
        total.merge(&m);
    }
    Some(total)
}
