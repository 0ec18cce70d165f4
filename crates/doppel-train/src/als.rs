//! Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with conjugate-gradient row solves.
//!
//! Each iteration fixes the item factors and re-solves every customer, then fixes the
//! customer factors and re-solves every item; each row solve is a few warm-started CG
//! steps (module `conjugate_gradient`). Rows are solved in parallel with rayon.
//!
//! Determinism: the initial vectors come from one seeded RNG drawn in a fixed order
//! (customers, then items, row-major); a row's solve reads only the fixed side and its own
//! previous vector; every reduction (Gram matrix, loss) sums in a fixed order. So the same
//! data and seed give bit-identical factors on any number of threads.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::als_params::AlsParams;
use crate::conjugate_gradient::{CgScratch, FixedSide, RowSystem, solve_row};
use crate::dense::dot;
use crate::error::{Error, Result};
use crate::gram::Gram;
use crate::interactions::Interactions;
use crate::model::Model;
use crate::sparse_rows::SparseRows;

/// Initial components are uniform in `±INIT_SCALE / 2`: small, so the first solves are
/// driven by the data and the regulariser rather than by the noise.
const INIT_SCALE: f32 = 0.02;
/// Rows handed to a rayon task at least; keeps scheduling overhead off short rows.
const MIN_ROWS_PER_TASK: usize = 32;

/// Progress after one iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainStep {
    /// Iterations done, 1-based.
    pub iteration: usize,
    /// Iterations in total.
    pub iterations: usize,
    /// Confidence-weighted squared error plus the L2 penalty, divided by the total
    /// confidence of all cells (`None` unless [`AlsParams::compute_loss`]).
    pub loss: Option<f64>,
    /// Time since training started.
    pub elapsed: Duration,
}

/// A progress callback that ignores its reports.
pub fn no_progress(_: TrainStep) {}

/// Trains customer and item factors on `data`; `progress` is called on the calling thread
/// after every iteration.
pub fn train(
    data: &Interactions,
    params: &AlsParams,
    progress: &dyn Fn(TrainStep),
) -> Result<Model> {
    params.validate()?;
    if data.nnz() == 0 {
        return Err(Error::NoInteractions);
    }
    let pool = match params.threads {
        0 => None,
        n => Some(
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| Error::ThreadPool(e.to_string()))?,
        ),
    };
    let f = params.factors;
    let mut rng = StdRng::seed_from_u64(params.seed);
    let mut customers = initial_factors(&mut rng, data.customer_ids().len() * f);
    let mut items = initial_factors(&mut rng, data.item_ids().len() * f);

    let start = Instant::now();
    for iteration in 1..=params.iterations {
        let mut sweep = || {
            half_step(&mut customers, &items, data.by_customer(), params);
            half_step(&mut items, &customers, data.by_item(), params);
            params
                .compute_loss
                .then(|| loss(&customers, &items, data.by_customer(), params))
        };
        let loss = match &pool {
            Some(pool) => pool.install(sweep),
            None => sweep(),
        };
        progress(TrainStep {
            iteration,
            iterations: params.iterations,
            loss,
            elapsed: start.elapsed(),
        });
    }
    Ok(Model {
        factors: f,
        customer_ids: data.customer_ids().to_vec(),
        item_ids: data.item_ids().to_vec(),
        customer_factors: customers,
        item_factors: items,
    })
}

fn initial_factors(rng: &mut StdRng, len: usize) -> Vec<f32> {
    (0..len)
        .map(|_| (rng.random::<f32>() - 0.5) * INIT_SCALE)
        .collect()
}

/// Re-solves every row of `solved` against the fixed `other` side.
fn half_step(solved: &mut [f32], other: &[f32], rows: &SparseRows, params: &AlsParams) {
    let f = params.factors;
    let weights = params.solve_weights();
    // One penalty for every row goes into the shared matrix; frequency-scaled ones per row.
    let shared = if weights.regularization_exponent == 0.0 {
        weights.regularization
    } else {
        0.0
    };
    let gram = Gram::new(other, f).scaled_f32(weights.unobserved_weight, shared);
    let fixed = FixedSide {
        gram: &gram,
        unobserved: weights.unobserved_weight,
        factors: other,
        dim: f,
    };
    let columns_total = rows.cols();
    solved
        .par_chunks_mut(f)
        .with_min_len(MIN_ROWS_PER_TASK)
        .enumerate()
        .for_each_init(
            || CgScratch::new(f),
            |scratch, (row, x)| {
                let (columns, confidences) = rows.row(row);
                let penalty = if shared == 0.0 {
                    weights.row_penalty(columns.len(), columns_total)
                } else {
                    0.0
                };
                let system = RowSystem {
                    columns,
                    confidences,
                    penalty,
                };
                solve_row(&fixed, &system, x, params.cg_steps, scratch);
            },
        );
}

/// `Σ_u Σ_i w_ui (p_ui − x_u·y_i)² + Σ_u λ_u|x_u|² + Σ_i λ_i|y_i|²` over the total weight
/// `Σ w_ui`, where `w` is the confidence on stored cells and α₀ elsewhere. The dense part is
/// `α₀ xᵀ(YᵀY)x` per row, plus a correction on the stored cells, so it costs about one CG
/// step.
fn loss(customers: &[f32], items: &[f32], rows: &SparseRows, params: &AlsParams) -> f64 {
    let f = params.factors;
    let weights = params.solve_weights();
    let a0 = f64::from(weights.unobserved_weight);
    let gram = Gram::new(items, f);
    let g = gram.values();
    let (n_customers, n_items) = (rows.rows(), rows.cols());
    let per_row: Vec<f64> = customers
        .par_chunks(f)
        .with_min_len(MIN_ROWS_PER_TASK)
        .enumerate()
        .map(|(row, x)| {
            let mut dense = 0f64;
            for (j, &xj) in x.iter().enumerate() {
                let gx: f64 = g[j * f..(j + 1) * f]
                    .iter()
                    .zip(x)
                    .map(|(&gjk, &xk)| gjk * f64::from(xk))
                    .sum();
                dense += f64::from(xj) * gx;
            }
            let (columns, confidences) = rows.row(row);
            let sparse: f64 = columns
                .iter()
                .zip(confidences)
                .map(|(&i, &c)| {
                    let y = &items[i as usize * f..(i as usize + 1) * f];
                    let s = f64::from(dot(x, y));
                    f64::from(c) * (1.0 - s) * (1.0 - s) - a0 * s * s
                })
                .sum();
            let penalty = f64::from(weights.row_penalty(columns.len(), n_items));
            a0 * dense + sparse + penalty * f64::from(dot(x, x))
        })
        .collect();
    // An item's observed cells, for its frequency-scaled penalty.
    let mut item_counts = vec![0usize; n_items];
    for row in 0..n_customers {
        for &i in rows.row(row).0 {
            item_counts[i as usize] += 1;
        }
    }
    let item_penalty: f64 = items
        .chunks_exact(f)
        .zip(&item_counts)
        .map(|(y, &n)| f64::from(weights.row_penalty(n, n_customers)) * f64::from(dot(y, y)))
        .sum();
    let total: f64 = per_row.iter().sum::<f64>() + item_penalty;
    let cells = n_customers as f64 * n_items as f64;
    let weight = a0 * cells + rows.value_sum() - a0 * rows.nnz() as f64;
    total / weight
}
