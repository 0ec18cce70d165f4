//! The audit log: postcard events by seq, the oldest dropped past the bound.

use doppel_types::AuditEvent;
use doppel_types::audit::MAX_AUDIT_EVENTS;
use redb::{Database, ReadableTable, ReadableTableMetadata};

use super::{read, write};
use crate::codec::{decode, encode};
use crate::error::Result;
use crate::keys::{AUDIT_EVENTS, COUNTERS, LAST_AUDIT_SEQ};

/// Appends `event` under the next seq; answers it.
pub(crate) fn append(db: &Database, event: &AuditEvent) -> Result<u64> {
    write(db, |txn| {
        let mut counters = txn.open_table(COUNTERS)?;
        let seq = counters.get(LAST_AUDIT_SEQ)?.map_or(0, |v| v.value()) + 1;
        counters.insert(LAST_AUDIT_SEQ, seq)?;
        let stored = AuditEvent {
            seq,
            ..event.clone()
        };
        let mut events = txn.open_table(AUDIT_EVENTS)?;
        events.insert(seq, encode("audit event", &stored)?.as_slice())?;
        if events.len()? > MAX_AUDIT_EVENTS {
            let oldest = events.first()?.map(|(k, _)| k.value());
            if let Some(oldest) = oldest {
                events.remove(oldest)?;
            }
        }
        Ok(seq)
    })
}

/// Up to `limit` events after `after`, oldest first.
pub(crate) fn events(db: &Database, after: u64, limit: usize) -> Result<Vec<AuditEvent>> {
    read(db, |txn| {
        let table = txn.open_table(AUDIT_EVENTS)?;
        let mut out = Vec::new();
        for entry in table.range(after.saturating_add(1)..)?.take(limit) {
            let (seq, bytes) = entry?;
            out.push(decode(
                "audit event",
                &seq.value().to_string(),
                bytes.value(),
            )?);
        }
        Ok(out)
    })
}
