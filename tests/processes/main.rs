//! End-to-end tests against `doppel serve` child processes, for what needs a whole process
//! rather than a server in the test's runtime: a node stopped with SIGSTOP and resumed.
//! Needs `redis-server` on the PATH (as the other end-to-end tests do).

mod child;
mod paused_owner;
