//! Read-only queries: lookalike audiences (whole, or a shard node's part for a router),
//! next-best offers, similar items, and the customer segments of the last training run.
//!
//! Each holds the profile read lock for its whole run (see the `engine` module's locking
//! note) and reads the active version, except the router's shard calls, which name the
//! version the router is serving.

use std::sync::Arc;

use doppel_types::ContactPolicy;
use doppel_types::limits::MAX_K;

use super::Engine;
use crate::classifier::Moments;
use crate::customer_segments::{self, SegmentPage, SegmentSize};
use crate::error::{Error, Result};
use crate::frequency_caps::{CapCount, CapCounter};
use crate::lookalike::lookalike;
use crate::lookalike_query::{Audience, LookalikeQuery};
use crate::reach::{ReachCurve, ReachCut, estimate_reach};
use crate::recommend::{
    RecommendQuery, Recommendation, SimilarItemsResult, recommend, similar_items,
};
use crate::shard_scoring::{self, SeedLookup, ShardAudience, ShardScoring};

impl Engine {
    /// A lookalike audience from the active version.
    pub fn lookalike(&self, query: &LookalikeQuery) -> Result<Audience> {
        let version = self.active()?;
        let profiles = self.profiles.read();
        lookalike(&version, &profiles, self.config.ef_search, query)
    }

    /// The reach curve of a lookalike query (its size ignored) from the active version.
    pub fn estimate_reach(&self, query: &LookalikeQuery, cuts: &[ReachCut]) -> Result<ReachCurve> {
        let version = self.active()?;
        let profiles = self.profiles.read();
        estimate_reach(&version, &profiles, query, cuts)
    }

    /// The seeds of a lookalike held on `shards` of a loaded `version` (for a router):
    /// explicit `ids`, `negatives`, and the members of the `(kind, name)` customer
    /// segments `seed_segments`.
    pub fn lookup_seeds(
        &self,
        version: &str,
        shards: &[u32],
        ids: &[String],
        negatives: &[String],
        seed_segments: &[(String, String)],
    ) -> Result<SeedLookup> {
        let version = self.loaded(version)?;
        let profiles = self.profiles.read();
        shard_scoring::lookup_seeds(&version, &profiles, shards, ids, negatives, seed_segments)
    }

    /// The moments of the customer vectors of a loaded `version` on each of `shards`
    /// (ascending), so that a router can fit a classifier exactly as a single node does.
    pub fn shard_moments(&self, version: &str, shards: &[u32]) -> Result<Vec<(u32, Moments)>> {
        let version = self.loaded(version)?;
        Ok(shard_scoring::shard_moments(&version, shards))
    }

    /// This engine's part of an audience over `shards` of a loaded `version`, scored with
    /// a router's scorer.
    pub fn score_audience(&self, version: &str, request: &ShardScoring) -> Result<ShardAudience> {
        let version = self.loaded(version)?;
        let profiles = self.profiles.read();
        shard_scoring::score_on_shards(&version, &profiles, self.config.ef_search, request)
    }

    /// Next-best offers from the active version, obeying the contact policy as of now.
    pub fn recommend(&self, query: &RecommendQuery) -> Result<Recommendation> {
        self.recommend_from(None, query)
    }

    /// Next-best offers from a loaded `version` (the active one when `None`), obeying the
    /// contact policy as of now.
    pub fn recommend_from(
        &self,
        version: Option<&str>,
        query: &RecommendQuery,
    ) -> Result<Recommendation> {
        check_k(query.k)?;
        let version = match version {
            Some(name) => self.loaded(name)?,
            None => self.active()?,
        };
        let policy = self.contact_policy();
        let profiles = self.profiles.read();
        recommend(
            &version,
            &profiles,
            self.config.ef_search,
            query,
            &policy,
            doppel_types::clock::now_ms(),
        )
    }

    /// The contact policy offers obey.
    pub fn contact_policy(&self) -> Arc<ContactPolicy> {
        Arc::clone(&self.policy.read())
    }

    /// Replaces the contact policy (already validated).
    pub fn set_contact_policy(&self, policy: ContactPolicy) {
        *self.policy.write() = Arc::new(policy);
    }

    /// A customer's impressions per capped scope within each cap's window, as of now
    /// (non-zero counts only); NOT_FOUND for an unknown customer.
    pub fn cap_counts(&self, customer_id: &str) -> Result<Vec<CapCount>> {
        let policy = self.contact_policy();
        let profiles = self.profiles.read();
        let slot = profiles
            .customer_slots
            .get(customer_id)
            .ok_or_else(|| Error::not_found("customer_id", customer_id))?;
        let exposures = profiles.customer(slot).map(|c| c.exposures.lock());
        let now = doppel_types::clock::now_ms();
        Ok(CapCounter::new(&policy, &profiles, exposures.as_deref(), now).counts())
    }

    /// In-stock items closest to `item_id` in the active version.
    pub fn similar_items(&self, item_id: &str, k: usize) -> Result<SimilarItemsResult> {
        check_k(k)?;
        let version = self.active()?;
        let profiles = self.profiles.read();
        similar_items(&version, &profiles, self.config.ef_search, item_id, k)
    }

    /// Sizes of the customer segments of the last training run (of one kind, when given).
    pub fn segment_sizes(&self, kind: Option<&str>) -> Result<Vec<SegmentSize>> {
        customer_segments::sizes(&self.profiles.read(), kind)
    }

    /// Up to `limit` members of customer segment `(kind, name)` with ids after `after`.
    pub fn segment_members(
        &self,
        kind: &str,
        name: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SegmentPage> {
        customer_segments::members(&self.profiles.read(), kind, name, after, limit)
    }
}

/// Refuses a result count outside `1..=MAX_K`.
fn check_k(k: usize) -> Result<()> {
    if k == 0 || k > MAX_K {
        return Err(Error::invalid("k", format!("must be in 1..={MAX_K}")));
    }
    Ok(())
}
