//! The two halves of a lookalike a shard node computes for a router, over the logical
//! shards it holds:
//! * [`SeedLookup`] — the vectors of the seeds held here (explicit ids and members of the
//!   seed customer segments), so the router can build one scorer from every node's seeds;
//! * [`ShardAudience`] — this node's eligible customers scored against that scorer, best
//!   first (ties by id), so the router's k-way merge of the nodes' answers equals what a
//!   single node holding every shard computes.

use std::collections::{BTreeMap, HashSet};

use crate::audience_groups::Groups;
use crate::classifier::{CLASSIFIER_MAX_DIM, Moments};
use crate::customer_segments::check_customer_segment_kind;
use crate::error::{Error, Result};
use crate::loaded_version::LoadedVersion;
use crate::lookalike::{
    Eligibility, Explainer, ScorerSpec, ShardSelection, choose, count_eligible,
    customer_segment_members, eligible, prospects, target,
};
use crate::lookalike_query::{AudienceSize, Prospect};
use crate::profiles::Profiles;

/// One seed found on this node.
#[derive(Clone, Debug, PartialEq)]
pub struct FoundSeed {
    /// The customer.
    pub customer_id: String,
    /// Its unit vector in the version; `None` when it cannot be used (no ads consent or no
    /// vector).
    pub vector: Option<Vec<f32>>,
    /// The length of the vector it was given (the index keeps it unit); 0 without one.
    pub length: f32,
    /// A negative seed.
    pub negative: bool,
    /// 0 for an explicit id, else the index of the seed customer segment it belongs to,
    /// plus one.
    pub segment: u32,
}

/// The seeds of a lookalike request held by this node.
#[derive(Clone, Debug, PartialEq)]
pub struct SeedLookup {
    /// The version the vectors come from.
    pub version: String,
    /// Its vector dimension.
    pub dim: usize,
    /// Customers with a vector in the version on the selected shards.
    pub customers: usize,
    /// Seeds, negatives and customer segment members found (explicit ids in request order,
    /// then each customer segment's members in id order).
    pub seeds: Vec<FoundSeed>,
    /// Requested ids with no profile here.
    pub unknown: Vec<String>,
}

/// What a router asks a shard node to score.
#[derive(Clone, Debug)]
pub struct ShardScoring {
    /// Logical shards to answer for (others are ignored).
    pub shards: Vec<u32>,
    /// The scorer built from every node's seeds.
    pub scorer: ScorerSpec,
    /// Seeds and negatives: never in the audience.
    pub excluded_ids: Vec<String>,
    /// Members of these customer segments are seeds, so they are left out.
    pub seed_segments: Vec<(String, String)>,
    /// Members of these customer segments are left out.
    pub exclude_segments: Vec<(String, String)>,
    /// Attribute equality filter.
    pub filter: BTreeMap<String, String>,
    /// Leave out customers who ever purchased.
    pub exclude_existing_customers: bool,
    /// `Count(n)`: the best `n` here; `TopPercent`: everyone eligible, sorted (the router
    /// cuts the global share); `MinScore(s)`: everyone scoring at least `s`.
    pub size: AudienceSize,
    /// `(ids, unit vectors)` of the seeds named in explanations, when asked for.
    pub explain: Option<(Vec<String>, Vec<Vec<f32>>)>,
    /// Customer attributes whose values each prospect carries (audits, balancing).
    pub group_attributes: Vec<String>,
    /// The last group attribute is the request's balance attribute (errors name it).
    pub last_group_is_balance: bool,
    /// Stops the scan when the router's call goes away.
    pub cancel: crate::cancellation::Cancellation,
}

/// This node's part of an audience.
#[derive(Clone, Debug)]
pub struct ShardAudience {
    /// The version that scored it.
    pub version: String,
    /// Best first (score, then customer id).
    pub prospects: Vec<Prospect>,
    /// Customers that could have been in the audience on the selected shards.
    pub eligible_population: u64,
    /// With group attributes: the eligible customers per value ...
    pub groups: Groups,
    /// ... and the prospects' codes in it (one per attribute, prospect after prospect).
    pub codes: Vec<u32>,
}

pub(crate) fn lookup_seeds(
    version: &LoadedVersion,
    profiles: &Profiles,
    shards: &[u32],
    ids: &[String],
    negatives: &[String],
    seed_segments: &[(String, String)],
) -> Result<SeedLookup> {
    let selection = ShardSelection::of(version, shards);
    let mut lookup = SeedLookup {
        version: version.info.version.clone(),
        dim: version.dim,
        customers: selection.customers(version),
        seeds: Vec::new(),
        unknown: Vec::new(),
    };
    let lengths = version.lengths.read();
    let vector_of = |id: &str| -> Option<(Option<Vec<f32>>, f32)> {
        let slot = profiles.customer_slots.get(id)?;
        let consent = profiles.customer(slot).is_some_and(|c| c.ads_consent);
        let vector = version.customer_vector(id, slot).filter(|_| consent);
        let length = if vector.is_some() {
            lengths.get(slot)
        } else {
            0.0
        };
        Some((vector, length))
    };
    let explicit = ids
        .iter()
        .map(|id| (id, false))
        .chain(negatives.iter().map(|id| (id, true)));
    for (id, negative) in explicit {
        if !selection.holds(id) {
            continue;
        }
        match vector_of(id) {
            Some((vector, length)) => lookup.seeds.push(FoundSeed {
                customer_id: id.clone(),
                vector,
                length,
                negative,
                segment: 0,
            }),
            None => lookup.unknown.push(id.clone()),
        }
    }
    for (i, (kind, name)) in seed_segments.iter().enumerate() {
        check_customer_segment_kind("seed_segments", kind)?;
        for id in customer_segment_members(profiles, kind, name, Some(&selection)) {
            let (vector, length) = vector_of(&id).unwrap_or((None, 0.0));
            lookup.seeds.push(FoundSeed {
                customer_id: id,
                vector,
                length,
                negative: false,
                segment: i as u32 + 1,
            });
        }
    }
    Ok(lookup)
}

