//! Test helpers other crates' tests share: real `redis-server` processes on free loopback
//! ports (feature `redis-harness`) and a mock of a full data disk (feature
//! `fault-injection`).

#[cfg(feature = "fault-injection")]
pub mod full_disk;
#[cfg(feature = "redis-harness")]
pub mod redis_harness;
