//! Rank-based scores with a deterministic treatment of ties.
//!
//! Values are ranked ascending; each value's *position* is the 0-based rank of the first
//! value equal to it, so tied customers always share a score (the lower one their group
//! reaches) and the result does not depend on input order or ids.

/// Tie-aware positions: for each value, how many values are strictly smaller.
/// NaN sorts above everything (`f64::total_cmp`).
pub fn tie_positions(values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut positions = vec![0usize; values.len()];
    let mut group_start = 0;
    for (rank, &i) in order.iter().enumerate() {
        if rank > 0 && values[order[rank - 1]].total_cmp(&values[i]).is_ne() {
            group_start = rank;
        }
        positions[i] = group_start;
    }
    positions
}

/// Quintile scores 1..=5, higher value → higher score: `1 + ⌊5 × position / n⌋`.
/// With 10 values and no ties, positions 0–1 score 1, 2–3 score 2, …, 8–9 score 5.
pub fn quintile_scores(values: &[f64]) -> Vec<u8> {
    let n = values.len();
    tie_positions(values)
        .into_iter()
        .map(|p| 1 + (5 * p / n) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_spread_evenly() {
        let v: Vec<f64> = (0..10).map(|i| f64::from(9 - i)).collect();
        assert_eq!(quintile_scores(&v), [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
    }

    #[test]
    fn ties_share_the_lower_score() {
        // Sorted: 1 1 1 1 1 1 2 3 3 9 → positions 0 0 0 0 0 0 6 7 7 9.
        let v = [1.0, 3.0, 1.0, 1.0, 9.0, 1.0, 2.0, 1.0, 3.0, 1.0];
        assert_eq!(quintile_scores(&v), [1, 4, 1, 1, 5, 1, 4, 1, 4, 1]);
        assert_eq!(tie_positions(&v)[1], 7);
    }
}
