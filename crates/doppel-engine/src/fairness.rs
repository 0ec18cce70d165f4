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
/// attribute of `groups`, member after member): every value with eligible customers,
/// attributes in order, values sorted.
pub fn audit(groups: &Groups, codes: &[u32]) -> Vec<GroupAudit> {
    let mut counts = empty_tally(groups);
    tally(groups, &mut counts, codes);
    audit_of(groups, &counts)
}

/// Zero audience counts per attribute and value code.
pub fn empty_tally(groups: &Groups) -> Vec<Vec<u64>> {
    (0..groups.attributes().len())
        .map(|a| vec![0; groups.eligible(a).len()])
        .collect()
}

/// Adds members with the group codes `codes` to `counts`.
pub fn tally(groups: &Groups, counts: &mut [Vec<u64>], codes: &[u32]) {
    let width = groups.attributes().len();
    if width == 0 {
        return;
    }
    for member in codes.chunks_exact(width) {
        for (a, &code) in member.iter().enumerate() {
            if let Some(c) = counts[a].get_mut(code as usize) {
                *c += 1;
            }
        }
    }
}

/// The audit of audience counts per attribute and value code.
pub fn audit_of(groups: &Groups, counts: &[Vec<u64>]) -> Vec<GroupAudit> {
    let mut out = Vec::new();
    for (a, attribute) in groups.attributes().iter().enumerate() {
        let eligible = groups.eligible(a);
        let count = |code: usize| counts[a].get(code).copied().unwrap_or(0);
        let rate = |code: usize| match eligible[code] {
            0 => 0.0,
            e => count(code) as f64 / e as f64,
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
                    audience_count: count(c),
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

/// Top rates tried between the lowest that can fill the audience and the unbalanced one.
const RATE_STEPS: usize = 32;

/// Picks `n` members of a ranked population so that every group's selection rate is at
/// least `ratio` × the best-served group's, best scores first within each group. `scores`
/// and `group` describe the ranked members (best first; a group's members beyond the `n`th
/// may be left out of them), `eligible` the eligible count per group code. Answers the
/// picked indices in rank order.
///
/// For a top rate `M`, each group gets its best `⌈ratio·M·eligible⌉` members, and the rest
/// of `n` goes by score among groups under their cap `⌊M·eligible⌋`: every rate then lies in
/// `[ratio·M, M]`. `M` runs from the lowest that can fill `n` up to the unbalanced top
/// rate, and the pick with the highest total score wins. A group too small for its quota
/// to fit under its cap cannot meet the ratio: it is capped like the others, and the
/// audit shows it.
pub fn balance(
    scores: &[f32],
    group: &[u32],
    eligible: &[u64],
    n: usize,
    ratio: f64,
) -> Vec<usize> {
    const EPS: f64 = 1e-9;
    let n = n.min(group.len());
    let groups = group
        .iter()
        .map(|&g| g as usize + 1)
        .max()
        .unwrap_or(0)
        .max(eligible.len());
    let mut eligible = eligible.to_vec();
    eligible.resize(groups, 0);
    let mut top = vec![0u64; groups];
    for &g in &group[..n] {
        top[g as usize] += 1;
    }
    let present: Vec<usize> = (0..groups).filter(|&g| eligible[g] > 0).collect();
    let rate = |g: usize| top[g] as f64 / eligible[g] as f64;
    let cap = |m: f64, g: usize| ((m * eligible[g] as f64 + EPS).floor() as u64).min(eligible[g]);
    let quota = |m: f64, g: usize| {
        ((ratio * m * eligible[g] as f64 - EPS).ceil().max(0.0) as u64).min(eligible[g])
    };
    let fits = |m: f64, g: usize| quota(m, g) <= cap(m, g);
    let best = present.iter().map(|&g| rate(g)).fold(0.0, f64::max);
    if present
        .iter()
        .filter(|&&g| fits(best, g))
        .all(|&g| rate(g) >= ratio * best - 1e-12)
    {
        return (0..n).collect();
    }
    let fill = |m: f64| present.iter().map(|&g| cap(m, g)).sum::<u64>() >= n as u64;
    let (mut lo, mut hi) = (0.0f64, best.max(EPS));
    for _ in 0..64 {
        let mid = (lo + hi) / 2.0;
        if fill(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let lowest = hi;
    // The pick at top rate `m`: `None` when the quotas alone overshoot `n`.
    let pick = |m: f64, truncate: bool| -> Option<(Vec<usize>, f64)> {
        let caps: Vec<u64> = (0..groups).map(|g| cap(m, g)).collect();
        let quotas: Vec<u64> = (0..groups).map(|g| quota(m, g).min(caps[g])).collect();
        if !truncate && quotas.iter().sum::<u64>() > n as u64 {
            return None;
        }
        let mut picked = vec![false; group.len()];
        let mut taken = vec![0u64; groups];
        for (i, &g) in group.iter().enumerate() {
            let g = g as usize;
            if taken[g] < quotas[g] {
                taken[g] += 1;
                picked[i] = true;
            }
        }
        let mut count = picked.iter().filter(|&&p| p).count();
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
        let chosen: Vec<usize> = (0..group.len()).filter(|&i| picked[i]).take(n).collect();
        let total = chosen.iter().map(|&i| f64::from(scores[i])).sum();
        Some((chosen, total))
    };
    (0..=RATE_STEPS)
        .filter_map(|k| {
            pick(
                lowest + (best - lowest).max(0.0) * k as f64 / RATE_STEPS as f64,
                false,
            )
        })
        .filter(|(chosen, _)| chosen.len() == n)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .or_else(|| pick(lowest, true))
        .map(|(chosen, _)| chosen)
        .unwrap_or_default()
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

    fn ranked(group: &[u32]) -> (Vec<f32>, Vec<u64>) {
        let scores = (0..group.len())
            .map(|i| 1.0 - i as f32 / group.len() as f32)
            .collect();
        let mut eligible = vec![0u64; *group.iter().max().unwrap() as usize + 1];
        for &g in group {
            eligible[g as usize] += 1;
        }
        (scores, eligible)
    }

    fn run(group: &[u32], n: usize, ratio: f64) -> Vec<usize> {
        let (scores, eligible) = ranked(group);
        balance(&scores, group, &eligible, n, ratio)
    }

    #[test]
    fn a_skewed_top_is_rebalanced_to_the_ratio_at_the_same_size() {
        // 100 of group 0 ranked above 100 of group 1.
        let group: Vec<u32> = (0..200).map(|i| u32::from(i >= 100)).collect();
        let picked = run(&group, 50, 0.8);
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
        assert_eq!(run(&group, 10, 0.8), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_group_too_small_for_the_ratio_stays_below_it() {
        // One member of group 1, ranked last; 30 of 99 group-0 members picked.
        let mut group = vec![0u32; 99];
        group.push(1);
        let picked = run(&group, 30, 0.8);
        assert_eq!(picked.len(), 30);
        let r = rates(&group, &picked);
        assert_eq!(r[1], 0.0);
        // Group 0 alone met the ratio: the lone member did not force a re-selection.
        assert_eq!(picked, (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn a_looser_ratio_keeps_more_of_the_best_group() {
        let group: Vec<u32> = (0..200).map(|i| u32::from(i >= 100)).collect();
        let r = |ratio| rates(&group, &run(&group, 50, ratio));
        let strict = r(1.0);
        assert_eq!(strict, [0.25, 0.25]);
        let loose = r(0.5);
        assert!(loose[1] >= 0.5 * loose[0] - 1e-9, "{loose:?}");
        assert!(loose[0] > 0.3, "a 0.5 ratio should not equalise: {loose:?}");
    }

    /// Every pick of `n` from a small ranked population, to check the search against.
    #[test]
    fn the_pick_is_the_best_scoring_one_that_meets_the_ratio_on_small_cases() {
        let cases: [(&[u32], usize, f64); 4] = [
            (&[0, 0, 0, 0, 1, 1, 0, 1, 1, 1], 4, 0.8),
            (&[0, 0, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1], 6, 0.5),
            (&[0, 0, 1, 0, 2, 0, 1, 2, 2, 1, 2, 1], 6, 0.8),
            (&[1, 0, 0, 0, 0, 0, 1, 1, 1, 1], 5, 0.6),
        ];
        for (group, n, ratio) in cases {
            let (scores, eligible) = ranked(group);
            let picked = balance(&scores, group, &eligible, n, ratio);
            assert_eq!(picked.len(), n);
            let meets = |set: &[usize]| {
                let r = rates(group, set);
                let best = r.iter().copied().fold(0.0, f64::max);
                r.iter().all(|&x| x >= ratio * best - 1e-9)
            };
            assert!(meets(&picked), "{group:?}: {picked:?}");
            let total = |set: &[usize]| set.iter().map(|&i| f64::from(scores[i])).sum::<f64>();
            // Brute force over every subset of size n.
            let mut best_total = f64::MIN;
            for mask in 0u32..(1 << group.len()) {
                if mask.count_ones() as usize != n {
                    continue;
                }
                let set: Vec<usize> = (0..group.len()).filter(|&i| mask >> i & 1 == 1).collect();
                if meets(&set) {
                    best_total = best_total.max(total(&set));
                }
            }
            assert!(
                total(&picked) >= best_total - 0.05,
                "{group:?}: {} against the best {best_total}",
                total(&picked)
            );
        }
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
