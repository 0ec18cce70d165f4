//! Judging a canary's guards: error rate above the stable version's, p99 latency, and CTR
//! relative to the stable version's.

use doppel_types::CanaryGuard;
use doppel_types::experiment::{DEFAULT_MIN_IMPRESSIONS, DEFAULT_MIN_REQUESTS};

use crate::error::{Error, Result};
use crate::serving_stats::ServingStats;

/// Impressions and clicks of the stable (0) and canary (1) arms, read from the log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ArmClicks {
    /// Impressions per arm.
    pub impressions: [u64; 2],
    /// Clicks per arm.
    pub clicks: [u64; 2],
}

/// Why `guard` trips, if it does, for a canary that served `canary` calls beside the
/// stable version's `stable` calls (on this node) and earned `ctr` (in the log).
///
/// The error rate is judged against the stable version's, so a fault hitting both (the
/// store, a shard handoff) does not roll a healthy canary back.
pub fn judge(
    guard: &CanaryGuard,
    canary: &ServingStats,
    stable: &ServingStats,
    ctr: &ArmClicks,
) -> Option<String> {
    let min_requests = match guard.min_requests {
        0 => DEFAULT_MIN_REQUESTS,
        n => n,
    };
    if canary.requests >= min_requests {
        let (rate, baseline) = (canary.error_rate(), stable.error_rate());
        if guard.max_error_rate > 0.0 && rate - baseline > guard.max_error_rate {
            return Some(format!(
                "error rate {rate:.4} over {} calls exceeded the stable version's {baseline:.4} \
                 by more than max_error_rate {}",
                canary.requests, guard.max_error_rate
            ));
        }
        let p99 = canary.p99_ms();
        if guard.max_p99_ms > 0.0 && p99 > guard.max_p99_ms {
            return Some(format!(
                "p99 latency {p99:.2} ms exceeded max_p99_ms {}",
                guard.max_p99_ms
            ));
        }
    }
    let min_impressions = match guard.min_impressions {
        0 => DEFAULT_MIN_IMPRESSIONS,
        n => n,
    };
    if guard.min_ctr_ratio > 0.0 && ctr.impressions.iter().all(|&i| i >= min_impressions) {
        let rate = |arm: usize| {
            ctr.clicks[arm].min(ctr.impressions[arm]) as f64 / ctr.impressions[arm] as f64
        };
        let (stable, canary) = (rate(0), rate(1));
        if stable > 0.0 && canary / stable < guard.min_ctr_ratio {
            return Some(format!(
                "CTR {canary:.4} over {} impressions is {:.3}× the stable version's {stable:.4}, \
                 below min_ctr_ratio {}",
                ctr.impressions[1],
                canary / stable,
                guard.min_ctr_ratio
            ));
        }
    }
    None
}

/// Checks a guard's limits; the error names the field.
pub fn validate_guard(guard: &CanaryGuard) -> Result<()> {
    let fields = [
        ("guard.max_error_rate", guard.max_error_rate, 1.0),
        ("guard.max_p99_ms", guard.max_p99_ms, 3_600_000.0),
        ("guard.min_ctr_ratio", guard.min_ctr_ratio, 1_000.0),
    ];
    for (field, value, max) in fields {
        if !value.is_finite() || !(0.0..=max).contains(&value) {
            return Err(Error::invalid(
                field,
                format!("must be a number in 0..={max}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn served(requests: u64, errors: u64, ms: u64) -> ServingStats {
        let mut stats = ServingStats::default();
        for i in 0..requests {
            stats.note(Duration::from_millis(ms), i < errors);
        }
        stats
    }

    #[test]
    fn guards_trip_only_past_their_minimums() {
        let guard = CanaryGuard {
            max_error_rate: 0.05,
            max_p99_ms: 50.0,
            min_ctr_ratio: 0.8,
            min_requests: 100,
            min_impressions: 100,
        };
        let quiet = ArmClicks::default();
        let calm = ServingStats::default();
        assert_eq!(judge(&guard, &served(99, 99, 1), &calm, &quiet), None);
        let tripped = judge(&guard, &served(100, 6, 1), &calm, &quiet).unwrap();
        assert!(tripped.contains("error rate"), "{tripped}");
        assert_eq!(judge(&guard, &served(100, 5, 1), &calm, &quiet), None);
        // The same faults on the stable version: not the canary's fault.
        assert_eq!(
            judge(&guard, &served(100, 20, 1), &served(100, 20, 1), &quiet),
            None
        );
        let tripped = judge(&guard, &served(100, 0, 60), &calm, &quiet).unwrap();
        assert!(tripped.contains("p99"), "{tripped}");
        let ctr = |stable: u64, canary: u64| ArmClicks {
            impressions: [100, 100],
            clicks: [stable, canary],
        };
        assert_eq!(judge(&guard, &calm, &calm, &ctr(10, 9)), None);
        let tripped = judge(&guard, &calm, &calm, &ctr(10, 7)).unwrap();
        assert!(tripped.contains("CTR"), "{tripped}");
        let few = ArmClicks {
            impressions: [100, 99],
            clicks: [50, 0],
        };
        assert_eq!(judge(&guard, &calm, &calm, &few), None);
    }
}
