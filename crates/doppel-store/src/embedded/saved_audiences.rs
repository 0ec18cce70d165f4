//! Saved audiences: an info record, the query bytes, one row per member keyed by
//! (audience, rank), and a reverse index (customer, audience) → rank, so erasure finds a
//! customer's memberships without reading any member list. Limits and the erasure ledger
//! are checked inside the write transaction.

use doppel_types::{SavedAudienceInfo, SavedAudienceLimits, SavedAudienceWrite, SavedMember};
use redb::{Database, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::{read, write};
use crate::codec::{decode, encode};
use crate::error::{Error, Result};
use crate::keys::{
    COUNTERS, ERASED, SAVED_AUDIENCE_MEMBERS, SAVED_AUDIENCE_QUERIES, SAVED_AUDIENCE_RANKS,
    SAVED_AUDIENCES, SAVED_MEMBERS_TOTAL,
};

/// Removes every member row of `id` (and its reverse index); answers how many.
fn clear_members(txn: &WriteTransaction, id: &str) -> Result<u64> {
    let mut members = txn.open_table(SAVED_AUDIENCE_MEMBERS)?;
    let mut ranks = txn.open_table(SAVED_AUDIENCE_RANKS)?;
    let mut rows = Vec::new();
    for entry in members.range((id, 0)..=(id, u64::MAX))? {
        let (key, bytes) = entry?;
        let member: SavedMember = decode("saved audience member", id, bytes.value())?;
        rows.push((key.value().1, member.customer_id));
    }
    for (rank, customer) in &rows {
        members.remove((id, *rank))?;
        ranks.remove((customer.as_str(), id))?;
    }
    Ok(rows.len() as u64)
}

fn add_total(txn: &WriteTransaction, delta: i64) -> Result<u64> {
    let mut counters = txn.open_table(COUNTERS)?;
    let total = counters.get(SAVED_MEMBERS_TOTAL)?.map_or(0, |v| v.value());
    let total = total.saturating_add_signed(delta);
    counters.insert(SAVED_MEMBERS_TOTAL, total)?;
    Ok(total)
}

/// Writes an audience in one transaction (see `Store::put_saved_audience`).
pub(crate) fn put(
    db: &Database,
    info: &SavedAudienceInfo,
    query: Option<&[u8]>,
    members: &[SavedMember],
    mode: SavedAudienceWrite,
    limits: SavedAudienceLimits,
) -> Result<SavedAudienceInfo> {
    let id = info.id.as_str();
    write(db, |txn| {
        let mut infos = txn.open_table(SAVED_AUDIENCES)?;
        let old: Option<SavedAudienceInfo> = infos
            .get(id)?
            .map(|v| decode("saved audience", id, v.value()))
            .transpose()?;
        match (mode, &old) {
            (SavedAudienceWrite::Create, Some(_)) => {
                return Err(Error::Storage(format!("saved audience id {id} is taken")));
            }
            (SavedAudienceWrite::Create, None) if infos.len()? >= limits.max_audiences => {
                return Err(Error::LimitExceeded {
                    field: "name",
                    reason: format!(
                        "{} audiences are saved, the most this server keeps \
                         (--max-saved-audiences); delete one first",
                        infos.len()?
                    ),
                });
            }
            (SavedAudienceWrite::Replace, None) => {
                return Err(Error::NotFound {
                    what: "saved audience",
                    id: id.to_owned(),
                });
            }
            _ => {}
        }
        // An erasure that landed while the audience was computed wins; a repeated member
        // keeps its best rank.
        let kept: Vec<&SavedMember> = {
            let erased = txn.open_table(ERASED)?;
            let mut seen = std::collections::HashSet::with_capacity(members.len());
            let mut kept = Vec::with_capacity(members.len());
            for m in members {
                let id = m.customer_id.as_str();
                if erased.get(id)?.is_none() && seen.insert(id) {
                    kept.push(m);
                }
            }
            kept
        };
        let old_size = old.as_ref().map_or(0, |o| o.size);
        let total = txn
            .open_table(COUNTERS)?
            .get(SAVED_MEMBERS_TOTAL)?
            .map_or(0, |v| v.value());
        let new_total = total.saturating_sub(old_size) + kept.len() as u64;
        if new_total > limits.max_members {
            return Err(Error::LimitExceeded {
                field: "query",
                reason: format!(
                    "{} members would bring the saved audiences to {new_total}, over the {} \
                     this server keeps (--max-saved-members); ask for a smaller audience or \
                     delete one",
                    kept.len(),
                    limits.max_members
                ),
            });
        }
        let cleared = clear_members(txn, id)?;
        {
            let mut rows = txn.open_table(SAVED_AUDIENCE_MEMBERS)?;
            let mut ranks = txn.open_table(SAVED_AUDIENCE_RANKS)?;
            for (rank, m) in kept.iter().enumerate() {
                let rank = rank as u64;
                rows.insert((id, rank), encode("saved audience member", m)?.as_slice())?;
                ranks.insert((m.customer_id.as_str(), id), rank)?;
            }
        }
        add_total(txn, kept.len() as i64 - cleared as i64)?;
        let stored = SavedAudienceInfo {
            size: kept.len() as u64,
            created_ms: old.as_ref().map_or(info.created_ms, |o| o.created_ms),
            ..info.clone()
        };
        infos.insert(id, encode("saved audience", &stored)?.as_slice())?;
        if let Some(query) = query {
            txn.open_table(SAVED_AUDIENCE_QUERIES)?.insert(id, query)?;
        }
        Ok(stored)
    })
}

/// An audience's info.
pub(crate) fn info(db: &Database, id: &str) -> Result<Option<SavedAudienceInfo>> {
    read(db, |txn| {
        txn.open_table(SAVED_AUDIENCES)?
            .get(id)?
            .map(|v| decode("saved audience", id, v.value()))
            .transpose()
    })
}

/// An audience's query bytes.
pub(crate) fn query(db: &Database, id: &str) -> Result<Option<Vec<u8>>> {
    read(db, |txn| {
        Ok(txn
            .open_table(SAVED_AUDIENCE_QUERIES)?
            .get(id)?
            .map(|v| v.value().to_vec()))
    })
}

/// Replaces an audience's query bytes if they still are `expected`; false when it is gone
/// or its query changed.
pub(crate) fn put_query(db: &Database, id: &str, expected: &[u8], query: &[u8]) -> Result<bool> {
    write(db, |txn| {
        if txn.open_table(SAVED_AUDIENCES)?.get(id)?.is_none() {
            return Ok(false);
        }
        let mut queries = txn.open_table(SAVED_AUDIENCE_QUERIES)?;
        let same = queries.get(id)?.is_some_and(|v| v.value() == expected);
        if !same {
            return Ok(false);
        }
        queries.insert(id, query)?;
        Ok(true)
    })
}

/// Every audience's info, in id order.
pub(crate) fn infos(db: &Database) -> Result<Vec<SavedAudienceInfo>> {
    read(db, |txn| {
        let table = txn.open_table(SAVED_AUDIENCES)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (id, bytes) = entry?;
            out.push(decode("saved audience", id.value(), bytes.value())?);
        }
        Ok(out)
    })
}

