//! doppel's state store: the [`Store`] trait, its embedded implementation on redb
//! ([`EmbeddedStore`]) and, behind the `contract` feature, the contract test suite every
//! implementation passes: the Redis store ([`RedisStore`]) runs the same suite.
//!
//! What is stored: customer profiles with consent, items, the append-only event log
//! (global sequence numbers from 1, plus a per-customer index and the per-customer event
//! ids that make appends idempotent), the erasure ledger, model-version metadata, the
//! active-version pointer, and vectors per (version, entity, id).
//!
//! Erasure is one transaction: profile, events and their ids, vectors in every version,
//! and a ledger entry that keeps the id out of later event appends and vector imports
//! until the id is upserted again as a new customer.
//!
//! Layout:
//! * [`error`] — [`Error`] and [`Result`];
//! * [`store_trait`] — the async [`Store`] trait (object-safe, used as `Arc<dyn Store>`);
//! * [`codec`] — value encodings: postcard for records, raw little-endian `f32` for vectors;
//! * [`keys`] — the redb table layout;
//! * [`embedded`] — [`EmbeddedStore`]: one durable redb file, every write fsynced;
//! * [`redis`] — [`RedisStore`]: standalone Redis or Redis Cluster, keys of one customer
//!   under its logical shard's hash tag;
//! * `contract` (feature `contract`) — the shared contract test suite;
//! * `testing` — for tests: real `redis-server` processes (feature `redis-harness`) and a
//!   disk that fills up on demand (feature `fault-injection`).

pub mod codec;
#[cfg(feature = "contract")]
pub mod contract;
pub mod embedded;
pub mod error;
pub mod keys;
pub mod redis;
pub mod shard_scans;
pub mod store_trait;
#[cfg(any(feature = "redis-harness", feature = "fault-injection"))]
pub mod testing;

pub use crate::redis::{MemberRecord, RedisConfig, RedisStore, RedisTls, redacted_url};
pub use embedded::EmbeddedStore;
pub use error::{Error, Result};
pub use store_trait::{Appended, Store};
