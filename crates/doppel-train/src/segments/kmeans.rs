//! Spherical k-means: clusters of customers by the direction of their vectors.
//!
//! Vectors are normalised and compared by cosine; centroids are normalised means.
//! Seeding is k-means++ (each next centroid drawn with probability ∝ squared distance
//! `2 − 2 cos` to the nearest chosen one) from a seeded RNG; assignment runs in parallel
//! with rayon and every reduction sums in point order, so a seed gives the same clusters on
//! any number of threads. An emptied cluster is re-seeded with the point farthest from its
//! own centroid. Several seeded runs are made and the tightest (highest total cosine) kept.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::dense::{dot, normalize};

/// Points handed to a rayon task at least.
const MIN_POINTS_PER_TASK: usize = 64;

/// Settings of [`spherical_kmeans`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KMeansParams {
    /// Number of clusters (capped at the number of points).
    pub k: usize,
    /// Lloyd rounds at most per run; a run stops early once no point moves.
    pub iterations: usize,
    /// Independent seeded runs; the one with the highest total cosine wins. k-means++ can
    /// still put two seeds in one true cluster, and a few runs make that unlikely to stick.
    pub restarts: usize,
    /// Seed of the first run's k-means++ draw (later runs derive theirs from it).
    pub seed: u64,
}

/// The outcome of [`spherical_kmeans`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Clusters {
    /// Number of clusters (the requested k, capped at the number of points).
    pub k: usize,
    /// Unit centroids, row-major `k × dim`.
    pub centroids: Vec<f32>,
    /// Cluster of each point, in input order.
    pub assignment: Vec<u32>,
    /// Sum over points of the cosine to their centroid (higher is tighter).
    pub cohesion: f64,
}

/// Clusters the row-major `n × dim` `vectors` into `params.k` groups. Zero vectors go to
/// cluster 0.
pub fn spherical_kmeans(vectors: &[f32], dim: usize, params: &KMeansParams) -> Clusters {
    let n = vectors.len().checked_div(dim).unwrap_or(0);
    let k = params.k.min(n);
    if k == 0 {
        return Clusters {
            k: 0,
            centroids: Vec::new(),
            assignment: vec![0; n],
            cohesion: 0.0,
        };
    }
    let mut points = vectors[..n * dim].to_vec();
    points.par_chunks_mut(dim).for_each(normalize);
    let mut seeds = StdRng::seed_from_u64(params.seed);
    let mut best: Option<Clusters> = None;
    for restart in 0..params.restarts.max(1) {
        let seed = if restart == 0 {
            params.seed
        } else {
            seeds.random()
        };
        let run = lloyd(&points, dim, k, params.iterations, seed);
        // Strictly better only: ties keep the earlier run.
        if best.as_ref().is_none_or(|b| run.cohesion > b.cohesion) {
            best = Some(run);
        }
    }
    best.unwrap_or_default()
}

/// One seeded k-means++ + Lloyd run on unit `points`.
fn lloyd(points: &[f32], dim: usize, k: usize, iterations: usize, seed: u64) -> Clusters {
    let mut centroids = plus_plus_seeds(points, dim, k, seed);
    let mut assignment = Vec::new();
    for _ in 0..iterations.max(1) {
        let next = assign(points, dim, &centroids);
        if next == assignment {
            break;
        }
        assignment = next;
        centroids = update_centroids(points, dim, k, &assignment, &centroids);
    }
    // Cohesion against the final centroids, in point order (thread-independent).
    let similarities: Vec<f64> = points
        .par_chunks(dim)
        .zip(&assignment)
        .map(|(p, &c)| f64::from(dot(p, row(&centroids, dim, c as usize))))
        .collect();
    Clusters {
        k,
        centroids,
        assignment,
        cohesion: similarities.iter().sum(),
    }
}

fn row(m: &[f32], dim: usize, i: usize) -> &[f32] {
    &m[i * dim..(i + 1) * dim]
}

