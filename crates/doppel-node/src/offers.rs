//! Offers under the contact policy: setting and following the policy (frequency caps),
//! and next-best offers that, when asked, are recorded as impressions with the answer.
//!
//! Showing and counting is exact per customer: requests that record impressions for one
//! customer run one at a time (a striped lock), and the next one starts only once the
//! impressions of the last are applied to the engine — on a shard node, once its event
//! log follower has applied them.
//!
//! Where the impressions go first depends on who applies them to the caps:
//! * **a single node** applies them to its engine at once, under the customer's lock, so
//!   the next request sees them, and queues them for the store; a background task appends
//!   the queue ([`Store::append_impressions`](doppel_store::Store::append_impressions))
//!   at most every [`STORE_BATCH_PAUSE`], durable within [`IMPRESSION_FLUSH`]. No request
//!   waits for the disk. A crash can forget the impressions of the last ~100 ms (their
//!   caps then allow that many again); a graceful shutdown stores and flushes them
//!   ([`Node::store_impressions`]). Past [`MAX_UNSTORED_IMPRESSIONS`] queued (a store that
//!   cannot keep up), requests that record impressions get UNAVAILABLE.
//! * **a shard node** applies events from the shared log, so it stores them first:
//!   impressions of concurrent requests are committed together (group commit), and the
//!   answer waits until its follower has applied them.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use doppel_engine::{RecommendQuery, Recommendation};
use doppel_types::{ContactPolicy, Event, EventType};

use tokio::sync::oneshot;

use crate::error::{Error, Result};
use crate::node::Node;

/// Stripes of the per-customer lock of impression-recording requests. Two requests of
/// different customers on one stripe wait for each other's whole answer: with n in flight,
/// about (n − 1) / stripes of them do, which at 256 stripes reached the p99 (2.7 % at 8
/// clients). At 4,096 (about 160 KB) it is 0.2 %.
pub const EXPOSURE_LOCK_STRIPES: usize = 4_096;
/// Longest time a stored impression waits to become durable.
pub const IMPRESSION_FLUSH: Duration = Duration::from_millis(100);
/// Impressions a single node may hold applied but not yet stored.
pub const MAX_UNSTORED_IMPRESSIONS: usize = 65_536;
/// Pause before storing again after the store refused impressions.
const STORE_RETRY: Duration = Duration::from_millis(100);
/// Pause between two appends of queued impressions: impressions arriving meanwhile share
/// the next commit, so a busy node commits ~100 times a second however many answers it
/// records (a commit, and the B-tree pages it copies, cost as much as the requests' own
/// work when every answer had its own). Well inside [`IMPRESSION_FLUSH`].
const STORE_BATCH_PAUSE: Duration = Duration::from_millis(10);

/// Next-best offers and the experiment arm that answered them.
#[derive(Clone, Debug)]
pub struct Offers {
    /// The offers, from the arm's version or the active one.
    pub recommendation: Recommendation,
    /// The arm, when the customer is in one of the running experiment.
    pub route: Option<crate::experiments::ArmRoute>,
}

/// Where a group commit's outcome goes: the last sequence number written, or why not.
type Waiter = oneshot::Sender<std::result::Result<Option<u64>, String>>;

/// Impressions waiting for the next group commit, and the lock of policy changes.
#[derive(Default)]
pub(crate) struct OfferState {
    pending: parking_lot::Mutex<Vec<(Vec<Event>, Waiter)>>,
    committing: Arc<tokio::sync::Mutex<()>>,
    /// A flush of lazily committed impressions is scheduled.
    flush_scheduled: AtomicBool,
    /// Single node: impressions applied to the engine, waiting for the store.
    unstored: parking_lot::Mutex<Vec<Event>>,
    /// Single node: a task is storing `unstored`.
    storing: AtomicBool,
    /// Single node: held while a batch taken from `unstored` is appended, so an event
    /// checkpoint can wait until every impression applied so far is stored.
    appending: tokio::sync::Mutex<()>,
    /// Serialises policy changes (a set, or following the stored one).
    policy_change: tokio::sync::Mutex<()>,
}

impl Node {
    /// Validates `policy`, stores it, and applies it to the next request. Returns it.
    pub async fn set_contact_policy(&self, policy: ContactPolicy) -> Result<ContactPolicy> {
        policy
            .validate()
            .map_err(|(field, reason)| Error::invalid(field, reason))?;
        let _one_writer = self.offers.policy_change.lock().await;
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
        // Not between another call's store write and engine update (it would undo it).
        let _one_writer = self.offers.policy_change.lock().await;
        let stored = self.store.contact_policy().await?.unwrap_or_default();
        if *self.engine.contact_policy() == stored {
            return Ok(false);
        }
        self.engine.set_contact_policy(stored);
        Ok(true)
    }

