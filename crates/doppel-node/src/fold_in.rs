//! Fold-in after new events: each customer's vector is re-solved against the fixed items
//! of the active trained version (and of a running experiment's arms) and written to the store and the live index, so the next
//! recommendation reflects the events.

use std::sync::Arc;

use doppel_types::Entity;

use crate::error::{Error, Result, blocking};
use crate::node::Node;

impl Node {
    /// Folds in `customer_ids` under the active version and the versions of a running
    /// experiment's arms (trained ones; imported versions have no fold-in model). Returns
    /// how many customers were updated under the active version.
    pub async fn fold_in_customers(&self, customer_ids: Vec<String>) -> Result<usize> {
        let Some(active) = self.engine.active_version() else {
            return Ok(0);
        };
        let mut arms = self.engine.pinned_versions();
        arms.retain(|v| *v != active);
        for version in arms {
            // An arm's fold-in failing must not cost the active version its own.
            if let Err(e) = self.fold_in_under(&version, &customer_ids).await {
                tracing::warn!(model.version = %version, error = %e, "fold-in under an experiment arm failed");
            }
        }
        self.fold_in_under(&active, &customer_ids).await
    }

    /// Folds in `customer_ids` under one loaded trained `version`.
    async fn fold_in_under(&self, version: &str, customer_ids: &[String]) -> Result<usize> {
        let version = version.to_owned();
        let Some(model) = self.fold_in.read().get(&version).cloned() else {
            return Ok(0);
        };
        let mut updated = Vec::new();
        for id in customer_ids.iter().cloned() {
            let events = self.store.customer_events(&id).await?;
            let model = Arc::clone(&model);
            let vector = blocking("fold-in", move || model.customer_vector(&events, 0)).await?;
            if let Some(v) = vector {
                updated.push((id, v));
            }
        }
        let n = updated.len();
        if n == 0 {
            return Ok(0);
        }
        self.invalidate_snapshot(&version);
        // Store first (durable), then the live index.
        self.store
            .put_vectors(&version, Entity::Customer, updated.clone())
            .await?;
        for (id, v) in &updated {
            match self.engine.upsert_customer_vector(&version, id, v) {
                Ok(()) => {}
                // Erased in the meantime: nothing to update.
                Err(doppel_engine::Error::FailedPrecondition(_)) => {}
                Err(e) => return Err(Error::Engine(e)),
            }
        }
        Ok(n)
    }
}
