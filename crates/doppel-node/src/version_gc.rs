//! Deleting model versions: on request ([`delete`], `ModelAdmin.DeleteVersion`), and by
//! garbage collection after an activation, where versions that were retired (or failed)
//! beyond the newest `keep_versions` are deleted — metadata and vectors in the store, and
//! this node's snapshot. Never the active version, the one a rollback would return to,
//! versions still arriving or building, or (by collection) ready versions never activated
//! (someone imported them to activate later).

use doppel_types::{VersionInfo, VersionState};

use crate::error::{Error, Result};
use crate::node::Node;

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

/// Deletes `version` on request: its metadata and vectors in the store, its indexes in
/// memory and its snapshots. Refused for the active version, the rollback target and a
/// version an import, training run or build is writing here; NOT_FOUND when neither the
/// store nor this node knows it. Returns the state it was in (`None` when only this node's
/// copy was left: another node of the cluster deleted it from the store first).
pub async fn delete(node: &Node, version: &str) -> Result<Option<VersionState>> {
    let info = node.store.get_version(version).await?;
    let stored_active = node.store.active_version().await?;
    if node.engine.active_version().as_deref() == Some(version)
        || stored_active.as_deref() == Some(version)
    {
        return Err(Error::FailedPrecondition(format!(
            "model_version: `{version}` is the active version; activate another one first"
        )));
    }
    if node.engine.previous_version().as_deref() == Some(version) {
        return Err(Error::FailedPrecondition(format!(
            "model_version: `{version}` is the version a rollback would return to; activate \
             another one first"
        )));
    }
    if node.engine.pinned_versions().iter().any(|p| p == version) {
        return Err(Error::FailedPrecondition(format!(
            "model_version: `{version}` serves an arm of a running experiment; stop it first"
        )));
    }
    if node.is_working_on(version) {
        return Err(Error::FailedPrecondition(format!(
            "model_version: `{version}` is being imported, trained or built here; wait for it \
             to finish or fail"
        )));
    }
    let unloaded = node.engine.unload_version(version)?;
    node.fold_in.write().remove(version);
    node.remove_snapshots(version);
    let Some(info) = info else {
        return if unloaded {
            // Only this node's copy was left (a router asks every node).
            Ok(None)
        } else {
            Err(Error::NotFound(format!(
                "model_version: `{version}` not found"
            )))
        };
    };
    node.store.delete_version(version).await?;
    tracing::info!(model.version = %version, state = info.state.name(), "version deleted");
    Ok(Some(info.state))
}

/// Deletes what [`doomed`] picks on `node` (no-op when `keep_versions` is 0: keep all).
pub async fn collect(node: &Node) -> Result<Vec<String>> {
    let keep = node.config.keep_versions;
    if keep == 0 {
        return Ok(Vec::new());
    }
    let versions = node.store.list_versions().await?;
    let active = node.engine.active_version().unwrap_or_default();
    let previous = node.engine.previous_version().unwrap_or_default();
    let pinned = node.engine.pinned_versions();
    let mut protected: Vec<&str> = vec![&active, &previous];
    protected.extend(pinned.iter().map(String::as_str));
    let doomed = doomed(&versions, keep, &protected);
    for version in &doomed {
        node.store.delete_version(version).await?;
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
