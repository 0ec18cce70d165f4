//! The recency shift of a trained version's offers: what a customer bought last moves
//! their offer query towards those items.
//!
//! A customer's ALS vector `u` sums everything they ever bought. What they buy next often
//! follows what they bought last (a season of films, the rest of a set, a refill). A
//! version with recency weight `w` searches the item index with
//!
//! ```text
//! q = u + w·(|u| / |r|)·r,    r = Σₖ dᵏ·yₖ / Σₖ dᵏ
//! ```
//!
//! over the customer's last [`RECENT_ITEMS`] distinct purchases `y₀` (newest) … with decay
//! `d`. `r` is rescaled to `u`'s length, so `w` is the share of the query the recent items
//! take whatever the scale of the vectors (an index keeps them normalised). With `w = 0`,
//! or no purchase yet, the query is `u` exactly. The recent-popularity prior
//! ([`crate::offer_prior`]) is then added to `q` as it was to `u`.
//!
//! `w` is chosen per training run on the newest part of its log, beside the prior's weight
//! (`doppel_train::choose_prior_weight`); `d` is fixed at [`DEFAULT_DECAY`] (flat between
//! 0.3 and 0.7 on MovieLens-100k's validation split).

use crate::version::{VersionInfo, VersionSource};

/// `VersionInfo.params` key of `w` (absent or 0: no shift).
pub const WEIGHT_PARAM: &str = "recency_weight";
/// `VersionInfo.params` key of `d`.
pub const DECAY_PARAM: &str = "recency_decay";
/// Most recent purchases read.
pub const RECENT_ITEMS: usize = 8;
/// `d`.
pub const DEFAULT_DECAY: f32 = 0.5;
/// Largest `w`.
pub const MAX_WEIGHT: f32 = 10.0;

/// `w` and `d` of a trained version.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecencyShift {
    /// `w`, > 0.
    pub weight: f32,
    /// `d`, in (0, 1].
    pub decay: f32,
}

impl RecencyShift {
    /// The shift a version records (`None` for an imported version, or a weight of 0).
    pub fn of(info: &VersionInfo) -> Option<Self> {
        if info.source != VersionSource::Trained {
            return None;
        }
        let read = |key: &str| info.params.get(key).and_then(|w| w.parse::<f32>().ok());
        let weight = read(WEIGHT_PARAM).filter(|w| w.is_finite() && *w > 0.0)?;
        let decay = read(DECAY_PARAM)
            .filter(|d| d.is_finite() && *d > 0.0 && *d <= 1.0)
            .unwrap_or(DEFAULT_DECAY);
        Some(Self {
            weight: weight.min(MAX_WEIGHT),
            decay,
        })
    }

    /// Moves `u` (latent factors) towards `recent`, the factors of the customer's newest
    /// purchases, newest first (only the first [`RECENT_ITEMS`] are read; each may be
    /// longer than `u`, the rest is ignored). Unchanged when `u` or the mean is zero.
    pub fn apply<'a>(&self, u: &mut [f32], recent: impl IntoIterator<Item = &'a [f32]>) {
        let mut mean = vec![0f64; u.len()];
        let mut scale = 1f64;
        for y in recent.into_iter().take(RECENT_ITEMS) {
            for (m, &v) in mean.iter_mut().zip(y) {
                *m += scale * f64::from(v);
            }
            scale *= f64::from(self.decay);
        }
        let r = mean.iter().map(|m| m * m).sum::<f64>().sqrt();
        let length = u.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        if !(r > 1e-12 && length > 1e-12) {
            return;
        }
        let factor = f64::from(self.weight) * length / r;
        for (x, m) in u.iter_mut().zip(&mean) {
            *x = (f64::from(*x) + factor * m) as f32;
        }
    }
}

/// The items of the newest [`RECENT_ITEMS`] distinct purchases, newest first, from
/// `(timestamp ms, log position, item)` of a customer's purchases in any order (ties in
/// time: later in the log is newer). What training and the evaluation read as "newest";
/// a node keeps the same order as purchases arrive.
pub fn newest_distinct<T: PartialEq>(mut purchases: Vec<(i64, usize, T)>) -> Vec<T> {
    purchases.sort_unstable_by_key(|p| std::cmp::Reverse((p.0, p.1)));
    let mut recent = Vec::with_capacity(RECENT_ITEMS);
    for (_, _, item) in purchases {
        if recent.len() == RECENT_ITEMS {
            break;
        }
        if !recent.contains(&item) {
            recent.push(item);
        }
    }
    recent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shift_moves_towards_the_newest_purchases_in_the_customers_scale() {
        let shift = RecencyShift {
            weight: 1.0,
            decay: 0.5,
        };
        let mut u = [2.0f32, 0.0];
        // Newest first: [0, 1] weighs twice [0, -1]... and the third item half as much again.
        let recent: [&[f32]; 3] = [&[0.0, 1.0, 9.0], &[0.0, -1.0], &[0.0, 1.0]];
        shift.apply(&mut u, recent);
        // mean ∝ [0, 1 − 0.5 + 0.25] = [0, 0.75] → rescaled to |u| = 2 → [0, 2].
        assert!(
            (u[0] - 2.0).abs() < 1e-6 && (u[1] - 2.0).abs() < 1e-6,
            "{u:?}"
        );
        let mut same = [2.0f32, 0.0];
        shift.apply(&mut same, std::iter::empty());
        assert_eq!(same, [2.0, 0.0], "no purchase: no shift");
        let mut zero = [0.0f32, 0.0];
        shift.apply(&mut zero, recent);
        assert_eq!(zero, [0.0, 0.0]);
    }

    #[test]
    fn newest_distinct_purchases_come_by_time_then_log_order() {
        let bought = vec![
            (5, 0, 'a'),
            (9, 1, 'b'),
            (9, 2, 'c'),
            (7, 3, 'b'),
            (1, 4, 'd'),
        ];
        assert_eq!(newest_distinct(bought), ['c', 'b', 'a', 'd']);
        let many: Vec<(i64, usize, usize)> = (0..20).map(|i| (i as i64, i, i)).collect();
        assert_eq!(newest_distinct(many).len(), RECENT_ITEMS);
    }

    #[test]
    fn only_trained_versions_with_a_weight_shift() {
        let mut info = VersionInfo {
            source: VersionSource::Trained,
            ..VersionInfo::default()
        };
        assert_eq!(RecencyShift::of(&info), None);
        info.params.insert(WEIGHT_PARAM.into(), "0".into());
        assert_eq!(RecencyShift::of(&info), None);
        info.params.insert(WEIGHT_PARAM.into(), "1.5".into());
        assert_eq!(
            RecencyShift::of(&info),
            Some(RecencyShift {
                weight: 1.5,
                decay: DEFAULT_DECAY
            })
        );
        info.params.insert(DECAY_PARAM.into(), "0.3".into());
        assert_eq!(RecencyShift::of(&info).map(|s| s.decay), Some(0.3));
        info.source = VersionSource::Imported;
        assert_eq!(RecencyShift::of(&info), None);
    }
}
