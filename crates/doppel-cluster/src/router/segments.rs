//! `doppel.v1.Segments` on the router: every node serving shards is asked the same
//! question and the answers are combined — sizes summed per segment, member pages merged in
//! id order — so the caller sees one segment list and one paging sequence, with the same
//! tokens a single node hands out (the last id of a page).
//!
//! A node that fails or misses the deadline is left out: the answer is partial, which
//! `shards_answered < shards_total` says. Only when no node answers is the call an error.

use std::collections::HashMap;
use std::sync::Arc;

use doppel_grpc::convert::{
    next_page_token, page_size_from_pb, page_token_from_pb, segment_from_pb, unknown_segment,
};
use doppel_proto::v1 as pb;
use doppel_proto::v1::segments_client::SegmentsClient;
use doppel_proto::v1::segments_server::Segments;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use doppel_types::segment::SEGMENT_KINDS;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use super::fan_out::{Answers, partial};
use super::{DEFAULT_FAN_OUT_DEADLINE, Router, deadline_of, forward};
use crate::topology::NodeHandle;

/// The router's Segments service.
pub struct RouterSegments {
    router: Arc<Router>,
}

impl RouterSegments {
    /// A service fanning out through `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

fn client(node: &NodeHandle) -> SegmentsClient<Channel> {
    SegmentsClient::new(node.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// Sums sizes per segment; ordered as a single node orders them: by kind, largest first,
/// then by name.
fn merge_sizes(answers: Vec<pb::ListSegmentsResponse>) -> Vec<pb::SegmentSize> {
    let mut sums: HashMap<(String, String), u64> = HashMap::new();
    for answer in answers {
        for size in answer.segments {
            let Some(pb::Segment { kind, name }) = size.segment else {
                continue;
            };
            *sums.entry((kind, name)).or_default() += size.customers;
        }
    }
    let mut sizes: Vec<((String, String), u64)> = sums.into_iter().collect();
    let rank = |kind: &str| {
        SEGMENT_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(SEGMENT_KINDS.len())
    };
    sizes.sort_by(|((ka, na), ca), ((kb, nb), cb)| {
        rank(ka)
            .cmp(&rank(kb))
            .then_with(|| ka.cmp(kb))
            .then_with(|| cb.cmp(ca))
            .then_with(|| na.cmp(nb))
    });
    sizes
        .into_iter()
        .map(|((kind, name), customers)| pb::SegmentSize {
            segment: Some(pb::Segment { kind, name }),
            customers,
        })
        .collect()
}

/// One page of members merged from the nodes' pages (each the `size` first ids after the
/// same token): the `size` smallest ids, with more to come if any node had more or the
/// merge overflowed. Returns the ids, the next token and the total.
fn merge_members(
    (kind, name): (&str, &str),
    answers: Vec<pb::ListSegmentMembersResponse>,
    size: usize,
) -> (Vec<String>, String, u64) {
    let mut ids = Vec::new();
    let mut more = false;
    let mut total = 0;
    for answer in answers {
        more |= !answer.next_page_token.is_empty();
        total += answer.total;
        ids.extend(answer.customer_ids);
    }
    ids.sort_unstable();
    // A customer moving between nodes may be listed by both for a moment.
    ids.dedup();
    more |= ids.len() > size;
    ids.truncate(size);
    let token = next_page_token(kind, name, more, ids.last());
    (ids, token, total)
}

#[tonic::async_trait]
impl Segments for RouterSegments {
    #[tracing::instrument(skip_all)]
    async fn list_segments(
        &self,
        request: Request<pb::ListSegmentsRequest>,
    ) -> Result<Response<pb::ListSegmentsResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FAN_OUT_DEADLINE);
        let message = request.into_inner();
        let Answers {
            answers,
            shards_answered,
        } = partial(&self.router, deadline, |node| {
            let mut client = client(node);
            let message = message.clone();
            async move { client.list_segments(forward(message, deadline)).await }
        })
        .await?;
        Ok(Response::new(pb::ListSegmentsResponse {
            segments: merge_sizes(answers),
            shards_answered,
            shards_total: self.router.shard_count,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_segment_members(
        &self,
        request: Request<pb::ListSegmentMembersRequest>,
    ) -> Result<Response<pb::ListSegmentMembersResponse>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FAN_OUT_DEADLINE);
        let message = request.into_inner();
        // Refused here, so a bad request is not mistaken for nodes that did not answer.
        let (kind, name) = segment_from_pb("segment", message.segment.clone())?;
        let size = page_size_from_pb(message.page_size)?;
        page_token_from_pb(&kind, &name, &message.page_token)?;
        let Answers {
            answers,
            shards_answered,
        } = partial(&self.router, deadline, |node| {
            let mut client = client(node);
            let message = message.clone();
            async move {
                client
                    .list_segment_members(forward(message, deadline))
                    .await
            }
        })
        .await?;
        let (customer_ids, next_page_token, total) =
            merge_members((&kind, &name), answers, size as usize);
        // Every node answered for its shards and none has a member (nodes that did not
        // answer are in `shards_answered`).
        if total == 0 && shards_answered == self.router.shard_count {
            return Err(unknown_segment(&kind, &name));
        }
        Ok(Response::new(pb::ListSegmentMembersResponse {
            customer_ids,
            next_page_token,
            total,
            shards_answered,
            shards_total: self.router.shard_count,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(list: &[(&str, &str, u64)]) -> pb::ListSegmentsResponse {
        pb::ListSegmentsResponse {
            segments: list
                .iter()
                .map(|(kind, name, customers)| pb::SegmentSize {
                    segment: Some(pb::Segment {
                        kind: (*kind).to_owned(),
                        name: (*name).to_owned(),
                    }),
                    customers: *customers,
                })
                .collect(),
            ..Default::default()
        }
    }

    fn page(ids: &[&str], more: bool, total: u64) -> pb::ListSegmentMembersResponse {
        let customer_ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        pb::ListSegmentMembersResponse {
            next_page_token: next_page_token("rfm", "lost", more, customer_ids.last()),
            customer_ids,
            total,
            ..Default::default()
        }
    }

    #[test]
    fn sizes_sum_per_segment_in_single_node_order() {
        let merged = merge_sizes(vec![
            sizes(&[
                ("clv", "high", 5),
                ("rfm", "champions", 1),
                ("rfm", "lost", 1),
            ]),
            sizes(&[
                ("rfm", "lost", 3),
                ("cluster", "2", 9),
                ("rfm", "champions", 3),
            ]),
        ]);
        let got: Vec<(String, String, u64)> = merged
            .into_iter()
            .map(|s| {
                let seg = s.segment.unwrap_or_default();
                (seg.kind, seg.name, s.customers)
            })
            .collect();
        let want = [
            ("rfm", "champions", 4),
            ("rfm", "lost", 4),
            ("clv", "high", 5),
            ("cluster", "2", 9),
        ];
        let want: Vec<(String, String, u64)> = want
            .iter()
            .map(|(k, n, c)| ((*k).to_owned(), (*n).to_owned(), *c))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn member_pages_merge_in_id_order() {
        let (ids, token, total) = merge_members(
            ("rfm", "lost"),
            vec![page(&["a", "c"], true, 4), page(&["b", "d"], false, 2)],
            2,
        );
        assert_eq!(ids, vec!["a", "b"]);
        assert_eq!(
            page_token_from_pb("rfm", "lost", &token).ok().flatten(),
            Some("b".to_owned())
        );
        assert!(page_token_from_pb("rfm", "champions", &token).is_err());
        assert_eq!(total, 6);
    }

    #[test]
    fn the_last_merged_page_has_no_token() {
        let (ids, token, _) = merge_members(
            ("rfm", "lost"),
            vec![page(&["a"], false, 1), page(&["b"], false, 1)],
            2,
        );
        assert_eq!(ids, vec!["a", "b"]);
        assert!(token.is_empty());
        let (_, token, _) = merge_members(
            ("rfm", "lost"),
            vec![page(&["a", "c"], true, 3), page(&[], false, 0)],
            2,
        );
        assert_eq!(
            page_token_from_pb("rfm", "lost", &token).ok().flatten(),
            Some("c".to_owned())
        );
    }
}
