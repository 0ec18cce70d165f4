//! End-to-end tests of the cluster: shard nodes and a router over a real `redis-server`
//! on loopback, driven through the public API by real gRPC clients. One test binary for
//! link time.

mod audience_planning;
mod caps;
mod context;
mod coverage;
mod delete_version;
mod event_checkpoints;
mod exact_merge;
mod experiments;
mod fixture;
mod hot_swap;
mod internal_tls;
mod moves;
mod popularity_prior;
mod readiness;
mod reads_without_redis;
mod recency_offers;
mod redis_cut;
mod redis_restart;
mod saved_audiences;
mod snapshots;
mod write_load;
