//! The event log: `events` keyed by a global sequence number, and `customer_events`
//! (customer id, seq) so one customer's events are a range read, not a scan of the log.

use std::ops::Bound;

use doppel_types::Event;
use redb::{Database, ReadableTable};

use super::{read, write};
use crate::codec::{decode, encode};
use crate::error::Result;
use crate::keys::{COUNTERS, CUSTOMER_EVENTS, ERASED, EVENTS, LAST_EVENT_SEQ};

/// Appends events (dropping those of erased customers) in one transaction; returns the
/// last assigned sequence number.
pub(crate) fn append_events(db: &Database, events: Vec<Event>) -> Result<u64> {
    write(db, |txn| {
        let mut log = txn.open_table(EVENTS)?;
        let mut index = txn.open_table(CUSTOMER_EVENTS)?;
        let erased = txn.open_table(ERASED)?;
        let mut counters = txn.open_table(COUNTERS)?;
        let mut seq = counters.get(LAST_EVENT_SEQ)?.map_or(0, |v| v.value());
        let start = seq;
        for event in &events {
            if erased.get(event.customer_id.as_str())?.is_some() {
                continue;
            }
            seq += 1;
            log.insert(seq, encode("event", event)?.as_slice())?;
            index.insert((event.customer_id.as_str(), seq), ())?;
        }
        if seq != start {
            counters.insert(LAST_EVENT_SEQ, seq)?;
        }
        Ok(seq)
    })
}

/// The last assigned sequence number.
pub(crate) fn last_event_seq(db: &Database) -> Result<u64> {
    read(db, |txn| {
        let counters = txn.open_table(COUNTERS)?;
        Ok(counters.get(LAST_EVENT_SEQ)?.map_or(0, |v| v.value()))
    })
}

/// One customer's events in append order.
pub(crate) fn customer_events(db: &Database, customer_id: &str) -> Result<Vec<Event>> {
    read(db, |txn| {
        let index = txn.open_table(CUSTOMER_EVENTS)?;
        let log = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for entry in index.range((customer_id, 0)..=(customer_id, u64::MAX))? {
            let (key, _) = entry?;
            let (_, seq) = key.value();
            if let Some(bytes) = log.get(seq)? {
                out.push(decode("event", &seq.to_string(), bytes.value())?);
            }
        }
        Ok(out)
    })
}

/// Up to `limit` events after `after_seq`.
pub(crate) fn scan_events(
    db: &Database,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Event)>> {
    read(db, |txn| {
        let log = txn.open_table(EVENTS)?;
        let mut out = Vec::with_capacity(limit.min(4_096));
        for entry in log
            .range((Bound::Excluded(after_seq), Bound::Unbounded))?
            .take(limit)
        {
            let (k, v) = entry?;
            let seq = k.value();
            out.push((seq, decode("event", &seq.to_string(), v.value())?));
        }
        Ok(out)
    })
}
