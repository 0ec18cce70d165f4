//! Frequency caps on one customer's offers: how many impressions of each capped scope
//! fall within each cap's rolling window, which items a cap already blocks, and the
//! greedy pick that never returns a set of offers that would break a cap once shown.

use std::collections::HashMap;

use doppel_index::{Bitset, PointId};
use doppel_types::{CapScope, ContactPolicy, FrequencyCap};

use crate::exposures::Exposures;
use crate::profiles::{ItemRecord, Profiles};

/// What one cap counts an item under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum CapKey<'a> {
    Item(PointId),
    Text(&'a str),
    All,
}

/// The key `cap` counts `item` (at `slot`) under; `None`: the cap does not apply to it
/// (an attribute cap and an item without that attribute).
fn cap_key<'a>(cap: &FrequencyCap, slot: PointId, item: &'a ItemRecord) -> Option<CapKey<'a>> {
    match &cap.scope {
        CapScope::Item => Some(CapKey::Item(slot)),
        CapScope::Category => Some(CapKey::Text(item.item.category.as_str())),
        CapScope::All => Some(CapKey::All),
        CapScope::Attribute(name) => item
            .item
            .attributes
            .get(name)
            .map(|v| CapKey::Text(v.as_str())),
    }
}

/// A customer's impressions of one capped scope within the cap's window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapCount {
    /// The cap.
    pub cap: FrequencyCap,
    /// What is counted: the item id, the category, the attribute value, or "" for all
    /// offers.
    pub key: String,
    /// Impressions within the window, as of the server's clock.
    pub impressions: u32,
}

/// Impressions per key of one cap. Counted on every capped request, over every
/// impression in the window, so with a fast hasher (keys are the catalogue's slots and
/// values, not client input).
type Counts<'a> = HashMap<CapKey<'a>, u32, foldhash::fast::RandomState>;

/// Impression counts per cap and key for one customer, as of one instant.
#[derive(Clone)]
pub(crate) struct CapCounter<'a> {
    caps: &'a [FrequencyCap],
    profiles: &'a Profiles,
    counts: Vec<Counts<'a>>,
}

impl<'a> CapCounter<'a> {
    /// Counts `exposures` against every cap of `policy`, with windows ending at `now_ms`.
    /// Each window's impressions are counted per item first (sorted slots, shared by the
    /// caps with the same window), so a key is looked up once per distinct item, not once
    /// per impression.
    pub(crate) fn new(
        policy: &'a ContactPolicy,
        profiles: &'a Profiles,
        exposures: Option<&Exposures>,
        now_ms: i64,
    ) -> Self {
        let exposures = exposures.filter(|e| !e.is_empty());
        // (window start, the window's item slots sorted)
        let mut windows: Vec<(i64, Vec<PointId>)> = Vec::new();
        let counts = policy
            .caps
            .iter()
            .map(|cap| {
                let mut counts = Counts::default();
                let Some(exposures) = exposures else {
                    return counts;
                };
                let since = now_ms.saturating_sub(cap.window_ms());
                let shown = exposures.since(since);
                if shown.is_empty() {
                    return counts;
                }
                if cap.scope == CapScope::All {
                    counts.insert(CapKey::All, u32::try_from(shown.len()).unwrap_or(u32::MAX));
                    return counts;
                }
                let at = match windows.iter().position(|(s, _)| *s == since) {
                    Some(at) => at,
                    None => {
                        let mut slots: Vec<PointId> = shown.iter().map(|&(slot, _)| slot).collect();
                        slots.sort_unstable();
                        windows.push((since, slots));
                        windows.len() - 1
                    }
                };
                for same in windows[at].1.chunk_by(|a, b| a == b) {
                    let slot = same[0];
                    if let Some(key) = profiles.item(slot).and_then(|r| cap_key(cap, slot, r)) {
                        *counts.entry(key).or_insert(0u32) += same.len() as u32;
                    }
                }
                counts
            })
            .collect();
        Self {
            caps: &policy.caps,
            profiles,
            counts,
        }
    }

