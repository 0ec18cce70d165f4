//! Rows of the event log: one event, or a run of impressions stored as one row.
//!
//! An answer that records impressions shows k offers to one customer at one time in one
//! context. Stored as k events, that is k log rows and k index entries (a random B-tree
//! leaf each); stored as one run, it is one row under its first sequence number and one
//! index entry. The run keeps k sequence numbers (`first ..= first + k - 1`), so readers
//! see exactly the events they would have seen row by row.
//!
//! A run's row starts with [`RUN_TAG`] (0). A single event's row is its postcard encoding,
//! which starts with the length of its customer id: never 0, since the log refuses an event
//! without one.
//!
//! Impressions recorded with answers are stored one **batch** a row: every run of one
//! append (many customers), each with its first sequence number, under the first of them.
//! One insert at the end of the log per append instead of one per answer: recording the
//! answers of a busy node costs a row and a commit per batch. A batch row starts with
//! [`RUN_TAG`] and [`BATCH_TAG`] (0; a run's row has its customer id's length there).
//! A batch row spans the sequence numbers of its runs and no other row's.

use doppel_types::{Context, Event, EventType};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, decode_borrowed, encode};
use crate::error::{Error, Result};

/// First byte of a run's row.
const RUN_TAG: u8 = 0;
/// Second byte of a batch row.
const BATCH_TAG: u8 = 0;
/// Most impressions in one run (a longer run is split).
pub(crate) const MAX_RUN: usize = 256;
/// Most impressions in one batch row (a longer batch is split).
pub(crate) const MAX_BATCH: usize = 4_096;

/// One run of a batch row: its first sequence number, its customer (read without decoding
/// the run) and the run's encoding.
#[derive(Serialize, Deserialize)]
struct BatchEntry<'a> {
    first: u64,
    customer_id: &'a str,
    run: &'a [u8],
}

/// Impressions of one customer at one time in one context: read as owned strings, written
/// from borrowed ones (the same encoding).
#[derive(Serialize, Deserialize)]
struct ImpressionRun<S = String, C = Context> {
    customer_id: S,
    timestamp_ms: i64,
    context: C,
    items: Vec<S>,
}

/// True if `event` can be part of a run: an impression of one unit, worth nothing, with no
/// client event id (ids are deduplicated one by one).
pub(crate) fn runnable(event: &Event) -> bool {
    event.kind == EventType::Impression
        && event.quantity == 1
        && event.value == 0.0
        && event.event_id.is_empty()
}

/// True if `b` can join a run that `a` is part of.
pub(crate) fn same_run(a: &Event, b: &Event) -> bool {
    runnable(a)
        && runnable(b)
        && a.customer_id == b.customer_id
        && a.timestamp_ms == b.timestamp_ms
        && a.context == b.context
}

/// The row of one event, or of a run of runnable events of one customer, time and context.
pub(crate) fn encode_row(events: &[&Event]) -> Result<Vec<u8>> {
    let Some(first) = events.first() else {
        return Err(Error::Storage("an empty event row".into()));
    };
    if first.customer_id.is_empty() {
        return Err(Error::Storage("an event without a customer id".into()));
    }
    if events.len() == 1 {
        return encode("event", first);
    }
    let mut row = vec![RUN_TAG];
    row.extend(encode_run(events)?);
    Ok(row)
}

/// The row of a batch: runs of runnable events (each of one customer, time and context),
/// each with its first sequence number, ascending.
pub(crate) fn encode_batch(runs: &[(u64, Vec<&Event>)]) -> Result<Vec<u8>> {
    let mut encoded = Vec::with_capacity(runs.len());
    for (_, run) in runs {
        encoded.push(encode_run(run)?);
    }
    let entries: Vec<BatchEntry<'_>> = runs
        .iter()
        .zip(&encoded)
        .map(|((first, run), bytes)| BatchEntry {
            first: *first,
            customer_id: &run[0].customer_id,
            run: bytes,
        })
        .collect();
    let mut row = vec![RUN_TAG, BATCH_TAG];
    row.extend(encode("impression batch", &entries)?);
    Ok(row)
}

