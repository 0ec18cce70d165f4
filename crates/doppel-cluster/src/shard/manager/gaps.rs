//! Sequence numbers the event-log follower skipped: two appenders may commit out of
//! order, so a skipped number is re-read for [`GAP_PATIENCE`] before it is given up.

use std::collections::BTreeMap;
use std::time::Instant;

use super::GAP_PATIENCE;

/// Gaps wider than this are not waited for (a bulk erasure, not a slow writer).
const MAX_GAP: u64 = 10_000;

/// Seqs not seen yet, with when they were first missed.
#[derive(Default)]
pub(super) struct Gaps {
    pub(super) missing: BTreeMap<u64, Instant>,
}

impl Gaps {
    pub(super) fn note(&mut self, from: u64, to: u64, now: Instant) {
        if to >= from && to - from < MAX_GAP {
            for seq in from..=to {
                self.missing.insert(seq, now);
            }
        }
    }

    pub(super) fn expire(&mut self, now: Instant) {
        self.missing
            .retain(|_, since| now.duration_since(*since) < GAP_PATIENCE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_remembered_then_given_up() {
        let mut gaps = Gaps::default();
        let t0 = Instant::now();
        gaps.note(5, 7, t0);
        gaps.note(100, 100 + MAX_GAP, t0);
        assert_eq!(gaps.missing.keys().copied().collect::<Vec<_>>(), [5, 6, 7]);
        gaps.expire(t0 + GAP_PATIENCE);
        assert!(gaps.missing.is_empty());
    }
}
