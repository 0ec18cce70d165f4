//! What both rounds of an audience fan-out share: the node parts they call, the shard
//! client, how a node's failure is classified, and the "version moved" outcome.

use std::sync::Arc;

use doppel_proto::internal::v1::shard_client::ShardClient;
use doppel_types::limits::MAX_MESSAGE_BYTES;
use tonic::Status;

use crate::topology::NodeHandle;

/// One node of the fan-out and the shards it answers for.
pub(super) struct Part {
    pub(super) node: Arc<NodeHandle>,
    pub(super) shards: Vec<u32>,
}

/// How a round ended when it did not fail.
pub(super) enum Round<T> {
    /// The round finished with this.
    Done(T),
    /// Some node no longer has the pinned version: start again with the pointer's.
    VersionMoved,
}

/// The internal shard client of `node`, sized for the largest messages.
pub(super) fn client(node: &NodeHandle) -> ShardClient<tonic::transport::Channel> {
    ShardClient::new(node.channel.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A node's failure that leaves it out of the answer (rather than failing the request).
pub(super) fn leaves_node_out(status: &Status) -> bool {
    match status.code() {
        tonic::Code::InvalidArgument | tonic::Code::ResourceExhausted => false,
        tonic::Code::NotFound => status.message().starts_with("model_version"),
        // The request cannot be answered (an audited attribute with too many values): the
        // client gets that, not a partial answer.
        tonic::Code::FailedPrecondition => status.message().starts_with("model_version"),
        _ => true,
    }
}

/// The node no longer has the pinned version (the pointer moved meanwhile).
pub(super) fn version_missing(status: &Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::NotFound | tonic::Code::FailedPrecondition
    ) && status.message().starts_with("model_version")
}