/// Up to `limit` members after rank `after`; `None` when the audience is gone.
pub(crate) fn members(
    db: &Database,
    id: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Option<Vec<(u64, SavedMember)>>> {
    read(db, |txn| {
        if txn.open_table(SAVED_AUDIENCES)?.get(id)?.is_none() {
            return Ok(None);
        }
        let from = after.map_or(0, |a| a.saturating_add(1));
        let rows = txn.open_table(SAVED_AUDIENCE_MEMBERS)?;
        let mut out = Vec::new();
        for entry in rows.range((id, from)..=(id, u64::MAX))?.take(limit) {
            let (key, bytes) = entry?;
            out.push((
                key.value().1,
                decode("saved audience member", id, bytes.value())?,
            ));
        }
        Ok(Some(out))
    })
}

/// Deletes an audience; true if it existed.
pub(crate) fn delete(db: &Database, id: &str) -> Result<bool> {
    write(db, |txn| {
        let existed = txn.open_table(SAVED_AUDIENCES)?.remove(id)?.is_some();
        txn.open_table(SAVED_AUDIENCE_QUERIES)?.remove(id)?;
        let cleared = clear_members(txn, id)?;
        add_total(txn, -(cleared as i64))?;
        Ok(existed)
    })
}

/// Takes `customer` out of every saved audience, inside the erasure's transaction, through
/// the reverse index (no member list is read).
pub(crate) fn erase_member(txn: &WriteTransaction, customer: &str) -> Result<()> {
    let mut ranks = txn.open_table(SAVED_AUDIENCE_RANKS)?;
    let mut found = Vec::new();
    for entry in ranks.range((customer, "")..)? {
        let (key, rank) = entry?;
        let (c, audience) = key.value();
        if c != customer {
            break;
        }
        found.push((audience.to_owned(), rank.value()));
    }
    if found.is_empty() {
        return Ok(());
    }
    let mut rows = txn.open_table(SAVED_AUDIENCE_MEMBERS)?;
    let mut infos = txn.open_table(SAVED_AUDIENCES)?;
    for (audience, rank) in &found {
        ranks.remove((customer, audience.as_str()))?;
        rows.remove((audience.as_str(), *rank))?;
        let info_bytes = infos.get(audience.as_str())?.map(|v| v.value().to_vec());
        if let Some(bytes) = info_bytes {
            let mut info: SavedAudienceInfo = decode("saved audience", audience, &bytes)?;
            info.size = info.size.saturating_sub(1);
            infos.insert(
                audience.as_str(),
                encode("saved audience", &info)?.as_slice(),
            )?;
        }
    }
    drop((rows, infos, ranks));
    add_total(txn, -(found.len() as i64))?;
    Ok(())
}
