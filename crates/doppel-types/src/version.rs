//! Model versions: one training run or one import of customer and item vectors.
//!
//! ```text
//! staging ──► building ──► ready ──► active ──► retired
//!    │            │                    ▲  │
//!    └────────────┴──► failed          └──┘ (rollback re-activates a retired version)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Longest model version name, in bytes.
pub const MAX_VERSION_LEN: usize = 128;

/// What a model version name must look like (the reason a bad one is refused).
pub const VERSION_NAME_RULE: &str =
    "must be 1..=128 characters of [A-Za-z0-9._-] starting with a letter or digit";

/// Checks a model version name: 1..=[`MAX_VERSION_LEN`] bytes of `[A-Za-z0-9._-]`, the
/// first a letter or digit. A name becomes a directory (`snapshots/<version>/`) and part
/// of store keys, so `.`, `..`, hidden names and separators are refused here, once, for
/// every caller; paths built from it are checked again where they are made.
pub fn is_valid_version_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_VERSION_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Where a version's vectors come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionSource {
    /// Brought by the client through `ImportEmbeddings`.
    #[default]
    Imported,
    /// Learned by doppel from the event log.
    Trained,
}

/// Lifecycle state of a model version.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionState {
    /// Vectors are arriving.
    #[default]
    Staging,
    /// Indexes are being built.
    Building,
    /// Indexes built, may be activated.
    Ready,
    /// Serving queries.
    Active,
    /// Was active, superseded.
    Retired,
    /// Import or build failed; never activated.
    Failed,
}

/// Metadata of a model version, as stored and listed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Client-chosen or generated name, e.g. `v20261122-1`.
    pub version: String,
    /// Vector dimension (same for customers and items).
    pub dim: u32,
    /// Imported or trained.
    pub source: VersionSource,
    /// Lifecycle state.
    pub state: VersionState,
    /// Creation time, ms since the Unix epoch.
    pub created_ms: i64,
    /// Number of customer vectors.
    pub customer_count: u64,
    /// Number of item vectors.
    pub item_count: u64,
    /// Hyper-parameters and other free-form metadata.
    pub params: BTreeMap<String, String>,
}

/// The `params` key that says why a version failed.
pub const FAILURE_REASON: &str = "failure_reason";

impl VersionInfo {
    /// Marks the version failed, recording why in `params[FAILURE_REASON]`.
    pub fn fail(&mut self, reason: impl Into<String>) {
        self.state = VersionState::Failed;
        self.params.insert(FAILURE_REASON.to_owned(), reason.into());
    }

    /// Can this version be activated? Only one whose indexes were built completely
    /// (ready, or active / retired before) and that has both customers and items; the
    /// error says what is missing.
    pub fn check_activatable(&self) -> Result<(), String> {
        let name = &self.version;
        match self.state {
            VersionState::Ready | VersionState::Active | VersionState::Retired => {}
            VersionState::Staging | VersionState::Building | VersionState::Failed => {
                let why = self
                    .params
                    .get(FAILURE_REASON)
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                return Err(format!(
                    "model_version: `{name}` is {}{why}; only a ready version can be activated",
                    self.state.name()
                ));
            }
        }
        self.check_vectors()
    }

    /// A version needs customer vectors (for audiences) and item vectors (for offers);
    /// the error says which are missing.
    pub fn check_vectors(&self) -> Result<(), String> {
        let name = &self.version;
        match (self.customer_count, self.item_count) {
            (0, 0) => Err(format!(
                "model_version: `{name}` has no customer vectors and no item vectors"
            )),
            (0, _) => Err(format!("model_version: `{name}` has no customer vectors")),
            (_, 0) => Err(format!("model_version: `{name}` has no item vectors")),
            _ => Ok(()),
        }
    }
}

impl VersionState {
    /// The lower-case name clients see (`staging`, `building`, ...).
    pub fn name(self) -> &'static str {
        match self {
            VersionState::Staging => "staging",
            VersionState::Building => "building",
            VersionState::Ready => "ready",
            VersionState::Active => "active",
            VersionState::Retired => "retired",
            VersionState::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_that_could_become_other_paths_are_refused() {
        for bad in [
            "", ".", "..", ".hidden", "-v1", "_v1", "a/b", "a\\b", "v 1", "v1\n", "v1\0",
        ] {
            assert!(!is_valid_version_name(bad), "{bad:?} accepted");
        }
        assert!(!is_valid_version_name(&"a".repeat(MAX_VERSION_LEN + 1)));
        for good in ["v1", "1", "v1.2", "v20261122-1", "A_b.c-d", "v..1"] {
            assert!(is_valid_version_name(good), "{good:?} refused");
        }
        assert!(is_valid_version_name(&"a".repeat(MAX_VERSION_LEN)));
    }

    #[test]
    fn only_complete_ready_versions_are_activatable() {
        let mut info = VersionInfo {
            version: "v1".into(),
            state: VersionState::Building,
            ..Default::default()
        };
        assert!(
            info.check_activatable()
                .is_err_and(|e| e.contains("building"))
        );
        info.state = VersionState::Ready;
        assert!(
            info.check_activatable()
                .is_err_and(|e| e.contains("no customer vectors"))
        );
        info.customer_count = 3;
        assert!(
            info.check_activatable()
                .is_err_and(|e| e.contains("no item vectors"))
        );
        info.item_count = 2;
        assert!(info.check_activatable().is_ok());
        info.fail("interrupted");
        assert!(
            info.check_activatable()
                .is_err_and(|e| e.contains("interrupted"))
        );
    }
}
