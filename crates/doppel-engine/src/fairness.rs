//! Fairness of an audience: the audit of selection rates per group, and re-selection so
//! that every group is served at least a given share of the best-served group's rate.
//!
//! Both work on a *ranked* population — every eligible customer, best first (score, then
//! customer id) — with each member's group codes ([`Groups`]). A single node ranks its own
//! customers; a router ranks the exact merge of its nodes' streams; the answers agree.

use crate::audience_groups::Groups;

/// The four-fifths rule: a group selected at under 80 % of the best group's rate is flagged.
pub const FOUR_FIFTHS: f64 = 0.8;

/// One value of an audited attribute: who was selected against who could have been.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupAudit {
    /// The attribute.
    pub attribute: String,
    /// Its value (`""`: customers without the attribute).
    pub value: String,
    /// Members of the audience with this value.
    pub audience_count: u64,
    /// Eligible customers with this value.
    pub eligible_count: u64,
    /// `audience_count / eligible_count`.
    pub selection_rate: f64,
    /// `selection_rate` over the highest among this attribute's values (1 when nobody of
    /// any value was selected).
    pub ratio_to_best: f64,
    /// `ratio_to_best < 0.8`.
    pub below_four_fifths: bool,
}

/// The audit of an audience whose members have the group codes `codes` (one code per
/// attribute of `groups` per member, member after member): every value with eligible
/// customers, attributes in order, values sorted.
pub fn audit(groups: &Groups, codes: &[u32]) -> Vec<GroupAudit> {
    let width = groups.attributes().len();
    if width == 0 {
        return Vec::new();
    }
    let mut counts: Vec<Vec<u64>> = (0..width)
        .map(|a| vec![0; groups.eligible(a).len()])
        .collect();
    for member in codes.chunks_exact(width) {
        for (a, &code) in member.iter().enumerate() {
            if let Some(c) = counts[a].get_mut(code as usize) {
                *c += 1;
            }
        }
    }
    let mut out = Vec::new();
    for (a, attribute) in groups.attributes().iter().enumerate() {
        let eligible = groups.eligible(a);
        let rate = |code: usize| match eligible[code] {
            0 => 0.0,
            e => counts[a][code] as f64 / e as f64,
        };
        let present: Vec<usize> = (0..eligible.len()).filter(|&c| eligible[c] > 0).collect();
        let best = present.iter().map(|&c| rate(c)).fold(0.0, f64::max);
        let mut rows: Vec<GroupAudit> = present
            .into_iter()
            .map(|c| {
                let selection_rate = rate(c);
                let ratio_to_best = if best > 0.0 {
                    selection_rate / best
                } else {
                    1.0
                };
                GroupAudit {
                    attribute: attribute.clone(),
                    value: groups.value(a, c as u32).to_owned(),
                    audience_count: counts[a][c],
                    eligible_count: eligible[c],
                    selection_rate,
                    ratio_to_best,
                    below_four_fifths: ratio_to_best < FOUR_FIFTHS,
                }
            })
            .collect();
        rows.sort_by(|x, y| x.value.cmp(&y.value));
        out.extend(rows);
    }
    out
}

