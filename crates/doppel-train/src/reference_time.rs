//! The "now" that recency decay and RFM recency are measured to.
//!
//! Not the newest event: one event stamped in the year 3000 (or `i64::MAX`) would make
//! every other event look centuries old and decay it to nothing. The reference is a high
//! quantile of the event times — outliers above it are treated as "now" (decay clamps at
//! age 0) — and never later than the server clock plus a day. Measured from the log
//! rather than the clock, so an old log (a historical data set) is not "all forgotten".

/// Share of events at or before the reference time.
pub const REFERENCE_QUANTILE: f64 = 0.999;
/// How far past the server clock the reference may lie (clock skew), in ms.
pub const MAX_AHEAD_OF_CLOCK_MS: i64 = 86_400_000;

/// The reference time of events with these `timestamps`, given the server clock `now_ms`
/// (0 for no events).
pub fn reference_time_ms(timestamps: impl Iterator<Item = i64>, now_ms: i64) -> i64 {
    let mut times: Vec<i64> = timestamps.collect();
    if times.is_empty() {
        return 0;
    }
    let rank = ((times.len() - 1) as f64 * REFERENCE_QUANTILE).floor() as usize;
    let (_, quantile, _) = times.select_nth_unstable(rank);
    (*quantile).min(now_ms.saturating_add(MAX_AHEAD_OF_CLOCK_MS))
}

/// Where the validation window of a training log starts: the time below which `quantile`
/// of the events with a signal (`carries_signal`) lie; `None` for no such event. The
/// context fit and the prior's weight choice hold out what comes after it.
pub fn validation_start(
    events: &[doppel_types::Event],
    carries_signal: impl Fn(&doppel_types::Event) -> bool,
    quantile: f64,
) -> Option<i64> {
    let mut times: Vec<i64> = events
        .iter()
        .filter(|e| carries_signal(e))
        .map(|e| e.timestamp_ms)
        .collect();
    if times.is_empty() {
        return None;
    }
    let rank = ((times.len() - 1) as f64 * quantile) as usize;
    let (_, start, _) = times.select_nth_unstable(rank);
    Some(*start)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_790_000_000_000;

    #[test]
    fn one_far_future_event_does_not_move_the_reference() {
        let mut times: Vec<i64> = (0..10_000).map(|i| NOW - i * 60_000).collect();
        let clean = reference_time_ms(times.iter().copied(), NOW);
        times.push(32_503_680_000_000);
        times.push(i64::MAX);
        let dirty = reference_time_ms(times.iter().copied(), NOW);
        assert!(dirty <= NOW, "{dirty}");
        assert!((clean - dirty).abs() < 60 * 60_000, "{clean} vs {dirty}");
    }

    #[test]
    fn an_old_log_is_measured_to_its_own_end_and_the_clock_caps_it() {
        let old: Vec<i64> = (0..1_000).map(|i| 1_300_000_000_000 + i * 1_000).collect();
        assert!(reference_time_ms(old.iter().copied(), NOW) >= 1_300_000_000_000 + 998_000);
        let future = [NOW + 10 * MAX_AHEAD_OF_CLOCK_MS; 5];
        assert_eq!(
            reference_time_ms(future.iter().copied(), NOW),
            NOW + MAX_AHEAD_OF_CLOCK_MS
        );
        assert_eq!(reference_time_ms(std::iter::empty(), NOW), 0);
    }
}
