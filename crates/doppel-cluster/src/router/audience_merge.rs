//! The k-way merge of an audience fan-out: the nodes' best-first score streams become the
//! client's stream of batches, pulled page by page only as far as the audience needs.
//!
//! Not `doppel_index::merge_top_k`: that one merges in-memory lists of index points (ties
//! by point id); this one merges async streams of prospects (ties by customer id), pulls
//! pages lazily under a deadline, drops a node that fails mid-merge, and sends batches as
//! it goes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use doppel_engine::fairness::audit;
use doppel_engine::{Groups, Strategy};
use doppel_grpc::convert::{group_audit_to_pb, strategy_to_pb};
use doppel_proto::v1 as pb;
use doppel_types::limits::LOOKALIKE_PAGE_SIZE;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::Status;

use super::score_streams::{Cursor, Ranked, ranked};

/// The audience-wide fields of the stream: the first batch's, and what the last batch's
/// audit and means are computed from.
pub(super) struct Header {
    pub(super) version: String,
    pub(super) strategy: Strategy,
    pub(super) ignored: Vec<String>,
    pub(super) population: u64,
    pub(super) shards_total: u32,
    /// The eligible per group value (no attributes: no audit).
    pub(super) groups: Groups,
    /// The mean score of the unbalanced audience, when the one sent is balanced.
    pub(super) mean_score_unbalanced: Option<f32>,
}

/// A heap entry: best score first, then smallest id.
struct Head {
    ranked: Ranked,
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
        let (a, b) = (&self.ranked.prospect, &other.ranked.prospect);
        a.score
            .total_cmp(&b.score)
            .then_with(|| b.customer_id.cmp(&a.customer_id))
    }
}

/// The k-way merge of the nodes' sorted streams, pulled one prospect at a time.
pub(super) struct Merger {
    cursors: Vec<Option<Cursor>>,
    heap: BinaryHeap<Head>,
    finished: Vec<u32>,
    deadline: Instant,
}

impl Merger {
    /// Starts the merge over the opened cursors (each holding its first page).
    pub(super) async fn start(cursors: Vec<Cursor>, deadline: Instant) -> Self {
        let mut merger = Self {
            cursors: cursors.into_iter().map(Some).collect(),
            heap: BinaryHeap::new(),
            finished: Vec::new(),
            deadline,
        };
        for i in 0..merger.cursors.len() {
            merger.refill(i).await;
        }
        merger
    }

    /// The next prospect in global order (score, then customer id); `None` when every
    /// stream is spent.
    pub(super) async fn next(&mut self) -> Option<Ranked> {
        let Head { ranked, cursor } = self.heap.pop()?;
        self.refill(cursor).await;
        Some(ranked)
    }

    /// True when no prospect is left.
    pub(super) fn is_spent(&self) -> bool {
        self.heap.is_empty()
    }

    /// Shards answered so far: those of live and cleanly finished streams.
    pub(super) fn answered(&self) -> u32 {
        self.cursors.iter().flatten().map(|c| c.shards).sum::<u32>()
            + self.finished.iter().sum::<u32>()
    }

    /// Puts cursor `i`'s next prospect on the heap; a spent or failed cursor is retired, its
    /// shards counted as answered only if it ended cleanly.
    async fn refill(&mut self, i: usize) {
        match self.advance(i).await {
            Some(ranked) => self.heap.push(Head { ranked, cursor: i }),
            None => self
                .finished
                .extend(self.cursors[i].take().map(|c| c.shards)),
        }
    }

    /// The next prospect of cursor `i`, pulling its next page when the current one is
    /// spent. A node that fails or misses the deadline is dropped (its shards no longer
    /// count).
    async fn advance(&mut self, i: usize) -> Option<Ranked> {
        let cursor = self.cursors[i].as_mut()?;
        loop {
            if let Some(p) = cursor.page.next() {
                return Some(p);
            }
            match tokio::time::timeout_at(self.deadline, cursor.stream.message()).await {
                Ok(Ok(Some(page))) => match ranked(page, &cursor.translate) {
                    Ok(page) => cursor.page = page,
                    Err(status) => {
                        tracing::warn!(error = %status.message(), "a node's score page is malformed; its shards are left out");
                        self.cursors[i] = None;
                        return None;
                    }
                },
                Ok(Ok(None)) => return None,
                Ok(Err(status)) => {
                    tracing::warn!(error = %status.message(), "a node's score stream broke; its shards are left out");
                    self.cursors[i] = None;
                    return None;
                }
                Err(_) => {
                    tracing::warn!(
                        "a node's score stream missed the deadline; its shards are left out"
                    );
                    self.cursors[i] = None;
                    return None;
                }
            }
        }
    }
}

/// Sends `first` (prospects already pulled, in order), then the merge's next ones, `n` in
/// all at most, to the client in pages. The first batch carries the audience-wide fields;
/// the last the audit of what was sent and its mean score.
pub(super) async fn send(
    mut merger: Merger,
    first: Vec<Ranked>,
    n: usize,
    header: Header,
    tx: mpsc::Sender<Result<pb::LookalikeBatch, Status>>,
) {
    let Header {
        version,
        strategy,
        ignored,
        population,
        shards_total,
        groups,
        mean_score_unbalanced,
    } = header;
    let mut first_page_fields = Some((ignored, population));
    let mut first = first.into_iter();
    let width = groups.attributes().len();
    let mut codes: Vec<u32> = Vec::new();
    let mut score_sum = 0.0f64;
    let mut batch_index = 0u32;
    let mut sent = 0usize;
    let mut page = Vec::with_capacity(LOOKALIKE_PAGE_SIZE.min(n));
    loop {
        let next = match first.next() {
            Some(r) => Some(r),
            None if sent < n => merger.next().await,
            None => None,
        };
        if let Some(Ranked {
            prospect,
            groups: values,
        }) = next
        {
            codes.extend(values.iter().take(width));
            score_sum += f64::from(prospect.score);
            page.push(prospect);
            sent += 1;
        }
        let done = sent >= n || (first.len() == 0 && merger.is_spent());
        if page.len() == LOOKALIKE_PAGE_SIZE || done {
            let mut batch = pb::LookalikeBatch {
                prospects: std::mem::take(&mut page),
                model_version: version.clone(),
                shards_answered: merger.answered(),
                shards_total,
                strategy_used: strategy_to_pb(strategy) as i32,
                batch_index,
                ..Default::default()
            };
            if let Some((ignored, population)) = first_page_fields.take() {
                batch.ignored_seed_ids = ignored;
                batch.eligible_population = population;
            }
            if done {
                let mean = if sent == 0 {
                    0.0
                } else {
                    (score_sum / sent as f64) as f32
                };
                batch.mean_score = mean;
                batch.mean_score_unbalanced = mean_score_unbalanced.unwrap_or(mean);
                batch.audit = audit(&groups, &codes)
                    .into_iter()
                    .map(group_audit_to_pb)
                    .collect();
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
            ranked: Ranked {
                prospect: pb::Prospect {
                    customer_id: id.to_owned(),
                    score,
                    ..Default::default()
                },
                groups: Vec::new(),
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
            .map(|h| h.ranked.prospect.customer_id)
            .collect();
        assert_eq!(order, ["c", "10", "a", "b", "z"]);
    }
}
