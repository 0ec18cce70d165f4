//! Customer segments: computed at training time and kept on the customer's profile as
//! reserved attributes (`segment.<kind>`), so they persist with the profile, disappear
//! with an erasure, show in `GetCustomer`, and work in attribute filters.
//!
//! Kinds: `rfm` (named RFM segment, e.g. `champions`), `clv` (CLV tier, e.g.
//! `very_profitable`), `cluster` (behavioural cluster number). Details kept beside them:
//! `segment.rfm_score` (`R-F-M` quintiles) and `segment.clv_estimate` (GBP-like units),
//! `segment.version` (the training run that computed them). Clients may not write keys
//! with the `segment.` prefix.

/// Prefix of every reserved segment attribute.
pub const SEGMENT_PREFIX: &str = "segment.";
/// The segment kinds that group customers.
pub const SEGMENT_KINDS: [&str; 3] = ["rfm", "clv", "cluster"];

/// The attribute key of a segment kind or detail, e.g. `segment.rfm`.
pub fn segment_key(kind: &str) -> String {
    format!("{SEGMENT_PREFIX}{kind}")
}

/// True if `key` is reserved for segments.
pub fn is_segment_key(key: &str) -> bool {
    key.starts_with(SEGMENT_PREFIX)
}

/// `Loyal Customers` → `loyal_customers`: segment names as API values.
pub fn segment_value(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case_values() {
        assert_eq!(segment_value("Loyal Customers"), "loyal_customers");
        assert_eq!(segment_value("Can't Lose Them"), "can_t_lose_them");
        assert_eq!(segment_value("VeryProfitable"), "veryprofitable");
        assert_eq!(segment_key("rfm"), "segment.rfm");
        assert!(is_segment_key("segment.cluster") && !is_segment_key("country"));
    }
}
