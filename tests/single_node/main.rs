//! End-to-end tests of a single node: a real tonic server on 127.0.0.1:0 over a real
//! embedded store, driven by real gRPC clients. One test binary for link time.

mod admission;
mod audience_planning;
mod audit_log;
mod auth;
mod auth_matrix;
mod bad_inputs;
mod context_offers;
mod disk_full;
mod erasure_restart;
mod event_checkpoints;
mod event_ids;
mod experiments;
mod fixture;
mod frequency_caps;
mod health_reflection;
mod hot_swap;
mod integrity;
mod lookalike;
mod recency_offers;
mod recommend;
mod redis_store;
mod saved_audiences;
mod segments;
mod snapshots;
mod stream_idle;
mod stream_windows;
mod tls;
mod training;
mod version_gc;
