//! Lookalike audiences: customers closest to a seed set, within consent and filters.
//!
//! Two ways to score, picked per request:
//! * **exact** — every eligible customer of every shard is scored (shards in parallel).
//!   Used for percentage and threshold audiences (they need the whole score distribution)
//!   and whenever the audience is a sizeable part of the population; at 32–128 dims this
//!   is a few milliseconds per 100k customers for the centroid.
//!   A version that asks for int8 scans (`scan_vectors = int8`) scores on int8 codes first
//!   and re-scores only the customers that can still make the cut (`quantized_scan`): the
//!   same answer, a quarter of the bytes read.
//! * **graph** — for a small `count` out of a large population: each probe (the centroid,
//!   or each seed prototype) searches every shard's HNSW graph with the eligibility bitset,
//!   and the union of candidates is re-scored exactly.

use std::collections::HashSet;

use doppel_index::{Bitset, PointId, ScanRow, SearchRequest, dot};
use doppel_types::shard::shard_of;
use rayon::prelude::*;

use crate::audience_groups::Groups;
use crate::cancellation::{CHECK_EVERY_ROWS, Cancellation};
use crate::classifier::{CLASSIFIER_MAX_DIM, CLASSIFIER_RIDGE, LinearScorer, Moments, fit};
use crate::customer_lengths::LengthTable;
use crate::customer_segments::check_customer_segment_kind;
use crate::error::{Error, Result};
use crate::fairness;
use crate::loaded_version::LoadedVersion;
use crate::lookalike_query::{
    Audience, AudienceSize, Balance, LookalikeQuery, Prospect, Strategy, mean_score,
};
use crate::profiles::Profiles;
use crate::quantized_scan::{Cut, quantized_scores};
use crate::seed_prototypes::{best, centroid, coherence, prototypes, two_mode_ratio};

/// How much similarity to the negative seeds is subtracted from a prospect's score.
pub const NEGATIVE_WEIGHT: f32 = 0.5;
/// `Auto` uses max-similarity when the seeds' mean vector is shorter than this (no
/// direction worth a centroid) ...
pub const CENTROID_MIN_COHERENCE: f32 = 0.2;
/// ... or when two clusters describe the seeds clearly better than one (see
/// `two_mode_ratio`: the whole set's coherence over its two halves').
pub const CENTROID_MIN_TWO_MODE_RATIO: f32 = 0.85;
/// `Auto` fits the classifier for at least this many usable seeds ...
pub const AUTO_CLASSIFIER_MIN_SEEDS: usize = 100;
/// ... and scores by the centroid from this many up to that; below, the cosine rules
/// (coherence, two modes) pick centroid or max-similarity. Both chosen on the validation
/// split of Online Retail (`doppel evaluate --seed-sweep`: 10 to 400 sampled seeds per
/// keyword group, 5 draws): from 100 seeds the classifier leads the centroid (0.108 vs
/// 0.100 precision at 100, 0.119 vs 0.101 at 400), from 10 to 50 the centroid is slightly
/// ahead, and max-similarity, which the cosine rules picked for most of those seed sets, is
/// the weakest at every count.
pub const AUTO_CENTROID_MIN_SEEDS: usize = 10;
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

/// Field names of the first seed customer segments, for errors (`&'static str` fields).
const SEED_SEGMENT_FIELDS: [&str; 4] = [
    "seed_segments[0]",
    "seed_segments[1]",
    "seed_segments[2]",
    "seed_segments[3]",
];

/// Resolved seeds: ids, unit vectors and vector lengths (parallel), their slots, and the
/// ignored ones.
struct Seeds {
    ids: Vec<String>,
    vectors: Vec<Vec<f32>>,
    lengths: Vec<f32>,
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
        lengths: Vec::new(),
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
                seeds.lengths.push(version.customer_length(slot));
            }
            _ => seeds.ignored.push(id.clone()),
        }
    }
    Ok(seeds)
}

