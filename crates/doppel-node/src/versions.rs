//! The version lifecycle a client drives: imports, activation, rollback, listing and
//! describing. (Training is in `training`, deletion and garbage collection in
//! `version_gc`, crash recovery in `version_recovery`.)
//!
//! ```text
//! staging ──► building ──► ready ──► active ──► retired
//!    │            │                    ▲  │
//!    └────────────┴──► failed          └──┘ (rollback re-activates a retired version)
//! ```

use doppel_engine::SCAN_VECTORS_PARAM;
use std::collections::HashSet;
use std::time::Instant;

use doppel_engine::IndexDescription;
use doppel_types::clock::now_ms;
use doppel_types::{Entity, VersionInfo, VersionSource, VersionState};

use crate::error::{Error, Result};
use crate::node::{Node, WritingGuard};

/// What an import stored and built.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportSummary {
    /// The version.
    pub version: String,
    /// Customer vectors stored.
    pub customers: u64,
    /// Item vectors stored.
    pub items: u64,
    /// Customer rows dropped because the customer was erased.
    pub erased_skipped: u64,
    /// From the end of the stream to the version being ready.
    pub build_seconds: f64,
}

/// An import in progress: rows arrive with [`ImportSession::add_rows`], then
/// [`ImportSession::finish`] builds the indexes; [`ImportSession::fail`] (or an error from
/// either) leaves the version failed with its vectors dropped.
pub struct ImportSession<'a> {
    node: &'a Node,
    info: VersionInfo,
    summary: ImportSummary,
    customers: HashSet<String>,
    items: HashSet<String>,
    _writing: WritingGuard<'a>,
}

/// One version as `DescribeVersion` shows it.
#[derive(Debug)]
pub struct VersionView {
    /// Stored metadata.
    pub info: VersionInfo,
    /// Built in memory here.
    pub loaded: bool,
    /// Serving here.
    pub active: bool,
    /// Its indexes, when loaded.
    pub index: Option<IndexDescription>,
    /// `(done, total)` points of a build running here.
    pub build: Option<(u64, u64)>,
    /// Serving as the running canary.
    pub canary: bool,
}

impl Node {
    /// Starts importing `version` with vectors of dimension `dim` (customer scans reading
    /// int8 codes when `int8_scan`); refused when the name exists or is being written.
    pub async fn begin_import(
        &self,
        version: &str,
        dim: u32,
        int8_scan: bool,
    ) -> Result<ImportSession<'_>> {
        let writing = self.start_writing(version).ok_or_else(|| {
            Error::AlreadyExists(format!(
                "model_version: `{version}` is being written by another import or training run"
            ))
        })?;
        if self.store.get_version(version).await?.is_some() {
            return Err(Error::FailedPrecondition(format!(
                "model_version: `{version}` already exists; versions are immutable"
            )));
        }
        let info = VersionInfo {
            version: version.to_owned(),
            dim,
            source: VersionSource::Imported,
            state: VersionState::Staging,
            created_ms: now_ms(),
            params: if int8_scan {
                [(SCAN_VECTORS_PARAM.to_owned(), "int8".to_owned())].into()
            } else {
                Default::default()
            },
            ..Default::default()
        };
        self.store.put_version(info.clone()).await?;
        Ok(ImportSession {
            node: self,
            summary: ImportSummary {
                version: version.to_owned(),
                ..Default::default()
            },
            info,
            customers: HashSet::new(),
            items: HashSet::new(),
            _writing: writing,
        })
    }

    /// Makes `version` the active one: it must be ready (or active / retired before) with
    /// customers and items; it is built first if needed. Returns the previous active
    /// version. Old versions beyond `keep_versions` are then collected.
    pub async fn activate(&self, version: &str) -> Result<Option<String>> {
        self.version_info(version)
            .await?
            .check_activatable()
            .map_err(Error::FailedPrecondition)?;
        let mut info = self.ensure_loaded(version).await?;
        let switch = self.switching.lock().await;
        let previous = self.store.active_version().await?;
        // The store's pointer is the durable truth; the engine swaps right after it.
        self.store.set_active_version(version).await?;
        self.engine.activate(version)?;
        drop(switch);
        info.state = VersionState::Active;
        self.store.put_version(info).await?;
        if let Some(prev) = previous.as_deref().filter(|p| *p != version)
            && let Some(mut prev_info) = self.store.get_version(prev).await?
        {
            prev_info.state = VersionState::Retired;
            self.store.put_version(prev_info).await?;
        }
        tracing::info!(
            model.version = version,
            previous = previous.as_deref().unwrap_or(""),
            "version activated"
        );
        if let Err(e) = crate::version_gc::collect(self).await {
            tracing::warn!(error = %e, "old versions not collected; next activation retries");
        }
        Ok(previous)
    }

    /// Switches this node's engine to `version` (loaded first if needed) without touching
    /// the store: a router's activation, after one node flipped the store's pointer.
    pub async fn switch_to(&self, version: &str) -> Result<()> {
        self.ensure_loaded(version).await?;
        let _switch = self.switching.lock().await;
        self.engine.activate(version)?;
        Ok(())
    }

    /// Follows the store's active-version pointer: loads and activates it when the engine
    /// serves another one. The pointer is read again under the switch lock, so a follower
    /// that read it before an activation flipped it never switches back. Returns the version
    /// switched to, if any.
    pub async fn follow_active_pointer(&self) -> Result<Option<String>> {
        let Some(active) = self.store.active_version().await? else {
            return Ok(None);
        };
        if self.engine.active_version().as_deref() == Some(active.as_str()) {
            return Ok(None);
        }
        self.ensure_loaded(&active).await?;
        let _switch = self.switching.lock().await;
        if self.store.active_version().await?.as_deref() != Some(active.as_str()) {
            return Ok(None);
        }
        self.engine.activate(&active)?;
        Ok(Some(active))
    }

    /// The version a rollback re-activates, or FAILED_PRECONDITION when none is loaded.
    pub fn rollback_target(&self) -> Result<String> {
        self.engine.previous_version().ok_or_else(|| {
            Error::FailedPrecondition(
                "no previous version is loaded to roll back to (activate a second version first)"
                    .into(),
            )
        })
    }

    /// Every version (oldest first) and the active one.
    pub async fn list_versions(&self) -> Result<(Vec<VersionInfo>, Option<String>)> {
        let mut versions = self.store.list_versions().await?;
        versions.sort_by(|a, b| {
            a.created_ms
                .cmp(&b.created_ms)
                .then(a.version.cmp(&b.version))
        });
        Ok((versions, self.store.active_version().await?))
    }

    /// One version: its metadata, and what this node holds of it.
    pub async fn describe_version(&self, version: &str) -> Result<VersionView> {
        let info = self.version_info(version).await?;
        let loaded = self.engine.loaded_versions().iter().any(|v| v == version);
        let index = if loaded {
            Some(self.engine.describe(Some(version))?)
        } else {
            None
        };
        Ok(VersionView {
            active: self.engine.active_version().as_deref() == Some(version),
            info,
            loaded,
            index,
            build: self.build_progress(version),
            canary: self.canary_version().as_deref() == Some(version),
        })
    }

    /// Deletes `version` (see [`crate::version_gc::delete`]); returns the state it was in
    /// (`None`: only this node's copy was left).
    pub async fn delete_version(&self, version: &str) -> Result<Option<VersionState>> {
        crate::version_gc::delete(self, version).await
    }
}

