//! The privacy floor of audiences: a safeguard against micro-targeting. An audience built
//! from a handful of seeds, or small enough to single out a few people, is refused.

/// Most a floor setting may ask for.
pub const MAX_FLOOR: u64 = 10_000_000;

/// Smallest seed set and audience a lookalike, reach curve or saved audience may have
/// (0: no floor).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrivacyFloor {
    /// Seeds used (with ads consent and a vector), at least.
    pub min_seed_count: u64,
    /// Prospects, at least.
    pub min_audience_size: u64,
}

impl PrivacyFloor {
    /// `Err(message)` (for FAILED_PRECONDITION, naming `seed_customer_ids`) when fewer than
    /// `min_seed_count` seeds were used.
    pub fn check_seeds(&self, used: u64) -> Result<(), String> {
        if used < self.min_seed_count {
            return Err(format!(
                "seed_customer_ids: {used} usable seeds (with ads consent and a vector) is below \
                 the privacy floor of {} (min_seed_count); add seeds",
                self.min_seed_count
            ));
        }
        Ok(())
    }

    /// `Err(message)` (for FAILED_PRECONDITION, naming `field`) when an audience of `size`
    /// is below `min_audience_size`.
    pub fn check_audience(&self, field: &str, size: u64) -> Result<(), String> {
        if size < self.min_audience_size {
            return Err(format!(
                "{field}: an audience of {size} is below the privacy floor of {} prospects \
                 (min_audience_size); ask for a larger audience",
                self.min_audience_size
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_names_the_field_and_is_off_at_zero() {
        let off = PrivacyFloor::default();
        assert!(off.check_seeds(0).is_ok() && off.check_audience("count", 0).is_ok());
        let floor = PrivacyFloor {
            min_seed_count: 100,
            min_audience_size: 1_000,
        };
        assert!(
            floor
                .check_seeds(99)
                .unwrap_err()
                .starts_with("seed_customer_ids: 99")
        );
        assert!(floor.check_seeds(100).is_ok());
        assert!(
            floor
                .check_audience("top_percent", 999)
                .unwrap_err()
                .starts_with("top_percent:")
        );
        assert!(floor.check_audience("count", 1_000).is_ok());
    }
}
