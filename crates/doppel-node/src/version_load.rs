//! Building a version's indexes in memory: from its snapshot when there is a good one,
//! else from the store's vectors (with build progress others can read); and its context
//! model, from the store.

use std::sync::Arc;

use doppel_engine::LoadVersion;
use doppel_types::{Entity, VersionInfo, VersionState};

use crate::build_progress::BuildProgress;
use crate::error::{Error, Result, blocking};
use crate::node::Node;
use crate::store_pages;

impl Node {
    /// The stored metadata of `version`, or NOT_FOUND.
    pub async fn version_info(&self, version: &str) -> Result<VersionInfo> {
        self.store
            .get_version(version)
            .await?
            .ok_or_else(|| Error::NotFound(format!("model_version: `{version}` not found")))
    }

    /// Makes sure `version` is built in memory, loading its vectors from the store.
    pub async fn ensure_loaded(&self, version: &str) -> Result<VersionInfo> {
        let info = self.version_info(version).await?;
        if matches!(info.state, VersionState::Failed | VersionState::Staging) {
            return Err(Error::FailedPrecondition(format!(
                "model_version: `{version}` is {}, not ready",
                info.state.name()
            )));
        }
        if self.engine.loaded_versions().iter().any(|v| v == version) {
            return Ok(info);
        }
        let _one_load = self.loading.lock().await;
        if self.engine.loaded_versions().iter().any(|v| v == version) {
            return Ok(info);
        }
        // Deleted while this load waited its turn: nothing to build.
        let info = self.version_info(version).await?;
        let item_vectors = self.all_vectors(version, Entity::Item).await?;
        if let Some(model) = doppel_train::recorded_params::fold_in_model(&info, &item_vectors) {
            self.fold_in
                .write()
                .insert(version.to_owned(), Arc::new(model));
        }
        // Staged before the load, so the version is never listed without it.
        let context = self.store.context_model(version).await?;
        self.engine.set_context_model(version, context.as_ref());
        let single = self.placement.serves_everyone();
        // A shard node snapshots shard by shard, as it takes shards over.
        if single && self.load_snapshot(&info).await? {
            // The load's file bytes and id tables are freed by now.
            release_freed_memory().await;
            return Ok(info);
        }
        let customer_vectors = if single {
            self.all_vectors(version, Entity::Customer).await?
        } else {
            // A shard node reads only its shards' keys.
            let mut rows = Vec::new();
            for shard in self.engine.held_shards() {
                rows.extend(self.shard_vectors(version, shard).await?);
            }
            rows
        };
        let engine = Arc::clone(&self.engine);
        let request = LoadVersion {
            info: info.clone(),
            customer_vectors,
            item_vectors,
        };
        let progress = Arc::new(BuildProgress::default());
        self.building
            .write()
            .insert(version.to_owned(), Arc::clone(&progress));
        let built = blocking("index build", move || {
            engine.load_version(request, progress.as_ref())
        })
        .await;
        self.building.write().remove(version);
        built??;
        if self.store.get_version(version).await?.is_none() {
            // Deleted during the build: drop what was built rather than keep an orphan.
            if let Err(e) = self.engine.unload_version(version) {
                tracing::warn!(model.version = version, error = %e, "deleted version not unloaded");
            }
            return Err(Error::NotFound(format!(
                "model_version: `{version}` was deleted while it was being built"
            )));
        }
        if single {
            self.save_snapshot(version).await;
        } else {
            for shard in self.engine.held_shards() {
                self.save_shard_snapshot(version, shard).await;
            }
        }
        release_freed_memory().await;
        Ok(info)
    }

    /// Every customer vector of logical shard `shard` in `version`, in id order (a
    /// takeover reads only that shard where the store keys by shard).
    pub async fn shard_vectors(
        &self,
        version: &str,
        shard: u32,
    ) -> Result<Vec<(String, Vec<f32>)>> {
        let count = self.engine.config().shard_count;
        store_pages::shard_vectors(self.store.as_ref(), version, shard, count).await
    }

    /// Every vector of one entity of `version`, in id order.
    pub async fn all_vectors(
        &self,
        version: &str,
        entity: Entity,
    ) -> Result<Vec<(String, Vec<f32>)>> {
        store_pages::vectors(self.store.as_ref(), version, entity).await
    }
}

/// Hands the memory a load freed back to the system (off the async workers).
async fn release_freed_memory() {
    let _ = blocking("memory trim", crate::memory_trim::release_freed_memory).await;
}