/// What prospects are scored against: the best dot product over `positives` (one vector
/// for the centroid, the seed prototypes for max-similarity) or the `linear` classifier's
/// score, minus [`NEGATIVE_WEIGHT`] × the best non-negative similarity to `negatives`,
/// clamped to `[-1, 1]`. Built by [`plan_scorer`] — by a node from its own seeds, or by a
/// router from seeds gathered off every shard node, which then sends it to them.
#[derive(Clone, Debug, PartialEq)]
pub struct ScorerSpec {
    /// Unit vectors a prospect should be close to (empty with `linear`).
    pub positives: Vec<Vec<f32>>,
    /// Unit vectors (prototypes of the negative seeds) a prospect should not be close to.
    pub negatives: Vec<Vec<f32>>,
    /// The classifier, which replaces `positives`.
    pub linear: Option<LinearScorer>,
}

/// What `plan_scorer` fits a classifier with: the seeds' vector lengths (parallel to
/// their unit vectors) and the moments of every customer of the version.
#[derive(Clone, Copy, Debug)]
pub struct ClassifierInputs<'a> {
    /// Length of each seed's vector.
    pub seed_lengths: &'a [f32],
    /// Moments of the version's customers (all shards, added in shard order).
    pub population: &'a Moments,
    /// Relative ridge.
    pub ridge: f64,
}

/// True when `plan_scorer` would use [`ClassifierInputs`] for `strategy` with `seeds`
/// usable seeds of a `dim`-dimensional version (so callers compute the population's
/// moments only then). An explicit classifier over [`CLASSIFIER_MAX_DIM`] dims is refused.
pub fn wants_classifier(strategy: Strategy, seeds: usize, dim: usize) -> Result<bool> {
    match strategy {
        Strategy::Classifier if dim > CLASSIFIER_MAX_DIM => Err(Error::invalid(
            "strategy",
            format!(
                "CLASSIFIER serves versions of up to {CLASSIFIER_MAX_DIM} dims; this one has {dim}"
            ),
        )),
        Strategy::Classifier => Ok(true),
        Strategy::Auto => Ok(seeds >= AUTO_CLASSIFIER_MIN_SEEDS && dim <= CLASSIFIER_MAX_DIM),
        Strategy::Centroid | Strategy::MaxSimilarity => Ok(false),
    }
}

/// L1 norms bounding the prototypes of a scorer, for int8 error bounds.
#[derive(Clone, Copy, Debug)]
struct ScanNorms {
    positives: f32,
    negatives: f32,
}

impl ScorerSpec {
    fn scan_norms(&self) -> ScanNorms {
        let l1 = |set: &[Vec<f32>]| {
            set.iter()
                .map(|p| p.iter().map(|x| x.abs()).sum::<f32>())
                .fold(0.0, f32::max)
        };
        ScanNorms {
            positives: match &self.linear {
                Some(l) => l.l1(),
                None => l1(&self.positives),
            },
            negatives: l1(&self.negatives),
        }
    }

    /// The score of a scan row of a vector of length `length` and a bound on its error (0
    /// for float rows): the max over prototypes moves by at most the largest error of one
    /// dot (the classifier's score by that error scaled as in [`LinearScorer::error`]),
    /// the negative term by `NEGATIVE_WEIGHT` times that, and the clamp moves nothing
    /// further apart.
    fn score_row(&self, row: ScanRow<'_>, length: f32, norms: ScanNorms) -> (f32, f32) {
        let best_of = |set: &[Vec<f32>]| {
            set.iter()
                .map(|p| row.dot(p))
                .fold(f32::NEG_INFINITY, f32::max)
        };
        let (pos, mut error) = match &self.linear {
            Some(l) => (
                l.squash(length, row.dot(&l.weights)),
                l.error(length, row.error(norms.positives)),
            ),
            None => (best_of(&self.positives), row.error(norms.positives)),
        };
        let score = if self.negatives.is_empty() {
            pos
        } else {
            error += NEGATIVE_WEIGHT * row.error(norms.negatives);
            pos - NEGATIVE_WEIGHT * best_of(&self.negatives).max(0.0)
        };
        (score.clamp(-1.0, 1.0), error)
    }

