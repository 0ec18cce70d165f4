//! Ranking metrics of `benches/eval/PROTOCOL.md` §4 (binary relevance, k = 10).

use std::collections::BTreeSet;

/// Cut-off of every list.
pub const K: usize = 10;

/// Means of the four next-best-offer metrics over the evaluated customers.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct RankingMetrics {
    /// Mean hits / |relevant|.
    pub recall_at_10: f64,
    /// Mean normalised DCG.
    pub ndcg_at_10: f64,
    /// Share of customers with at least one hit.
    pub hit_rate_at_10: f64,
    /// Mean hits / 10.
    pub precision_at_10: f64,
}

/// Accumulates per-customer metrics.
#[derive(Debug, Default)]
pub struct MetricSum {
    sum: RankingMetrics,
    n: usize,
}

fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 1) as f64).log2()
}

impl MetricSum {
    /// Adds one customer's list.
    pub fn add(&mut self, list: &[String], relevant: &BTreeSet<String>) {
        let mut hits = 0;
        let mut dcg = 0.0;
        for (i, item) in list.iter().take(K).enumerate() {
            if relevant.contains(item) {
                hits += 1;
                dcg += discount(i + 1);
            }
        }
        let idcg: f64 = (1..=relevant.len().min(K)).map(discount).sum();
        self.sum.recall_at_10 += hits as f64 / relevant.len().max(1) as f64;
        self.sum.ndcg_at_10 += if idcg > 0.0 { dcg / idcg } else { 0.0 };
        self.sum.hit_rate_at_10 += f64::from(u8::from(hits > 0));
        self.sum.precision_at_10 += hits as f64 / K as f64;
        self.n += 1;
    }

    /// The means.
    pub fn mean(&self) -> RankingMetrics {
        let n = self.n.max(1) as f64;
        RankingMetrics {
            recall_at_10: self.sum.recall_at_10 / n,
            ndcg_at_10: self.sum.ndcg_at_10 / n,
            hit_rate_at_10: self.sum.hit_rate_at_10 / n,
            precision_at_10: self.sum.precision_at_10 / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computation() {
        let relevant: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let list: Vec<String> = ["x", "a", "y"].iter().map(|s| s.to_string()).collect();
        let mut m = MetricSum::default();
        m.add(&list, &relevant);
        let r = m.mean();
        assert!((r.recall_at_10 - 0.5).abs() < 1e-12);
        assert!((r.precision_at_10 - 0.1).abs() < 1e-12);
        assert!((r.hit_rate_at_10 - 1.0).abs() < 1e-12);
        // DCG = 1/log2(3); IDCG = 1 + 1/log2(3).
        let expected = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
        assert!((r.ndcg_at_10 - expected).abs() < 1e-12);
    }
}
