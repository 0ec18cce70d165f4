//! Online Retail read and split exactly as `benches/eval/PROTOCOL.md` (doppel-eval-v1)
//! says, so `doppel evaluate` and `compare_peers.py` see the same rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

use anyhow::Context as _;
use doppel_types::{Context, Event, EventType};

use doppel_client::retail_csv::parse_timestamp_ms;

/// Thirty days, the test window.
const TEST_WINDOW_MS: i64 = 30 * 24 * 3_600 * 1_000;

/// One kept row (§1).
#[derive(Clone, Debug)]
pub struct Row {
    /// Decimal customer id.
    pub customer: u64,
    /// Upper-cased stock code.
    pub item: String,
    /// Units (negative on cancellations).
    pub quantity: i64,
    /// GBP thousandths per unit.
    pub price_milli: i64,
    /// Naive local time as ms.
    pub ts: i64,
    /// Purchase (else return/cancellation).
    pub purchase: bool,
    /// The customer's country (the context of `doppel evaluate --context`).
    pub country: String,
    /// The item's description on this row (keyword groups, §5.1).
    pub description: String,
}

/// The split (§2) and what the metrics need.
#[derive(Debug, Default)]
pub struct Split {
    /// Cutoff, ms.
    pub cutoff_ms: i64,
    /// Cutoff as `YYYY-MM-DDTHH:MM:SS`.
    pub cutoff: String,
    /// End of the split's test window, ms, exclusive: one past the newest row it was made
    /// from (the validation split's is the test cutoff, so it never reads the test window).
    pub end_ms: i64,
    /// §6 counts.
    pub counts: BTreeMap<&'static str, u64>,
    /// Train rows (purchases and returns) as events for training, with the country as
    /// their context.
    pub train_events: Vec<Event>,
    /// Test-window purchases as events, with the country as their context.
    pub test_events: Vec<Event>,
    /// `U`: customers with a train purchase, with their train-bought items.
    pub bought: BTreeMap<u64, BTreeSet<String>>,
    /// Test purchases per customer.
    pub test_bought: BTreeMap<u64, BTreeSet<String>>,
    /// `I`: items with a train purchase → distinct train buyers.
    pub item_buyers: BTreeMap<String, u64>,
    /// Train monetary value per customer, GBP thousandths.
    pub monetary: HashMap<u64, i64>,
}

fn parse_price_milli(text: &str) -> Option<i64> {
    let (neg, t) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if frac.len() > 3 || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let int: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().ok()?
    };
    let v = int * 1_000 + frac;
    Some(if neg { -v } else { v })
}

fn keep_code(code: &str) -> bool {
    code.len() >= 5 && code.as_bytes()[..5].iter().all(u8::is_ascii_digit)
}

/// Reads kept rows (§1) from a decompressed CSV.
pub fn read_rows(reader: impl Read) -> anyhow::Result<Vec<Row>> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let headers = csv.headers().context("CSV header")?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("column {name} missing"))
    };
    let country = headers.iter().position(|h| h == "Country");
    let description = headers.iter().position(|h| h == "Description");
    let (inv, code, qty, date, price, cust) = (
        col("InvoiceNo")?,
        col("StockCode")?,
        col("Quantity")?,
        col("InvoiceDate")?,
        col("UnitPrice")?,
        col("CustomerID")?,
    );
    let mut rows = Vec::new();
    for (n, record) in csv.records().enumerate() {
        let r = record.with_context(|| format!("CSV row {}", n + 2))?;
        let customer = r.get(cust).unwrap_or("");
        let stock = r.get(code).unwrap_or("");
        if customer.is_empty() || !keep_code(stock) {
            continue;
        }
        let bad = || format!("row {}: unreadable number or date", n + 2);
        let customer: u64 = customer
            .split('.')
            .next()
            .and_then(|c| c.parse().ok())
            .with_context(bad)?;
        let quantity: i64 = r.get(qty).and_then(|q| q.parse().ok()).with_context(bad)?;
        let price_milli = r.get(price).and_then(parse_price_milli).with_context(bad)?;
        let ts = r.get(date).and_then(parse_timestamp_ms).with_context(bad)?;
        let invoice = r.get(inv).unwrap_or("");
        rows.push(Row {
            customer,
            item: stock.to_ascii_uppercase(),
            quantity,
            price_milli,
            ts,
            purchase: quantity > 0 && !invoice.starts_with('C'),
            country: country.and_then(|c| r.get(c)).unwrap_or("").to_owned(),
            description: description.and_then(|d| r.get(d)).unwrap_or("").to_owned(),
        });
    }
    Ok(rows)
}

