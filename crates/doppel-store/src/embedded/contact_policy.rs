//! The contact policy (frequency caps), one postcard record.

use doppel_types::ContactPolicy;
use redb::Database;

use super::{read, write};
use crate::codec::{decode, encode};
use crate::error::Result;
use crate::keys::{CONTACT_POLICY, POLICIES};

/// Replaces the contact policy.
pub(crate) fn put_contact_policy(db: &Database, policy: &ContactPolicy) -> Result<()> {
    let bytes = encode("contact policy", policy)?;
    write(db, |txn| {
        txn.open_table(POLICIES)?
            .insert(CONTACT_POLICY, bytes.as_slice())?;
        Ok(())
    })
}

/// The contact policy, if one was set.
pub(crate) fn contact_policy(db: &Database) -> Result<Option<ContactPolicy>> {
    read(db, |txn| {
        txn.open_table(POLICIES)?
            .get(CONTACT_POLICY)?
            .map(|v| decode("contact policy", CONTACT_POLICY, v.value()))
            .transpose()
    })
}
