//! The score round of an audience fan-out: one scorer built from the gathered seeds goes
//! to every node, and each node streams its eligible customers back, best first (ties by
//! id). The first pages give the global eligible population, hence the audience size.

use std::collections::HashSet;
use std::sync::Arc;

use doppel_engine::{
    AudienceSize, CLASSIFIER_RIDGE, ClassifierInputs, EXPLAIN_MAX_SEEDS, Groups, LookalikeQuery,
    Strategy, plan_scorer, wants_classifier,
};
use doppel_proto::internal::v1 as ipb;
use doppel_proto::v1 as pb;
use doppel_types::shard::shard_of;
use tokio::time::Instant;
use tonic::{Status, Streaming};

use super::audience_round::{Round, client, leaves_node_out, version_missing};
use super::seed_gathering::Seeds;

/// A node's score stream and the page being merged.
pub(super) struct Cursor {
    pub(super) stream: Streaming<ipb::ScoredPage>,
    pub(super) page: std::vec::IntoIter<Ranked>,
    pub(super) shards: u32,
    /// The node's value codes → the router's, per group attribute.
    pub(super) translate: Vec<Vec<u32>>,
}

/// A prospect and its group codes (the router's), one per group attribute.
pub(super) struct Ranked {
    pub(super) prospect: pb::Prospect,
    pub(super) groups: Vec<u32>,
}

/// A page's prospects with their group codes translated to the router's. A page whose
/// codes do not fit the round (one list per prospect, one code per attribute, each known)
/// is an error: the node is left out rather than audited wrong.
pub(super) fn ranked(
    page: ipb::ScoredPage,
    translate: &[Vec<u32>],
) -> Result<std::vec::IntoIter<Ranked>, Status> {
    let width = translate.len();
    if width > 0 && page.prospect_groups.len() != page.prospects.len() {
        return Err(Status::internal(
            "a node sent a page without its group codes",
        ));
    }
    let mut groups = page.prospect_groups.into_iter();
    let mut out = Vec::with_capacity(page.prospects.len());
    for prospect in page.prospects {
        let codes = match groups.next() {
            Some(g) if g.codes.len() == width => g
                .codes
                .iter()
                .enumerate()
                .map(|(a, &c)| translate[a].get(c as usize).copied())
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| Status::internal("a node sent an unknown group code"))?,
            None if width == 0 => Vec::new(),
            _ => {
                return Err(Status::internal(
                    "a node sent group codes of the wrong width",
                ));
            }
        };
        out.push(Ranked {
            prospect,
            groups: codes,
        });
    }
    Ok(out.into_iter())
}

/// What the score round opened.
pub(super) struct Opened {
    /// One per node that answered, each holding its first page.
    pub(super) cursors: Vec<Cursor>,
    /// The eligible population they add up to.
    pub(super) population: u64,
    /// The strategy the scorer used.
    pub(super) strategy: Strategy,
    /// With group attributes: the eligible per value, summed over the nodes.
    pub(super) groups: Groups,
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

/// The score round: sends every part that answered the seed round the one scorer and
/// opens its score stream, asking for `size` (the query's, or everyone for reach curves
/// and balancing) and the prospects' group codes of the query's audited and balanced
/// attributes.
pub(super) async fn open_scores(
    seeds: &Seeds,
    version: &str,
    query: &LookalikeQuery,
    size: AudienceSize,
    shard_count: u32,
    deadline: Instant,
) -> Result<Round<Opened>, Status> {
    let group_attributes = query.group_attributes();
    let last_group_is_balance = group_attributes.len() > query.audit_attributes.len();
    wants_classifier(query.strategy, seeds.vectors.len(), seeds.dim)
        .map_err(doppel_grpc::status::engine_status)?;
    let (scorer, strategy_used) = plan_scorer(
        query.strategy,
        &seeds.vectors,
        &seeds.negatives,
        seeds.dim,
        seeds.moments.as_ref().map(|population| ClassifierInputs {
            seed_lengths: &seeds.lengths,
            population,
            ridge: CLASSIFIER_RIDGE,
        }),
    );
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
            linear: scorer.linear.as_ref().map(|l| ipb::LinearScorer {
                weights: l.weights.clone(),
                offset: l.offset,
                scale: l.scale,
            }),
            excluded_ids,
            seed_segments: segments(&query.seed_segments),
            exclude_segments: segments(&query.exclude_segments),
            filter: query.filter.clone().into_iter().collect(),
            exclude_existing_customers: query.exclude_existing_customers,
            size: Some(size_to_pb(size)),
            explain_seed_ids: explain_ids.clone(),
            explain_seed_vectors: explain_vectors.clone(),
            group_attributes: group_attributes.clone(),
            last_group_is_balance,
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
    let mut groups = query.groups();
    for (node, result) in futures::future::join_all(calls).await {
        match result {
            Ok((_, first)) if first.model_version != version => return Ok(Round::VersionMoved),
            Ok((stream, mut first)) => {
                // Node codes are the order of its counts per attribute; the counts are
                // added to the round's only once the node's first page is sound.
                let mut translate = vec![Vec::new(); group_attributes.len()];
                let mut staged = groups.clone();
                let mut bad = None;
                for count in std::mem::take(&mut first.group_counts) {
                    let Some(attr) = group_attributes.iter().position(|a| *a == count.attribute)
                    else {
                        continue;
                    };
                    match staged.add_eligible(attr, &count.value, count.eligible_count) {
                        Ok(code) => translate[attr].push(code),
                        Err(e) => {
                            bad = Some(doppel_grpc::status::engine_status(e));
                            break;
                        }
                    }
                }
                if let Some(status) = bad {
                    return Err(status);
                }
                let shards = first.shards.len() as u32;
                let eligible = first.eligible_population;
                let page = match ranked(first, &translate) {
                    Ok(page) => page,
                    Err(status) => {
                        tracing::warn!(node.id = %node.node_id, error = %status.message(), "node left out of the score round");
                        continue;
                    }
                };
                groups = staged;
                population += eligible;
                cursors.push(Cursor {
                    stream,
                    // What the node answered for (it may have handed a shard off).
                    shards,
                    page,
                    translate,
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
    Ok(Round::Done(Opened {
        cursors,
        population,
        strategy: strategy_used,
        groups,
    }))
}
