//! Serving a router: the public `doppel.v1` services over the cluster, with the same health,
//! reflection, metrics and drain as a single node ([`serve_public`]), and the topology
//! refreshed in the background.

use std::sync::Arc;

use doppel_grpc::server::{PublicServices, ServeError, ServeOptions, serve_public};
use tokio::net::TcpListener;

use crate::LEASE_RENEW_EVERY;
use crate::router::Router;
use crate::router::audiences::RouterAudiences;
use crate::router::experiments::RouterExperiments;
use crate::router::ingest::RouterIngest;
use crate::router::model_admin::RouterModelAdmin;
use crate::router::policies::RouterPolicies;
use crate::router::recommendations::RouterRecommendations;
use crate::router::segments::RouterSegments;

/// The public services of a router, each bounded to `max` bytes per message.
pub fn router_routes(router: &Arc<Router>, max: usize) -> tonic::service::Routes {
    PublicServices {
        ingest: RouterIngest::new(Arc::clone(router)),
        model_admin: RouterModelAdmin::new(Arc::clone(router)),
        audiences: RouterAudiences::new(Arc::clone(router)),
        recommendations: RouterRecommendations::new(Arc::clone(router)),
        segments: RouterSegments::new(Arc::clone(router)),
        policies: RouterPolicies::new(Arc::clone(router)),
        experiments: RouterExperiments::new(Arc::clone(router)),
    }
    .routes(max)
}

/// Serves the public API of the cluster on `listener` until `shutdown` resolves, then
/// drains in-flight RPCs for up to the grace period.
pub async fn run(
    listener: TcpListener,
    router: Arc<Router>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let refresher = router.spawn_refresher(LEASE_RENEW_EVERY);
    let routes = router_routes(&router, options.max_message_bytes);
    // Administrative calls through this router are recorded in the shared store.
    let store: Arc<dyn doppel_store::Store> = Arc::new(router.store.clone());
    let options = ServeOptions {
        audit: options
            .audit
            .clone()
            .or(Some(doppel_grpc::audit_log::AuditSink::new(store))),
        ..options
    };
    // A router holds no store of its own: its health is NOT_SERVING until every shard
    // first had a live owner (so a load balancer does not send writes that could only
    // fail), then SERVING until drain.
    let result = serve_public(
        listener,
        routes,
        &options,
        Some(router.readiness()),
        shutdown,
    )
    .await;
    refresher.abort();
    if let Some(audit) = &options.audit {
        audit.drain(std::time::Duration::from_secs(5)).await;
    }
    tracing::info!("router drained");
    result
}
