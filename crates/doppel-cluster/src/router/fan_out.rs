//! Fan-outs from a router to its shard nodes: [`on_nodes`] when every answer is needed
//! (activation), [`partial`] when the nodes that answered make the answer (listings,
//! descriptions) and their shards say how complete it is.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Code, Response, Status};

use super::Router;
use crate::topology::NodeHandle;

/// Calls every node in `nodes` in parallel within `deadline`; answers in node order.
pub async fn on_nodes<R, F, Fut>(
    nodes: &[Arc<NodeHandle>],
    deadline: Duration,
    call: F,
) -> Vec<Result<R, Status>>
where
    F: Fn(&NodeHandle) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let calls = nodes.iter().map(|node| {
        let call = call(node);
        async move {
            match tokio::time::timeout(deadline, call).await {
                Ok(answer) => answer.map(Response::into_inner),
                Err(_) => Err(Status::deadline_exceeded("node missed the deadline")),
            }
        }
    });
    futures::future::join_all(calls).await
}

/// Calls every live node but `done` in parallel within `deadline` (after one node made a
/// change, the others apply it); the failures as "node: message", empty when all answered.
pub async fn on_other_nodes<R, F, Fut>(
    router: &Router,
    done: &str,
    deadline: Duration,
    call: F,
) -> Vec<String>
where
    F: Fn(&NodeHandle) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let others: Vec<Arc<NodeHandle>> = router
        .topology()
        .nodes
        .iter()
        .filter(|n| n.node_id != done)
        .cloned()
        .collect();
    let answers = on_nodes(&others, deadline, call).await;
    others
        .iter()
        .zip(answers)
        .filter_map(|(node, answer)| {
            answer
                .err()
                .map(|s| format!("{}: {}", node.node_id, s.message()))
        })
        .collect()
}

/// The nodes' answers to one fan-out.
pub struct Answers<R> {
    /// In node order.
    pub answers: Vec<R>,
    /// Logical shards held by the nodes that answered.
    pub shards_answered: u32,
}

/// Asks every node serving shards, in parallel, within `deadline`, for a partial answer:
/// a node that fails or misses the deadline is logged and left out.
pub async fn partial<R, F, Fut>(
    router: &Router,
    deadline: Duration,
    call: F,
) -> Result<Answers<R>, Status>
where
    F: Fn(&NodeHandle) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let nodes = router.topology().shards_by_node();
    if nodes.is_empty() {
        return Err(Status::unavailable("no shard node is live; retry shortly"));
    }
    let handles: Vec<Arc<NodeHandle>> = nodes.iter().map(|(node, _)| Arc::clone(node)).collect();
    let results = on_nodes(&handles, deadline, call).await;
    let mut out = Answers {
        answers: Vec::with_capacity(nodes.len()),
        shards_answered: 0,
    };
    let mut failures = Vec::new();
    for ((node, shards), answer) in nodes.iter().zip(results) {
        match answer {
            Ok(answer) => {
                out.answers.push(answer);
                out.shards_answered += shards.len() as u32;
            }
            Err(status) => {
                tracing::warn!(node.id = %node.node_id, code = ?status.code(), error = %status.message(), "node left out of the answer");
                failures.push((node.node_id.clone(), status));
            }
        }
    }
    if out.answers.is_empty() {
        return Err(no_answer(failures));
    }
    Ok(out)
}

/// The error when no node answered: a refusal of the request itself is the caller's (every
/// node would refuse it alike); anything else is UNAVAILABLE.
fn no_answer(failures: Vec<(String, Status)>) -> Status {
    let mut failures = failures.into_iter();
    let Some((node, first)) = failures.next() else {
        return Status::unavailable("no shard node answered; retry shortly");
    };
    match first.code() {
        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition | Code::OutOfRange => {
            first
        }
        _ => Status::unavailable(format!(
            "no shard node answered (node {node}: {}{}); retry shortly",
            first.message(),
            match failures.len() {
                0 => String::new(),
                n => format!(", and {n} more"),
            }
        )),
    }
}
