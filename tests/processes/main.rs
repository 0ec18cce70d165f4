//! End-to-end tests against `doppel serve` child processes, for what needs a whole process
//! rather than a server in the test's runtime: a node stopped with SIGSTOP and resumed,
//! a cluster run with a non-default `--shards` from the command line.
//! Needs `redis-server` on the PATH (as the other end-to-end tests do).

mod calls;
mod child;
mod compacted_past;
mod paused_owner;
mod shard_count;
mod two_shard_nodes;
