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

use doppel_types::{Context, Event, EventType};
use serde::{Deserialize, Serialize};

use crate::codec::{decode, encode};
use crate::error::{Error, Result};

/// First byte of a run's row.
const RUN_TAG: u8 = 0;
/// Most impressions in one run (a longer run is split).
pub(crate) const MAX_RUN: usize = 256;

/// Impressions of one customer at one time in one context.
#[derive(Serialize, Deserialize)]
struct ImpressionRun {
    customer_id: String,
    timestamp_ms: i64,
    context: Context,
    items: Vec<String>,
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
    let run = ImpressionRun {
        customer_id: first.customer_id.clone(),
        timestamp_ms: first.timestamp_ms,
        context: first.context.clone(),
        items: events.iter().map(|e| e.item_id.clone()).collect(),
    };
    let mut row = vec![RUN_TAG];
    row.extend(encode("impression run", &run)?);
    Ok(row)
}

/// The events of the row stored under `seq`, with their sequence numbers.
pub(crate) fn decode_row(seq: u64, bytes: &[u8]) -> Result<Vec<(u64, Event)>> {
    let Some((&RUN_TAG, rest)) = bytes.split_first() else {
        return Ok(vec![(seq, decode("event", &seq.to_string(), bytes)?)]);
    };
    let run: ImpressionRun = decode("impression run", &seq.to_string(), rest)?;
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
}