/// The moments of every customer vector of `version` on each of `shards` (ascending,
/// unknown and duplicate shards left out), for a router fitting a classifier; none for a
/// version over [`CLASSIFIER_MAX_DIM`] dims, which no classifier serves.
pub(crate) fn shard_moments(version: &LoadedVersion, shards: &[u32]) -> Vec<(u32, Moments)> {
    if version.dim > CLASSIFIER_MAX_DIM {
        return Vec::new();
    }
    let mut wanted: Vec<u32> = shards
        .iter()
        .copied()
        .filter(|&s| s < version.shard_count)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let indexes: Vec<usize> = wanted.iter().map(|&s| s as usize).collect();
    let moments = version
        .lengths
        .moments(&version.shards, &indexes, version.dim);
    wanted
        .into_iter()
        .zip(moments)
        .map(|(s, m)| (s, Moments::clone(&m)))
        .collect()
}

pub(crate) fn score_on_shards(
    version: &LoadedVersion,
    profiles: &Profiles,
    ef_search: usize,
    request: &ShardScoring,
) -> Result<ShardAudience> {
    let dim_ok = |v: &Vec<f32>| v.len() == version.dim;
    match &request.scorer.linear {
        Some(linear) => {
            let finite = linear.weights.iter().all(|w| w.is_finite())
                && linear.offset.is_finite()
                && linear.scale.is_finite()
                && linear.scale >= f32::MIN_POSITIVE;
            if !dim_ok(&linear.weights) || !finite || !request.scorer.positives.is_empty() {
                return Err(Error::invalid(
                    "linear",
                    format!(
                        "needs {} finite weights, a finite offset, a positive scale and no positives",
                        version.dim
                    ),
                ));
            }
        }
        None => {
            if request.scorer.positives.is_empty() || !request.scorer.positives.iter().all(dim_ok) {
                return Err(Error::invalid(
                    "positives",
                    format!("need at least one vector of {} dims", version.dim),
                ));
            }
        }
    }
    if !request.scorer.negatives.iter().all(dim_ok) {
        return Err(Error::invalid(
            "negatives",
            format!("vectors must have {} dims", version.dim),
        ));
    }
    for (kind, _) in request
        .seed_segments
        .iter()
        .chain(&request.exclude_segments)
    {
        check_customer_segment_kind("exclude_segments", kind)?;
    }
    let selection = ShardSelection::of(version, &request.shards);
    let mut excluded: HashSet<_> = request
        .excluded_ids
        .iter()
        .filter_map(|id| profiles.customer_slots.get(id))
        .collect();
    for (kind, name) in &request.seed_segments {
        for id in customer_segment_members(profiles, kind, name, Some(&selection)) {
            excluded.extend(profiles.customer_slots.get(&id));
        }
    }
    let rules = Eligibility {
        excluded,
        exclude_existing_customers: request.exclude_existing_customers,
        filter: &request.filter,
        exclude_segments: &request.exclude_segments,
    };
    let eligible = eligible(version, profiles, &rules, &selection);
    let population = eligible.count();
    let n = match request.size {
        AudienceSize::Count(_) => target(request.size, population),
        AudienceSize::TopPercent(_) | AudienceSize::MinScore(_) => population,
    };
    let chosen = choose(
        version,
        profiles,
        &request.scorer,
        &eligible,
        &selection,
        request.size,
        n,
        ef_search,
        &request.cancel,
    )?;
    let explain = request
        .explain
        .as_ref()
        .map(|(ids, vectors)| Explainer::sample(ids, vectors));
    let mut groups = Groups::new(request.group_attributes.clone());
    if request.last_group_is_balance {
        let last = request.group_attributes.len().saturating_sub(1);
        groups = groups.with_field(last, "balance_attribute");
    }
    let codes = if groups.is_empty() {
        Vec::new()
    } else {
        count_eligible(profiles, &mut groups, &eligible)?.of(chosen.iter().map(|c| c.2))
    };
    Ok(ShardAudience {
        version: version.info.version.clone(),
        prospects: prospects(version, profiles, &chosen, explain.as_ref()),
        eligible_population: population as u64,
        groups,
        codes,
    })
}