/// The events of the row stored under `seq`, with their sequence numbers.
pub(crate) fn decode_row(seq: u64, bytes: &[u8]) -> Result<Vec<(u64, Event)>> {
    decode_row_of(seq, bytes, None)
}

/// The events of the row stored under `seq` (only those of `customer` when given), with
/// their sequence numbers.
pub(crate) fn decode_row_of(
    seq: u64,
    bytes: &[u8],
    customer: Option<&str>,
) -> Result<Vec<(u64, Event)>> {
    let mine = |id: &str| customer.is_none_or(|c| c == id);
    match bytes {
        [RUN_TAG, BATCH_TAG, batch @ ..] => {
            let entries: Vec<BatchEntry<'_>> =
                decode_borrowed("impression batch", &seq.to_string(), batch)?;
            let mut out = Vec::new();
            for entry in entries.iter().filter(|e| mine(e.customer_id)) {
                out.extend(decode_run(entry.first, entry.run)?);
            }
            Ok(out)
        }
        [RUN_TAG, run @ ..] => {
            let events = decode_run(seq, run)?;
            Ok(events
                .into_iter()
                .filter(|(_, e)| mine(&e.customer_id))
                .collect())
        }
        _ => {
            let event: Event = decode("event", &seq.to_string(), bytes)?;
            Ok(if mine(&event.customer_id) {
                vec![(seq, event)]
            } else {
                Vec::new()
            })
        }
    }
}

/// The distinct customers of a batch row (empty for any other row).
pub(crate) fn batch_customers(seq: u64, bytes: &[u8]) -> Result<Vec<String>> {
    let [RUN_TAG, BATCH_TAG, batch @ ..] = bytes else {
        return Ok(Vec::new());
    };
    let entries: Vec<BatchEntry<'_>> =
        decode_borrowed("impression batch", &seq.to_string(), batch)?;
    Ok(distinct(entries.iter().map(|e| e.customer_id)))
}

/// The distinct customer ids of `ids`, in first-seen order.
pub(crate) fn distinct<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.into_iter()
        .filter(|id| seen.insert(*id))
        .map(str::to_owned)
        .collect()
}

/// A batch row without the runs of `customer`; `None` when nothing is left.
pub(crate) fn batch_without(seq: u64, bytes: &[u8], customer: &str) -> Result<Option<Vec<u8>>> {
    let [RUN_TAG, BATCH_TAG, batch @ ..] = bytes else {
        return Err(Error::Storage(format!(
            "row {seq} is not an impression batch"
        )));
    };
    let mut entries: Vec<BatchEntry<'_>> =
        decode_borrowed("impression batch", &seq.to_string(), batch)?;
    entries.retain(|e| e.customer_id != customer);
    if entries.is_empty() {
        return Ok(None);
    }
    let mut row = vec![RUN_TAG, BATCH_TAG];
    row.extend(encode("impression batch", &entries)?);
    Ok(Some(row))
}

/// The encoding of a run (without the tag of its row), a run of one included.
fn encode_run(events: &[&Event]) -> Result<Vec<u8>> {
    let Some(first) = events.first() else {
        return Err(Error::Storage("an empty impression run".into()));
    };
    if first.customer_id.is_empty() {
        return Err(Error::Storage("an event without a customer id".into()));
    }
    let run = ImpressionRun {
        customer_id: first.customer_id.as_str(),
        timestamp_ms: first.timestamp_ms,
        context: &first.context,
        items: events.iter().map(|e| e.item_id.as_str()).collect(),
    };
    encode("impression run", &run)
}

