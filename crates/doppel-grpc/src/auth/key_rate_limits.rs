//! Per-key rate limits: one token bucket per API key id, shared by every connection of
//! the process (a client cannot escape its limit by opening more connections). A call over
//! the limit gets RESOURCE_EXHAUSTED at once, with how long to wait in the trailers
//! (`retry-after-ms`, and gRPC's own `grpc-retry-pushback-ms`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tonic::Status;

/// Calls per second and burst of every key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained calls per second, > 0.
    pub per_second: f64,
    /// Calls allowed at once after a quiet spell, ≥ 1.
    pub burst: f64,
}

/// One key's bucket.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every key seen (bounded by the keys file: only authenticated key ids
/// get one).
#[derive(Debug)]
pub struct KeyRateLimiter {
    limit: RateLimit,
    buckets: parking_lot::Mutex<HashMap<String, Bucket>>,
}

impl KeyRateLimiter {
    /// A limiter giving every key `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: parking_lot::Mutex::default(),
        }
    }

    /// Takes one token of `key_id`'s bucket at `now`; when it is empty, how long until one
    /// is back.
    pub fn try_acquire(&self, key_id: &str, now: Instant) -> Result<(), Duration> {
        let RateLimit { per_second, burst } = self.limit;
        let mut buckets = self.buckets.lock();
        let bucket = buckets.entry(key_id.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - bucket.tokens) / per_second.max(f64::MIN_POSITIVE);
        Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
    }

    /// The status a call over the limit gets: RESOURCE_EXHAUSTED naming the key, with the
    /// wait in `retry-after-ms` and `grpc-retry-pushback-ms`.
    pub fn refusal(&self, key_id: &str, wait: Duration) -> Status {
        // Rounded up: a client waiting exactly this long finds a token.
        let ms = u64::try_from(wait.as_micros().div_ceil(1_000).max(1)).unwrap_or(u64::MAX);
        let mut status = Status::resource_exhausted(format!(
            "key `{key_id}` is over its rate limit of {} calls/s (burst {}); retry in {ms} ms",
            self.limit.per_second, self.limit.burst
        ));
        crate::admission::with_retry_hint(&mut status, ms);
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate_per_key() {
        let limiter = KeyRateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.try_acquire("a", t0).is_ok());
        }
        let wait = limiter.try_acquire("a", t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // Another key has its own bucket.
        assert!(limiter.try_acquire("b", t0).is_ok());
        // 100 ms later one token is back, not more.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limiter.try_acquire("a", t1).is_ok());
        assert!(limiter.try_acquire("a", t1).is_err());
        // A long quiet spell refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.try_acquire("a", t2).is_ok());
        }
        assert!(limiter.try_acquire("a", t2).is_err());
        let status = limiter.refusal("a", Duration::from_millis(40));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after-ms").unwrap(), "40");
    }
}
