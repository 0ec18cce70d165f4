//! Which customers a node serves. A single node serves everyone; a shard node serves the
//! shards it holds, refuses writes for shards it is handing off, acknowledges a write only
//! when it still owned its shards once the write was stored, and lets a follower of the
//! event log apply events. That state (ownership, fencing, the follower) belongs to
//! the cluster crate, which implements [`Placement`]; the node only asks.

use std::time::Duration;

use doppel_engine::Engine;
use futures::future::BoxFuture;

use crate::error::Result;

/// Where customers are served, as the node's write and read paths need to know it.
pub trait Placement: Send + Sync + 'static {
    /// Ok when calls for `customer_id` may be served here (and, for writes, its shard is
    /// not being handed off); [`Error::Unavailable`](crate::Error::Unavailable) otherwise.
    fn check_holds(&self, engine: &Engine, customer_id: &str, write: bool) -> Result<()>;

    /// Does this node serve every customer (a single node)? A shard node serves some: it
    /// snapshots shard by shard, leaves unfinished versions to their writer, and answers
    /// customer-segment pages for its shards only.
    fn serves_everyone(&self) -> bool;

    /// Do events reach the engine through a follower of the log (a shard node), rather
    /// than being applied by the call that stored them?
    fn follows_event_log(&self) -> bool;

    /// Wakes the follower and waits at most `patience` until it applied `seq`; false if it
    /// did not in time (the events are durable either way).
    fn wait_applied(&self, seq: u64, patience: Duration) -> BoxFuture<'_, bool>;

    /// Called after a write of customers of `shards` reached the store, before it is
    /// acknowledged: Ok when this node still owned every one of them once the write was
    /// stored. A shard node paused past its lease, or slow to see another node's claim,
    /// must not acknowledge a write the new owner's takeover may have read past;
    /// [`Error::Unavailable`](crate::Error::Unavailable) then (the write may be stored; a
    /// retry reaches the new owner).
    fn confirm_owned(&self, shards: Vec<u32>) -> BoxFuture<'_, Result<()>>;
}

/// A single node: everyone is served here and writes apply at once.
#[derive(Debug, Default)]
pub struct Everyone;

impl Placement for Everyone {
    fn check_holds(&self, _: &Engine, _: &str, _: bool) -> Result<()> {
        Ok(())
    }

    fn serves_everyone(&self) -> bool {
        true
    }

    fn follows_event_log(&self) -> bool {
        false
    }

    fn wait_applied(&self, _: u64, _: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async { true })
    }

    fn confirm_owned(&self, _: Vec<u32>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
