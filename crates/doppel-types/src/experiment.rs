//! Experiments across model versions on next-best offers: arms, sticky assignment, and
//! the allocation of hash buckets to arms.
//!
//! A customer's bucket is `mix64(fnv1a64(salt ":" customer_id)) mod 10,000`; each bucket
//! belongs to one arm or to nobody (the customer keeps the active version). A weight
//! change keeps every bucket where it is, except that arms above their new share give up
//! their highest buckets and arms below it take the lowest free ones: customers move only
//! out of arms that shrank and only into arms that grew. Every allocation is kept with the
//! time it took effect, so an event can be attributed to the arm its customer was in then.

use serde::{Deserialize, Serialize};

use crate::shard::stable_hash;

/// Hash buckets customers are spread over.
pub const BUCKETS: usize = 10_000;
/// A bucket that belongs to no arm.
pub const NO_ARM: u8 = u8::MAX;
/// Most arms of one experiment.
pub const MAX_ARMS: usize = 8;
/// Largest arm weight.
pub const MAX_WEIGHT: u32 = 10_000;
/// Longest experiment or arm name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest salt, in bytes.
pub const MAX_SALT_LEN: usize = 128;
/// Most weight changes of one experiment (each keeps a 10 KB allocation for attribution).
pub const MAX_UPDATES: usize = 64;
/// Experiments kept (stopped ones beyond this are forgotten, oldest first): with
/// [`MAX_UPDATES`], the stored book stays under 11 MB.
pub const MAX_EXPERIMENTS_KEPT: usize = 16;
/// The name a canary activation runs under.
pub const CANARY_NAME: &str = "canary";
/// The canary's arms: the stable (active) version, then the canary.
pub const STABLE_ARM: &str = "stable";
/// See [`STABLE_ARM`].
pub const CANARY_ARM: &str = "canary";

/// One arm: a model version and its relative share of the experiment's traffic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arm {
    /// Unique within the experiment.
    pub name: String,
    /// The version answering the arm's customers.
    pub version: String,
    /// Relative share, `0..=MAX_WEIGHT`.
    pub weight: u32,
}

/// Limits a canary must stay within; 0 means "not checked".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CanaryGuard {
    /// Largest share of the canary's calls failing with a server-side error.
    pub max_error_rate: f64,
    /// Largest p99 latency of the canary's calls, in ms.
    pub max_p99_ms: f64,
    /// Smallest canary CTR / stable CTR.
    pub min_ctr_ratio: f64,
    /// Calls before error rate and p99 are judged.
    pub min_requests: u64,
    /// Impressions (of each arm) before the CTR ratio is judged.
    pub min_impressions: u64,
}

/// Default [`CanaryGuard::min_requests`].
pub const DEFAULT_MIN_REQUESTS: u64 = 100;
/// Default [`CanaryGuard::min_impressions`].
pub const DEFAULT_MIN_IMPRESSIONS: u64 = 1_000;

/// An experiment or a canary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum ExperimentKind {
    /// Created with `CreateExperiment`.
    #[default]
    Experiment,
    /// Started by a canary activation, guarded.
    Canary(CanaryGuard),
}

/// A bucket → arm map and when it took effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Milliseconds since the Unix epoch.
    pub from_ms: i64,
    /// [`BUCKETS`] entries: an arm index, or [`NO_ARM`].
    pub buckets: Vec<u8>,
}

/// An experiment and its allocation history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Unique among the experiments kept.
    pub name: String,
    /// The hash salt.
    pub salt: String,
    /// The arms, in request order.
    pub arms: Vec<Arm>,
    /// Share of all customers in the experiment, 1..=100.
    pub traffic_percent: u32,
    /// When it was created.
    pub created_ms: i64,
    /// When it stopped; `None` while running.
    pub stopped_ms: Option<i64>,
    /// Why it stopped (a canary's tripped guard, "promoted", "stopped").
    pub stop_reason: String,
    /// An experiment or a canary.
    pub kind: ExperimentKind,
    /// The event log's last sequence number at creation: reports read after it.
    pub start_seq: u64,
    /// Every allocation, oldest first; the last is in force.
    pub allocations: Vec<Allocation>,
}

