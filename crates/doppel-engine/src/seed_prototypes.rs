//! Seed sets reduced to what scoring needs: the normalised centroid, its coherence, and up
//! to [`MAX_PROTOTYPES`] prototypes (the seeds themselves, or spherical k-means centres of
//! a big seed set) for max-similarity scoring.

use doppel_index::dot;
use rayon::prelude::*;

/// Most prototypes max-similarity scores against (cost per prospect is linear in this).
pub(crate) const MAX_PROTOTYPES: usize = 128;
/// Seeds sampled to fit the prototypes of a big seed set.
const FIT_SAMPLE: usize = 16_384;
/// Spherical k-means rounds.
const ROUNDS: usize = 4;

/// Scales `v` to unit length; false if it has no direction.
pub(crate) fn normalize(v: &mut [f32]) -> bool {
    let norm = dot(v, v).sqrt();
    if !norm.is_finite() || norm <= f32::EPSILON {
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// The mean of unit vectors (not normalised) — its length is the set's coherence.
pub(crate) fn mean(vectors: &[Vec<f32>], dim: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    for v in vectors {
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
    }
    let n = vectors.len().max(1) as f32;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

/// Length of the mean of unit vectors: 1 when all agree, near 0 when they point apart.
pub(crate) fn coherence(vectors: &[Vec<f32>], dim: usize) -> f32 {
    let m = mean(vectors, dim);
    dot(&m, &m).sqrt()
}

/// How much better two clusters describe the set than one: the coherence of the whole set
/// divided by the mean coherence of its two 2-means clusters. Near 1 for one mode (splitting
/// noise gains little), about 0.7 for two orthogonal modes. A split that leaves fewer than
/// a tenth of the set on one side counts as one mode (1.0).
pub(crate) fn two_mode_ratio(vectors: &[Vec<f32>], dim: usize) -> f32 {
    if vectors.len() < 4 {
        return 1.0;
    }
    let stride = vectors.len().div_ceil(FIT_SAMPLE);
    let sample: Vec<Vec<f32>> = vectors.iter().step_by(stride).cloned().collect();
    // Farthest-point start: the first vector and the one least like it.
    let far = sample
        .iter()
        .enumerate()
        .min_by(|a, b| dot(&sample[0], a.1).total_cmp(&dot(&sample[0], b.1)))
        .map_or(0, |(i, _)| i);
    let mut centres = vec![sample[0].clone(), sample[far].clone()];
    let mut sides: Vec<Vec<Vec<f32>>> = vec![Vec::new(), Vec::new()];
    for _ in 0..ROUNDS + 1 {
        sides = vec![Vec::new(), Vec::new()];
        for v in &sample {
            sides[best(&centres, v).0].push(v.clone());
        }
        for (centre, side) in centres.iter_mut().zip(&sides) {
            if let Some(c) = centroid(side, dim) {
                *centre = c;
            }
        }
    }
    let smaller = sides[0].len().min(sides[1].len());
    if smaller * 10 < sample.len() {
        return 1.0;
    }
    let split = (coherence(&sides[0], dim) + coherence(&sides[1], dim)) / 2.0;
    if split <= f32::EPSILON {
        return 1.0;
    }
    coherence(&sample, dim) / split
}

/// The unit centroid of `vectors`, if it has a direction.
pub(crate) fn centroid(vectors: &[Vec<f32>], dim: usize) -> Option<Vec<f32>> {
    let mut m = mean(vectors, dim);
    normalize(&mut m).then_some(m)
}

/// Index of the closest prototype to `v` and the similarity.
pub(crate) fn best(prototypes: &[Vec<f32>], v: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, p) in prototypes.iter().enumerate() {
        let s = dot(p, v);
        if s > best.1 {
            best = (i, s);
        }
    }
    best
}

/// The vectors themselves when there are few, else [`MAX_PROTOTYPES`] spherical k-means
/// centres (deterministic: evenly spaced initial centres, fixed rounds, fixed sample).
pub(crate) fn prototypes(vectors: &[Vec<f32>], dim: usize) -> Vec<Vec<f32>> {
    if vectors.len() <= MAX_PROTOTYPES {
        return vectors.to_vec();
    }
    let stride = vectors.len().div_ceil(FIT_SAMPLE);
    let sample: Vec<&Vec<f32>> = vectors.iter().step_by(stride).collect();
    let step = sample.len() / MAX_PROTOTYPES;
    let mut centres: Vec<Vec<f32>> = (0..MAX_PROTOTYPES)
        .map(|i| sample[i * step].clone())
        .collect();
    for _ in 0..ROUNDS {
        let assigned: Vec<usize> = sample.par_iter().map(|v| best(&centres, v).0).collect();
        let mut sums = vec![vec![0f32; dim]; centres.len()];
        for (v, &c) in sample.iter().zip(&assigned) {
            sums[c].iter_mut().zip(v.iter()).for_each(|(s, x)| *s += x);
        }
        for (centre, mut sum) in centres.iter_mut().zip(sums) {
            // An empty cluster keeps its centre.
            if normalize(&mut sum) {
                *centre = sum;
            }
        }
    }
    centres
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        assert!(normalize(&mut v));
        v
    }

    #[test]
    fn coherence_separates_tight_and_spread_sets() {
        let tight = vec![unit(&[1.0, 0.1]), unit(&[1.0, -0.1])];
        let spread = vec![unit(&[1.0, 0.0]), unit(&[-1.0, 0.05])];
        assert!(coherence(&tight, 2) > 0.9);
        assert!(coherence(&spread, 2) < 0.1);
        assert!(centroid(&[unit(&[1.0, 0.0]), unit(&[-1.0, 0.0])], 2).is_none());
    }

    #[test]
    fn two_mode_ratio_spots_two_clusters() {
        let mut one = Vec::new();
        let mut two = Vec::new();
        for i in 0..200 {
            let a = (i % 13) as f32 * 0.03 - 0.18;
            let b = (i % 7) as f32 * 0.03 - 0.09;
            one.push(unit(&[1.0, a, b, 0.0]));
            two.push(if i % 2 == 0 {
                unit(&[1.0, a, b, 0.0])
            } else {
                unit(&[0.0, a, b, 1.0])
            });
        }
        assert!(two_mode_ratio(&one, 4) > 0.9, "{}", two_mode_ratio(&one, 4));
        assert!(two_mode_ratio(&two, 4) < 0.8, "{}", two_mode_ratio(&two, 4));
    }

    #[test]
    fn big_seed_sets_get_prototypes_near_their_modes() {
        let mut seeds = Vec::new();
        for i in 0..1_000 {
            let jitter = (i % 7) as f32 * 0.01;
            seeds.push(unit(&[1.0, jitter, 0.0]));
            seeds.push(unit(&[0.0, jitter, 1.0]));
        }
        let protos = prototypes(&seeds, 3);
        assert_eq!(protos.len(), MAX_PROTOTYPES);
        for probe in [unit(&[1.0, 0.0, 0.0]), unit(&[0.0, 0.0, 1.0])] {
            assert!(best(&protos, &probe).1 > 0.99);
        }
    }
}
