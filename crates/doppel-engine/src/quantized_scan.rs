//! Exact audiences from int8 scans.
//!
//! Every eligible customer is scored on its int8 codes, which read a quarter of the bytes of
//! the floats, together with a bound on that score's error ([`ScanRow::error`]). The cut is
//! then known within the bounds: the `n`-th best lower bound (or the `min_score` floor).
//! Only customers whose upper bound reaches it are scored again on their floats, so the
//! answer, scores and ties included, is the one an f32 scan gives.

use doppel_index::{Bitset, PointId, ScanRow};
use rayon::prelude::*;

use crate::cancellation::{CHECK_EVERY_ROWS, Cancellation};
use crate::loaded_version::LoadedVersion;

/// `(score, shard, slot)`, as the lookalike paths keep them.
type Scored = (f32, u32, PointId);

/// One customer after the int8 pass: approximate score, its error bound, shard, slot.
type Bounded = (f32, f32, u32, PointId);

/// Who an audience keeps: the best `n` with a score ≥ `floor`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cut {
    pub(crate) n: usize,
    pub(crate) floor: f32,
}

/// Scores of the customers that can be in `cut`, exact (re-scored on their floats); every
/// such customer is included. `score_row` answers an
/// approximate score and its error bound for a slot's scan row, `score_exact` the exact
/// score of its floats. Stops early (answering what it has) once `cancel` is set.
pub(crate) fn quantized_scores(
    version: &LoadedVersion,
    shards: &[usize],
    eligible: &Bitset,
    cut: Cut,
    score_row: &(dyn Fn(PointId, ScanRow<'_>) -> (f32, f32) + Sync),
    score_exact: &(dyn Fn(PointId, &[f32]) -> f32 + Sync),
    cancel: &Cancellation,
) -> Vec<Scored> {
    let bounded: Vec<Bounded> = shards
        .par_iter()
        .flat_map_iter(|&shard| {
            let mut acc = Vec::new();
            let (mut rows, mut stopped) = (0usize, cancel.is_cancelled());
            version.shards[shard].for_each_live_scan(&mut |slot, row| {
                rows += 1;
                if rows.is_multiple_of(CHECK_EVERY_ROWS) {
                    stopped = stopped || cancel.is_cancelled();
                }
                if !stopped && eligible.contains(slot) {
                    let (score, error) = score_row(slot, row);
                    if score + error >= cut.floor {
                        acc.push((score, error, shard as u32, slot));
                    }
                }
            });
            acc
        })
        .collect();
    let Cut { n, floor } = cut;
    let threshold = floor.max(nth_lower_bound(&bounded, n));
    bounded
        .par_iter()
        .filter(|&&(score, error, _, _)| score + error >= threshold)
        .filter_map(|&(score, error, shard, slot)| {
            let exact = if error == 0.0 {
                score
            } else {
                score_exact(slot, &version.shards[shard as usize].vector(slot)?)
            };
            (exact >= floor).then_some((exact, shard, slot))
        })
        .collect()
}

/// The `n`-th largest lower bound (−∞ when there are fewer than `n`, or `n` is 0).
fn nth_lower_bound(bounded: &[Bounded], n: usize) -> f32 {
    if n == 0 || bounded.len() < n {
        return f32::NEG_INFINITY;
    }
    let mut lower: Vec<f32> = bounded.iter().map(|&(s, e, _, _)| s - e).collect();
    let (_, nth, _) = lower.select_nth_unstable_by(n - 1, |a, b| b.total_cmp(a));
    *nth
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cut_is_the_nth_best_lower_bound() {
        let b = |s: f32, e: f32| (s, e, 0, 0);
        // Dyadic values, so the lower bounds are exact in f32.
        let bounded = [b(0.875, 0.125), b(0.5, 0.0), b(0.75, 0.0625), b(0.25, 0.5)];
        assert_eq!(nth_lower_bound(&bounded, 1), 0.75);
        assert_eq!(nth_lower_bound(&bounded, 2), 0.6875);
        assert_eq!(nth_lower_bound(&bounded, 3), 0.5);
        assert_eq!(nth_lower_bound(&bounded, 4), -0.25);
        assert_eq!(nth_lower_bound(&bounded, 5), f32::NEG_INFINITY);
        assert_eq!(nth_lower_bound(&bounded, 0), f32::NEG_INFINITY);
    }
}
