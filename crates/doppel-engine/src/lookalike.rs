//! Lookalike audiences: customers closest to a seed set, within consent and filters.
//!
//! Two ways to score, picked per request:
//! * **exact** — every eligible customer of every shard is scored (shards in parallel).
//!   Used for percentage and threshold audiences (they need the whole score distribution)
//!   and whenever the audience is a sizeable part of the population; at 32–128 dims this
//!   is a few milliseconds per 100k customers for the centroid.
//! * **graph** — for a small `count` out of a large population: each probe (the centroid,
//!   or each seed prototype) searches every shard's HNSW graph with the eligibility bitset,
//!   and the union of candidates is re-scored exactly.

use std::collections::HashSet;

use doppel_index::{Bitset, PointId, SearchRequest, dot};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::loaded_version::LoadedVersion;
use crate::lookalike_query::{Audience, AudienceSize, LookalikeQuery, Prospect, Strategy};
use crate::profiles::Profiles;
use crate::seed_prototypes::{best, centroid, coherence, prototypes, two_mode_ratio};
use crate::segment_view::check_kind;

/// How much similarity to the negative seeds is subtracted from a prospect's score.
pub const NEGATIVE_WEIGHT: f32 = 0.5;
/// `Auto` uses max-similarity when the seeds' mean vector is shorter than this (no
/// direction worth a centroid) ...
pub const CENTROID_MIN_COHERENCE: f32 = 0.2;
/// ... or when two clusters describe the seeds clearly better than one (see
/// `two_mode_ratio`: the whole set's coherence over its two halves').
pub const CENTROID_MIN_TWO_MODE_RATIO: f32 = 0.85;
/// Explanations name seeds from at most this many (an even sample of bigger seed sets).
pub const EXPLAIN_MAX_SEEDS: usize = 1_000;
/// Seeds named per prospect.
const EXPLAIN_TOP: usize = 3;
/// Graph search is used only for `count` audiences up to this size ...
const GRAPH_MAX_COUNT: usize = 1_000;
/// ... that are at most this fraction of the eligible population ...
const GRAPH_MAX_FRACTION: usize = 50;
/// ... when at least half of the customers are eligible (filtered graph walks degrade) ...
const GRAPH_MIN_ELIGIBLE_SHARE: usize = 2;
/// ... and probes × count stays below this.
const GRAPH_MAX_WORK: usize = 50_000;

/// Field names of the first seed segments, for errors (`&'static str` fields).
const SEED_SEGMENT_FIELDS: [&str; 4] = [
    "seed_segments[0]",
    "seed_segments[1]",
    "seed_segments[2]",
    "seed_segments[3]",
];

/// Resolved seeds: ids and unit vectors (parallel), their slots, and the ignored ones.
struct Seeds {
    ids: Vec<String>,
    vectors: Vec<Vec<f32>>,
    slots: HashSet<PointId>,
    ignored: Vec<String>,
}

fn resolve(
    field: &'static str,
    ids: &[String],
    version: &LoadedVersion,
    profiles: &Profiles,
) -> Result<Seeds> {
    let mut seeds = Seeds {
        ids: Vec::new(),
        vectors: Vec::new(),
        slots: HashSet::new(),
        ignored: Vec::new(),
    };
    for id in ids {
        let slot = profiles
            .customer_slots
            .get(id)
            .ok_or_else(|| Error::not_found(field, id.clone()))?;
        if !seeds.slots.insert(slot) {
            continue;
        }
        let consent = profiles.customer(slot).is_some_and(|c| c.ads_consent);
        match version.customer_vector(id, slot) {
            Some(v) if consent => {
                seeds.ids.push(id.clone());
                seeds.vectors.push(v);
            }
            _ => seeds.ignored.push(id.clone()),
        }
    }
    Ok(seeds)
}

/// What a prospect is scored against.
enum Positive {
    Centroid(Vec<f32>),
    Prototypes(Vec<Vec<f32>>),
}

struct Scorer {
    positive: Positive,
    negatives: Vec<Vec<f32>>,
}

