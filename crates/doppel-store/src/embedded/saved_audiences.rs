//! Saved audiences: a postcard info record and a postcard member list per audience, written
//! together; erasure takes a customer out of every member list in its own transaction.

use doppel_types::{SavedAudienceInfo, SavedMember};
use redb::{Database, ReadableTable, WriteTransaction};

use super::{read, write};
use crate::codec::{decode, encode};
use crate::error::Result;
use crate::keys::{SAVED_AUDIENCE_MEMBERS, SAVED_AUDIENCES};

/// Saves (or replaces) an audience's info and members in one transaction.
pub(crate) fn put(db: &Database, info: &SavedAudienceInfo, members: &[SavedMember]) -> Result<()> {
    let info_bytes = encode("saved audience", info)?;
    let member_bytes = encode("saved audience members", &members)?;
    write(db, |txn| {
        txn.open_table(SAVED_AUDIENCES)?
            .insert(info.id.as_str(), info_bytes.as_slice())?;
        txn.open_table(SAVED_AUDIENCE_MEMBERS)?
            .insert(info.id.as_str(), member_bytes.as_slice())?;
        Ok(())
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

/// An audience's members, best first.
pub(crate) fn members(db: &Database, id: &str) -> Result<Option<Vec<SavedMember>>> {
    read(db, |txn| {
        txn.open_table(SAVED_AUDIENCE_MEMBERS)?
            .get(id)?
            .map(|v| decode("saved audience members", id, v.value()))
            .transpose()
    })
}

/// Deletes an audience; true if it existed.
pub(crate) fn delete(db: &Database, id: &str) -> Result<bool> {
    write(db, |txn| {
        let existed = txn.open_table(SAVED_AUDIENCES)?.remove(id)?.is_some();
        txn.open_table(SAVED_AUDIENCE_MEMBERS)?.remove(id)?;
        Ok(existed)
    })
}

/// Takes `customer` out of every saved audience, inside the erasure's transaction. Reads
/// every member list: erasures are rare and the lists are bounded by the server's limits.
pub(crate) fn erase_member(txn: &WriteTransaction, customer: &str) -> Result<()> {
    let mut lists = txn.open_table(SAVED_AUDIENCE_MEMBERS)?;
    let mut infos = txn.open_table(SAVED_AUDIENCES)?;
    let mut changed: Vec<(String, Vec<SavedMember>)> = Vec::new();
    for entry in lists.iter()? {
        let (id, bytes) = entry?;
        let members: Vec<SavedMember> =
            decode("saved audience members", id.value(), bytes.value())?;
        if members.iter().any(|m| m.customer_id == customer) {
            let kept = members
                .into_iter()
                .filter(|m| m.customer_id != customer)
                .collect();
            changed.push((id.value().to_owned(), kept));
        }
    }
    for (id, kept) in changed {
        let info_bytes = infos.get(id.as_str())?.map(|v| v.value().to_vec());
        if let Some(info_bytes) = info_bytes {
            let mut info: SavedAudienceInfo = decode("saved audience", &id, &info_bytes)?;
            info.size = kept.len() as u64;
            infos.insert(id.as_str(), encode("saved audience", &info)?.as_slice())?;
        }
        lists.insert(
            id.as_str(),
            encode("saved audience members", &kept)?.as_slice(),
        )?;
    }
    Ok(())
}