/// Every experiment kept, and a revision for compare-and-set writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperimentBook {
    /// Incremented by every write.
    pub revision: u64,
    /// The experiments, oldest first.
    pub experiments: Vec<Experiment>,
}

impl ExperimentBook {
    /// The running experiment, if any.
    pub fn running(&self) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.is_running())
    }

    /// The running experiment, mutably.
    pub fn running_mut(&mut self) -> Option<&mut Experiment> {
        self.experiments.iter_mut().find(|e| e.is_running())
    }

    /// Forgets the oldest stopped experiments beyond [`MAX_EXPERIMENTS_KEPT`] − 1, making
    /// room for one more.
    pub fn make_room(&mut self) {
        while self.experiments.len() >= MAX_EXPERIMENTS_KEPT {
            match self.experiments.iter().position(|e| !e.is_running()) {
                Some(i) => {
                    self.experiments.remove(i);
                }
                None => return,
            }
        }
    }
}

/// The bucket of `customer_id` under `salt`.
pub fn bucket_of(salt: &str, customer_id: &str) -> usize {
    let mut key = Vec::with_capacity(salt.len() + 1 + customer_id.len());
    key.extend_from_slice(salt.as_bytes());
    key.push(b':');
    key.extend_from_slice(customer_id.as_bytes());
    // The remainder is < BUCKETS, which fits in usize.
    (mix64(stable_hash(&key)) % BUCKETS as u64) as usize
}

/// The splitmix64 finaliser: spreads FNV's weak low bits over the whole word.
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Buckets each arm should hold: `traffic_percent` % of [`BUCKETS`] split by weight
/// (largest remainder, ties to the earlier arm).
pub fn bucket_targets(weights: &[u32], traffic_percent: u32) -> Vec<usize> {
    let total = BUCKETS * traffic_percent.min(100) as usize / 100;
    let sum: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(usize, u64)> = weights
        .iter()
        .map(|&w| {
            let share = total as u64 * u64::from(w);
            ((share / sum) as usize, share % sum)
        })
        .collect();
    let mut targets: Vec<usize> = exact.iter().map(|&(floor, _)| floor).collect();
    let left = total - targets.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for &arm in order.iter().take(left) {
        targets[arm] += 1;
    }
    targets
}

/// The allocation for `weights` starting from `previous` (`None`: every bucket free).
/// Arms above their target give up their highest buckets; arms below it then take the
/// lowest free ones, in arm order.
pub fn allocate(previous: Option<&[u8]>, weights: &[u32], traffic_percent: u32) -> Vec<u8> {
    let mut buckets = previous.map_or_else(|| vec![NO_ARM; BUCKETS], <[u8]>::to_vec);
    let targets = bucket_targets(weights, traffic_percent);
    let mut held = vec![0usize; weights.len()];
    for b in buckets.iter_mut() {
        match held.get_mut(usize::from(*b)) {
            Some(count) => *count += 1,
            None => *b = NO_ARM,
        }
    }
    for b in buckets.iter_mut().rev() {
        let arm = usize::from(*b);
        if arm < held.len() && held[arm] > targets[arm] {
            held[arm] -= 1;
            *b = NO_ARM;
        }
    }
    let mut free = buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == NO_ARM)
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
        .into_iter();
    for (arm, &target) in targets.iter().enumerate() {
        while held[arm] < target {
            let Some(i) = free.next() else { break };
            // Arm indexes are < MAX_ARMS, which fits in u8.
            buckets[i] = arm as u8;
            held[arm] += 1;
        }
    }
    buckets
}

impl Experiment {
    /// Running (not stopped).
    pub fn is_running(&self) -> bool {
        self.stopped_ms.is_none()
    }

