//! MovieLens-100k read and split exactly as `benches/eval/PROTOCOL.md` §11
//! (`doppel-eval-ml100k-v1`) says: every rating an interaction, each user's rows in time
//! order (ties by item id) split 8:1:1 as RecBole 1.2.1 sizes the parts, a validation
//! evaluation (fit on train, score validation) and a test one (fit on train + validation,
//! score test).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};

use anyhow::{Context as _, bail};
use doppel_types::{Event, EventType};

use crate::eval_data::Split;

/// Header of `ml-100k.inter` (§11.1).
const HEADER: [&str; 4] = [
    "user_id:token",
    "item_id:token",
    "rating:float",
    "timestamp:float",
];

/// One interaction.
#[derive(Clone, Debug)]
struct Row {
    user: String,
    item: String,
    ts_ms: i64,
}

/// The file read and split: whole-file counts and the two evaluations.
pub struct MovieLens {
    /// `rows`, `users`, `items` of the whole file (§11.5).
    pub counts: BTreeMap<&'static str, u64>,
    /// Fit on train parts, score validation parts.
    pub validation: Split,
    /// Fit on train and validation parts, score test parts.
    pub test: Split,
}

/// RecBole 1.2.1's `_calcu_split_ids` sizes for `n` rows and ratios 0.8 / 0.1 / 0.1 (§11.2).
fn part_sizes(n: usize) -> [usize; 3] {
    let ratios = [0.8f64, 0.1, 0.1];
    let mut cnt = ratios.map(|r| (r * n as f64) as usize);
    cnt[0] = n - cnt[1] - cnt[2];
    for i in 1..=2 {
        if cnt[0] <= 1 {
            break;
        }
        let due = ratios[3 - i] * n as f64;
        if 0.0 < due && due < 1.0 {
            cnt[3 - i] += 1;
            cnt[0] -= 1;
        }
    }
    cnt
}

/// Reads and splits `ml-100k.inter`.
pub fn read(reader: impl Read) -> anyhow::Result<MovieLens> {
    let mut lines = BufReader::new(reader).lines();
    let header = lines.next().context("empty file")??;
    if header.split('\t').collect::<Vec<_>>() != HEADER {
        bail!("unexpected header {header:?} (want {HEADER:?}, tab-separated)");
    }
    let mut by_user: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut items = BTreeSet::new();
    let mut rows = 0u64;
    for (n, line) in lines.enumerate() {
        let line = line.with_context(|| format!("line {}", n + 2))?;
        let fields: Vec<&str> = line.split('\t').collect();
        let [user, item, _rating, ts] = fields[..] else {
            bail!("line {}: want 4 tab-separated fields", n + 2);
        };
        let ts: i64 = ts
            .parse()
            .with_context(|| format!("line {}: timestamp {ts:?}", n + 2))?;
        items.insert(item.to_owned());
        by_user.entry(user.to_owned()).or_default().push(Row {
            user: user.to_owned(),
            item: item.to_owned(),
            ts_ms: ts * 1_000,
        });
        rows += 1;
    }
    let counts = BTreeMap::from([
        ("rows", rows),
        ("users", by_user.len() as u64),
        ("items", items.len() as u64),
    ]);
    // Each user's parts: train, validation, test.
    let mut parts: [Vec<Row>; 3] = Default::default();
    for user_rows in by_user.values_mut() {
        user_rows.sort_by(|a, b| a.ts_ms.cmp(&b.ts_ms).then_with(|| a.item.cmp(&b.item)));
        let [train, valid, _] = part_sizes(user_rows.len());
        for (i, row) in user_rows.iter().enumerate() {
            let part = if i < train {
                0
            } else if i < train + valid {
                1
            } else {
                2
            };
            parts[part].push(row.clone());
        }
    }
    let validation = evaluation(&parts[0], &parts[1]);
    let fit: Vec<Row> = parts[0].iter().chain(&parts[1]).cloned().collect();
    let test = evaluation(&fit, &parts[2]);
    Ok(MovieLens {
        counts,
        validation,
        test,
    })
}

fn purchase(row: &Row) -> Event {
    Event {
        customer_id: row.user.clone(),
        item_id: row.item.clone(),
        kind: EventType::Purchase,
        quantity: 1,
        timestamp_ms: row.ts_ms,
        ..Event::default()
    }
}

/// One evaluation (§11.3, §11.4): `fit` rows train, `scored` rows are the ground truth.
fn evaluation(fit: &[Row], scored: &[Row]) -> Split {
    let id = |user: &str| user.parse::<u64>().unwrap_or(u64::MAX);
    let mut s = Split::default();
    let mut buyers: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for r in fit {
        s.train_events.push(purchase(r));
        s.bought
            .entry(id(&r.user))
            .or_default()
            .insert(r.item.clone());
        buyers
            .entry(r.item.clone())
            .or_default()
            .insert(id(&r.user));
    }
    for r in scored {
        s.test_events.push(purchase(r));
        s.test_bought
            .entry(id(&r.user))
            .or_default()
            .insert(r.item.clone());
    }
    s.item_buyers = buyers
        .into_iter()
        .map(|(i, b)| (i, b.len() as u64))
        .collect();
    s.cutoff_ms = fit.iter().map(|r| r.ts_ms).max().unwrap_or(0) + 1;
    s.cutoff = s.cutoff_ms.to_string();
    let (evaluated, relevant_pairs) = s.evaluated();
    s.counts = BTreeMap::from([
        ("fit_rows", fit.len() as u64),
        ("customers", s.bought.len() as u64),
        ("items", s.item_buyers.len() as u64),
        ("evaluated_customers", evaluated),
        ("relevant_pairs", relevant_pairs),
    ]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_sized_as_recbole_sizes_them() {
        assert_eq!(part_sizes(20), [16, 2, 2]);
        assert_eq!(part_sizes(21), [17, 2, 2]);
        assert_eq!(part_sizes(25), [21, 2, 2]);
        assert_eq!(part_sizes(30), [24, 3, 3]);
        assert_eq!(part_sizes(1), [1, 0, 0]);
        assert_eq!(part_sizes(2), [1, 0, 1]);
        assert_eq!(part_sizes(5), [3, 1, 1]);
    }

    #[test]
    fn users_split_in_time_order_with_ties_by_item() {
        let mut text =
            String::from("user_id:token\titem_id:token\trating:float\ttimestamp:float\n");
        for i in 0..10 {
            // Two rows share each second: the item id breaks the tie.
            text.push_str(&format!("7\tm{i}\t4\t{}\n", 100 + i / 2));
        }
        let ml = read(text.as_bytes()).expect("read");
        assert_eq!(ml.counts["rows"], 10);
        assert_eq!(ml.validation.counts["fit_rows"], 8);
        assert_eq!(ml.test.counts["fit_rows"], 9);
        let test: Vec<&String> = ml.test.test_bought[&7].iter().collect();
        assert_eq!(test, ["m9"]);
        assert_eq!(
            ml.validation.test_bought[&7].iter().collect::<Vec<_>>(),
            ["m8"]
        );
    }
}
