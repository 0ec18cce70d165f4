//! Reads transaction CSVs in the layout of the UCI "Online Retail" data set (the documented
//! example of `doppel import events`):
//! `InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country`.
//!
//! Rows without a CustomerID (guest checkouts) are skipped; a negative quantity or an
//! invoice starting with `C` is a return; an item's category is the first three characters
//! of its stock code (the data set has no categories; codes of one family share a prefix).
//! Rows that cannot be read (bad number, date or UTF-8) are counted and skipped; only a
//! failing reader stops the file.

use std::collections::BTreeMap;
use std::io::Read;

use doppel_types::{Consent, Context, Customer, Event, EventType, Item};

/// Why a transaction file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RetailCsvError {
    /// The underlying reader failed (I/O, or a compressed stream that is corrupt).
    #[error("reading the CSV, record {record}: {source}")]
    Read {
        /// Records read before it (1-based position of the failing one).
        record: u64,
        /// The reader's error.
        source: csv::Error,
    },
}

/// What one file yields.
#[derive(Debug, Default)]
pub struct RetailData {
    /// One per CustomerID, with `country`.
    pub customers: Vec<Customer>,
    /// One per StockCode, with the last positive price and the description.
    pub items: Vec<Item>,
    /// Purchases and returns, in file order.
    pub events: Vec<Event>,
    /// Rows skipped because they have no CustomerID.
    pub guest_rows: u64,
    /// Rows skipped because they are malformed (bad number, date or UTF-8) or have
    /// quantity 0.
    pub bad_rows: u64,
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days in `month` (1..=12) of `year` (proleptic Gregorian).
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS` (or with a space, or without seconds) as UTC ms; years
/// 1..=9999, so that no field can overflow the arithmetic.
pub fn parse_timestamp_ms(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once(['T', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (t.next()??, t.next()??);
    // Seconds are optional, but a seconds field that is not a number makes a bad date.
    let second = match t.next() {
        None => 0,
        Some(s) => s?,
    };
    let in_range = (1..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && (0..=23).contains(&hour)
        && (0..=59).contains(&minute)
        && (0..=60).contains(&second);
    if !in_range {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1_000)
}

/// Reads a CSV (already decompressed) and folds it into customers, items and events.
/// `consent` is given to every customer (the file carries none).
pub fn read(
    reader: impl Read,
    consent: Consent,
    mut on_row: impl FnMut(),
) -> Result<RetailData, RetailCsvError> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let mut data = RetailData::default();
    let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
    let mut items: BTreeMap<String, Item> = BTreeMap::new();
    for (n, record) in csv.records().enumerate() {
        on_row();
        let record = match record {
            Ok(record) => record,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) => {
                data.bad_rows += 1;
                continue;
            }
            Err(source) => {
                return Err(RetailCsvError::Read {
                    record: n as u64 + 1,
                    source,
                });
            }
        };
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let (invoice, code, description) = (field(0), field(1), field(2));
        // Spreadsheets write the numeric id as `17850.0`: one `.0` goes.
        let customer_id = field(6).strip_suffix(".0").unwrap_or(field(6));
        if customer_id.is_empty() {
            data.guest_rows += 1;
            continue;
        }
        let (Ok(quantity), Ok(price), Some(timestamp_ms)) = (
            field(3).parse::<i32>(),
            field(5).parse::<f64>(),
            parse_timestamp_ms(field(4)),
        ) else {
            data.bad_rows += 1;
            continue;
        };
        // A huge price times a huge quantity overflows to infinity (found by the fuzz
        // body's property check, `fuzz/regressions/events_csv`).
        let value = f64::from(quantity.saturating_abs()) * price.max(0.0);
        if quantity == 0 || code.is_empty() || !price.is_finite() || !value.is_finite() {
            data.bad_rows += 1;
            continue;
        }
        let country = field(7).to_owned();
        let customer = customers
            .entry(customer_id.to_owned())
            .or_insert_with(|| Customer {
                id: customer_id.to_owned(),
                consent,
                ..Customer::default()
            });
        customer
            .attributes
            .insert("country".into(), country.clone());
        let item = items.entry(code.to_owned()).or_insert_with(|| Item {
            id: code.to_owned(),
            category: code.chars().take(3).collect(),
            in_stock: true,
            ..Item::default()
        });
        if price > 0.0 {
            item.price = price;
        }
        if !description.is_empty() {
            item.attributes
                .insert("description".into(), description.to_owned());
        }
        let is_return = quantity < 0 || invoice.starts_with('C');
        data.events.push(Event {
            customer_id: customer_id.to_owned(),
            item_id: code.to_owned(),
            kind: if is_return {
                EventType::Return
            } else {
                EventType::Purchase
            },
            timestamp_ms,
            quantity: quantity.saturating_abs(),
            value,
            context: Context {
                country,
                ..Context::default()
            },
            ..Event::default()
        });
    }
    data.customers = customers.into_values().collect();
    data.items = items.into_values().collect();
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_ms() {
        assert_eq!(parse_timestamp_ms("1970-01-01T00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp_ms("2010-12-01T08:26:00"),
            Some(1_291_191_960_000)
        );
        assert_eq!(
            parse_timestamp_ms("2011-12-09 12:50"),
            Some(1_323_435_000_000)
        );
        assert_eq!(parse_timestamp_ms("not a date"), None);
        // Far years once overflowed the day arithmetic.
        assert_eq!(parse_timestamp_ms("99999999999999999-01-01T00:00"), None);
        assert_eq!(
            parse_timestamp_ms("2011-01-01T00:00:99999999999999999"),
            None
        );
        assert_eq!(parse_timestamp_ms("2011-01-01T-1:00"), None);
        // Days past the month's end, and seconds that are not a number, are bad dates.
        assert_eq!(parse_timestamp_ms("2011-02-29T00:00"), None);
        assert_eq!(parse_timestamp_ms("2011-04-31T00:00"), None);
        assert!(parse_timestamp_ms("2012-02-29T00:00").is_some());
        assert_eq!(parse_timestamp_ms("2011-01-01T00:00:xx"), None);
    }

    #[test]
    fn a_row_whose_value_overflows_is_bad() {
        let csv = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
                   3,C,,2147483647,2011-01-01T00:00,1e308,3,UK\n";
        let data = read(csv.as_bytes(), Consent::default(), || {}).expect("read");
        assert_eq!((data.bad_rows, data.events.len()), (1, 0));
    }

    #[test]
    fn rows_with_bad_utf8_are_counted_and_skipped() {
        let mut csv = b"InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
                   536365,85123A,WHITE \xff HEART,6,2010-12-01T08:26:00,2.55,17850,United Kingdom\n"
            .to_vec();
        csv.extend_from_slice(
            b"536366,22633,HAND WARMER,6,2010-12-01T08:28:00,1.85,17851,United Kingdom\n",
        );
        let data = read(csv.as_slice(), Consent::default(), || {}).expect("read");
        assert_eq!(data.bad_rows, 1);
        assert_eq!(data.events.len(), 1);
        assert_eq!(data.events[0].customer_id, "17851");
    }

    #[test]
    fn folds_rows_into_records() {
        let csv = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n\
                   536365,85123A,WHITE HANGING HEART,6,2010-12-01T08:26:00,2.55,17850,United Kingdom\n\
                   C536379,85123A,WHITE HANGING HEART,-1,2010-12-01T09:41:00,2.55,17850,United Kingdom\n\
                   536366,22633,HAND WARMER,6,2010-12-01T08:28:00,1.85,,United Kingdom\n";
        let data = read(csv.as_bytes(), Consent::default(), || {}).unwrap();
        assert_eq!(data.customers.len(), 1);
        assert_eq!(data.items.len(), 1);
        assert_eq!(data.items[0].category, "851");
        assert_eq!(data.guest_rows, 1);
        assert_eq!(data.events.len(), 2);
        assert_eq!(data.events[1].kind, EventType::Return);
        assert_eq!(data.events[1].quantity, 1);
    }
}
