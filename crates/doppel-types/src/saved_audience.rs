//! A saved audience: a lookalike query, the members it gave when last computed, and the
//! limits on how many audiences and members a server keeps.

use serde::{Deserialize, Serialize};

/// Default most saved audiences.
pub const DEFAULT_MAX_SAVED_AUDIENCES: u64 = 100;
/// Default most members over every saved audience.
pub const DEFAULT_MAX_SAVED_MEMBERS: u64 = 10_000_000;

/// A saved audience's description (what listing answers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedAudienceInfo {
    /// `aud-` and 16 hex digits.
    pub id: String,
    /// The advertiser's name for it.
    pub name: String,
    /// The version that computed the members.
    pub model_version: String,
    /// When it was saved, ms since the epoch.
    pub created_ms: i64,
    /// When the members were last computed.
    pub refreshed_ms: i64,
    /// Members stored (kept by the store: erasures lower it).
    pub size: u64,
    /// Eligible customers when last computed.
    pub eligible_population: u64,
}

/// One member of a saved audience.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedMember {
    /// The customer.
    pub customer_id: String,
    /// Its score when computed.
    pub score: f32,
}

/// How a saved audience is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavedAudienceWrite {
    /// A new audience (its id must be free; the audience count is checked).
    Create,
    /// New members for an existing audience (`NotFound` if it was deleted meanwhile).
    Replace,
}

/// How many saved audiences, and members over all of them, a server keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedAudienceLimits {
    /// Most saved audiences.
    pub max_audiences: u64,
    /// Most members over every saved audience.
    pub max_members: u64,
}

impl Default for SavedAudienceLimits {
    fn default() -> Self {
        Self {
            max_audiences: DEFAULT_MAX_SAVED_AUDIENCES,
            max_members: DEFAULT_MAX_SAVED_MEMBERS,
        }
    }
}

/// Is `id` shaped like an audience id (`aud-` and 16 lowercase hex digits)?
pub fn is_audience_id(id: &str) -> bool {
    id.len() == 20
        && id.starts_with("aud-")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_ids_are_one_shape() {
        assert!(is_audience_id("aud-0123456789abcdef"));
        assert!(!is_audience_id("aud-0123456789ABCDEF"));
        assert!(!is_audience_id("aud-../../../etc/pwd"));
        assert!(!is_audience_id(""));
        assert!(!is_audience_id("aud-0123456789abcdef0"));
    }
}
