//! The latent taste space: one random unit centroid per taste cluster, and members drawn
//! as unit vectors around their centroid.

use rand::Rng;
use rand_distr::StandardNormal;

/// Norm of the noise added to a centroid (centroids are unit length). Random centroids in
/// 32 dimensions are nearly orthogonal, so this keeps members closest to their own cluster
/// while leaving visible spread inside it.
pub const MEMBER_NOISE: f32 = 0.6;

/// `tastes` random unit centroids of dimension `dim`.
pub fn centroids<R: Rng>(rng: &mut R, tastes: usize, dim: usize) -> Vec<Vec<f32>> {
    (0..tastes)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
            normalize_or_axis(&mut v);
            v
        })
        .collect()
}

/// A unit vector around `centroid`: `normalise(centroid + noise)` with noise of expected
/// norm `noise`.
pub fn member<R: Rng>(rng: &mut R, centroid: &[f32], noise: f32) -> Vec<f32> {
    let scale = noise / (centroid.len().max(1) as f32).sqrt();
    let mut v: Vec<f32> = centroid
        .iter()
        .map(|c| c + scale * rng.sample::<f32, _>(StandardNormal))
        .collect();
    normalize_or_axis(&mut v);
    v
}

/// Normalises in place; a (practically impossible) zero vector becomes the first axis so
/// every generated vector is a valid unit vector.
fn normalize_or_axis(v: &mut [f32]) {
    if doppel_types::normalize_in_place(v).is_err() {
        v.iter_mut().for_each(|x| *x = 0.0);
        if let Some(first) = v.first_mut() {
            *first = 1.0;
        }
    }
}