/// The events of a run's encoding (without the tag of its row) stored under `seq`.
fn decode_run(seq: u64, bytes: &[u8]) -> Result<Vec<(u64, Event)>> {
    let run: ImpressionRun = decode("impression run", &seq.to_string(), bytes)?;
    Ok(run
        .items
        .into_iter()
        .zip(seq..)
        .map(|(item_id, seq)| {
            let event = Event {
                customer_id: run.customer_id.clone(),
                item_id,
                kind: EventType::Impression,
                timestamp_ms: run.timestamp_ms,
                quantity: 1,
                value: 0.0,
                context: run.context.clone(),
                event_id: String::new(),
            };
            (seq, event)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn impression(item: &str) -> Event {
        Event {
            customer_id: "c1".into(),
            item_id: item.into(),
            kind: EventType::Impression,
            timestamp_ms: 1_700_000_000_000,
            quantity: 1,
            value: 0.0,
            context: Context {
                channel: "web".into(),
                device: "mobile".into(),
                country: "FR".into(),
            },
            event_id: String::new(),
        }
    }

    #[test]
    fn a_run_reads_back_as_its_events_with_their_sequence_numbers() {
        let events = [impression("a"), impression("b"), impression("c")];
        let row = encode_row(&events.iter().collect::<Vec<_>>()).expect("encode");
        assert_eq!(row[0], RUN_TAG);
        let back = decode_row(41, &row).expect("decode");
        let want: Vec<(u64, Event)> = (41..).zip(events).collect();
        assert_eq!(back, want);
    }

    #[test]
    fn a_single_event_keeps_its_plain_encoding_and_never_starts_with_the_tag() {
        let mut purchase = impression("a");
        purchase.kind = EventType::Purchase;
        purchase.value = 9.5;
        let row = encode_row(&[&purchase]).expect("encode");
        assert_ne!(row[0], RUN_TAG);
        assert_eq!(row, encode("event", &purchase).expect("plain"));
        assert_eq!(decode_row(7, &row).expect("decode"), vec![(7, purchase)]);
        let mut anonymous = impression("a");
        anonymous.customer_id.clear();
        assert!(encode_row(&[&anonymous]).is_err());
    }

    #[test]
    fn only_plain_impressions_of_one_moment_share_a_run() {
        let a = impression("a");
        assert!(same_run(&a, &impression("b")));
        let mut later = impression("b");
        later.timestamp_ms += 1;
        let mut with_id = impression("b");
        with_id.event_id = "e1".into();
        let mut click = impression("b");
        click.kind = EventType::Click;
        let mut other = impression("b");
        other.context.device = "desktop".into();
        for b in [later, with_id, click, other] {
            assert!(!same_run(&a, &b), "{b:?}");
        }
    }

    #[test]
    fn a_batch_row_reads_back_per_customer_and_loses_one_customer_whole() {
        let mut other = impression("x");
        other.customer_id = "c2".into();
        let (a, b, c) = (impression("a"), impression("b"), impression("c"));
        let runs = vec![(10, vec![&a, &b]), (12, vec![&other]), (20, vec![&c])];
        let row = encode_batch(&runs).expect("encode");
        assert_eq!(&row[..2], [RUN_TAG, BATCH_TAG]);
        let all = decode_row(10, &row).expect("decode");
        let seqs: Vec<u64> = all.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, [10, 11, 12, 20], "each run keeps its own numbers");
        assert_eq!(all[2].1, other);
        let mine = decode_row_of(10, &row, Some("c1")).expect("decode");
        assert_eq!(mine, vec![(10, a), (11, b), (20, c)]);
        assert_eq!(batch_customers(10, &row).expect("customers"), ["c1", "c2"]);
        let rest = batch_without(10, &row, "c1")
            .expect("rewrite")
            .expect("c2 left");
        assert_eq!(decode_row(10, &rest).expect("decode"), vec![(12, other)]);
        assert!(batch_without(10, &rest, "c2").expect("rewrite").is_none());
        let plain = encode_row(&[&impression("a")]).expect("plain");
        assert!(batch_customers(3, &plain).expect("not a batch").is_empty());
    }
}