impl Scorer {
    fn score(&self, v: &[f32]) -> f32 {
        let pos = match &self.positive {
            Positive::Centroid(c) => dot(c, v),
            Positive::Prototypes(p) => best(p, v).1,
        };
        if self.negatives.is_empty() {
            return pos.clamp(-1.0, 1.0);
        }
        let neg = best(&self.negatives, v).1.max(0.0);
        (pos - NEGATIVE_WEIGHT * neg).clamp(-1.0, 1.0)
    }

    fn probes(&self) -> Vec<&[f32]> {
        match &self.positive {
            Positive::Centroid(c) => vec![c.as_slice()],
            Positive::Prototypes(p) => p.iter().map(Vec::as_slice).collect(),
        }
    }
}

fn scorer(strategy: Strategy, seeds: &Seeds, negatives: &Seeds, dim: usize) -> (Scorer, Strategy) {
    let wanted = match strategy {
        Strategy::Auto if seeds.vectors.len() == 1 => Strategy::Centroid,
        Strategy::Auto
            if coherence(&seeds.vectors, dim) >= CENTROID_MIN_COHERENCE
                && two_mode_ratio(&seeds.vectors, dim) >= CENTROID_MIN_TWO_MODE_RATIO =>
        {
            Strategy::Centroid
        }
        Strategy::Auto => Strategy::MaxSimilarity,
        s => s,
    };
    let negatives = prototypes(&negatives.vectors, dim);
    // Seeds that cancel out have no centroid: fall back to max-similarity.
    match (wanted, centroid(&seeds.vectors, dim)) {
        (Strategy::Centroid, Some(c)) => (
            Scorer {
                positive: Positive::Centroid(c),
                negatives,
            },
            Strategy::Centroid,
        ),
        _ => (
            Scorer {
                positive: Positive::Prototypes(prototypes(&seeds.vectors, dim)),
                negatives,
            },
            Strategy::MaxSimilarity,
        ),
    }
}

fn check_size(size: AudienceSize, customers: usize) -> Result<()> {
    match size {
        AudienceSize::Count(0) => Err(Error::invalid("count", "must be at least 1")),
        AudienceSize::Count(n) if n > customers as u64 => Err(Error::invalid(
            "count",
            format!("asks for {n} prospects but the version has {customers} customers"),
        )),
        AudienceSize::TopPercent(p) if !(p > 0.0 && p <= 100.0) => {
            Err(Error::invalid("top_percent", "must be in (0, 100]"))
        }
        AudienceSize::MinScore(s) if !(-1.0..=1.0).contains(&s) => {
            Err(Error::invalid("min_score", "must be in [-1, 1]"))
        }
        _ => Ok(()),
    }
}

/// Number of prospects for a size over `population` eligible customers.
fn target(size: AudienceSize, population: usize) -> usize {
    match size {
        AudienceSize::Count(n) => population.min(n as usize),
        AudienceSize::TopPercent(p) => {
            // Guard against float noise: 10 % of 1230 is 123, not 124.
            let exact = population as f64 * p / 100.0;
            ((exact - 1e-9).ceil().max(0.0) as usize).min(population)
        }
        AudienceSize::MinScore(_) => population,
    }
}

/// Scored candidate: (score, shard, slot).
type Scored = (f32, u32, PointId);

fn best_first(a: &Scored, b: &Scored) -> std::cmp::Ordering {
    b.0.total_cmp(&a.0).then(a.2.cmp(&b.2))
}

fn top(mut scored: Vec<Scored>, n: usize) -> Vec<Scored> {
    if n == 0 {
        return Vec::new();
    }
    if scored.len() > n {
        scored.select_nth_unstable_by(n - 1, best_first);
        scored.truncate(n);
    }
    scored.sort_unstable_by(best_first);
    scored
}

