//! Garbage collection of old model versions: after an activation, versions that were
//! retired (or failed) beyond the newest `keep_versions` are deleted — metadata and
//! vectors in the store, and this node's snapshot. Never the active version, the one a
//! rollback would return to, versions still arriving or building, or ready versions never
//! activated (someone imported them to activate later).

use doppel_types::{VersionInfo, VersionState};
use tonic::Status;

use crate::node::Node;
use crate::status::store_status;

/// The versions to delete from `versions` keeping the newest `keep` retired or failed ones
/// and everything in `protected`.
pub fn doomed(versions: &[VersionInfo], keep: usize, protected: &[&str]) -> Vec<String> {
    let mut old: Vec<&VersionInfo> = versions
        .iter()
        .filter(|v| matches!(v.state, VersionState::Retired | VersionState::Failed))
        .filter(|v| !protected.contains(&v.version.as_str()))
        .collect();
    old.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then_with(|| b.version.cmp(&a.version))
    });
    old.into_iter()
        .skip(keep)
        .map(|v| v.version.clone())
        .collect()
}

/// Deletes what [`doomed`] picks on `node` (no-op when `keep_versions` is 0: keep all).
pub async fn collect(node: &Node) -> Result<Vec<String>, Status> {
    let keep = node.config.keep_versions;
    if keep == 0 {
        return Ok(Vec::new());
    }
    let versions = node.store.list_versions().await.map_err(store_status)?;
    let active = node.engine.active_version().unwrap_or_default();
    let previous = node.engine.previous_version().unwrap_or_default();
    let doomed = doomed(&versions, keep, &[&active, &previous]);
    for version in &doomed {
        node.store
            .delete_version(version)
            .await
            .map_err(store_status)?;
        node.remove_snapshots(version);
        tracing::info!(model.version = %version, "old version deleted");
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, state: VersionState, created_ms: i64) -> VersionInfo {
        VersionInfo {
            version: name.into(),
            state,
            created_ms,
            ..Default::default()
        }
    }

    #[test]
    fn keeps_the_newest_old_versions_and_everything_protected_or_pending() {
        let versions = [
            v("a", VersionState::Retired, 1),
            v("b", VersionState::Retired, 2),
            v("c", VersionState::Failed, 3),
            v("d", VersionState::Retired, 4),
            v("e", VersionState::Ready, 0),
            v("f", VersionState::Building, 0),
            v("g", VersionState::Active, 5),
        ];
        assert_eq!(doomed(&versions, 2, &["g"]), ["b", "a"]);
        assert_eq!(doomed(&versions, 2, &["g", "a"]), ["b"]);
        assert!(doomed(&versions, 10, &[]).is_empty());
    }
}
