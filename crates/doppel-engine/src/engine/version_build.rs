//! A version's indexes built from its vectors ([`Engine::load_version`]), and one
//! customer's vector written into a loaded version ([`Engine::upsert_customer_vector`],
//! for fold-in); its context model ([`Engine::set_context_model`]). Erased customers never get in: they are skipped before the build and
//! removed again after it, in case they were erased while it ran.

use std::collections::HashSet;
use std::sync::Arc;

use doppel_index::{NoProgress, Progress};
use doppel_types::ContextModel;
use doppel_types::shard::shard_of;
use doppel_types::vector::validate_vector;

use super::{Engine, LoadVersion, MERGE_DELTA_AT, VersionSummary, check_rows, row_error};
use crate::context_ranking::ContextRanking;
use crate::error::{Error, Result};
use crate::loaded_version::{LoadedVersion, Rows};

impl Engine {
    /// Sets what a version learned about context (`None`: its offers ignore context). For
    /// a version not loaded yet, the model waits for its load, which takes it before the
    /// version is listed.
    pub fn set_context_model(&self, version: &str, model: Option<&ContextModel>) {
        let ranking = model.map(|m| Arc::new(ContextRanking::new(m)));
        if let Ok(loaded) = self.loaded(version) {
            *loaded.context.write() = ranking;
            return;
        }
        let mut staged = self.staged_context.write();
        match ranking {
            Some(r) => {
                staged.insert(version.to_owned(), r);
            }
            None => {
                staged.remove(version);
            }
        }
    }

    /// Builds the indexes of a version (it is not active until [`Engine::activate`]).
    /// Replaces an already loaded version of the same name.
    pub fn load_version(
        &self,
        request: LoadVersion,
        progress: &dyn Progress,
    ) -> Result<VersionSummary> {
        let LoadVersion {
            info,
            customer_vectors,
            item_vectors,
        } = request;
        let dim = info.dim as usize;
        if dim == 0 || dim > doppel_types::limits::MAX_DIM {
            return Err(Error::invalid(
                "dim",
                format!("must be in 1..={}", doppel_types::limits::MAX_DIM),
            ));
        }
        check_rows("customer_vectors", &customer_vectors, dim)?;
        check_rows("item_vectors", &item_vectors, dim)?;
        let shard_count = self.config.shard_count as usize;
        let mut customers: Vec<Rows> = (0..shard_count).map(|_| Rows::default()).collect();
        let mut items = Rows::default();
        let mut erased_skipped = 0;
        let erasures_seen;
        {
            let erased = self.erased.read();
            let mut profiles = self.profiles.write();
            erasures_seen = self.erased_slots.lock().len();
            let mut seen = HashSet::new();
            for (id, v) in &customer_vectors {
                if !self.owns_customer(id) {
                    continue;
                }
                if erased.contains(id) {
                    erased_skipped += 1;
                    continue;
                }
                let slot = profiles.customer_slots.intern(id);
                if !seen.insert(slot) {
                    return Err(Error::invalid(
                        "customer_vectors",
                        format!("`{id}` appears twice"),
                    ));
                }
                let rows = &mut customers[shard_of(id, self.config.shard_count) as usize];
                rows.slots.push(slot);
                rows.vectors.extend_from_slice(v);
            }
            let mut seen = HashSet::new();
            for (id, v) in &item_vectors {
                let slot = profiles.item_slots.intern(id);
                if !seen.insert(slot) {
                    return Err(Error::invalid(
                        "item_vectors",
                        format!("`{id}` appears twice"),
                    ));
                }
                items.slots.push(slot);
                items.vectors.extend_from_slice(v);
            }
        }
        drop((customer_vectors, item_vectors));
        let name = info.version.clone();
        let built = LoadedVersion::build(info, &self.config, customers, items, progress)?;
        // Customers erased while the build ran must not come back. An erasure forgets the
        // slot and removes the customer from the loaded versions under the profiles' write
        // lock: holding the profiles from this removal until the version is listed, every
        // erasure either ran before (and is removed here, by the slot it noted) or finds
        // the version loaded.
        let profiles = self.profiles.read();
        for (id, slot) in self.erased_since(erasures_seen) {
            built.remove_customer(&id, slot);
        }
        let summary = VersionSummary {
            version: name.clone(),
            customers: built.customer_count(),
            items: built.items.len(),
            erased_skipped,
            build_seconds: built.build_seconds,
        };
        let mut versions = self.versions.write();
        *built.context.write() = self.context_for(&versions, &name);
        versions.loaded.insert(name, Arc::new(built));
        drop((versions, profiles));
        Ok(summary)
    }

    /// Sets (or replaces) one customer's vector in a loaded version, searchable at once —
    /// for fold-in of new behaviour and for brand-new customers.
    pub fn upsert_customer_vector(
        &self,
        version: &str,
        customer_id: &str,
        vector: &[f32],
    ) -> Result<()> {
        let v = self.loaded(version)?;
        validate_vector(vector, v.dim).map_err(|e| row_error("vector", customer_id, e))?;
        {
            // Both locks held until the vector is in: an erasure (which notes the id, then
            // removes the customer from every loaded version under the profiles' lock)
            // runs wholly before this (refused here) or after it (and removes the vector).
            let erased = self.erased.read();
            if erased.contains(customer_id) {
                return Err(Error::FailedPrecondition(format!(
                    "customer_id: `{customer_id}` was erased; its vector cannot be set"
                )));
            }
            let mut profiles = self.profiles.write();
            let slot = profiles.customer_slots.intern(customer_id);
            v.set_customer_vector(customer_id, slot, vector)?;
        }
        let shard = v.shard_for(customer_id);
        if shard.stats().delta_len >= MERGE_DELTA_AT {
            shard.merge_delta(&NoProgress)?;
        }
        Ok(())
    }
}
