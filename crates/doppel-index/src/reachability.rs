//! Makes every node reachable over layer 0 from the entry point after the re-prune.
//!
//! The diversity rule can leave a node that nobody links to: in a tight cluster every
//! neighbour may prefer others, and the reverse-link re-prunes can drop a node's only incoming
//! link. Such a node is never returned by a search. Each round walks layer 0 from the entry
//! and gives every unreached node an incoming link: from one of its own neighbours that is
//! reached, else from the closest reached nodes a search finds, else from the entry. The link
//! takes a free slot or replaces the last link of that node whose target has another incoming
//! link from a reached node (a target repaired in the same round is never replaced). Rounds
//! repeat until every node is reached; the nodes still unreached after the last round are
//! counted and reported by the build.

use crate::aligned_rows::AlignedRows;
use crate::graph_view::{GraphArrays, GraphView};
use crate::types::Metric;
use crate::upper_layers::UpperLayers;
use crate::visited::with_scratch;

/// Rounds of walk + repair (each repairs every node reachable from the last repairs).
const MAX_ROUNDS: usize = 8;
/// Search breadth used to find a reached node close to an isolated one.
const REPAIR_EF: usize = 64;

/// What a repair did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Repair {
    /// Links added.
    pub(crate) added: usize,
    /// Nodes still unreachable from the entry afterwards (0 unless [`MAX_ROUNDS`] ran out).
    pub(crate) unreachable: usize,
}

/// Adds incoming links until every node is reachable from the entry over layer 0 (or
/// [`MAX_ROUNDS`] rounds pass).
pub(crate) fn repair_reachability(
    vectors: &AlignedRows,
    metric: Metric,
    m: usize,
    layers: &mut UpperLayers,
) -> Repair {
    let n = vectors.len();
    let entry = layers.entry;
    let s0 = 1 + 2 * m;
    let mut repair = Repair::default();
    for round in 0..=MAX_ROUNDS {
        let reached = reachable_from(&layers.links0, s0, n, entry);
        let unreached: Vec<u32> = (0..n as u32).filter(|&u| !reached[u as usize]).collect();
        if unreached.is_empty() || round == MAX_ROUNDS {
            repair.unreachable = unreached.len();
            break;
        }
        // Incoming links from reached nodes only: a link from an unreached node keeps nobody
        // reachable.
        let mut in_degree = vec![0u32; n];
        for (src, block) in layers.links0.chunks_exact(s0).enumerate() {
            if reached[src] {
                for &l in &block[1..=block[0] as usize] {
                    in_degree[l as usize] += 1;
                }
            }
        }
        // Candidate sources are found first (read-only), then one of them links each node.
        let sources: Vec<(u32, Vec<u32>)> = {
            let links0 = &layers.links0;
            // SAFETY: the build's blocks hold in-range links with counts ≤ 2m, and the upper
            // layers come from `upper_layers`.
            let view = unsafe {
                GraphView::new_unchecked(GraphArrays {
                    metric,
                    m,
                    vectors,
                    levels: &layers.levels,
                    links0,
                    upper_start: &layers.upper_start,
                    upper: &layers.upper,
                    entry,
                })
            };
            unreached
                .iter()
                .map(|&u| {
                    let b = &links0[u as usize * s0..(u as usize + 1) * s0];
                    let mut from: Vec<u32> = b[1..=b[0] as usize]
                        .iter()
                        .copied()
                        .filter(|&v| reached[v as usize])
                        .collect();
                    let mut found = with_scratch(|s| {
                        view.search(vectors.row(u as usize), REPAIR_EF, s, |v| {
                            reached[v as usize]
                        })
                    });
                    found.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.idx.cmp(&b.idx)));
                    from.extend(found.iter().map(|s| s.idx));
                    from.push(entry);
                    (u, from)
                })
                .collect()
        };
        let mut changed = false;
        for (u, from) in sources {
            for v in from {
                let b = &mut layers.links0[v as usize * s0..(v as usize + 1) * s0];
                let count = b[0] as usize;
                if b[1..=count].contains(&u) {
                    continue;
                }
                if count < 2 * m {
                    b[count + 1] = u;
                    b[0] += 1;
                } else if let Some(slot) = (1..=count).rev().find(|&i| in_degree[b[i] as usize] > 1)
                {
                    in_degree[b[slot] as usize] -= 1;
                    b[slot] = u;
                } else {
                    continue;
                }
                // Exactly one incoming link from a reached node: never replaced this round.
                in_degree[u as usize] = 1;
                repair.added += 1;
                changed = true;
                break;
            }
        }
        if !changed {
            repair.unreachable = unreached.len();
            break;
        }
    }
    repair
}

/// Nodes reachable from `entry` over layer 0.
fn reachable_from(links0: &[u32], s0: usize, n: usize, entry: u32) -> Vec<bool> {
    let mut reached = vec![false; n];
    if n == 0 {
        return reached;
    }
    let mut stack = vec![entry];
    reached[entry as usize] = true;
    while let Some(i) = stack.pop() {
        let b = &links0[i as usize * s0..(i as usize + 1) * s0];
        for &l in &b[1..=b[0] as usize] {
            if !reached[l as usize] {
                reached[l as usize] = true;
                stack.push(l);
            }
        }
    }
    reached
}
