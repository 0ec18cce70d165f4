//! Re-prunes layer-0 neighbour lists with hnswlib's diversity (RNG) heuristic.
//!
//! hnsw_rs keeps the closest links of an overflowing list, which clusters the links of a node
//! in one direction and costs recall. After the freeze every node's candidates are its hnsw_rs
//! links plus its reverse links; they are taken closest first and a candidate is kept only
//! if it is closer to the node than to every neighbour already kept (the relative
//! neighbourhood rule), so links spread out and walks cross between clusters.

use rayon::prelude::*;

use crate::aligned_rows::AlignedRows;
use crate::simd_dot::ScoreFn;

/// At most this many candidates (closest first) are considered per node.
const MAX_CANDIDATES_PER_SLOT: usize = 3;

/// Returns new layer-0 blocks (`[count, links..]`, stride `1 + m0`).
pub(crate) fn reprune_layer0(
    rows: &AlignedRows,
    score: ScoreFn,
    links0: &[u32],
    m0: usize,
    fill: bool,
) -> Vec<u32> {
    let n = rows.len();
    let s0 = 1 + m0;
    let links = |i: usize| {
        let b = &links0[i * s0..(i + 1) * s0];
        &b[1..=b[0] as usize]
    };
    // Reverse adjacency in CSR form.
    let mut start = vec![0usize; n + 1];
    for i in 0..n {
        for &j in links(i) {
            start[j as usize + 1] += 1;
        }
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill_at = start.clone();
    let mut rev = vec![0u32; start[n]];
    for i in 0..n {
        for &j in links(i) {
            rev[fill_at[j as usize]] = i as u32;
            fill_at[j as usize] += 1;
        }
    }
    let mut out = vec![0u32; n * s0];
    out.par_chunks_mut(s0).enumerate().for_each_init(
        || {
            (
                Vec::<(f32, u32)>::new(),
                Vec::<(f32, u32)>::new(),
                Vec::<(f32, u32)>::new(),
            )
        },
        |(cand, kept, pruned), (i, block)| {
            cand.clear();
            kept.clear();
            pruned.clear();
            let row = rows.row(i);
            for &c in links(i).iter().chain(&rev[start[i]..start[i + 1]]) {
                if c as usize != i && !cand.iter().any(|&(_, x)| x == c) {
                    cand.push((score(row, rows.row(c as usize)), c));
                }
            }
            cand.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            cand.truncate(MAX_CANDIDATES_PER_SLOT * m0);
            for &(s, c) in cand.iter() {
                if kept.len() == m0 {
                    break;
                }
                let crow = rows.row(c as usize);
                if kept
                    .iter()
                    .all(|&(_, t)| score(crow, rows.row(t as usize)) <= s)
                {
                    kept.push((s, c));
                } else {
                    pruned.push((s, c));
                }
            }
            if fill {
                for &p in pruned.iter() {
                    if kept.len() == m0 {
                        break;
                    }
                    kept.push(p);
                }
            }
            block[0] = kept.len() as u32;
            for (slot, &(_, c)) in block[1..].iter_mut().zip(kept.iter()) {
                *slot = c;
            }
        },
    );
    out
}
