//! Customer profiles and items: keyed by id, postcard values, paged scans in id order.

use std::ops::Bound;

use doppel_types::{Customer, Item};
use redb::{Database, TableDefinition};
use serde::de::DeserializeOwned;

use super::{after_bound, read, write};
use crate::codec::{decode, encode};
use crate::error::Result;
use crate::keys::{CUSTOMERS, ERASED, ITEMS};

/// Upserts customers in one transaction, clearing their erasure-ledger entries.
pub(crate) fn upsert_customers(db: &Database, customers: Vec<Customer>) -> Result<()> {
    write(db, |txn| {
        let mut table = txn.open_table(CUSTOMERS)?;
        let mut erased = txn.open_table(ERASED)?;
        for customer in &customers {
            table.insert(
                customer.id.as_str(),
                encode("customer", customer)?.as_slice(),
            )?;
            erased.remove(customer.id.as_str())?;
        }
        Ok(())
    })
}

/// Upserts items in one transaction.
pub(crate) fn upsert_items(db: &Database, items: Vec<Item>) -> Result<()> {
    write(db, |txn| {
        let mut table = txn.open_table(ITEMS)?;
        for item in &items {
            table.insert(item.id.as_str(), encode("item", item)?.as_slice())?;
        }
        Ok(())
    })
}

/// A customer by id.
pub(crate) fn get_customer(db: &Database, id: &str) -> Result<Option<Customer>> {
    get(db, CUSTOMERS, "customer", id)
}

/// Customers by id in one read transaction, in input order.
pub(crate) fn get_customers(db: &Database, ids: &[String]) -> Result<Vec<Option<Customer>>> {
    read(db, |txn| {
        let table = txn.open_table(CUSTOMERS)?;
        ids.iter()
            .map(|id| {
                table
                    .get(id.as_str())?
                    .map(|v| decode("customer", id, v.value()))
                    .transpose()
            })
            .collect()
    })
}

/// An item by id.
pub(crate) fn get_item(db: &Database, id: &str) -> Result<Option<Item>> {
    get(db, ITEMS, "item", id)
}

/// A page of customers after `after`.
pub(crate) fn scan_customers(
    db: &Database,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Customer>> {
    scan(db, CUSTOMERS, "customer", after, limit)
}

/// A page of items after `after`.
pub(crate) fn scan_items(db: &Database, after: Option<&str>, limit: usize) -> Result<Vec<Item>> {
    scan(db, ITEMS, "item", after, limit)
}

fn get<T: DeserializeOwned>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    what: &'static str,
    id: &str,
) -> Result<Option<T>> {
    read(db, |txn| {
        let table = txn.open_table(table)?;
        table
            .get(id)?
            .map(|v| decode(what, id, v.value()))
            .transpose()
    })
}

fn scan<T: DeserializeOwned>(
    db: &Database,
    table: TableDefinition<&str, &[u8]>,
    what: &'static str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<T>> {
    read(db, |txn| {
        let table = txn.open_table(table)?;
        let range = table.range::<&str>((after_bound(after), Bound::Unbounded))?;
        let mut out = Vec::with_capacity(limit.min(1_024));
        for entry in range.take(limit) {
            let (k, v) = entry?;
            out.push(decode(what, k.value(), v.value())?);
        }
        Ok(out)
    })
}
