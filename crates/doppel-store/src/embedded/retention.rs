//! Event retention: the oldest rows of the log go once an event checkpoint holds what they
//! built (the caller passes the checkpoints' sequence number) and every event in them is
//! older than the retention window. Only a prefix of the log is removed, so one pass
//! reads the removable rows and the first one it keeps.

use doppel_types::Event;
use redb::{Database, Durability, ReadableTable};

use super::impression_runs::decode_row;
use super::write_with;
use crate::error::Result;
use crate::keys::{
    COUNTERS, CUSTOMER_EVENTS, EVENTS, EVENTS_COMPACTED_THROUGH, IMPRESSION_BATCHES,
};

/// Removes, in one transaction, about `limit` events (one whole row more at most) of the
/// log's prefix up to `through` whose timestamps are all before `before_ms`. Rows are
/// removed whole (a run or a batch of impressions with one newer event stays, and ends
/// the prefix). Recorded event ids stay, so a retried old event is still a duplicate. The
/// newest sequence number removed is recorded ([`EVENTS_COMPACTED_THROUGH`]). Commits
/// lazily: durable with the next durable commit, so a removal lost to a crash is done
/// again, its marker with it. Returns how many events went and the newest sequence
/// number removed (0: none).
pub(crate) fn compact_events(
    db: &Database,
    through: u64,
    before_ms: i64,
    limit: usize,
) -> Result<(u64, u64)> {
    write_with(db, Durability::None, |txn| {
        let mut log = txn.open_table(EVENTS)?;
        let mut index = txn.open_table(CUSTOMER_EVENTS)?;
        let mut batches = txn.open_table(IMPRESSION_BATCHES)?;
        let mut doomed: Vec<(u64, Vec<(u64, Event)>)> = Vec::new();
        let mut events = 0;
        for entry in log.range(..=through)? {
            let (key, value) = entry?;
            let row = key.value();
            let rows = decode_row(row, value.value())?;
            let removable = rows
                .iter()
                .all(|(seq, e)| *seq <= through && e.timestamp_ms < before_ms);
            if !removable || (events > 0 && events + rows.len() > limit) {
                break;
            }
            events += rows.len();
            doomed.push((row, rows));
        }
        let mut newest = 0;
        for (row, rows) in &doomed {
            newest = rows.iter().map(|(seq, _)| *seq).fold(newest, u64::max);
            log.remove(*row)?;
            if batches.remove(*row)?.is_none()
                && let Some((_, first)) = rows.first()
            {
                index.remove((first.customer_id.as_str(), *row))?;
            }
        }
        if newest > 0 {
            let mut counters = txn.open_table(COUNTERS)?;
            let before = counters
                .get(EVENTS_COMPACTED_THROUGH)?
                .map_or(0, |v| v.value());
            counters.insert(EVENTS_COMPACTED_THROUGH, before.max(newest))?;
        }
        Ok((events as u64, newest))
    })
}
