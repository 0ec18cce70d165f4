//! Reach curves: how big a lookalike audience would be at several shares of the eligible
//! population or score cut-offs, before an advertiser commits to one.
//!
//! Sizes are exact: every eligible customer is scored and ranked exactly as
//! `FindLookalikes` does (score, then customer id), so a point's size, cut-off and audit
//! are those of the audience that call then returns for the same query. A router ranks the
//! merge of its nodes' streams and calls the same [`reach_points`].

use crate::audience_groups::Groups;
use crate::error::{Error, Result};
use crate::fairness::{self, GroupAudit};
use crate::loaded_version::LoadedVersion;
use crate::lookalike::{count_eligible, prepare, rank_best, target};
use crate::lookalike_query::{AudienceSize, LookalikeQuery};
use crate::profiles::Profiles;

/// The shares of a curve when the request names none: 1, 2, …, 10, 15, 20 %.
pub const DEFAULT_REACH_PERCENTS: [f64; 12] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
];
/// Most points per curve.
pub const MAX_REACH_POINTS: usize = 64;

/// Where a point of a curve cuts the ranked population.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReachCut {
    /// The best `p` percent (rounded up, as `top_percent` audiences are).
    TopPercent(f64),
    /// Everyone scoring at least `s`.
    MinScore(f32),
}

/// One point of a reach curve.
#[derive(Clone, Debug, PartialEq)]
pub struct ReachPoint {
    /// The share asked for, or the share the size is of the eligible population.
    pub top_percent: f64,
    /// The lowest score in the audience (a share), or the cut-off asked for (a score).
    pub min_score: f32,
    /// Exact audience size.
    pub size: u64,
    /// Mean score of the audience (0 when empty).
    pub mean_score: f32,
    /// The audit of the audience, when attributes are audited.
    pub audit: Vec<GroupAudit>,
}

/// A reach curve.
#[derive(Clone, Debug)]
pub struct ReachCurve {
    /// Points in the order of the cuts.
    pub points: Vec<ReachPoint>,
    /// Customers that could be in the audience.
    pub eligible_population: u64,
    /// The version that scored it.
    pub model_version: String,
    /// Seeds used (with ads consent and a vector).
    pub seeds_used: u64,
}

/// Most audit rows over a whole curve (points × audited values): beyond, the answer would
/// outgrow a message.
pub const MAX_REACH_AUDIT_ROWS: usize = 16_384;

/// The points of `cuts` over a ranked population of `population`: `scores` the best first,
/// at least as deep as every cut (the largest share, past the lowest score cut-off, or
/// everyone), `codes` their group codes (one per attribute of `groups`, member after
/// member; empty when none are audited). Audits are counted in one pass, cuts in size
/// order. More than [`MAX_REACH_AUDIT_ROWS`] audit rows → RESOURCE_EXHAUSTED.
pub fn reach_points(
    population: usize,
    scores: &[f32],
    codes: &[u32],
    groups: &Groups,
    cuts: &[ReachCut],
) -> Result<Vec<ReachPoint>> {
    let width = groups.attributes().len();
    let values: usize = (0..width).map(|a| groups.eligible(a).len()).sum();
    if values * cuts.len() > MAX_REACH_AUDIT_ROWS {
        return Err(Error::ResourceExhausted {
            field: "audit_attributes",
            reason: format!(
                "{values} audited values at {} points is over {MAX_REACH_AUDIT_ROWS} audit rows; \
                 audit fewer attributes or ask for fewer points",
                cuts.len()
            ),
        });
    }
    let mut prefix = Vec::with_capacity(scores.len() + 1);
    let mut sum = 0.0f64;
    prefix.push(0.0);
    for &s in scores {
        sum += f64::from(s);
        prefix.push(sum);
    }
    let mut points: Vec<ReachPoint> = cuts
        .iter()
        .map(|&cut| {
            let (top_percent, size) = match cut {
                ReachCut::TopPercent(p) => (
                    p,
                    target(AudienceSize::TopPercent(p), population).min(scores.len()),
                ),
                ReachCut::MinScore(s) => {
                    let size = scores.partition_point(|&x| x >= s);
                    let share = if population == 0 {
                        0.0
                    } else {
                        100.0 * size as f64 / population as f64
                    };
                    (share, size)
                }
            };
            let min_score = match cut {
                ReachCut::MinScore(s) => s,
                ReachCut::TopPercent(_) if size > 0 => scores[size - 1],
                ReachCut::TopPercent(_) => 0.0,
            };
            let mean_score = if size == 0 {
                0.0
            } else {
                (prefix[size] / size as f64) as f32
            };
            ReachPoint {
                top_percent,
                min_score,
                size: size as u64,
                mean_score,
                audit: Vec::new(),
            }
        })
        .collect();
    if width > 0 {
        let mut order: Vec<usize> = (0..points.len()).collect();
        order.sort_by_key(|&k| points[k].size);
        let mut counts = fairness::empty_tally(groups);
        let mut counted = 0usize;
        for k in order {
            let size = points[k].size as usize;
            fairness::tally(groups, &mut counts, &codes[counted * width..size * width]);
            counted = size;
            points[k].audit = fairness::audit_of(groups, &counts);
        }
    }
    Ok(points)
}

