//! Which customers' impressions each batch row holds.
//!
//! Impressions recorded with answers are stored one batch row an append (see
//! `impression_runs`), an insert at the end of the log. Indexing every answer in
//! `customer_events` would insert on a random leaf per answer instead, and copying that
//! leaf and its branch pages was most of the append's work — on a node that records every
//! answer it gives, CPU taken from the requests. So a batch row is listed instead in
//! `impression_batches` (row → its customers, again an append at the end), and in memory
//! here per customer, where one customer's reads and its erasure find it.
//!
//! The memory is loaded from `impression_batches` whenever the database is (re)opened, so
//! batches lost with a crash or a reopen after an I/O error are not listed. Readers and
//! erasure still check the customers of the row they find, and read each row once.
//!
//! It grows with every append (a `u64` per customer and batch) until event retention
//! removes the rows ([`BatchOwners::forget_through`]); erasing a customer rewrites every
//! batch row that holds it.

use std::collections::HashMap;

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::codec::decode_borrowed;
use crate::error::Result;
use crate::keys::IMPRESSION_BATCHES;

/// The batch rows holding each customer's impressions, in append order.
#[derive(Debug, Default)]
pub(crate) struct BatchOwners {
    by_customer: HashMap<Box<str>, Vec<u64>>,
}

impl BatchOwners {
    /// Loads every batch row listed in `impression_batches`.
    pub(crate) fn load(db: &Database) -> Result<Self> {
        let txn = db.begin_read()?;
        let table = txn.open_table(IMPRESSION_BATCHES)?;
        let mut owners = Self::default();
        for entry in table.iter()? {
            let (row, customers) = entry?;
            let row = row.value();
            let customers: Vec<&str> =
                decode_borrowed("batch customers", &row.to_string(), customers.value())?;
            for customer in customers {
                owners.note(customer, row);
            }
        }
        Ok(owners)
    }

    /// Forgets every batch row numbered up to `seq` (event retention removed them).
    pub(crate) fn forget_through(&mut self, seq: u64) {
        self.by_customer.retain(|_, rows| {
            rows.retain(|row| *row > seq);
            !rows.is_empty()
        });
    }

    /// Notes that batch row `row` (appended after the others) holds impressions of
    /// `customer`.
    pub(crate) fn note(&mut self, customer: &str, row: u64) {
        match self.by_customer.get_mut(customer) {
            Some(rows) => rows.push(row),
            None => {
                self.by_customer.insert(customer.into(), vec![row]);
            }
        }
    }

    /// The batch rows holding impressions of `customer`, in append order.
    pub(crate) fn rows(&self, customer: &str) -> &[u64] {
        self.by_customer.get(customer).map_or(&[], Vec::as_slice)
    }

    /// Forgets `customer` (erased).
    pub(crate) fn forget(&mut self, customer: &str) {
        self.by_customer.remove(customer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_kept_per_customer_in_append_order_and_forgotten_with_it() {
        let mut owners = BatchOwners::default();
        owners.note("a", 3);
        owners.note("b", 3);
        owners.note("a", 9);
        assert_eq!(owners.rows("a"), [3, 9]);
        assert_eq!(owners.rows("b"), [3]);
        assert!(owners.rows("c").is_empty());
        owners.forget("a");
        assert!(owners.rows("a").is_empty());
        assert_eq!(owners.rows("b"), [3]);
    }
}