    /// Next-best offers under the contact policy. With `query.record_impressions`, the offers
    /// are recorded as impressions (at the server's clock, with the request's context)
    /// before the answer is returned: applied to the caps on a single node (the request
    /// fails only when too many wait for the store), stored and applied by the follower on
    /// a shard node (the request fails if they cannot be).
    ///
    /// A customer in an arm of the running experiment is answered by the arm's version;
    /// every call's latency and outcome are noted for the canary guards.
    pub async fn recommend(self: &Arc<Self>, query: &RecommendQuery) -> Result<Offers> {
        let route = self.arm_route(&query.customer_id);
        let version = route.as_ref().map(|r| r.version.clone());
        let started = Instant::now();
        let answer = self.recommend_from(version.as_deref(), query).await;
        if let Some(served_by) = version.or_else(|| self.engine.active_version()) {
            let server_error = answer.as_ref().is_err_and(Error::is_server_side);
            self.note_served(&served_by, started.elapsed(), server_error);
        }
        Ok(Offers {
            recommendation: answer?,
            route,
        })
    }

    async fn recommend_from(
        self: &Arc<Self>,
        version: Option<&str>,
        query: &RecommendQuery,
    ) -> Result<Recommendation> {
        self.check_holds(&query.customer_id, query.record_impressions)?;
        if !query.record_impressions {
            return Ok(self.engine.recommend_from(version, query)?);
        }
        let _one_at_a_time = self.exposure_lock(&query.customer_id).lock().await;
        let answer = self.engine.recommend_from(version, query)?;
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
        if !self.placement.follows_event_log() {
            // Applied and queued under the shard's gate, so an event checkpoint of the
            // shard sees them applied and stored, or neither.
            let _gate = self.gate_customers([query.customer_id.as_str()]).await;
            // Erased since the answer was computed: nothing is shown or remembered.
            if !self.engine.known_customer(&query.customer_id) {
                return Err(Error::NotFound(format!(
                    "customer_id: `{}` not found",
                    query.customer_id
                )));
            }
            self.remember_impressions(impressions)?;
            return Ok(answer);
        }
        let last_written = self.record_impressions(impressions).await?;
        if !self
            .placement
            .wait_applied(last_written.unwrap_or(0), crate::ingest::FOLLOWER_PATIENCE)
            .await
        {
            // Stored, but not yet seen by the caps here: answering now would let the next
            // request for this customer overshoot a cap.
            return Err(Error::Unavailable(
                "impressions stored but not applied yet; retry".into(),
            ));
        }
        Ok(answer)
    }

    /// Records `impressions` durably, in a group commit with those of concurrent requests;
    /// returns the last sequence number the commit wrote. The commit runs in its own task,
    /// so a caller that goes away (a cancelled request) never abandons the others'.
    async fn record_impressions(self: &Arc<Self>, impressions: Vec<Event>) -> Result<Option<u64>> {
        let (done, mut outcome) = oneshot::channel();
        self.offers.pending.lock().push((impressions, done));
        let committer = Arc::clone(&self.offers.committing).lock_owned().await;
        // The commit before ours may have taken our impressions along.
        if let Ok(result) = outcome.try_recv() {
            return result.map_err(Error::Unavailable);
        }
        let node = Arc::clone(self);
        tokio::spawn(async move {
            let _committer = committer;
            let batch = std::mem::take(&mut *node.offers.pending.lock());
            let (events, waiters): (Vec<Vec<Event>>, Vec<Waiter>) = batch.into_iter().unzip();
            let shared = node
                .record_impression_events(events.into_iter().flatten().collect())
                .await
                .map(|r| r.last_written)
                .map_err(|e| format!("recording impressions failed: {e}; retry"));
            node.schedule_flush();
            for waiter in waiters {
                let _ = waiter.send(shared.clone());
            }
        });
        outcome
            .await
            .map_err(|_| Error::Unavailable("impression commit lost; retry".into()))?
            .map_err(Error::Unavailable)
    }

