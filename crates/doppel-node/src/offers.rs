//! Offers under the contact policy: setting and following the policy (frequency caps),
//! and next-best offers that, when asked, are recorded as impressions with the answer.
//!
//! Showing and counting is exact per customer: requests that record impressions for one
//! customer run one at a time (a striped lock), and the next one starts only once the
//! impressions of the last are applied to the engine — on a shard node, once its event
//! log follower has applied them.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use doppel_engine::{RecommendQuery, Recommendation};
use doppel_types::{ContactPolicy, Event, EventType};

use crate::error::{Error, Result};
use crate::node::Node;

/// Stripes of the per-customer lock of impression-recording requests.
pub const EXPOSURE_LOCK_STRIPES: usize = 256;

impl Node {
    /// Validates `policy`, stores it, and applies it to the next request. Returns it.
    pub async fn set_contact_policy(&self, policy: ContactPolicy) -> Result<ContactPolicy> {
        policy
            .validate()
            .map_err(|(field, reason)| Error::invalid(field, reason))?;
        self.store.put_contact_policy(&policy).await?;
        self.engine.set_contact_policy(policy.clone());
        tracing::info!(caps = policy.caps.len(), "contact policy set");
        Ok(policy)
    }

    /// The contact policy in force (empty when none was set).
    pub fn contact_policy(&self) -> ContactPolicy {
        self.engine.contact_policy().as_ref().clone()
    }

    /// Applies the stored contact policy if it differs from the one in force (start-up,
    /// and a shard node following a policy set through another node). True if it changed.
    pub async fn follow_contact_policy(&self) -> Result<bool> {
        let stored = self.store.contact_policy().await?.unwrap_or_default();
        if *self.engine.contact_policy() == stored {
            return Ok(false);
        }
        self.engine.set_contact_policy(stored);
        Ok(true)
    }

    /// Next-best offers under the contact policy. With `query.record_impressions`, the offers
    /// are recorded as impressions (at the server's clock, with the request's context)
    /// before the answer is returned; if they cannot be recorded, the request fails.
    pub async fn recommend(&self, query: &RecommendQuery) -> Result<Recommendation> {
        self.check_holds(&query.customer_id, query.record_impressions)?;
        if !query.record_impressions {
            return Ok(self.engine.recommend(query)?);
        }
        let _one_at_a_time = self.exposure_lock(&query.customer_id).lock().await;
        let answer = self.engine.recommend(query)?;
        if answer.offers.is_empty() {
            return Ok(answer);
        }
        let now = doppel_types::clock::now_ms();
        let impressions: Vec<Event> = answer
            .offers
            .iter()
            .map(|offer| Event {
                customer_id: query.customer_id.clone(),
                item_id: offer.item_id.clone(),
                kind: EventType::Impression,
                quantity: 1,
                timestamp_ms: now,
                value: 0.0,
                context: query.context.clone(),
                event_id: String::new(),
            })
            .collect();
        let recorded = self.record_events(impressions).await?;
        if self.placement.follows_event_log() {
            self.events_recorded(BTreeSet::new(), recorded.last_written)
                .await?;
        }
        Ok(answer)
    }

    fn exposure_lock(&self, customer_id: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        customer_id.hash(&mut hasher);
        &self.exposure_locks[hasher.finish() as usize % self.exposure_locks.len()]
    }
}
