//! The event log: `events` keyed by a global sequence number, `customer_events`
//! (customer id, seq) so one customer's events are a range read, not a scan of the log,
//! and `customer_event_ids` (customer id, event id) so a retried event is not appended
//! twice — checked and written in the append's own transaction.
//!
//! A row holds one event or a run of impressions shown together (`impression_runs`): the
//! run is stored under its first sequence number and indexed once, and readers expand it.

use std::ops::Bound;

use doppel_types::Event;
use redb::{Database, Durability, ReadableTable};

use super::impression_runs::{MAX_RUN, decode_row, encode_row, same_run};
use super::{read, write_with};
use crate::error::Result;
use crate::keys::{COUNTERS, CUSTOMER_EVENT_IDS, CUSTOMER_EVENTS, ERASED, EVENTS, LAST_EVENT_SEQ};
use crate::store_trait::Appended;

/// Appends events in one transaction, dropping those of erased customers and those whose
/// (customer id, event id) is already recorded (earlier in the batch included).
pub(crate) fn append_events(db: &Database, events: &[Event]) -> Result<Appended> {
    append_events_with(db, events, Durability::Immediate)
}

/// [`append_events`] committed with `durability`.
pub(crate) fn append_events_with(
    db: &Database,
    events: &[Event],
    durability: Durability,
) -> Result<Appended> {
    write_with(db, durability, |txn| {
        let mut log = txn.open_table(EVENTS)?;
        let mut index = txn.open_table(CUSTOMER_EVENTS)?;
        let mut ids = txn.open_table(CUSTOMER_EVENT_IDS)?;
        let erased = txn.open_table(ERASED)?;
        let mut counters = txn.open_table(COUNTERS)?;
        let mut seq = counters.get(LAST_EVENT_SEQ)?.map_or(0, |v| v.value());
        let start = seq;
        let mut duplicates = Vec::new();
        let mut position = 0;
        while position < events.len() {
            let event = &events[position];
            let mut run = vec![event];
            while run.len() < MAX_RUN
                && events
                    .get(position + run.len())
                    .is_some_and(|next| same_run(event, next))
            {
                run.push(&events[position + run.len()]);
            }
            let at = position;
            position += run.len();
            let customer = event.customer_id.as_str();
            if erased.get(customer)?.is_some() {
                continue;
            }
            let id = event.event_id.as_str();
            if !id.is_empty() && ids.get((customer, id))?.is_some() {
                duplicates.push(at);
                continue;
            }
            let first = seq + 1;
            seq += run.len() as u64;
            log.insert(first, encode_row(&run)?.as_slice())?;
            index.insert((customer, first), ())?;
            if !id.is_empty() {
                ids.insert((customer, id), first)?;
            }
        }
        if seq != start {
            counters.insert(LAST_EVENT_SEQ, seq)?;
        }
        Ok(Appended {
            last_seq: seq,
            last_written: (seq != start).then_some(seq),
            duplicates,
        })
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
                out.extend(decode_row(seq, bytes.value())?.into_iter().map(|(_, e)| e));
            }
        }
        Ok(out)
    })
}

/// Up to `limit` events after `after_seq` (a run that `after_seq` falls inside is read
/// from the next of its events on).
pub(crate) fn scan_events(
    db: &Database,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<(u64, Event)>> {
    read(db, |txn| {
        let log = txn.open_table(EVENTS)?;
        let mut out = Vec::with_capacity(limit.min(4_096));
        let straddling = log.range(..=after_seq)?.next_back().transpose()?;
        let rows = log.range((Bound::Excluded(after_seq), Bound::Unbounded))?;
        for entry in straddling.into_iter().map(Ok).chain(rows) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry?;
            let events = decode_row(k.value(), v.value())?;
            let room = limit - out.len();
            out.extend(
                events
                    .into_iter()
                    .filter(|(seq, _)| *seq > after_seq)
                    .take(room),
            );
        }
        Ok(out)
    })
}