    /// A canary.
    pub fn is_canary(&self) -> bool {
        matches!(self.kind, ExperimentKind::Canary(_))
    }

    /// The allocation in force.
    pub fn buckets(&self) -> &[u8] {
        self.allocations
            .last()
            .map_or(&[], |a| a.buckets.as_slice())
    }

    /// The arm `customer_id` is in now, if any.
    pub fn arm_of(&self, customer_id: &str) -> Option<usize> {
        let bucket = bucket_of(&self.salt, customer_id);
        self.arm_in(self.buckets(), bucket)
    }

    /// The arm `customer_id` was in at `time_ms`, if the experiment ran then and it was in
    /// one.
    pub fn arm_at(&self, customer_id: &str, time_ms: i64) -> Option<usize> {
        self.arm_of_bucket_at(bucket_of(&self.salt, customer_id), time_ms)
    }

    /// The arm that held `bucket` at `time_ms` (see [`Experiment::arm_at`]).
    pub fn arm_of_bucket_at(&self, bucket: usize, time_ms: i64) -> Option<usize> {
        if time_ms < self.created_ms || self.stopped_ms.is_some_and(|s| time_ms > s) {
            return None;
        }
        let i = self
            .allocations
            .partition_point(|a| a.from_ms <= time_ms)
            .checked_sub(1)?;
        self.arm_in(&self.allocations[i].buckets, bucket)
    }

    fn arm_in(&self, buckets: &[u8], bucket: usize) -> Option<usize> {
        let arm = usize::from(*buckets.get(bucket)?);
        (arm < self.arms.len()).then_some(arm)
    }

    /// Buckets each arm holds now, in arm order.
    pub fn arm_buckets(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.arms.len()];
        for &b in self.buckets() {
            if let Some(c) = counts.get_mut(usize::from(b)) {
                *c += 1;
            }
        }
        counts
    }

    /// The versions of the arms, each once.
    pub fn versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = self.arms.iter().map(|a| a.version.clone()).collect();
        versions.sort();
        versions.dedup();
        versions
    }
}