/// Picks `n` members of a ranked population (`group[i]` is member `i`'s code of the
/// balance attribute) so that every group's selection rate is at least `ratio` × the
/// best-served group's, best scores first within each group. Answers the picked
/// indices in rank order.
///
/// When the best `n` already meet the ratio they are the answer. Otherwise the highest
/// rate `R` is the smallest for which groups capped at `⌊R·eligible⌋` can still fill `n`;
/// each group first gets its best `⌈ratio·R·eligible⌉` members (never above its cap), then
/// the rest of `n` goes by score among groups under their cap. A group too small for its
/// quota to fit under its cap stays below the ratio: the audit shows it.
pub fn balance(group: &[u32], n: usize, ratio: f64) -> Vec<usize> {
    let n = n.min(group.len());
    let groups = group.iter().map(|&g| g as usize + 1).max().unwrap_or(0);
    let mut eligible = vec![0u64; groups];
    for &g in group {
        eligible[g as usize] += 1;
    }
    let mut top = vec![0u64; groups];
    for &g in &group[..n] {
        top[g as usize] += 1;
    }
    let rate = |taken: &[u64], g: usize| taken[g] as f64 / eligible[g] as f64;
    let present: Vec<usize> = (0..groups).filter(|&g| eligible[g] > 0).collect();
    let best = present.iter().map(|&g| rate(&top, g)).fold(0.0, f64::max);
    if present
        .iter()
        .all(|&g| rate(&top, g) >= ratio * best - 1e-12)
    {
        return (0..n).collect();
    }
    const EPS: f64 = 1e-9;
    let cap = |r: f64, g: usize| ((r * eligible[g] as f64 + EPS).floor() as u64).min(eligible[g]);
    let fits = |r: f64| present.iter().map(|&g| cap(r, g)).sum::<u64>() >= n as u64;
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..64 {
        let mid = (lo + hi) / 2.0;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let r = hi;
    let caps: Vec<u64> = (0..groups).map(|g| cap(r, g)).collect();
    let quotas: Vec<u64> = (0..groups)
        .map(|g| ((ratio * r * eligible[g] as f64 - EPS).ceil().max(0.0) as u64).min(caps[g]))
        .collect();
    let mut picked = vec![false; group.len()];
    let mut taken = vec![0u64; groups];
    for (i, &g) in group.iter().enumerate() {
        let g = g as usize;
        if taken[g] < quotas[g] {
            taken[g] += 1;
            picked[i] = true;
        }
    }
    let mut count: usize = picked.iter().filter(|&&p| p).count();
    for (i, &g) in group.iter().enumerate() {
        if count >= n {
            break;
        }
        let g = g as usize;
        if !picked[i] && taken[g] < caps[g] {
            taken[g] += 1;
            picked[i] = true;
            count += 1;
        }
    }
    // Quotas rounded up over many small groups can overshoot a small `n`: keep the best.
    picked
        .iter()
        .enumerate()
        .filter(|&(_, &p)| p)
        .map(|(i, _)| i)
        .take(n)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(group: &[u32], picked: &[usize]) -> Vec<f64> {
        let groups = *group.iter().max().unwrap() as usize + 1;
        let mut e = vec![0.0; groups];
        let mut a = vec![0.0; groups];
        for &g in group {
            e[g as usize] += 1.0;
        }
        for &i in picked {
            a[group[i] as usize] += 1.0;
        }
        (0..groups).map(|g| a[g] / e[g]).collect()
    }

    #[test]
    fn a_skewed_top_is_rebalanced_to_the_ratio_at_the_same_size() {
        // 100 of group 0 ranked above 100 of group 1.
        let group: Vec<u32> = (0..200).map(|i| u32::from(i >= 100)).collect();
        let picked = balance(&group, 50, 0.8);
        assert_eq!(picked.len(), 50);
        let r = rates(&group, &picked);
        assert!(r[1] >= 0.8 * r[0], "{r:?}");
        // Best first within each group, in rank order.
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(picked[0], 0);
        assert!(picked.contains(&100));
    }

    #[test]
    fn a_balanced_top_is_kept() {
        let group: Vec<u32> = (0..100).map(|i| i % 2).collect();
        assert_eq!(balance(&group, 10, 0.8), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_group_too_small_for_the_ratio_stays_below_it() {
        // One member of group 1, ranked last; 30 of 99 group-0 members picked.
        let mut group = vec![0u32; 99];
        group.push(1);
        let picked = balance(&group, 30, 0.8);
        assert_eq!(picked.len(), 30);
        let r = rates(&group, &picked);
        assert_eq!(r[1], 0.0);
    }

    #[test]
    fn the_audit_counts_rates_and_flags_by_value() {
        let mut g = Groups::new(vec!["gender".into()]);
        for _ in 0..10 {
            g.add_eligible(0, "f", 1).unwrap();
        }
        for _ in 0..20 {
            g.add_eligible(0, "m", 1).unwrap();
        }
        g.add_eligible(0, "", 5).unwrap();
        // 5 f, 4 m selected.
        let codes: Vec<u32> = [0; 5].into_iter().chain([1; 4]).collect();
        let a = audit(&g, &codes);
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].value, "");
        assert_eq!(a[0].audience_count, 0);
        assert!(a[0].below_four_fifths);
        assert_eq!(a[1].value, "f");
        assert_eq!(a[1].selection_rate, 0.5);
        assert_eq!(a[1].ratio_to_best, 1.0);
        assert_eq!(a[2].value, "m");
        assert!((a[2].ratio_to_best - 0.4).abs() < 1e-12);
        assert!(a[2].below_four_fifths);
    }
}