/// Computes the audience of `query` over `version`.
pub(crate) fn lookalike(
    version: &LoadedVersion,
    profiles: &Profiles,
    ef_search: usize,
    query: &LookalikeQuery,
) -> Result<Audience> {
    let customers = version.customer_count();
    check_size(query.size, customers)?;
    let mut seed_ids = query.seed_customer_ids.clone();
    for (i, (kind, name)) in query.seed_segments.iter().enumerate() {
        let field = SEED_SEGMENT_FIELDS
            .get(i)
            .copied()
            .unwrap_or("seed_segments");
        check_kind(field, kind)?;
        let before = seed_ids.len();
        seed_ids.extend(
            profiles
                .customers()
                .filter(|(_, c)| c.in_segment(kind, name))
                .filter_map(|(slot, _)| profiles.customer_slots.name(slot).map(str::to_owned)),
        );
        if seed_ids.len() == before {
            return Err(Error::not_found(field, format!("{kind}/{name}")));
        }
    }
    for (kind, _) in &query.exclude_segments {
        check_kind("exclude_segments", kind)?;
    }
    let seeds = resolve("seed_customer_ids", &seed_ids, version, profiles)?;
    let negatives = resolve(
        "negative_customer_ids",
        &query.negative_customer_ids,
        version,
        profiles,
    )?;
    if seeds.vectors.is_empty() {
        return Err(Error::invalid(
            "seed_customer_ids",
            format!(
                "none of the {} seeds can be used: each lacks ads consent or a vector in version `{}`",
                seeds.ignored.len(),
                version.info.version
            ),
        ));
    }
    let eligible = eligible(version, profiles, query, &seeds, &negatives);
    let (scorer, strategy_used) = scorer(query.strategy, &seeds, &negatives, version.dim);
    let population = eligible.count();
    let n = target(query.size, population);
    let probes = scorer.probes().len();
    let graph = matches!(query.size, AudienceSize::Count(_))
        && n <= GRAPH_MAX_COUNT
        && n * GRAPH_MAX_FRACTION <= population
        && population * GRAPH_MIN_ELIGIBLE_SHARE >= customers
        && probes * n <= GRAPH_MAX_WORK;
    let scored = if graph {
        graph_scores(version, &scorer, &eligible, n, ef_search)?
    } else {
        exact_scores(version, &scorer, &eligible, query.size)
    };
    let chosen = top(scored, n);
    let explain = query.explain.then(|| explainer(&seeds));
    let prospects = chosen
        .par_iter()
        .map(|&(score, shard, slot)| {
            let customer_id = profiles
                .customer_slots
                .name(slot)
                .unwrap_or_default()
                .to_owned();
            let nearest_seed_ids = match &explain {
                Some(e) => version.shards[shard as usize]
                    .vector(slot)
                    .map(|v| e.nearest(&v))
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            Prospect {
                customer_id,
                score,
                nearest_seed_ids,
            }
        })
        .collect();
    let mut ignored_seed_ids = seeds.ignored;
    ignored_seed_ids.extend(negatives.ignored);
    Ok(Audience {
        model_version: version.info.version.clone(),
        prospects,
        ignored_seed_ids,
        strategy_used,
        eligible_population: population as u64,
    })
}

/// Customers that may be in the audience: ads consent ∧ a vector in this version, minus
/// seeds and negatives, then the request's filters (only walked when there are any).
fn eligible(
    version: &LoadedVersion,
    profiles: &Profiles,
    query: &LookalikeQuery,
    seeds: &Seeds,
    negatives: &Seeds,
) -> Bitset {
    let mut eligible = profiles.ads_consent().clone();
    eligible.intersect_with(&version.members.read());
    for slot in seeds.slots.iter().chain(&negatives.slots) {
        eligible.remove(*slot);
    }
    let filtered = query.exclude_existing_customers
        || !query.filter.is_empty()
        || !query.exclude_segments.is_empty();
    if filtered {
        let candidates: Vec<PointId> = eligible.iter().collect();
        for slot in candidates {
            let keep = profiles.customer(slot).is_some_and(|c| {
                (!query.exclude_existing_customers || c.purchased.is_empty())
                    && c.matches(&query.filter)
                    && !query
                        .exclude_segments
                        .iter()
                        .any(|(kind, name)| c.in_segment(kind, name))
            });
            if !keep {
                eligible.remove(slot);
            }
        }
    }
    eligible
}

fn exact_scores(
    version: &LoadedVersion,
    scorer: &Scorer,
    eligible: &Bitset,
    size: AudienceSize,
) -> Vec<Scored> {
    let floor = match size {
        AudienceSize::MinScore(s) => s,
        _ => f32::NEG_INFINITY,
    };
    let per_shard = version.fold_customers(Vec::new, |acc: &mut Vec<(f32, PointId)>, slot, v| {
        if eligible.contains(slot) {
            let s = scorer.score(v);
            if s >= floor {
                acc.push((s, slot));
            }
        }
    });
    per_shard
        .into_iter()
        .enumerate()
        .flat_map(|(shard, rows)| {
            rows.into_iter()
                .map(move |(s, slot)| (s, shard as u32, slot))
        })
        .collect()
}

fn graph_scores(
    version: &LoadedVersion,
    scorer: &Scorer,
    eligible: &Bitset,
    n: usize,
    ef_search: usize,
) -> Result<Vec<Scored>> {
    // Negatives lower scores after the search, so look a little deeper.
    let k = if scorer.negatives.is_empty() {
        n
    } else {
        n * 2
    };
    let probes = scorer.probes();
    let per_shard = version
        .shards
        .par_iter()
        .enumerate()
        .map(|(shard, index)| -> Result<Vec<Scored>> {
            if index.is_empty() {
                return Ok(Vec::new());
            }
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for probe in &probes {
                let hits = index.search(&SearchRequest {
                    query: probe,
                    k,
                    ef: ef_search.max(k),
                    allowed: Some(eligible),
                })?;
                for hit in hits {
                    if seen.insert(hit.id)
                        && let Some(v) = index.vector(hit.id)
                    {
                        out.push((scorer.score(&v), shard as u32, hit.id));
                    }
                }
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(per_shard.into_iter().flatten().collect())
}

/// Names the closest seeds of a prospect.
struct Explainer<'a> {
    ids: Vec<&'a str>,
    vectors: Vec<&'a [f32]>,
}

fn explainer(seeds: &Seeds) -> Explainer<'_> {
    let stride = seeds.ids.len().div_ceil(EXPLAIN_MAX_SEEDS).max(1);
    Explainer {
        ids: seeds
            .ids
            .iter()
            .step_by(stride)
            .map(String::as_str)
            .collect(),
        vectors: seeds
            .vectors
            .iter()
            .step_by(stride)
            .map(Vec::as_slice)
            .collect(),
    }
}

impl Explainer<'_> {
    fn nearest(&self, v: &[f32]) -> Vec<String> {
        let mut best: Vec<(f32, usize)> = Vec::with_capacity(EXPLAIN_TOP + 1);
        for (i, s) in self.vectors.iter().enumerate() {
            let score = dot(s, v);
            if best.len() < EXPLAIN_TOP || score > best[best.len() - 1].0 {
                let at = best.partition_point(|(b, _)| *b >= score);
                best.insert(at, (score, i));
                best.truncate(EXPLAIN_TOP);
            }
        }
        best.into_iter()
            .map(|(_, i)| self.ids[i].to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_targets_round_up_without_float_noise() {
        assert_eq!(target(AudienceSize::TopPercent(10.0), 1230), 123);
        assert_eq!(target(AudienceSize::TopPercent(10.0), 1234), 124);
        assert_eq!(target(AudienceSize::TopPercent(100.0), 7), 7);
        assert_eq!(target(AudienceSize::TopPercent(0.001), 100), 1);
        assert_eq!(target(AudienceSize::Count(50), 20), 20);
    }

    #[test]
    fn sizes_outside_their_ranges_name_the_field() {
        let field = |size| match check_size(size, 100) {
            Err(Error::InvalidArgument { field, .. }) => field,
            other => panic!("expected InvalidArgument, got {other:?}"),
        };
        assert_eq!(field(AudienceSize::Count(0)), "count");
        assert_eq!(field(AudienceSize::Count(101)), "count");
        assert_eq!(field(AudienceSize::TopPercent(0.0)), "top_percent");
        assert_eq!(field(AudienceSize::TopPercent(f64::NAN)), "top_percent");
        assert_eq!(field(AudienceSize::MinScore(1.5)), "min_score");
        assert_eq!(field(AudienceSize::MinScore(f32::NAN)), "min_score");
        assert!(check_size(AudienceSize::Count(100), 100).is_ok());
    }
}