    /// Single node: applies `impressions` to the engine (the caps see them at once) and
    /// queues them for the store.
    fn remember_impressions(self: &Arc<Self>, impressions: Vec<Event>) -> Result<()> {
        if self.offers.unstored.lock().len() >= MAX_UNSTORED_IMPRESSIONS {
            return Err(Error::Unavailable(format!(
                "{MAX_UNSTORED_IMPRESSIONS} impressions are waiting for the store; retry"
            )));
        }
        self.engine.record_impressions(&impressions);
        if let Some(first) = impressions.first() {
            self.note_shard_changed(doppel_types::shard::shard_of(
                &first.customer_id,
                self.engine.config().shard_count,
            ));
        }
        self.offers.unstored.lock().extend(impressions);
        self.schedule_store();
        Ok(())
    }

    /// Starts the task that stores queued impressions, unless one runs; it runs until the
    /// queue is empty, retrying what the store refuses.
    fn schedule_store(self: &Arc<Self>) {
        if self.offers.storing.swap(true, Ordering::AcqRel) {
            return;
        }
        // Weak: a node shut down and dropped closes its store even while this task ends.
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(node) = weak.upgrade() else {
                    return;
                };
                let appending = node.offers.appending.lock().await;
                let batch: Arc<[Event]> = {
                    let mut queue = node.offers.unstored.lock();
                    // The next batch starts with room for as many: requests appending to
                    // it never grow it (a copy of the whole queue, on their thread).
                    let room = Vec::with_capacity(queue.len());
                    std::mem::replace(&mut *queue, room).into()
                };
                if batch.is_empty() {
                    drop(appending);
                    node.offers.storing.store(false, Ordering::Release);
                    // Impressions queued between the take and the store above would wait
                    // for the next request: take them now, unless another task does.
                    if node.offers.unstored.lock().is_empty()
                        || node.offers.storing.swap(true, Ordering::AcqRel)
                    {
                        return;
                    }
                    continue;
                }
                let count = batch.len();
                if let Err(e) = node.store.append_impressions(Arc::clone(&batch)).await {
                    tracing::warn!(error = %e, impressions = count, "impressions not stored; retrying");
                    {
                        let mut queue = node.offers.unstored.lock();
                        let newer = std::mem::replace(&mut *queue, batch.to_vec());
                        queue.extend(newer);
                    }
                    drop(appending);
                    drop(node);
                    tokio::time::sleep(STORE_RETRY).await;
                    continue;
                }
                // Freeing a batch's thousands of strings would hold up the requests queued
                // on this worker.
                tokio::task::spawn_blocking(move || drop(batch));
                drop(appending);
                node.schedule_flush();
                drop(node);
                tokio::time::sleep(STORE_BATCH_PAUSE).await;
            }
        });
    }

    /// Single node: stores every impression applied to the engine so far, waiting for a
    /// batch being appended (an event checkpoint holding a shard's gate calls it, so that
    /// the shard's impressions in memory all have sequence numbers).
    pub(crate) async fn store_applied_impressions(&self) -> Result<()> {
        let _appending = self.offers.appending.lock().await;
        let batch: Arc<[Event]> = std::mem::take(&mut *self.offers.unstored.lock()).into();
        if batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.append_impressions(Arc::clone(&batch)).await {
            let mut queue = self.offers.unstored.lock();
            let newer = std::mem::replace(&mut *queue, batch.to_vec());
            queue.extend(newer);
            return Err(e.into());
        }
        Ok(())
    }

    /// Stores and flushes every queued impression (graceful shutdown); gives up after
    /// `patience`, logging how many are left.
    pub async fn store_impressions(&self, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let left = self.offers.unstored.lock().len();
            if left == 0 && !self.offers.storing.load(Ordering::Acquire) {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::error!(impressions = left, "impressions not stored before shutdown");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Makes lazily committed impressions durable within [`IMPRESSION_FLUSH`] (one flush
    /// at a time covers every commit before it).
    fn schedule_flush(self: &Arc<Self>) {
        if self.offers.flush_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(IMPRESSION_FLUSH).await;
            // A node already dropped flushed on its way out.
            let Some(node) = weak.upgrade() else {
                return;
            };
            node.offers.flush_scheduled.store(false, Ordering::Release);
            if let Err(e) = node.store.flush().await {
                tracing::warn!(error = %e, "impressions not flushed; retrying");
                node.schedule_flush();
            }
        });
    }

    fn exposure_lock(&self, customer_id: &str) -> &tokio::sync::Mutex<()> {
        let mut hasher = DefaultHasher::new();
        customer_id.hash(&mut hasher);
        &self.exposure_locks[hasher.finish() as usize % self.exposure_locks.len()]
    }
}
