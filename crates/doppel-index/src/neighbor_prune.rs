//! hnswlib's diversity (RNG) heuristic for neighbour lists, and the layer-0 re-prune after a
//! build.
//!
//! A candidate is kept only if it is closer to the node than to every neighbour already kept
//! (the relative neighbourhood rule), so links spread out and walks cross between clusters.
//! After the layer-0 inserts every node's list is chosen again from its own links plus its
//! reverse links, closest first, and free slots are filled with the rejected candidates.

use rayon::prelude::*;

use crate::aligned_rows::AlignedRows;
use crate::simd_dot::ScoreFn;

/// At most this many candidates (closest first) are considered per node.
const MAX_CANDIDATES_PER_SLOT: usize = 3;

/// Re-prunes the layer-0 blocks (`[count, links..]`, stride `1 + m0`) in place: a node's new
/// list depends only on its own old list and its reverse links (gathered first), so no second
/// copy of the adjacency is held.
pub(crate) fn reprune_layer0(
    rows: &AlignedRows,
    score: ScoreFn,
    links0: &mut [u32],
    m0: usize,
    fill: bool,
) {
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
    links0.par_chunks_mut(s0).enumerate().for_each_init(
        || {
            (
                Vec::<u32>::new(),
                Vec::<(f32, u32)>::new(),
                Vec::<(f32, u32)>::new(),
                Vec::<(f32, u32)>::new(),
            )
        },
        |(ids, cand, kept, pruned), (i, block)| {
            cand.clear();
            kept.clear();
            pruned.clear();
            let row = rows.row(i);
            let own = &block[1..=block[0] as usize];
            // Ids first (sorted, deduplicated: a hub can have thousands of reverse links),
            // then their scores.
            ids.clear();
            ids.extend(own.iter().chain(&rev[start[i]..start[i + 1]]));
            ids.sort_unstable();
            ids.dedup();
            for &c in ids.iter() {
                if c as usize != i {
                    cand.push((score(row, rows.row(c as usize)), c));
                }
            }
            cand.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            cand.truncate(MAX_CANDIDATES_PER_SLOT * m0);
            select_diverse(rows, score, cand, m0, fill, kept, pruned);
            block[0] = kept.len() as u32;
            for (slot, &(_, c)) in block[1..].iter_mut().zip(kept.iter()) {
                *slot = c;
            }
        },
    );
}

/// Keeps up to `max` of `cand` (sorted closest first, `(score to the node, node)`) by the
/// diversity rule: a candidate is kept only if it is closer to the node than to every one
/// already kept. With `fill`, the free slots are then topped up with the rejected candidates,
/// closest first. `kept` and `pruned` are cleared first.
pub(crate) fn select_diverse(
    rows: &AlignedRows,
    score: ScoreFn,
    cand: &[(f32, u32)],
    max: usize,
    fill: bool,
    kept: &mut Vec<(f32, u32)>,
    pruned: &mut Vec<(f32, u32)>,
) {
    kept.clear();
    pruned.clear();
    for &(s, c) in cand {
        if kept.len() == max {
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
            if kept.len() == max {
                break;
            }
            kept.push(p);
        }
    }
}
