//! API keys and their roles, from a keys file: one key a line, `ID ROLE SHA256HEX`, where
//! SHA256HEX is the hex SHA-256 of the key; `#` starts a comment. Keys never appear in
//! plaintext on disk or in logs: only their digests are kept, and a presented key is
//! hashed and compared with every digest in constant time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do; each role includes the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Queries: offers, audiences, customer segments, GetCustomer, reflection.
    Read,
    /// Read, plus ingest (profiles, items, events) except erasure.
    Write,
    /// Everything: model administration, erasure.
    Admin,
}

impl Role {
    /// The name used in the keys file.
    pub fn name(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Why a keys file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct KeysFileError {
    /// The file.
    pub path: String,
    /// 1-based line (0: the file itself).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// One key: its id (named in logs and audits), role, and SHA-256 digest.
#[derive(Clone)]
struct KeyEntry {
    id: String,
    role: Role,
    digest: [u8; 32],
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The keys of one version of the file.
#[derive(Clone, Debug, Default)]
pub struct KeyRing {
    keys: Vec<KeyEntry>,
}

/// The hex SHA-256 of `key`, as the keys file holds it.
pub fn digest_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl KeyRing {
    /// Parses a keys file's text (`path` only names it in errors).
    pub fn parse(path: &str, text: &str) -> Result<Self, KeysFileError> {
        let mut keys: Vec<KeyEntry> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |reason: &str| KeysFileError {
                path: path.to_owned(),
                line: n + 1,
                reason: reason.to_owned(),
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, role, digest] = fields[..] else {
                return Err(bad("expected `ID ROLE SHA256HEX`"));
            };
            let valid_id = id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !valid_id {
                return Err(bad("ID must be 1..=64 characters of [A-Za-z0-9._-]"));
            }
            let role = Role::parse(role).ok_or_else(|| bad("ROLE must be read, write or admin"))?;
            let digest = parse_digest(&digest.to_ascii_lowercase())
                .ok_or_else(|| bad("SHA256HEX must be 64 hex digits (the key's SHA-256)"))?;
            if keys.iter().any(|k| k.id == id) {
                return Err(bad("duplicate ID"));
            }
            keys.push(KeyEntry {
                id: id.to_owned(),
                role,
                digest,
            });
        }
        Ok(Self { keys })
    }

    /// The id and role of `presented`, if it is one of the keys. Every digest is compared,
    /// in constant time, whatever matches.
    pub fn authenticate(&self, presented: &str) -> Option<(String, Role)> {
        let digest = Sha256::digest(presented.as_bytes());
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.digest.ct_eq(digest.as_slice())) {
                found = Some((key.id.clone(), key.role));
            }
        }
        found
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// No keys at all (every call is refused).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The keys file and the keys last read from it; [`ApiKeys::reload`] re-reads it (on
/// SIGHUP, and when its modification time changes).
#[derive(Debug)]
pub struct ApiKeys {
    path: PathBuf,
    ring: RwLock<(Arc<KeyRing>, Option<SystemTime>)>,
}

impl ApiKeys {
    /// Reads the keys file at `path`.
    pub fn load(path: &Path) -> Result<Arc<Self>, KeysFileError> {
        let (ring, modified) = read(path)?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            ring: RwLock::new((Arc::new(ring), modified)),
        }))
    }

    /// The keys now in force.
    pub fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.ring.read().0)
    }

    /// Re-reads the file; a bad file is logged and the keys in force stay. True when the
    /// keys changed.
    pub fn reload(&self) -> bool {
        match read(&self.path) {
            Ok((ring, modified)) => {
                tracing::info!(keys = ring.len(), path = %self.path.display(), "API keys reloaded");
                *self.ring.write() = (Arc::new(ring), modified);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "API keys file refused; the previous keys stay in force");
                false
            }
        }
    }

    /// Reloads when the file's modification time changed since the last read.
    pub fn reload_if_changed(&self) -> bool {
        let now = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if now.is_some() && now != self.ring.read().1 {
            self.reload()
        } else {
            false
        }
    }
}

fn read(path: &Path) -> Result<(KeyRing, Option<SystemTime>), KeysFileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| KeysFileError {
        path: name.clone(),
        line: 0,
        reason: e.to_string(),
    })?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    Ok((KeyRing::parse(&name, &text)?, modified))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_digest_and_bad_lines_named() {
        let file = format!(
            "# ops keys\nci admin {}\n\nreader read {}  # dashboards\n",
            digest_hex("secret-admin"),
            digest_hex("secret-read").to_uppercase()
        );
        let ring = KeyRing::parse("keys", &file).expect("parse");
        assert_eq!(ring.len(), 2);
        assert_eq!(
            ring.authenticate("secret-admin"),
            Some(("ci".into(), Role::Admin))
        );
        assert_eq!(
            ring.authenticate("secret-read"),
            Some(("reader".into(), Role::Read))
        );
        assert_eq!(ring.authenticate("secret"), None);
        assert_eq!(ring.authenticate(""), None);
        for (bad, line) in [
            ("a admin", 1),
            ("a owner 00", 1),
            ("a admin xyz", 1),
            (
                "\na/b read 0000000000000000000000000000000000000000000000000000000000000000",
                2,
            ),
        ] {
            let e = KeyRing::parse("keys", bad).expect_err(bad);
            assert_eq!(e.line, line, "{bad}: {e}");
        }
        let twice = format!("a read {0}\na write {0}\n", digest_hex("k"));
        assert!(KeyRing::parse("keys", &twice).is_err());
        assert!(Role::Read < Role::Write && Role::Write < Role::Admin);
    }
}
