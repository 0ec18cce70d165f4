//! `ModelAdmin.Train` at the edge: the node runs a [`TrainPlan`] (made from the request by
//! `convert::plan_from_pb`), and its progress becomes a stream of `TrainProgress`.

use std::pin::Pin;
use std::sync::Arc;

use doppel_node::{Node, TrainPlan};
use doppel_proto::v1 as pb;
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::convert::progress_to_pb;
use crate::status::node_status;

/// The progress stream of one training run.
pub type TrainStream = Pin<Box<dyn Stream<Item = Result<pb::TrainProgress, Status>> + Send>>;

/// Starts a training run on `node`; its progress as a gRPC stream.
pub async fn start(node: Arc<Node>, plan: TrainPlan) -> Result<TrainStream, Status> {
    let progress = node.start_training(plan).await.map_err(node_status)?;
    Ok(Box::pin(
        ReceiverStream::new(progress).map(|p| p.map(progress_to_pb).map_err(node_status)),
    ))
}
