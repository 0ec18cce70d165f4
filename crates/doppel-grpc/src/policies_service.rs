//! `doppel.v1.Policies`: the contact policy (frequency caps on offers).

use std::sync::Arc;

use doppel_node::Node;
use doppel_proto::v1 as pb;
use doppel_proto::v1::policies_server::Policies;
use tonic::{Request, Response, Status};

use crate::convert::{contact_policy_from_pb, contact_policy_to_pb};
use crate::status::node_status;

/// The Policies service.
pub struct PoliciesService {
    node: Arc<Node>,
}

impl PoliciesService {
    /// A service over `node`.
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

#[tonic::async_trait]
impl Policies for PoliciesService {
    #[tracing::instrument(skip_all, fields(caps = request.get_ref().caps.len()))]
    async fn set_contact_policy(
        &self,
        request: Request<pb::ContactPolicy>,
    ) -> Result<Response<pb::ContactPolicy>, Status> {
        let policy = contact_policy_from_pb(request.into_inner())?;
        let policy = self
            .node
            .set_contact_policy(policy)
            .await
            .map_err(node_status)?;
        Ok(Response::new(contact_policy_to_pb(policy)))
    }

    #[tracing::instrument(skip_all)]
    async fn get_contact_policy(
        &self,
        _request: Request<pb::GetContactPolicyRequest>,
    ) -> Result<Response<pb::ContactPolicy>, Status> {
        Ok(Response::new(contact_policy_to_pb(
            self.node.contact_policy(),
        )))
    }
}
