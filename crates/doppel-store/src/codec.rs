//! Value encodings: records as postcard, vectors as raw little-endian `f32` bytes (compact,
//! and readable by anything without a schema).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Encodes a record with postcard.
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| Error::Storage(format!("encoding {what}: {e}")))
}

/// Decodes a record stored under `key`; undecodable bytes are [`Error::Corrupt`].
pub fn decode<T: DeserializeOwned>(what: &'static str, key: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        what,
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// [`decode`] into a record that borrows from `bytes`.
pub fn decode_borrowed<'a, T: Deserialize<'a>>(
    what: &'static str,
    key: &str,
    bytes: &'a [u8],
) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        what,
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

/// A vector as little-endian `f32` bytes.
pub fn vector_to_bytes(vector: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(vector.len() * 4);
    for x in vector {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Little-endian `f32` bytes back to a vector; a length that is not a multiple of 4 is
/// [`Error::Corrupt`].
pub fn vector_from_bytes(key: &str, bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(Error::Corrupt {
            what: "vector",
            key: key.to_owned(),
            reason: format!("{} bytes is not a whole number of f32", bytes.len()),
        });
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_and_bad_lengths_are_corrupt() {
        let v = vec![1.0, -0.5, f32::MIN_POSITIVE];
        assert_eq!(vector_from_bytes("k", &vector_to_bytes(&v)).ok(), Some(v));
        assert!(matches!(
            vector_from_bytes("k", &[0, 0, 0]),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            decode::<doppel_types::Customer>("customer", "c1", &[0xff; 3]),
            Err(Error::Corrupt { .. })
        ));
    }
}
