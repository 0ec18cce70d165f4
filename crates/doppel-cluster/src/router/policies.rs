//! `doppel.v1.Policies` on the router: the policy is stored in Redis (the cluster's source
//! of truth), then set on every live node so it applies to the next request everywhere.
//! A node that missed it follows the stored policy within a second (its manager reads it
//! every lease renewal); until then the call fails UNAVAILABLE naming the node, and a
//! retry is harmless (the same policy is set again).

use std::sync::Arc;

use doppel_grpc::convert::{contact_policy_from_pb, contact_policy_to_pb};
use doppel_grpc::status::store_status;
use doppel_proto::v1 as pb;
use doppel_proto::v1::policies_client::PoliciesClient;
use doppel_proto::v1::policies_server::Policies;
use doppel_store::Store;
use tonic::{Request, Response, Status};

use super::{DEFAULT_FORWARD_DEADLINE, Router, deadline_of, forward};

/// The router's Policies service.
pub struct RouterPolicies {
    router: Arc<Router>,
}

impl RouterPolicies {
    /// A service routing through `router`.
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

#[tonic::async_trait]
impl Policies for RouterPolicies {
    #[tracing::instrument(skip_all, fields(caps = request.get_ref().caps.len()))]
    async fn set_contact_policy(
        &self,
        request: Request<pb::ContactPolicy>,
    ) -> Result<Response<pb::ContactPolicy>, Status> {
        let deadline = deadline_of(&request, DEFAULT_FORWARD_DEADLINE);
        let policy = contact_policy_from_pb(request.into_inner())?;
        self.router
            .store
            .put_contact_policy(&policy)
            .await
            .map_err(store_status)?;
        let message = contact_policy_to_pb(policy);
        let mut missed = Vec::new();
        for node in &self.router.topology().nodes {
            let result = PoliciesClient::new(node.channel.clone())
                .set_contact_policy(forward(message.clone(), deadline))
                .await;
            if let Err(status) = result {
                tracing::warn!(node.id = %node.node_id, error = %status.message(), "node did not apply the contact policy; it follows the stored one");
                missed.push(node.node_id.clone());
            }
        }
        if !missed.is_empty() {
            return Err(Status::unavailable(format!(
                "contact policy stored, but nodes {} have not applied it yet; retry",
                missed.join(", ")
            )));
        }
        Ok(Response::new(message))
    }

    #[tracing::instrument(skip_all)]
    async fn get_contact_policy(
        &self,
        _request: Request<pb::GetContactPolicyRequest>,
    ) -> Result<Response<pb::ContactPolicy>, Status> {
        let policy = self
            .router
            .store
            .contact_policy()
            .await
            .map_err(store_status)?
            .unwrap_or_default();
        Ok(Response::new(contact_policy_to_pb(policy)))
    }
}