/// Checks an experiment or arm name: `[A-Za-z0-9._-]`, 1..=64 bytes, starting with a
/// letter or digit.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Checks arms and a traffic share as `CreateExperiment` gets them; the error names the
/// field (`arms[i].weight`, ...).
pub fn validate_arms(arms: &[Arm], traffic_percent: u32) -> Result<(), (String, String)> {
    if arms.is_empty() || arms.len() > MAX_ARMS {
        return Err(("arms".into(), format!("1..={MAX_ARMS} arms")));
    }
    for (i, arm) in arms.iter().enumerate() {
        if !is_valid_name(&arm.name) {
            return Err((
                format!("arms[{i}].name"),
                format!(
                    "must be 1..={MAX_NAME_LEN} bytes of [A-Za-z0-9._-], starting with a letter or digit"
                ),
            ));
        }
        if arms[..i].iter().any(|a| a.name == arm.name) {
            return Err((
                format!("arms[{i}].name"),
                format!("`{}` is used by an earlier arm", arm.name),
            ));
        }
        if arm.weight > MAX_WEIGHT {
            return Err((
                format!("arms[{i}].weight"),
                format!("must be 0..={MAX_WEIGHT}"),
            ));
        }
    }
    if arms.iter().all(|a| a.weight == 0) {
        return Err(("arms".into(), "the weights must sum to ≥ 1".into()));
    }
    if !(1..=100).contains(&traffic_percent) {
        return Err((
            "traffic_percent".into(),
            "must be 1..=100 (0 means 100)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm_counts(buckets: &[u8], arms: usize) -> Vec<usize> {
        let mut counts = vec![0; arms];
        for &b in buckets {
            if usize::from(b) < arms {
                counts[usize::from(b)] += 1;
            }
        }
        counts
    }

    #[test]
    fn targets_split_by_weight_with_largest_remainder() {
        assert_eq!(bucket_targets(&[1, 1, 1], 100), [3334, 3333, 3333]);
        assert_eq!(bucket_targets(&[50, 50], 10), [500, 500]);
        assert_eq!(bucket_targets(&[0, 7], 100), [0, 10_000]);
    }

    #[test]
    fn weight_changes_move_buckets_only_into_arms_that_grew() {
        let first = allocate(None, &[50, 50, 0], 100);
        assert_eq!(arm_counts(&first, 3), [5000, 5000, 0]);
        let second = allocate(Some(&first), &[50, 50, 25], 100);
        assert_eq!(arm_counts(&second, 3), [4000, 4000, 2000]);
        for (a, b) in first.iter().zip(&second) {
            assert!(a == b || *b == 2, "{a} -> {b}");
        }
        let third = allocate(Some(&second), &[50, 50, 25], 50);
        for (a, b) in second.iter().zip(&third) {
            assert!(a == b || *b == NO_ARM, "{a} -> {b}");
        }
        assert_eq!(arm_counts(&third, 3), [2000, 2000, 1000]);
    }

    #[test]
    fn buckets_are_spread_and_sticky() {
        let mut counts = vec![0u32; 10];
        for i in 0..100_000 {
            counts[bucket_of("s", &format!("c{i}")) / 1000] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(bucket_of("s", "c1"), bucket_of("s", "c1"));
        assert_ne!(
            (0..50)
                .map(|i| bucket_of("a", &format!("c{i}")))
                .collect::<Vec<_>>(),
            (0..50)
                .map(|i| bucket_of("b", &format!("c{i}")))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn over_100k_ids_a_weight_change_moves_customers_only_into_the_arm_that_grew() {
        let experiment = |buckets: Vec<u8>| Experiment {
            salt: "exp".into(),
            arms: vec![Arm::default(), Arm::default(), Arm::default()],
            allocations: vec![Allocation {
                from_ms: 0,
                buckets,
            }],
            ..Default::default()
        };
        let before = experiment(allocate(None, &[60, 40, 0], 100));
        let after = experiment(allocate(Some(before.buckets()), &[60, 40, 50], 100));
        let ids: Vec<String> = (0..100_000).map(|i| format!("customer-{i}")).collect();
        let mut counts = [[0usize; 3]; 2];
        for id in &ids {
            let (was, now) = (before.arm_of(id), after.arm_of(id));
            assert!(was == now || now == Some(2), "{id}: {was:?} -> {now:?}");
            counts[0][was.expect("all in")] += 1;
            counts[1][now.expect("all in")] += 1;
        }
        // Shares within 1 % of the weights: 60/40/0, then 40/26.7/33.3.
        let close = |count: usize, share: f64| (count as f64 / 1e5 - share).abs() < 0.01;
        assert!(close(counts[0][0], 0.6) && close(counts[0][1], 0.4) && counts[0][2] == 0);
        assert!(
            close(counts[1][0], 0.4)
                && close(counts[1][1], 0.8 / 3.0)
                && close(counts[1][2], 1.0 / 3.0),
            "{counts:?}"
        );
    }

    #[test]
    fn arms_follow_the_allocation_history() {
        let first = allocate(None, &[1, 0], 100);
        let second = allocate(Some(&first), &[0, 1], 100);
        let experiment = Experiment {
            name: "e".into(),
            salt: "e".into(),
            arms: vec![Arm::default(), Arm::default()],
            traffic_percent: 100,
            created_ms: 100,
            stopped_ms: Some(300),
            allocations: vec![
                Allocation {
                    from_ms: 100,
                    buckets: first,
                },
                Allocation {
                    from_ms: 200,
                    buckets: second,
                },
            ],
            ..Default::default()
        };
        assert_eq!(experiment.arm_at("x", 99), None);
        assert_eq!(experiment.arm_at("x", 150), Some(0));
        assert_eq!(experiment.arm_at("x", 200), Some(1));
        assert_eq!(experiment.arm_at("x", 301), None);
    }
}