    /// The score of unit vector `v` of length `length` (only the classifier reads it), as
    /// a node scores a prospect.
    pub fn score(&self, v: &[f32], length: f32) -> f32 {
        let pos = match &self.linear {
            Some(l) => l.score(v, length),
            None => best(&self.positives, v).1,
        };
        if self.negatives.is_empty() {
            return pos.clamp(-1.0, 1.0);
        }
        let neg = best(&self.negatives, v).1.max(0.0);
        (pos - NEGATIVE_WEIGHT * neg).clamp(-1.0, 1.0)
    }

    fn probes(&self) -> Vec<&[f32]> {
        self.positives.iter().map(Vec::as_slice).collect()
    }
}

/// Builds the scorer of a seed set (usable seed vectors, in seed order) and says which
/// strategy it uses: `Auto` fits the classifier for [`AUTO_CLASSIFIER_MIN_SEEDS`] or more
/// seeds when `classifier` is given, else picks centroid for one seed, for
/// [`AUTO_CENTROID_MIN_SEEDS`] or more, or for a coherent single-mode set. A classifier that cannot be fitted (no `classifier` inputs, or nothing
/// to separate) falls back to the centroid.
pub fn plan_scorer(
    strategy: Strategy,
    seeds: &[Vec<f32>],
    negatives: &[Vec<f32>],
    dim: usize,
    classifier: Option<ClassifierInputs<'_>>,
) -> (ScorerSpec, Strategy) {
    if wants_classifier(strategy, seeds.len(), dim).unwrap_or(false)
        && let Some(inputs) = classifier
    {
        let fitted: Vec<(&[f32], f32)> = seeds
            .iter()
            .map(Vec::as_slice)
            .zip(inputs.seed_lengths.iter().copied())
            .collect();
        let usable = inputs.seed_lengths.len() == seeds.len() && inputs.population.fits(dim);
        if let Some(linear) = usable
            .then(|| fit(&fitted, inputs.population, inputs.ridge))
            .flatten()
        {
            let spec = ScorerSpec {
                positives: Vec::new(),
                negatives: prototypes(negatives, dim),
                linear: Some(linear),
            };
            return (spec, Strategy::Classifier);
        }
    }
    let wanted = match strategy {
        Strategy::Classifier => Strategy::Centroid,
        Strategy::Auto if seeds.len() == 1 || seeds.len() >= AUTO_CENTROID_MIN_SEEDS => {
            Strategy::Centroid
        }
        Strategy::Auto
            if coherence(seeds, dim) >= CENTROID_MIN_COHERENCE
                && two_mode_ratio(seeds, dim) >= CENTROID_MIN_TWO_MODE_RATIO =>
        {
            Strategy::Centroid
        }
        Strategy::Auto => Strategy::MaxSimilarity,
        s => s,
    };
    let negatives = prototypes(negatives, dim);
    // Seeds that cancel out have no centroid: fall back to max-similarity.
    match (wanted, centroid(seeds, dim)) {
        (Strategy::Centroid, Some(c)) => (
            ScorerSpec {
                positives: vec![c],
                negatives,
                linear: None,
            },
            Strategy::Centroid,
        ),
        _ => (
            ScorerSpec {
                positives: prototypes(seeds, dim),
                negatives,
                linear: None,
            },
            Strategy::MaxSimilarity,
        ),
    }
}

