//! Test helpers other crates' tests share (feature `redis-harness`): real `redis-server`
//! processes on free loopback ports.

pub mod redis_harness;