    /// True when showing the item at `slot` once more breaks no cap, with `added`
    /// impressions per cap on top of the counted ones (the offers picked so far in one
    /// answer: at most k keys, so a short list).
    fn allows_after(&self, slot: PointId, added: &[Vec<(CapKey<'a>, u32)>]) -> bool {
        let Some(record) = self.profiles.item(slot) else {
            return true;
        };
        self.caps
            .iter()
            .zip(&self.counts)
            .enumerate()
            .all(|(c, (cap, counts))| {
                cap_key(cap, slot, record).is_none_or(|key| {
                    let extra = added
                        .get(c)
                        .and_then(|a| a.iter().find(|(k, _)| *k == key))
                        .map_or(0, |(_, n)| *n);
                    counts.get(&key).copied().unwrap_or(0) + extra < cap.max_impressions
                })
            })
    }

    /// Adds one impression of the item at `slot` to `added` (an offer picked for showing).
    fn take_into(&self, slot: PointId, added: &mut [Vec<(CapKey<'a>, u32)>]) {
        let Some(record) = self.profiles.item(slot) else {
            return;
        };
        for (cap, added) in self.caps.iter().zip(added.iter_mut()) {
            if let Some(key) = cap_key(cap, slot, record) {
                match added.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, n)) => *n += 1,
                    None => added.push((key, 1)),
                }
            }
        }
    }

    /// Removes from `allowed` every item some cap blocks already; returns how many. Works
    /// from the scopes at their cap: an item at its cap is removed by its slot, an ALL cap
    /// at its cap empties the set, a category at its cap removes its items' bitset, and
    /// only an attribute value at its cap costs a pass over `allowed` (comparing each item
    /// with just those values).
    pub(crate) fn remove_blocked(&self, allowed: &mut Bitset) -> usize {
        let before = allowed.count();
        // Per attribute cap, the values at their cap.
        let mut full_values: Vec<(&FrequencyCap, Vec<&str>)> = Vec::new();
        for (cap, counts) in self.caps.iter().zip(&self.counts) {
            let mut values = Vec::new();
            for (key, n) in counts {
                if *n < cap.max_impressions {
                    continue;
                }
                match key {
                    CapKey::Item(slot) => {
                        allowed.remove(*slot);
                    }
                    CapKey::All => {
                        *allowed = Bitset::new(allowed.len_bits());
                        return before;
                    }
                    CapKey::Text(category) if cap.scope == CapScope::Category => {
                        if let Some(items) = self.profiles.category_items(category) {
                            allowed.subtract(items);
                        }
                    }
                    CapKey::Text(value) => values.push(*value),
                }
            }
            if !values.is_empty() {
                full_values.push((cap, values));
            }
        }
        if !full_values.is_empty() {
            let blocked: Vec<PointId> = allowed
                .iter()
                .filter(|&slot| {
                    self.profiles.item(slot).is_some_and(|record| {
                        full_values.iter().any(|(cap, values)| {
                            matches!(cap_key(cap, slot, record),
                                Some(CapKey::Text(v)) if values.contains(&v))
                        })
                    })
                })
                .collect();
            for slot in blocked {
                allowed.remove(slot);
            }
        }
        before - allowed.count()
    }

    /// How many offers one answer may still hold: `k`, or fewer when an ALL cap has
    /// fewer impressions left in its window.
    pub(crate) fn budget(&self, k: usize) -> usize {
        self.caps
            .iter()
            .zip(&self.counts)
            .filter(|(cap, _)| cap.scope == CapScope::All)
            .map(|(cap, counts)| {
                let used = counts.get(&CapKey::All).copied().unwrap_or(0);
                cap.max_impressions.saturating_sub(used) as usize
            })
            .fold(k, usize::min)
    }

    /// Picks up to `k` of `candidates` (best first) in order, skipping any whose showing
    /// would break a cap given those picked before it. Returns the picks (positions in
    /// `candidates`) and how many candidates were skipped.
    pub(crate) fn pick(
        &self,
        candidates: impl IntoIterator<Item = PointId>,
        k: usize,
    ) -> (Vec<usize>, usize) {
        let mut added = vec![Vec::new(); self.caps.len()];
        let (mut picked, mut skipped) = (Vec::new(), 0);
        for (i, slot) in candidates.into_iter().enumerate() {
            if picked.len() == k {
                break;
            }
            if self.caps.is_empty() || self.allows_after(slot, &added) {
                self.take_into(slot, &mut added);
                picked.push(i);
            } else {
                skipped += 1;
            }
        }
        (picked, skipped)
    }

    /// Every non-zero count, cap by cap, keys in order.
    pub(crate) fn counts(&self) -> Vec<CapCount> {
        let mut out = Vec::new();
        for (cap, counts) in self.caps.iter().zip(&self.counts) {
            let mut rows: Vec<CapCount> = counts
                .iter()
                .map(|(key, n)| CapCount {
                    cap: cap.clone(),
                    key: match key {
                        CapKey::Item(slot) => self
                            .profiles
                            .item(*slot)
                            .map(|r| r.item.id.clone())
                            .unwrap_or_default(),
                        CapKey::Text(text) => (*text).to_owned(),
                        CapKey::All => String::new(),
                    },
                    impressions: *n,
                })
                .collect();
            rows.sort_by(|a, b| a.key.cmp(&b.key));
            out.extend(rows);
        }
        out
    }
}