fn format_ts(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

fn country_context(country: &str) -> Context {
    Context {
        country: country.to_owned(),
        ..Context::default()
    }
}

/// Splits kept rows (§2, §3, §6): the test window is the last 30 days.
pub fn split(rows: &[Row]) -> Split {
    let max_ts = rows.iter().map(|r| r.ts).max().unwrap_or(0);
    split_at(rows, max_ts - TEST_WINDOW_MS)
}

/// The validation split (§2.1): only rows before the test cutoff, split again 30 days
/// earlier. Hyper-parameters are chosen on it; the test window is never read.
pub fn validation_split(rows: &[Row]) -> Split {
    let max_ts = rows.iter().map(|r| r.ts).max().unwrap_or(0);
    let cutoff = max_ts - TEST_WINDOW_MS;
    let before: Vec<Row> = rows.iter().filter(|r| r.ts < cutoff).cloned().collect();
    split_at(&before, cutoff - TEST_WINDOW_MS)
}

/// Splits `rows` at `cutoff_ms`: rows before it train, purchases from it on test.
fn split_at(rows: &[Row], cutoff_ms: i64) -> Split {
    let mut s = Split {
        cutoff_ms,
        cutoff: format_ts(cutoff_ms),
        end_ms: rows.iter().map(|r| r.ts + 1).max().unwrap_or(cutoff_ms),
        ..Split::default()
    };
    let mut buyers: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let (mut purchases, mut train_rows, mut train_purchases, mut test_rows) = (0, 0, 0, 0);
    for r in rows {
        purchases += u64::from(r.purchase);
        if r.ts < s.cutoff_ms {
            train_rows += 1;
            s.train_events.push(Event {
                customer_id: r.customer.to_string(),
                item_id: r.item.clone(),
                kind: if r.purchase {
                    EventType::Purchase
                } else {
                    EventType::Return
                },
                timestamp_ms: r.ts,
                quantity: r.quantity.unsigned_abs().min(i32::MAX as u64) as i32,
                value: (r.quantity * r.price_milli) as f64 / 1_000.0,
                context: country_context(&r.country),
                ..Event::default()
            });
            if r.purchase {
                train_purchases += 1;
                s.bought
                    .entry(r.customer)
                    .or_default()
                    .insert(r.item.clone());
                buyers.entry(r.item.clone()).or_default().insert(r.customer);
                *s.monetary.entry(r.customer).or_default() += r.quantity * r.price_milli;
            }
        } else if r.purchase {
            test_rows += 1;
            s.test_events.push(Event {
                customer_id: r.customer.to_string(),
                item_id: r.item.clone(),
                kind: EventType::Purchase,
                timestamp_ms: r.ts,
                quantity: r.quantity.min(i32::MAX as i64) as i32,
                value: (r.quantity * r.price_milli) as f64 / 1_000.0,
                context: country_context(&r.country),
                ..Event::default()
            });
            s.test_bought
                .entry(r.customer)
                .or_default()
                .insert(r.item.clone());
        }
    }
    s.item_buyers = buyers
        .into_iter()
        .map(|(i, b)| (i, b.len() as u64))
        .collect();
    let (evaluated, relevant_pairs) = s.evaluated();
    s.counts = BTreeMap::from([
        ("kept_rows", rows.len() as u64),
        ("purchase_rows", purchases),
        ("return_rows", rows.len() as u64 - purchases),
        ("train_rows", train_rows),
        ("train_purchase_rows", train_purchases),
        ("test_rows", test_rows),
        ("customers", s.bought.len() as u64),
        ("items", s.item_buyers.len() as u64),
        ("evaluated_customers", evaluated),
        ("relevant_pairs", relevant_pairs),
    ]);
    s
}

impl Split {
    /// `|E|` and `Σ_{c ∈ E} |relevant(c)|` (§6).
    pub fn evaluated(&self) -> (u64, u64) {
        let (mut evaluated, mut relevant_pairs) = (0, 0);
        for (c, bought) in &self.bought {
            let n = self.relevant(*c, bought).len() as u64;
            evaluated += u64::from(n > 0);
            relevant_pairs += n;
        }
        (evaluated, relevant_pairs)
    }

    /// `relevant(c)` (§3).
    pub fn relevant(&self, c: u64, bought: &BTreeSet<String>) -> BTreeSet<String> {
        self.test_bought
            .get(&c)
            .map(|t| {
                t.iter()
                    .filter(|i| self.item_buyers.contains_key(*i) && !bought.contains(*i))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_exactly_and_dates_format_back() {
        assert_eq!(parse_price_milli("2.55"), Some(2_550));
        assert_eq!(parse_price_milli("0.001"), Some(1));
        assert_eq!(parse_price_milli("-11062.06"), Some(-11_062_060));
        assert_eq!(parse_price_milli("7"), Some(7_000));
        let ms = parse_timestamp_ms("2011-11-09T12:50:00").expect("date");
        assert_eq!(format_ts(ms), "2011-11-09T12:50:00");
        assert!(keep_code("85123A") && keep_code("22423") && !keep_code("POST"));
    }
}