impl ImportSession<'_> {
    /// Stores one chunk of rows of `entity`. An id seen before in this import (per
    /// entity) is refused as `ids[i]`, `i` its position in `rows`.
    pub async fn add_rows(&mut self, entity: Entity, rows: Vec<(String, Vec<f32>)>) -> Result<()> {
        let seen = match entity {
            Entity::Customer => &mut self.customers,
            Entity::Item => &mut self.items,
        };
        for (i, (id, _)) in rows.iter().enumerate() {
            if !seen.insert(id.clone()) {
                return Err(Error::invalid(
                    format!("ids[{i}]"),
                    format!("`{id}` appears twice in this import; every id once per entity"),
                ));
            }
        }
        let offered = rows.len() as u64;
        let stored = self
            .node
            .store
            .put_vectors(&self.info.version, entity, rows)
            .await? as u64;
        match entity {
            Entity::Customer => {
                self.summary.customers += stored;
                self.summary.erased_skipped += offered - stored;
            }
            Entity::Item => self.summary.items += stored,
        }
        Ok(())
    }

    /// The stream ended: builds the indexes and marks the version ready. The build is
    /// timed from here, so a client that sent slowly does not inflate it.
    pub async fn finish(mut self) -> Result<ImportSummary> {
        let started = Instant::now();
        let outcome = self.build().await;
        match outcome {
            Ok(()) => {
                self.summary.build_seconds = started.elapsed().as_secs_f64();
                tracing::info!(
                    model.version = %self.info.version,
                    customers = self.summary.customers,
                    items = self.summary.items,
                    "embeddings imported"
                );
                Ok(self.summary)
            }
            Err(e) => {
                self.fail(&e.to_string()).await;
                Err(e)
            }
        }
    }

    async fn build(&mut self) -> Result<()> {
        let store = &self.node.store;
        self.info.customer_count = self.summary.customers;
        self.info.item_count = self.summary.items;
        if let Err(missing) = self.info.check_vectors() {
            return Err(Error::FailedPrecondition(format!(
                "{missing} (erased customers do not count); nothing was built"
            )));
        }
        self.info.state = VersionState::Building;
        store.put_version(self.info.clone()).await?;
        // Build before marking ready, so a version listed as ready can be activated.
        self.node.ensure_loaded(&self.info.version).await?;
        self.info.state = VersionState::Ready;
        store.put_version(self.info.clone()).await?;
        Ok(())
    }

    /// A half-imported version is never activated: its vectors are dropped and it is
    /// recorded as failed with `reason`.
    pub async fn fail(&self, reason: &str) {
        self.node
            .mark_failed(&self.info.version, &format!("import failed: {reason}"))
            .await;
    }
}
