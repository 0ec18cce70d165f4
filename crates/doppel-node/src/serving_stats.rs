//! Per-version statistics of `RecommendOffers` calls on this node while a canary runs:
//! calls, server-side failures and a window of latencies (what the canary guards judge).

use std::collections::HashMap;
use std::time::Duration;

use crate::node::Node;

/// Latencies kept per version for the p99.
pub const LATENCY_WINDOW: usize = 2_048;

/// One version's calls on this node since the running canary started.
#[derive(Clone, Debug, Default)]
pub struct ServingStats {
    /// Calls answered (or failed).
    pub requests: u64,
    /// Calls that failed with a server-side error.
    pub errors: u64,
    /// Latencies of the last [`LATENCY_WINDOW`] calls, in microseconds (a ring).
    latencies_us: Vec<u32>,
    next: usize,
}

impl ServingStats {
    /// Notes one call.
    pub fn note(&mut self, elapsed: Duration, server_error: bool) {
        self.requests += 1;
        self.errors += u64::from(server_error);
        let us = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
        if self.latencies_us.len() < LATENCY_WINDOW {
            self.latencies_us.push(us);
        } else {
            self.latencies_us[self.next] = us;
        }
        self.next = (self.next + 1) % LATENCY_WINDOW;
    }

    /// The 99th percentile (nearest rank) of the latency window, in ms (0 when empty).
    pub fn p99_ms(&self) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let rank = (sorted.len() as f64 * 0.99).ceil() as usize;
        f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1_000.0
    }

    /// errors / requests (0 before the first call).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// The statistics of every version serving while a canary runs.
#[derive(Default)]
pub(crate) struct ServingState {
    /// Only while a canary runs (set when it is applied).
    pub(crate) canary_running: std::sync::atomic::AtomicBool,
    by_version: parking_lot::Mutex<HashMap<String, ServingStats>>,
}

impl Node {
    /// Notes one `RecommendOffers` call answered by `version` (only while a canary runs).
    pub(crate) fn note_served(&self, version: &str, elapsed: Duration, server_error: bool) {
        if !self
            .serving
            .canary_running
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let mut by_version = self.serving.by_version.lock();
        match by_version.get_mut(version) {
            Some(stats) => stats.note(elapsed, server_error),
            None => {
                let mut stats = ServingStats::default();
                stats.note(elapsed, server_error);
                by_version.insert(version.to_owned(), stats);
            }
        }
    }

    /// `version`'s calls on this node since the running canary started.
    pub fn serving_stats(&self, version: &str) -> ServingStats {
        self.serving
            .by_version
            .lock()
            .get(version)
            .cloned()
            .unwrap_or_default()
    }

    /// Starts counting afresh (a canary started or ended).
    pub(crate) fn reset_serving_stats(&self, canary_running: bool) {
        self.serving.by_version.lock().clear();
        self.serving
            .canary_running
            .store(canary_running, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_a_nearest_rank_over_the_window() {
        let mut stats = ServingStats::default();
        for ms in 1..=100u64 {
            stats.note(Duration::from_millis(ms), false);
        }
        assert_eq!(stats.p99_ms(), 99.0);
        for _ in 0..LATENCY_WINDOW {
            stats.note(Duration::from_millis(2), false);
        }
        assert_eq!(stats.p99_ms(), 2.0);
    }
}
