//! Start-up reconciliation of versions a crash left unfinished, so none stays `staging` or
//! `building` forever and none can be activated half-built.
//!
//! ```text
//! staging  (import cut off)                         ──► failed, vectors dropped
//! building, no vectors stored (training cut off)    ──► failed, vectors dropped
//! building, every vector stored (index build cut)   ──► build resumed ──► ready
//!                                                                   └──► failed (why)
//! ```
//! Only a single node runs this: a shard node shares its store with live nodes that may
//! be importing or training right now.

use std::sync::Arc;

use doppel_types::{VersionInfo, VersionState};

use crate::error::Result;
use crate::node::Node;

/// Marks interrupted versions failed or resumes their builds in the background.
pub async fn reconcile(node: &Arc<Node>) -> Result<()> {
    for info in node.store.list_versions().await? {
        match info.state {
            VersionState::Staging => {
                fail(node, info, "import interrupted before its stream ended").await?;
            }
            VersionState::Building if info.customer_count == 0 || info.item_count == 0 => {
                fail(
                    node,
                    info,
                    "interrupted before its vectors were stored (training or import cut off)",
                )
                .await?;
            }
            VersionState::Building => {
                tracing::warn!(model.version = %info.version, "index build was interrupted; resuming it");
                let node = Arc::clone(node);
                tokio::spawn(async move { resume(&node, info).await });
            }
            VersionState::Ready
            | VersionState::Active
            | VersionState::Retired
            | VersionState::Failed => {}
        }
    }
    Ok(())
}

/// Drops the version's vectors and records it as failed with `reason` (its name can be
/// reused once it is deleted).
async fn fail(node: &Node, mut info: VersionInfo, reason: &str) -> Result<()> {
    tracing::warn!(model.version = %info.version, reason, "unfinished version marked failed");
    node.store.delete_version(&info.version).await?;
    info.fail(reason);
    Ok(node.store.put_version(info).await?)
}

/// Builds the indexes of a version whose vectors are all stored, then marks it ready.
async fn resume(node: &Node, mut info: VersionInfo) {
    let Some(_writing) = node.start_writing(&info.version) else {
        return;
    };
    let outcome = match node.ensure_loaded(&info.version).await {
        Ok(_) => {
            info.state = VersionState::Ready;
            node.store.put_version(info.clone()).await
        }
        Err(e) => {
            info.fail(format!("resumed index build failed: {e}"));
            node.store.put_version(info.clone()).await
        }
    };
    match outcome {
        Ok(()) => {
            tracing::info!(model.version = %info.version, state = info.state.name(), "interrupted version reconciled")
        }
        Err(e) => {
            tracing::error!(model.version = %info.version, error = %e, "interrupted version not reconciled")
        }
    }
}
