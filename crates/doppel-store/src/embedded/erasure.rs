//! Erasure (right to be forgotten): one transaction removes the profile, every event
//! (through the per-customer index, and from the impression batch rows the caller names)
//! and its recorded event ids, the customer's vector in every version that has vectors,
//! its membership of every saved audience, and records the id in the ledger so later
//! appends and imports drop it.

use doppel_types::Entity;
use redb::{Database, ReadableTable};

use super::impression_runs::{batch_customers, batch_without};
use super::{now_ms, read, write};
use crate::codec::encode;
use crate::error::Result;
use crate::keys::{
    CUSTOMER_EVENT_IDS, CUSTOMER_EVENTS, CUSTOMERS, ERASED, EVENTS, IMPRESSION_BATCHES,
    VECTOR_VERSIONS, VECTORS, entity_tag,
};

/// Erases `id`, whose impressions are also in the batch rows `batches`
/// ([`BatchOwners::rows`]); true if a profile, an event or a vector existed.
///
/// [`BatchOwners::rows`]: super::batch_owners::BatchOwners::rows
pub(crate) fn delete_customer(db: &Database, id: &str, batches: &[u64]) -> Result<bool> {
    write(db, |txn| {
        let mut existed = txn.open_table(CUSTOMERS)?.remove(id)?.is_some();

        let mut index = txn.open_table(CUSTOMER_EVENTS)?;
        let mut log = txn.open_table(EVENTS)?;
        let mut seqs = Vec::new();
        for entry in index.range((id, 0)..=(id, u64::MAX))? {
            let (key, _) = entry?;
            seqs.push(key.value().1);
        }
        for seq in seqs {
            existed |= log.remove(seq)?.is_some();
            index.remove((id, seq))?;
        }
        let mut batch_rows = txn.open_table(IMPRESSION_BATCHES)?;
        for &row in batches {
            // A batch lost to a crash may have left its number to a row without `id`.
            let Some(bytes) = log.get(row)?.map(|b| b.value().to_vec()) else {
                continue;
            };
            let mut customers = batch_customers(row, &bytes)?;
            if !customers.iter().any(|c| c == id) {
                continue;
            }
            existed = true;
            customers.retain(|c| c != id);
            match batch_without(row, &bytes, id)? {
                Some(rest) => {
                    log.insert(row, rest.as_slice())?;
                    batch_rows.insert(row, encode("batch customers", &customers)?.as_slice())?;
                }
                None => {
                    log.remove(row)?;
                    batch_rows.remove(row)?;
                }
            }
        }

        let mut event_ids = txn.open_table(CUSTOMER_EVENT_IDS)?;
        let mut recorded = Vec::new();
        for entry in event_ids.range((id, "")..)? {
            let (key, _) = entry?;
            let (customer, event_id) = key.value();
            if customer != id {
                break;
            }
            recorded.push(event_id.to_owned());
        }
        for event_id in recorded {
            event_ids.remove((id, event_id.as_str()))?;
        }

        let versions = txn.open_table(VECTOR_VERSIONS)?;
        let mut vectors = txn.open_table(VECTORS)?;
        let tag = entity_tag(Entity::Customer);
        for entry in versions.iter()? {
            let (version, _) = entry?;
            existed |= vectors.remove((version.value(), tag, id))?.is_some();
        }

        super::saved_audiences::erase_member(txn, id)?;
        super::event_checkpoints::erase_member(txn, id)?;
        txn.open_table(ERASED)?.insert(id, now_ms())?;
        Ok(existed)
    })
}

/// The ledger, in id order.
pub(crate) fn erased_customers(db: &Database) -> Result<Vec<String>> {
    read(db, |txn| {
        let ledger = txn.open_table(ERASED)?;
        let mut out = Vec::new();
        for entry in ledger.iter()? {
            out.push(entry?.0.value().to_owned());
        }
        Ok(out)
    })
}

/// Is `id` in the ledger?
pub(crate) fn is_erased(db: &Database, id: &str) -> Result<bool> {
    read(db, |txn| Ok(txn.open_table(ERASED)?.get(id)?.is_some()))
}
