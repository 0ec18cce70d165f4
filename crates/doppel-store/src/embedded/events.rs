//! The event log: `events` keyed by a global sequence number, `customer_events`
//! (customer id, seq) so one customer's events are a range read, not a scan of the log,
//! and `customer_event_ids` (customer id, event id) so a retried event is not appended
//! twice — checked and written in the append's own transaction.
//!
//! A row holds one event or a run of impressions shown together (`impression_runs`): the
//! run is stored under its first sequence number and indexed once, and readers expand it.
//! Impressions recorded with answers ([`append_impressions`]) are stored one batch row an
//! append, not indexed in `customer_events` but noted per customer (`batch_owners`).

use std::ops::Bound;

use doppel_types::Event;
use redb::{Database, Durability, ReadableTable};

use super::batch_owners::BatchOwners;
use super::impression_runs::{
    MAX_BATCH, MAX_RUN, decode_row, decode_row_of, distinct, encode_batch, encode_row, runnable,
    same_run,
};
use super::{read, write_with};
use crate::codec::encode;
use crate::error::Result;
use crate::keys::{
    COUNTERS, CUSTOMER_EVENT_IDS, CUSTOMER_EVENTS, ERASED, EVENTS, IMPRESSION_BATCHES,
    LAST_EVENT_SEQ,
};
use crate::store_trait::Appended;

/// Appends events in one transaction, dropping those of erased customers and those whose
/// (customer id, event id) is already recorded (earlier in the batch included).
pub(crate) fn append_events(db: &Database, events: &[Event]) -> Result<Appended> {
    append(db, events, Durability::Immediate, None)
}

/// [`append_events`] committed lazily (visible at once, durable with the next durable
/// commit), with runs of plain impressions stored as batch rows, kept out of
/// `customer_events` and noted in `owners` instead. The caller keeps erasures out until
/// this returns, so none runs between the commit and the note.
pub(crate) fn append_impressions(
    db: &Database,
    events: &[Event],
    owners: &parking_lot::Mutex<BatchOwners>,
) -> Result<Appended> {
    let mut batches = Vec::new();
    let appended = append(db, events, Durability::None, Some(&mut batches))?;
    let mut owners = owners.lock();
    for (row, customers) in batches {
        for customer in customers {
            owners.note(&customer, row);
        }
    }
    Ok(appended)
}

/// Runs of plain impressions waiting to be written as one batch row.
#[derive(Default)]
struct PendingBatch<'a> {
    runs: Vec<(u64, Vec<&'a Event>)>,
    impressions: usize,
}

impl<'a> PendingBatch<'a> {
    /// Writes the batch row (under its first run's number) and its customers; answers
    /// (row, customers), or `None` when the batch is empty.
    fn write(
        &mut self,
        log: &mut redb::Table<u64, &[u8]>,
        batches: &mut redb::Table<u64, &[u8]>,
    ) -> Result<Option<(u64, Vec<String>)>> {
        let runs = std::mem::take(&mut self.runs);
        self.impressions = 0;
        let Some(&(row, _)) = runs.first() else {
            return Ok(None);
        };
        let customers = distinct(runs.iter().map(|(_, run)| run[0].customer_id.as_str()));
        log.insert(row, encode_batch(&runs)?.as_slice())?;
        batches.insert(row, encode("batch customers", &customers)?.as_slice())?;
        Ok(Some((row, customers)))
    }
}

/// Appends `events` committed with `durability`. With `batched`, runs of plain impressions
/// are stored as batch rows (listed in `impression_batches`, not in `customer_events`),
/// and each row written is pushed there with its customers.
fn append(
    db: &Database,
    events: &[Event],
    durability: Durability,
    mut batched: Option<&mut Vec<(u64, Vec<String>)>>,
) -> Result<Appended> {
    write_with(db, durability, |txn| {
        let mut log = txn.open_table(EVENTS)?;
        let mut index = txn.open_table(CUSTOMER_EVENTS)?;
        let mut batch_rows = txn.open_table(IMPRESSION_BATCHES)?;
        let mut ids = txn.open_table(CUSTOMER_EVENT_IDS)?;
        let erased = txn.open_table(ERASED)?;
        let mut counters = txn.open_table(COUNTERS)?;
        let mut seq = counters.get(LAST_EVENT_SEQ)?.map_or(0, |v| v.value());
        let start = seq;
        let mut duplicates = Vec::new();
        let mut dropped = Vec::new();
        let mut pending = PendingBatch::default();
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
                dropped.extend(at..position);
                continue;
            }
            let id = event.event_id.as_str();
            if !id.is_empty() && ids.get((customer, id))?.is_some() {
                duplicates.push(at);
                continue;
            }
            let first = seq + 1;
            seq += run.len() as u64;
            if let Some(rows) = batched.as_deref_mut() {
                if runnable(event) {
                    pending.impressions += run.len();
                    pending.runs.push((first, run));
                    if pending.impressions >= MAX_BATCH {
                        rows.extend(pending.write(&mut log, &mut batch_rows)?);
                    }
                    continue;
                }
                // A row between two of the batch's runs would split its span.
                rows.extend(pending.write(&mut log, &mut batch_rows)?);
            }
            log.insert(first, encode_row(&run)?.as_slice())?;
            index.insert((customer, first), ())?;
            if !id.is_empty() {
                ids.insert((customer, id), first)?;
            }
        }
        if let Some(rows) = batched {
            rows.extend(pending.write(&mut log, &mut batch_rows)?);
        }
        if seq != start {
            counters.insert(LAST_EVENT_SEQ, seq)?;
        }
        Ok(Appended {
            last_seq: seq,
            last_written: (seq != start).then_some(seq),
            duplicates,
            erased: dropped,
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

/// One customer's events in append order: those indexed in `customer_events` and those
/// of the batch rows `batches` (from [`BatchOwners::rows`]).
pub(crate) fn customer_events(
    db: &Database,
    customer_id: &str,
    batches: &[u64],
) -> Result<Vec<Event>> {
    read(db, |txn| {
        let index = txn.open_table(CUSTOMER_EVENTS)?;
        let log = txn.open_table(EVENTS)?;
        let mut rows = Vec::with_capacity(batches.len());
        for entry in index.range((customer_id, 0)..=(customer_id, u64::MAX))? {
            rows.push(entry?.0.value().1);
        }
        if !batches.is_empty() {
            rows.extend_from_slice(batches);
            // Each row once, in order: a batch lost to a crash may have left its number
            // to a row that is listed twice.
            rows.sort_unstable();
            rows.dedup();
        }
        let mut out = Vec::new();
        for seq in rows {
            if let Some(bytes) = log.get(seq)? {
                // Only the customer's: a batch row holds others', and a lost batch may
                // have left its number to another customer's row.
                let events = decode_row_of(seq, bytes.value(), Some(customer_id))?;
                out.extend(events.into_iter().map(|(_, e)| e));
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
