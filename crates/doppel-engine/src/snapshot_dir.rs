//! Where snapshots live, and the only code that deletes or replaces them.
//!
//! Version names come from clients. A name is checked by [`is_valid_version_name`], and
//! every path built from one is checked again here: it must be a single plain component
//! under the root.
//! Deletions resolve both paths and refuse anything that is not strictly below the root,
//! so no name, however it slipped through, can reach the data directory (a version named
//! `..` once emptied it).

use std::fs;
use std::path::{Component, Path, PathBuf};

use doppel_types::is_valid_version_name;

use crate::error::{Error, Result};

/// The snapshot directory of a node: `<root>/<version>/` for a version,
/// `<root>/<version>/shards/<nnnn>/` for one shard of it on a shard node.
#[derive(Clone, Debug)]
pub struct SnapshotRoot {
    root: PathBuf,
}

impl SnapshotRoot {
    /// Snapshots under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `<root>/<version>`; refused unless `version` is a valid version name, which makes it
    /// one plain, non-hidden path component.
    pub fn version_dir(&self, version: &str) -> Result<PathBuf> {
        let mut parts = Path::new(version).components();
        let plain = matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(_)), None)
        );
        if !plain || !is_valid_version_name(version) {
            return Err(Error::invalid(
                "model_version",
                format!("`{version}` cannot name a snapshot directory"),
            ));
        }
        Ok(self.root.join(version))
    }

    /// `<root>/<version>/shards/<nnnn>`.
    pub fn shard_dir(&self, version: &str, shard: u32) -> Result<PathBuf> {
        Ok(self
            .version_dir(version)?
            .join("shards")
            .join(format!("{shard:04}")))
    }

    /// Deletes `dir` and everything in it, only if it resolves to a directory strictly
    /// below the root; true if something was deleted, false if `dir` does not exist.
    pub fn remove(&self, dir: &Path) -> Result<bool> {
        let resolved = match dir.canonicalize() {
            Ok(resolved) => resolved,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(outside(dir, &format!("unreadable: {e}"))),
        };
        let root = self
            .root
            .canonicalize()
            .map_err(|e| outside(dir, &format!("root unreadable: {e}")))?;
        if resolved == root || !resolved.starts_with(&root) {
            return Err(outside(dir, "not below the snapshot root"));
        }
        fs::remove_dir_all(&resolved).map_err(|e| outside(dir, &e.to_string()))?;
        Ok(true)
    }
}

fn outside(dir: &Path, why: &str) -> Error {
    Error::FailedPrecondition(format!("snapshot directory {}: {why}", dir.display()))
}

/// The last component of `dir`, which must be plain and not hidden (what a snapshot
/// directory's name always is).
fn plain_name(dir: &Path) -> Result<&str> {
    match dir.components().next_back() {
        Some(Component::Normal(name)) => name
            .to_str()
            .filter(|n| !n.starts_with('.'))
            .ok_or_else(|| outside(dir, "hidden or non-UTF-8 name")),
        _ => Err(outside(dir, "not a plain directory name")),
    }
}

/// The temporary sibling a snapshot is written to before it is renamed into place:
/// `.tmp-<name>` (hidden, so no version name can collide with it; `dir.with_extension`
/// would map `v1` and `v1.2` to the same `v1.tmp`).
pub(crate) fn temp_sibling(dir: &Path) -> Result<PathBuf> {
    let name = plain_name(dir)?;
    let parent = dir.parent().ok_or_else(|| outside(dir, "no parent"))?;
    Ok(parent.join(format!(".tmp-{name}")))
}

/// Clears a stale temporary directory (always a `.tmp-` sibling made by [`temp_sibling`]).
pub(crate) fn clear_temp(tmp: &Path) -> Result<()> {
    let hidden = tmp
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(".tmp-"));
    if !hidden {
        return Err(outside(tmp, "not a temporary snapshot directory"));
    }
    match fs::remove_dir_all(tmp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(outside(tmp, &e.to_string())),
    }
}

/// Replaces `dir` by `tmp` (a finished snapshot): the old directory is removed only when
/// `dir` is a plain, non-hidden name, then `tmp` is renamed into place.
pub(crate) fn replace_with(tmp: &Path, dir: &Path) -> Result<()> {
    plain_name(dir)?;
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(outside(dir, &e.to_string())),
    }
    fs::rename(tmp, dir).map_err(|e| outside(dir, &e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_root_are_refused_and_removal_stays_below_it() {
        let data = tempfile::tempdir().expect("tempdir");
        let keep = data.path().join("doppel.redb");
        fs::write(&keep, b"data").expect("write");
        let root = SnapshotRoot::new(data.path().join("snapshots"));
        fs::create_dir_all(root.path()).expect("mkdir");
        for bad in ["..", ".", "../x", "a/b", "/etc", ".hidden", ""] {
            assert!(root.version_dir(bad).is_err(), "{bad:?} accepted");
        }
        assert!(root.remove(&root.path().join("..")).is_err());
        assert!(root.remove(root.path()).is_err());
        assert!(root.remove(data.path()).is_err());
        assert!(keep.exists(), "the data directory was touched");

        let v1 = root.version_dir("v1").expect("v1");
        fs::create_dir_all(v1.join("x")).expect("mkdir");
        assert!(root.remove(&v1).expect("remove"));
        assert!(!v1.exists());
        assert!(!root.remove(&v1).expect("gone"));

        assert!(temp_sibling(&root.path().join("..")).is_err());
        assert_ne!(
            temp_sibling(&root.version_dir("v1").expect("v1")).expect("tmp"),
            temp_sibling(&root.version_dir("v1.2").expect("v1.2")).expect("tmp")
        );
        assert!(clear_temp(&v1).is_err());
    }
}