/// Checks an audience size against the version's customer count (errors name the field).
pub fn check_size(size: AudienceSize, customers: usize) -> Result<()> {
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
pub fn target(size: AudienceSize, population: usize) -> usize {
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
pub(crate) type Scored = (f32, u32, PointId);

/// Best first: higher score, then smaller customer id (ids, not slots, so that every
/// process — and a router merging several — orders ties the same way).
pub(crate) fn top(mut scored: Vec<Scored>, n: usize, profiles: &Profiles) -> Vec<Scored> {
    if n == 0 {
        return Vec::new();
    }
    let name = |slot: PointId| profiles.customer_slots.name(slot).unwrap_or_default();
    let best_first = |a: &Scored, b: &Scored| {
        b.0.total_cmp(&a.0)
            .then_with(|| name(a.2).cmp(name(b.2)))
            .then(a.2.cmp(&b.2))
    };
    if scored.len() > n {
        scored.select_nth_unstable_by(n - 1, best_first);
        scored.truncate(n);
    }
    scored.sort_unstable_by(best_first);
    scored
}

/// Seed ids: the explicit ones in request order, then each seed customer segment's members in id
/// order (the same order on a single node and on a router gathering them from nodes).
fn seed_ids(profiles: &Profiles, query: &LookalikeQuery) -> Result<Vec<String>> {
    let mut seed_ids = query.seed_customer_ids.clone();
    for (i, (kind, name)) in query.seed_segments.iter().enumerate() {
        let field = SEED_SEGMENT_FIELDS
            .get(i)
            .copied()
            .unwrap_or("seed_segments");
        check_customer_segment_kind(field, kind)?;
        let members = customer_segment_members(profiles, kind, name, None);
        if members.is_empty() {
            return Err(Error::not_found(field, format!("{kind}/{name}")));
        }
        seed_ids.extend(members);
    }
    Ok(seed_ids)
}

/// Ids of a customer segment's members (of the selected shards), in id order.
pub(crate) fn customer_segment_members(
    profiles: &Profiles,
    kind: &str,
    name: &str,
    shards: Option<&ShardSelection>,
) -> Vec<String> {
    let mut members: Vec<String> = profiles
        .customers()
        .filter(|(_, c)| c.in_customer_segment(kind, name))
        .filter_map(|(slot, _)| profiles.customer_slots.name(slot))
        .filter(|id| shards.is_none_or(|s| s.holds(id)))
        .map(str::to_owned)
        .collect();
    members.sort_unstable();
    members
}

/// Which logical shards of a version a computation covers.
pub(crate) struct ShardSelection {
    shard_count: u32,
    selected: Vec<bool>,
}

impl ShardSelection {
    pub(crate) fn all(version: &LoadedVersion) -> Self {
        Self {
            shard_count: version.shard_count,
            selected: vec![true; version.shard_count as usize],
        }
    }

    pub(crate) fn of(version: &LoadedVersion, shards: &[u32]) -> Self {
        let mut selected = vec![false; version.shard_count as usize];
        for &s in shards {
            if let Some(x) = selected.get_mut(s as usize) {
                *x = true;
            }
        }
        Self {
            shard_count: version.shard_count,
            selected,
        }
    }

    pub(crate) fn holds(&self, id: &str) -> bool {
        self.selected[shard_of(id, self.shard_count) as usize]
    }

    pub(crate) fn indexes(&self) -> Vec<usize> {
        (0..self.selected.len())
            .filter(|&s| self.selected[s])
            .collect()
    }

    /// True when every shard left out is empty in `version` (nothing to mask).
    fn covers_all(&self, version: &LoadedVersion) -> bool {
        self.selected
            .iter()
            .zip(&version.shards)
            .all(|(selected, index)| *selected || index.is_empty())
    }

    pub(crate) fn customers(&self, version: &LoadedVersion) -> usize {
        self.indexes()
            .into_iter()
            .map(|s| version.shards[s].len())
            .sum()
    }
}

/// Who may be in an audience, besides consent and a vector.
pub(crate) struct Eligibility<'q> {
    /// Seeds and negatives.
    pub(crate) excluded: HashSet<PointId>,
    pub(crate) exclude_existing_customers: bool,
    pub(crate) filter: &'q std::collections::BTreeMap<String, String>,
    /// Segments whose members are left out.
    pub(crate) exclude_segments: &'q [(String, String)],
}

/// A query resolved against a version: its seeds, its scorer and who is eligible.
pub(crate) struct Prepared {
    /// Usable seeds (ids and vectors, for explanations).
    seed_ids: Vec<String>,
    seed_vectors: Vec<Vec<f32>>,
    /// Seeds and negatives left out (no ads consent or no vector).
    pub(crate) ignored: Vec<String>,
    pub(crate) scorer: ScorerSpec,
    pub(crate) strategy_used: Strategy,
    pub(crate) eligible: Bitset,
    pub(crate) shards: ShardSelection,
}

impl Prepared {
    /// Seeds used (with ads consent and a vector).
    pub(crate) fn seeds_used(&self) -> u64 {
        self.seed_ids.len() as u64
    }
}

/// Resolves the seeds of `query`, plans its scorer and marks the eligible customers.
pub(crate) fn prepare(
    version: &LoadedVersion,
    profiles: &Profiles,
    query: &LookalikeQuery,
) -> Result<Prepared> {
    let seed_ids = seed_ids(profiles, query)?;
    for (kind, _) in &query.exclude_segments {
        check_customer_segment_kind("exclude_segments", kind)?;
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
    let shards = ShardSelection::all(version);
    let population = wants_classifier(query.strategy, seeds.vectors.len(), version.dim)?
        .then(|| version.population_moments(&shards.indexes()));
    let (scorer, strategy_used) = plan_scorer(
        query.strategy,
        &seeds.vectors,
        &negatives.vectors,
        version.dim,
        population.as_ref().map(|population| ClassifierInputs {
            seed_lengths: &seeds.lengths,
            population,
            ridge: CLASSIFIER_RIDGE,
        }),
    );
    let rules = Eligibility {
        excluded: seeds.slots.union(&negatives.slots).copied().collect(),
        exclude_existing_customers: query.exclude_existing_customers,
        filter: &query.filter,
        exclude_segments: &query.exclude_segments,
    };
    let eligible = eligible(version, profiles, &rules, &shards);
    let mut ignored = seeds.ignored;
    ignored.extend(negatives.ignored);
    Ok(Prepared {
        seed_ids: seeds.ids,
        seed_vectors: seeds.vectors,
        ignored,
        scorer,
        strategy_used,
        eligible,
        shards,
    })
}

/// Computes the audience of `query` over `version`.
pub(crate) fn lookalike(
    version: &LoadedVersion,
    profiles: &Profiles,
    ef_search: usize,
    query: &LookalikeQuery,
) -> Result<Audience> {
    check_size(query.size, version.customer_count())?;
    let prepared = prepare(version, profiles, query)?;
    let population = prepared.eligible.count();
    let n = target(query.size, population);
    let (chosen, mean_score_unbalanced, audit) = match &query.balance {
        Some(balance) => balanced(version, profiles, &prepared, query, balance)?,
        None => {
            let chosen = choose(
                version,
                profiles,
                &prepared.scorer,
                &prepared.eligible,
                &prepared.shards,
                query.size,
                n,
                ef_search,
                &query.cancel,
            )?;
            let audit = if query.audit_attributes.is_empty() {
                Vec::new()
            } else {
                let mut groups = query.groups();
                let by_slot = count_eligible(profiles, &mut groups, &prepared.eligible)?;
                fairness::audit(&groups, &by_slot.of(chosen.iter().map(|c| c.2)))
            };
            let mean = mean_score(chosen.iter().map(|c| c.0));
            (chosen, mean, audit)
        }
    };
    let explain = query
        .explain
        .then(|| Explainer::sample(&prepared.seed_ids, &prepared.seed_vectors));
    Ok(Audience {
        model_version: version.info.version.clone(),
        prospects: prospects(version, profiles, &chosen, explain.as_ref()),
        ignored_seed_ids: prepared.ignored.clone(),
        strategy_used: prepared.strategy_used,
        eligible_population: population as u64,
        seeds_used: prepared.seeds_used(),
        mean_score: mean_score(chosen.iter().map(|c| c.0)),
        mean_score_unbalanced,
        audit,
    })
}

/// The balanced audience of `query`: every eligible customer ranked, then
/// [`fairness::balance`] over the groups of the balance attribute. Answers the chosen
/// (best first), the mean score of the same size unbalanced, and the audit.
fn balanced(
    version: &LoadedVersion,
    profiles: &Profiles,
    prepared: &Prepared,
    query: &LookalikeQuery,
    balance: &Balance,
) -> Result<(Vec<Scored>, f32, Vec<fairness::GroupAudit>)> {
    let (_, ranked) = rank_best(
        version,
        profiles,
        &prepared.scorer,
        &prepared.eligible,
        &prepared.shards,
        &query.cancel,
        |all| all.len(),
    )?;
    let n = match query.size {
        AudienceSize::MinScore(s) => ranked.partition_point(|c| c.0 >= s),
        size => target(size, ranked.len()),
    };
    let mut groups = query.groups();
    let by_slot = count_eligible(profiles, &mut groups, &prepared.eligible)?;
    let codes = by_slot.of(ranked.iter().map(|c| c.2));
    let width = groups.attributes().len();
    let at = groups
        .attributes()
        .iter()
        .position(|a| *a == balance.attribute)
        .unwrap_or(0);
    // No group gives more than n: keep the best n of each (the top n overall among them).
    let mut per_group = vec![0usize; groups.eligible(at).len()];
    let kept: Vec<usize> = (0..ranked.len())
        .filter(|&i| {
            let g = codes[i * width + at] as usize;
            let keep = per_group.get(g).is_some_and(|&k| k < n);
            if keep {
                per_group[g] += 1;
            }
            keep
        })
        .collect();
    let by_group: Vec<u32> = kept.iter().map(|&i| codes[i * width + at]).collect();
    let scores: Vec<f32> = kept.iter().map(|&i| ranked[i].0).collect();
    let picked: Vec<usize> = fairness::balance(
        &scores,
        &by_group,
        groups.eligible(at),
        n,
        balance.min_selection_ratio,
    )
    .into_iter()
    .map(|k| kept[k])
    .collect();
    let picked_codes: Vec<u32> = picked
        .iter()
        .flat_map(|&i| codes[i * width..(i + 1) * width].iter().copied())
        .collect();
    let unbalanced = mean_score(ranked[..n].iter().map(|c| c.0));
    let chosen = picked.iter().map(|&i| ranked[i]).collect();
    Ok((chosen, unbalanced, fairness::audit(&groups, &picked_codes)))
}

/// Each eligible customer's group codes, by slot (one per attribute of the [`Groups`]
/// they were counted into).
pub(crate) struct SlotCodes {
    width: usize,
    codes: Vec<u32>,
}

impl SlotCodes {
    /// The codes of `slots`, one per attribute, slot after slot (a slot that was not
    /// counted gets code 0: callers pass eligible slots only).
    pub(crate) fn of(&self, slots: impl Iterator<Item = PointId>) -> Vec<u32> {
        let mut out = Vec::new();
        for slot in slots {
            let at = slot as usize * self.width;
            match self.codes.get(at..at + self.width) {
                Some(codes) => out.extend_from_slice(codes),
                None => out.extend(std::iter::repeat_n(0, self.width)),
            }
        }
        out
    }
}

/// Counts the eligible customers into `groups` and answers their codes by slot, from the
/// profiles' attribute columns (built on an attribute's first audit, then kept in step);
/// an attribute with too many values to cache is read from the profiles.
pub(crate) fn count_eligible(
    profiles: &Profiles,
    groups: &mut Groups,
    eligible: &Bitset,
) -> Result<SlotCodes> {
    let width = groups.attributes().len();
    let slots: Vec<PointId> = eligible.iter().collect();
    let end = slots.last().map_or(0, |&s| s as usize + 1);
    let mut codes = vec![0u32; end * width];
    for attr in 0..width {
        let key = groups.attributes()[attr].clone();
        match profiles.attribute_column(&key) {
            Some(column) => {
                // Count per column code, then intern only the values present.
                let mut counts = vec![0u64; column.len()];
                for &slot in &slots {
                    counts[column.code(slot) as usize] += 1;
                }
                let mut to_group = vec![0u32; column.len()];
                for (code, &n) in counts.iter().enumerate() {
                    if n > 0 {
                        to_group[code] = groups.add_eligible(attr, column.value(code as u32), n)?;
                    }
                }
                for &slot in &slots {
                    codes[slot as usize * width + attr] = to_group[column.code(slot) as usize];
                }
            }
            None => {
                for &slot in &slots {
                    let value = profiles
                        .customer(slot)
                        .and_then(|c| c.attributes.get(&key))
                        .map_or("", String::as_str);
                    codes[slot as usize * width + attr] = groups.add_eligible(attr, value, 1)?;
                }
            }
        }
    }
    Ok(SlotCodes { width, codes })
}

/// Every eligible customer scored exactly; answers how many there are and the best
/// `depth(scores)` of them, best first (score, then customer id) — the same order and
/// ties as [`top`].
pub(crate) fn rank_best(
    version: &LoadedVersion,
    profiles: &Profiles,
    scorer: &ScorerSpec,
    eligible: &Bitset,
    shards: &ShardSelection,
    cancel: &Cancellation,
    depth: impl FnOnce(&[Scored]) -> usize,
) -> Result<(usize, Vec<Scored>)> {
    let scored = exact_scores(
        version,
        scorer,
        eligible,
        shards,
        AudienceSize::TopPercent(100.0),
        cancel,
    );
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let population = scored.len();
    let n = depth(&scored).min(population);
    Ok((population, top(scored, n, profiles)))
}

/// Scores the eligible customers and keeps the best `n`: a graph search for a small
/// `count` out of a large population, an exact scan otherwise. Stops with
/// [`Error::Cancelled`] once `cancel` is set (looked at every
/// [`CHECK_EVERY_ROWS`] rows, and per probe).
#[allow(clippy::too_many_arguments, reason = "one internal call site per path")]
pub(crate) fn choose(
    version: &LoadedVersion,
    profiles: &Profiles,
    scorer: &ScorerSpec,
    eligible: &Bitset,
    shards: &ShardSelection,
    size: AudienceSize,
    n: usize,
    ef_search: usize,
    cancel: &Cancellation,
) -> Result<Vec<Scored>> {
    let population = eligible.count();
    let customers = shards.customers(version);
    let probes = scorer.probes().len();
    let graph = scorer.linear.is_none()
        && matches!(size, AudienceSize::Count(_))
        && n <= GRAPH_MAX_COUNT
        && n * GRAPH_MAX_FRACTION <= population
        && population * GRAPH_MIN_ELIGIBLE_SHARE >= customers
        && probes * n <= GRAPH_MAX_WORK;
    let scored = if graph {
        graph_scores(version, scorer, eligible, shards, n, ef_search, cancel)?
    } else if version.int8_scan() {
        let floor = match size {
            AudienceSize::MinScore(s) => s,
            _ => f32::NEG_INFINITY,
        };
        let norms = scorer.scan_norms();
        let lengths = ScanLengths::of(version, scorer);
        quantized_scores(
            version,
            &shards.indexes(),
            eligible,
            Cut { n, floor },
            &|slot, row| scorer.score_row(row, lengths.get(slot), norms),
            &|slot, v| scorer.score(v, lengths.get(slot)),
            cancel,
        )
    } else {
        exact_scores(version, scorer, eligible, shards, size, cancel)
    };
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    Ok(top(scored, n, profiles))
}

pub(crate) fn prospects(
    version: &LoadedVersion,
    profiles: &Profiles,
    chosen: &[Scored],
    explain: Option<&Explainer<'_>>,
) -> Vec<Prospect> {
    chosen
        .par_iter()
        .map(|&(score, shard, slot)| {
            let customer_id = profiles
                .customer_slots
                .name(slot)
                .unwrap_or_default()
                .to_owned();
            let nearest_seed_ids = match explain {
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
        .collect()
}

/// Customers that may be in the audience: ads consent ∧ a vector in this version ∧ in
/// the selected shards, minus the excluded, then the request's filters (only walked when
/// there are any).
pub(crate) fn eligible(
    version: &LoadedVersion,
    profiles: &Profiles,
    rules: &Eligibility<'_>,
    shards: &ShardSelection,
) -> Bitset {
    let mut eligible = profiles.ads_consent().clone();
    eligible.intersect_with(&version.members.read());
    if !shards.covers_all(version) {
        let mut held = Bitset::new(0);
        for s in shards.indexes() {
            version.shards[s].for_each_live(&mut |slot, _| {
                held.insert(slot);
            });
        }
        eligible.intersect_with(&held);
    }
    for slot in &rules.excluded {
        eligible.remove(*slot);
    }
    let filtered = rules.exclude_existing_customers
        || !rules.filter.is_empty()
        || !rules.exclude_segments.is_empty();
    if filtered {
        let candidates: Vec<PointId> = eligible.iter().collect();
        for slot in candidates {
            let keep = profiles.customer(slot).is_some_and(|c| {
                (!rules.exclude_existing_customers || c.purchased.is_empty())
                    && c.matches(rules.filter)
                    && !rules
                        .exclude_segments
                        .iter()
                        .any(|(kind, name)| c.in_customer_segment(kind, name))
            });
            if !keep {
                eligible.remove(slot);
            }
        }
    }
    eligible
}

/// The vector lengths a scan reads, one per customer: only the classifier's score uses
/// them. A logical shard's customers are spread over every slot, so each shard's scan
/// would touch nearly every cache line of the table (40 MB at 10M customers): at 64 dims,
/// a quarter as many bytes again as the rows themselves.
struct ScanLengths(Option<LengthTable>);

impl ScanLengths {
    /// The table when `scorer` reads it.
    fn of(version: &LoadedVersion, scorer: &ScorerSpec) -> Self {
        Self(scorer.linear.is_some().then(|| version.lengths.read()))
    }

    /// `slot`'s length; 1 (what an unknown length reads as) when the scorer ignores it.
    fn get(&self, slot: PointId) -> f32 {
        self.0.as_ref().map_or(1.0, |l| l.get(slot))
    }
}

fn exact_scores(
    version: &LoadedVersion,
    scorer: &ScorerSpec,
    eligible: &Bitset,
    shards: &ShardSelection,
    size: AudienceSize,
    cancel: &Cancellation,
) -> Vec<Scored> {
    let floor = match size {
        AudienceSize::MinScore(s) => s,
        _ => f32::NEG_INFINITY,
    };
    let lengths = ScanLengths::of(version, scorer);
    shards
        .indexes()
        .par_iter()
        .flat_map_iter(|&shard| {
            let mut acc = Vec::new();
            let (mut rows, mut stopped) = (0usize, cancel.is_cancelled());
            version.shards[shard].for_each_live(&mut |slot, v| {
                rows += 1;
                if rows.is_multiple_of(CHECK_EVERY_ROWS) {
                    stopped = stopped || cancel.is_cancelled();
                }
                if !stopped && eligible.contains(slot) {
                    let s = scorer.score(v, lengths.get(slot));
                    if s >= floor {
                        acc.push((s, shard as u32, slot));
                    }
                }
            });
            acc
        })
        .collect()
}

fn graph_scores(
    version: &LoadedVersion,
    scorer: &ScorerSpec,
    eligible: &Bitset,
    shards: &ShardSelection,
    n: usize,
    ef_search: usize,
    cancel: &Cancellation,
) -> Result<Vec<Scored>> {
    // Negatives lower scores after the search, so look a little deeper.
    let k = if scorer.negatives.is_empty() {
        n
    } else {
        n * 2
    };
    let probes = scorer.probes();
    let per_shard = shards
        .indexes()
        .par_iter()
        .map(|&shard| -> Result<Vec<Scored>> {
            let index = &version.shards[shard];
            if index.is_empty() {
                return Ok(Vec::new());
            }
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for probe in &probes {
                if cancel.is_cancelled() {
                    break;
                }
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
                        // Cosine strategies only: the graph never serves the classifier.
                        out.push((scorer.score(&v, 1.0), shard as u32, hit.id));
                    }
                }
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(per_shard.into_iter().flatten().collect())
}

/// Names the closest seeds of a prospect.
pub(crate) struct Explainer<'a> {
    ids: Vec<&'a str>,
    vectors: Vec<&'a [f32]>,
}

impl<'a> Explainer<'a> {
    /// Names seeds from an even sample of at most [`EXPLAIN_MAX_SEEDS`] of `ids`.
    pub(crate) fn sample(ids: &'a [String], vectors: &'a [Vec<f32>]) -> Self {
        let stride = ids.len().div_ceil(EXPLAIN_MAX_SEEDS).max(1);
        Explainer {
            ids: ids.iter().step_by(stride).map(String::as_str).collect(),
            vectors: vectors.iter().step_by(stride).map(Vec::as_slice).collect(),
        }
    }

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
