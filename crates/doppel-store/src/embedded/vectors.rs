//! Vectors keyed by (version, entity tag, id); one version's vectors of one entity are a
//! contiguous range, so paging and deleting a version are range operations.

use std::ops::Bound;

use doppel_types::Entity;
use redb::{Database, ReadableTable};

use super::{read, write};
use crate::codec::{vector_from_bytes, vector_to_bytes};
use crate::error::Result;
use crate::keys::{ERASED, VECTOR_VERSIONS, VECTORS, entity_tag};

/// Stores rows in one transaction, dropping customer rows of erased ids.
pub(crate) fn put_vectors(
    db: &Database,
    version: &str,
    entity: Entity,
    rows: Vec<(String, Vec<f32>)>,
) -> Result<usize> {
    write(db, |txn| {
        let mut vectors = txn.open_table(VECTORS)?;
        let erased = txn.open_table(ERASED)?;
        let tag = entity_tag(entity);
        let mut stored = 0;
        for (id, vector) in &rows {
            if entity == Entity::Customer && erased.get(id.as_str())?.is_some() {
                continue;
            }
            vectors.insert(
                (version, tag, id.as_str()),
                vector_to_bytes(vector).as_slice(),
            )?;
            stored += 1;
        }
        if stored > 0 {
            txn.open_table(VECTOR_VERSIONS)?.insert(version, ())?;
        }
        Ok(stored)
    })
}

/// One vector.
pub(crate) fn get_vector(
    db: &Database,
    version: &str,
    entity: Entity,
    id: &str,
) -> Result<Option<Vec<f32>>> {
    read(db, |txn| {
        let vectors = txn.open_table(VECTORS)?;
        vectors
            .get((version, entity_tag(entity), id))?
            .map(|v| vector_from_bytes(id, v.value()))
            .transpose()
    })
}

/// A page of one version's vectors of one entity.
pub(crate) fn scan_vectors(
    db: &Database,
    version: &str,
    entity: Entity,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, Vec<f32>)>> {
    read(db, |txn| {
        let vectors = txn.open_table(VECTORS)?;
        let tag = entity_tag(entity);
        let start = match after {
            Some(after) => Bound::Excluded((version, tag, after)),
            None => Bound::Included((version, tag, "")),
        };
        // Ids of one (version, entity) all sort before (version, tag + 1, "").
        let end = match tag.checked_add(1) {
            Some(next) => Bound::Excluded((version, next, "")),
            None => Bound::Unbounded,
        };
        let mut out = Vec::with_capacity(limit.min(4_096));
        for entry in vectors.range::<(&str, u8, &str)>((start, end))?.take(limit) {
            let (k, v) = entry?;
            let (key_version, key_tag, id) = k.value();
            if key_version != version || key_tag != tag {
                break;
            }
            out.push((id.to_owned(), vector_from_bytes(id, v.value())?));
        }
        Ok(out)
    })
}

/// Removes every vector of `version` (all entities) inside the caller's transaction.
pub(crate) fn remove_version_vectors(txn: &redb::WriteTransaction, version: &str) -> Result<()> {
    let mut vectors = txn.open_table(VECTORS)?;
    // Entity tags are small, so (version, u8::MAX, "") bounds every vector of the version.
    let range = (
        Bound::Included((version, 0u8, "")),
        Bound::Excluded((version, u8::MAX, "")),
    );
    vectors.retain_in::<(&str, u8, &str), _>(range, |_, _| false)?;
    txn.open_table(VECTOR_VERSIONS)?.remove(version)?;
    Ok(())
}
