//! Model-version metadata, context models and the active-version pointer.

use doppel_types::{ContextModel, VersionInfo};
use redb::{Database, ReadableTable};

use super::{read, vectors::remove_version_vectors, write};
use crate::codec::{decode, encode};
use crate::error::{Error, Result};
use crate::keys::{ACTIVE_VERSION, CONTEXT_MODELS, SETTINGS, VERSIONS};

/// Inserts or replaces a version's metadata.
pub(crate) fn put_version(db: &Database, info: VersionInfo) -> Result<()> {
    write(db, |txn| {
        let bytes = encode("version", &info)?;
        txn.open_table(VERSIONS)?
            .insert(info.version.as_str(), bytes.as_slice())?;
        Ok(())
    })
}

/// A version's metadata.
pub(crate) fn get_version(db: &Database, version: &str) -> Result<Option<VersionInfo>> {
    read(db, |txn| {
        txn.open_table(VERSIONS)?
            .get(version)?
            .map(|v| decode("version", version, v.value()))
            .transpose()
    })
}

/// All versions in name order.
pub(crate) fn list_versions(db: &Database) -> Result<Vec<VersionInfo>> {
    read(db, |txn| {
        let table = txn.open_table(VERSIONS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            out.push(decode("version", k.value(), v.value())?);
        }
        Ok(out)
    })
}

/// Metadata and vectors of `version`, and the active pointer if it points there.
pub(crate) fn delete_version(db: &Database, version: &str) -> Result<()> {
    write(db, |txn| {
        txn.open_table(VERSIONS)?.remove(version)?;
        txn.open_table(CONTEXT_MODELS)?.remove(version)?;
        remove_version_vectors(txn, version)?;
        let mut settings = txn.open_table(SETTINGS)?;
        let is_active = settings
            .get(ACTIVE_VERSION)?
            .is_some_and(|v| v.value() == version);
        if is_active {
            settings.remove(ACTIVE_VERSION)?;
        }
        Ok(())
    })
}

/// Points the active pointer at an existing version.
pub(crate) fn set_active_version(db: &Database, version: &str) -> Result<()> {
    write(db, |txn| {
        if txn.open_table(VERSIONS)?.get(version)?.is_none() {
            return Err(Error::NotFound {
                what: "version",
                id: version.to_owned(),
            });
        }
        txn.open_table(SETTINGS)?.insert(ACTIVE_VERSION, version)?;
        Ok(())
    })
}

/// The active version.
pub(crate) fn active_version(db: &Database) -> Result<Option<String>> {
    read(db, |txn| {
        Ok(txn
            .open_table(SETTINGS)?
            .get(ACTIVE_VERSION)?
            .map(|v| v.value().to_owned()))
    })
}

/// Stores a version's context model.
pub(crate) fn put_context_model(db: &Database, version: &str, model: &ContextModel) -> Result<()> {
    let bytes = encode("context model", model)?;
    write(db, |txn| {
        txn.open_table(CONTEXT_MODELS)?
            .insert(version, bytes.as_slice())?;
        Ok(())
    })
}

/// A version's context model.
pub(crate) fn context_model(db: &Database, version: &str) -> Result<Option<ContextModel>> {
    read(db, |txn| {
        txn.open_table(CONTEXT_MODELS)?
            .get(version)?
            .map(|v| decode("context model", version, v.value()))
            .transpose()
    })
}
