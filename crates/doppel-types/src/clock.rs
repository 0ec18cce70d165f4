//! The one wall clock of doppel: milliseconds since the Unix epoch.

/// Now, in ms since the Unix epoch (0 if the clock is before it, `i64::MAX` past 292
/// million years).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
