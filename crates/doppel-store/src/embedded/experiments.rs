//! The experiments, one postcard record written by compare-and-set on its revision.

use doppel_types::ExperimentBook;
use redb::{Database, ReadableTable};

use super::{read, write};
use crate::codec::{decode, encode};
use crate::error::Result;
use crate::keys::{EXPERIMENTS, POLICIES};

/// The experiments (empty when never written).
pub(crate) fn experiments(db: &Database) -> Result<ExperimentBook> {
    read(db, |txn| {
        Ok(txn
            .open_table(POLICIES)?
            .get(EXPERIMENTS)?
            .map(|v| decode("experiments", EXPERIMENTS, v.value()))
            .transpose()?
            .unwrap_or_default())
    })
}

/// Writes `book` if the stored revision is `book.revision - 1`.
pub(crate) fn put_experiments(db: &Database, book: &ExperimentBook) -> Result<bool> {
    let bytes = encode("experiments", book)?;
    write(db, |txn| {
        let mut table = txn.open_table(POLICIES)?;
        let stored: ExperimentBook = table
            .get(EXPERIMENTS)?
            .map(|v| decode("experiments", EXPERIMENTS, v.value()))
            .transpose()?
            .unwrap_or_default();
        if stored.revision + 1 != book.revision {
            return Ok(false);
        }
        table.insert(EXPERIMENTS, bytes.as_slice())?;
        Ok(true)
    })
}
