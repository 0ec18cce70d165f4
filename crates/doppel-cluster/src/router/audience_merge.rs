//! The k-way merge of an audience fan-out: the nodes' best-first score streams become the
//! client's stream of batches, pulled page by page only as far as the audience needs.
//!
//! Not `doppel_index::merge_top_k`: that one merges in-memory lists of index points (ties
//! by point id); this one merges async streams of prospects (ties by customer id), pulls
//! pages lazily under a deadline, drops a node that fails mid-merge, and sends batches as
//! it goes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use doppel_engine::Strategy;
use doppel_grpc::convert::strategy_to_pb;
use doppel_proto::v1 as pb;
use doppel_types::limits::LOOKALIKE_PAGE_SIZE;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

use super::score_streams::Cursor;

/// The audience-wide fields sent in the first batch.
pub(super) struct Header {
    pub(super) version: String,
    pub(super) strategy: Strategy,
    pub(super) ignored: Vec<String>,
    pub(super) population: u64,
    pub(super) shards_total: u32,
}

/// A heap entry: best score first, then smallest id.
struct Head {
    prospect: pb::Prospect,
    cursor: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prospect
            .score
            .total_cmp(&other.prospect.score)
            .then_with(|| other.prospect.customer_id.cmp(&self.prospect.customer_id))
    }
}

/// The next prospect of cursor `i`, pulling its next page when the current one is spent.
/// A node that fails or misses the deadline is dropped (its shards no longer count).
async fn advance(
    cursors: &mut [Option<Cursor>],
    i: usize,
    deadline: Instant,
) -> Option<pb::Prospect> {
    let cursor = cursors[i].as_mut()?;
    loop {
        if let Some(p) = cursor.page.next() {
            return Some(p);
        }
        match tokio::time::timeout_at(deadline, cursor.stream.message()).await {
            Ok(Ok(Some(page))) => cursor.page = page.prospects.into_iter(),
            Ok(Ok(None)) => return None,
            Ok(Err(status)) => {
                tracing::warn!(error = %status.message(), "a node's score stream broke; its shards are left out");
                cursors[i] = None;
                return None;
            }
            Err(_) => {
                tracing::warn!(
                    "a node's score stream missed the deadline; its shards are left out"
                );
                cursors[i] = None;
                return None;
            }
        }
    }
}

fn answered(cursors: &[Option<Cursor>], finished: &[u32]) -> u32 {
    cursors.iter().flatten().map(|c| c.shards).sum::<u32>() + finished.iter().sum::<u32>()
}

/// Puts cursor `i`'s next prospect on the heap; a spent or failed cursor is retired, its
/// shards counted as answered only if it ended cleanly.
async fn refill(
    heap: &mut BinaryHeap<Head>,
    cursors: &mut [Option<Cursor>],
    finished: &mut Vec<u32>,
    i: usize,
    deadline: Instant,
) {
    match advance(cursors, i, deadline).await {
        Some(prospect) => heap.push(Head {
            prospect,
            cursor: i,
        }),
        None => finished.extend(cursors[i].take().map(|c| c.shards)),
    }
}

/// Merges the nodes' sorted streams into the client's stream, `n` prospects at most,
/// pulling each node's next page only when the merge reaches it.
pub(super) async fn merge(
    mut cursors: Vec<Option<Cursor>>,
    n: usize,
    header: Header,
    deadline: Instant,
    tx: mpsc::Sender<Result<pb::LookalikeBatch, Status>>,
) {
    let Header {
        version,
        strategy,
        ignored,
        population,
        shards_total,
    } = header;
    let mut first_page_fields = Some((ignored, population));
    let mut heap = BinaryHeap::new();
    let mut finished = Vec::new();
    for i in 0..cursors.len() {
        refill(&mut heap, &mut cursors, &mut finished, i, deadline).await;
    }
    let mut batch_index = 0u32;
    let mut sent = 0usize;
    let mut page = Vec::with_capacity(LOOKALIKE_PAGE_SIZE.min(n));
    loop {
        let next = if sent < n { heap.pop() } else { None };
        let done = next.is_none();
        if let Some(Head { prospect, cursor }) = next {
            page.push(prospect);
            sent += 1;
            refill(&mut heap, &mut cursors, &mut finished, cursor, deadline).await;
        }
        if page.len() == LOOKALIKE_PAGE_SIZE || (done && (!page.is_empty() || batch_index == 0)) {
            let mut batch = pb::LookalikeBatch {
                prospects: std::mem::take(&mut page),
                model_version: version.clone(),
                shards_answered: answered(&cursors, &finished),
                shards_total,
                strategy_used: strategy_to_pb(strategy) as i32,
                batch_index,
                ..Default::default()
            };
            if let Some((ignored, population)) = first_page_fields.take() {
                batch.ignored_seed_ids = ignored;
                batch.eligible_population = population;
            }
            batch_index += 1;
            if tx.send(Ok(batch)).await.is_err() {
                tracing::debug!("client went away; audience stream stopped");
                return;
            }
        }
        if done {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_pop_best_score_first_then_smallest_customer_id() {
        let head = |id: &str, score: f32, cursor: usize| Head {
            prospect: pb::Prospect {
                customer_id: id.to_owned(),
                score,
                ..Default::default()
            },
            cursor,
        };
        let mut heap = BinaryHeap::from([
            head("b", 0.5, 0),
            head("c", 0.9, 1),
            head("a", 0.5, 2),
            head("10", 0.5, 1),
            head("z", -0.1, 0),
        ]);
        let order: Vec<String> = std::iter::from_fn(|| heap.pop())
            .map(|h| h.prospect.customer_id)
            .collect();
        assert_eq!(order, ["c", "10", "a", "b", "z"]);
    }
}