/// How deep a ranking of `population` must go for every cut: the largest share, and
/// `at_least(s)` (how many score at least `s`) for the lowest score cut-off.
pub fn deepest(population: usize, cuts: &[ReachCut], at_least: impl Fn(f32) -> usize) -> usize {
    let share = cuts
        .iter()
        .filter_map(|c| match *c {
            ReachCut::TopPercent(p) => Some(target(AudienceSize::TopPercent(p), population)),
            ReachCut::MinScore(_) => None,
        })
        .max()
        .unwrap_or(0);
    let lowest = cuts
        .iter()
        .filter_map(|c| match *c {
            ReachCut::MinScore(s) => Some(s),
            ReachCut::TopPercent(_) => None,
        })
        .reduce(f32::min);
    share.max(lowest.map_or(0, at_least))
}

/// The reach curve of `query` (its size ignored) over `version`.
pub(crate) fn estimate_reach(
    version: &LoadedVersion,
    profiles: &Profiles,
    query: &LookalikeQuery,
    cuts: &[ReachCut],
) -> Result<ReachCurve> {
    let prepared = prepare(version, profiles, query)?;
    // Only the best as deep as the deepest cut are ordered.
    let (population, ranked) = rank_best(
        version,
        profiles,
        &prepared.scorer,
        &prepared.eligible,
        &prepared.shards,
        &query.cancel,
        |all| deepest(all.len(), cuts, |s| all.iter().filter(|c| c.0 >= s).count()),
    )?;
    let mut groups = Groups::new(query.audit_attributes.clone());
    let codes = if groups.is_empty() {
        Vec::new()
    } else {
        count_eligible(profiles, &mut groups, &prepared.eligible)?.of(ranked.iter().map(|c| c.2))
    };
    let scores: Vec<f32> = ranked.iter().map(|c| c.0).collect();
    Ok(ReachCurve {
        points: reach_points(population, &scores, &codes, &groups, cuts)?,
        eligible_population: population as u64,
        model_version: version.info.version.clone(),
        seeds_used: prepared.seeds_used(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_cut_the_ranking_like_audiences_do() {
        let scores: Vec<f32> = (0..200).map(|i| 1.0 - i as f32 / 200.0).collect();
        let points = reach_points(
            scores.len(),
            &scores,
            &[],
            &Groups::default(),
            &[
                ReachCut::TopPercent(10.0),
                ReachCut::TopPercent(0.1),
                ReachCut::MinScore(0.5),
                ReachCut::MinScore(2.0),
            ],
        )
        .unwrap();
        assert_eq!(points[0].size, 20);
        assert_eq!(points[0].min_score, scores[19]);
        assert!((points[0].mean_score - (1.0 - 9.5 / 200.0)).abs() < 1e-6);
        assert_eq!(points[1].size, 1);
        assert_eq!(points[2].size, 101);
        assert!((points[2].top_percent - 50.5).abs() < 1e-9);
        assert_eq!(points[3].size, 0);
        assert_eq!(points[3].mean_score, 0.0);
    }

    #[test]
    fn an_empty_population_gives_empty_points() {
        let points = reach_points(
            0,
            &[],
            &[],
            &Groups::default(),
            &[ReachCut::TopPercent(5.0)],
        )
        .unwrap();
        assert_eq!(points[0].size, 0);
        assert_eq!(points[0].top_percent, 5.0);
    }
}