/// k-means++ seeding on unit vectors.
fn plus_plus_seeds(points: &[f32], dim: usize, k: usize, seed: u64) -> Vec<f32> {
    let n = points.len() / dim;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut chosen = vec![rng.random_range(0..n)];
    let distance = |i: usize, c: usize| {
        (2.0 - 2.0 * f64::from(dot(row(points, dim, i), row(points, dim, c)))).max(0.0)
    };
    let mut nearest: Vec<f64> = (0..n)
        .into_par_iter()
        .map(|i| distance(i, chosen[0]))
        .collect();
    while chosen.len() < k {
        let weights: Vec<f64> = nearest.iter().map(|d| d * d).collect();
        let total: f64 = weights.iter().sum();
        let next = if total > 0.0 {
            let mut target = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, w) in weights.iter().enumerate() {
                if target < *w {
                    pick = i;
                    break;
                }
                target -= w;
            }
            pick
        } else {
            // Every point coincides with a centroid: any unchosen point will do.
            (0..n).find(|i| !chosen.contains(i)).unwrap_or(0)
        };
        chosen.push(next);
        nearest
            .par_iter_mut()
            .with_min_len(MIN_POINTS_PER_TASK)
            .enumerate()
            .for_each(|(i, d)| *d = d.min(distance(i, next)));
    }
    chosen
        .iter()
        .flat_map(|&c| row(points, dim, c).iter().copied())
        .collect()
}

/// Nearest centroid (highest cosine) of every point; ties go to the lower cluster.
fn assign(points: &[f32], dim: usize, centroids: &[f32]) -> Vec<u32> {
    points
        .par_chunks(dim)
        .with_min_len(MIN_POINTS_PER_TASK)
        .map(|p| best_centroid(p, dim, centroids).0)
        .collect()
}

fn best_centroid(p: &[f32], dim: usize, centroids: &[f32]) -> (u32, f32) {
    let mut best = (0u32, f32::NEG_INFINITY);
    for (c, centroid) in centroids.chunks_exact(dim).enumerate() {
        let s = dot(p, centroid);
        if s > best.1 {
            best = (c as u32, s);
        }
    }
    best
}

/// Normalised member sums; an empty cluster takes the worst-served point instead.
fn update_centroids(
    points: &[f32],
    dim: usize,
    k: usize,
    assignment: &[u32],
    old: &[f32],
) -> Vec<f32> {
    let mut sums = vec![0f32; k * dim];
    let mut counts = vec![0usize; k];
    for (p, &c) in points.chunks_exact(dim).zip(assignment) {
        let c = c as usize;
        counts[c] += 1;
        sums[c * dim..(c + 1) * dim]
            .iter_mut()
            .zip(p)
            .for_each(|(s, x)| *s += x);
    }
    let mut worst = Vec::new().into_iter();
    if counts.contains(&0) {
        let mut fit: Vec<(f32, usize)> = points
            .chunks_exact(dim)
            .zip(assignment)
            .enumerate()
            .map(|(i, (p, &c))| (dot(p, row(old, dim, c as usize)), i))
            .collect();
        fit.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        worst = fit
            .into_iter()
            .map(|(_, i)| i)
            .collect::<Vec<_>>()
            .into_iter();
    }
    for (c, centroid) in sums.chunks_exact_mut(dim).enumerate() {
        if counts[c] == 0
            && let Some(i) = worst.next()
        {
            centroid.copy_from_slice(row(points, dim, i));
        }
        normalize(centroid);
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_directions_and_ignores_length() {
        // Three directions in 3-D, points at different lengths and with small noise.
        let mut v = Vec::new();
        for i in 0..30 {
            let scale = 1.0 + i as f32;
            let noise = (i % 3) as f32 * 0.01;
            match i % 3 {
                0 => v.extend([scale, noise, 0.0]),
                1 => v.extend([noise, scale, 0.0]),
                _ => v.extend([0.0, noise, scale]),
            }
        }
        let params = KMeansParams {
            k: 3,
            iterations: 20,
            restarts: 1,
            seed: 1,
        };
        let clusters = spherical_kmeans(&v, 3, &params);
        assert_eq!(clusters.k, 3);
        for i in 3..30 {
            assert_eq!(clusters.assignment[i], clusters.assignment[i % 3]);
        }
        let a = &clusters.assignment;
        assert!(a[0] != a[1] && a[1] != a[2] && a[0] != a[2]);
    }

    #[test]
    fn k_is_capped_by_the_number_of_points() {
        let params = KMeansParams {
            k: 5,
            iterations: 10,
            restarts: 2,
            seed: 0,
        };
        let clusters = spherical_kmeans(&[1.0, 0.0, 0.0, 1.0], 2, &params);
        assert_eq!(clusters.k, 2);
        assert_ne!(clusters.assignment[0], clusters.assignment[1]);
    }
}
