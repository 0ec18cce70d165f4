//! Each customer's vector length in a version, and the per-shard moments of the raw
//! vectors the classifier fits against.
//!
//! The index keeps unit vectors (it searches by cosine), so the length of each vector it
//! was given is kept here, by slot: 4 bytes per customer. Lengths are set wherever raw
//! vectors come in (build, snapshot load, shard install, fold-in) and saved with snapshots.
//! The moments of a logical shard are computed when a classifier query first needs them,
//! then kept in step with every vector set or removed in that shard (a subtraction and an
//! addition, O(d²)), and computed again only when the whole shard is replaced.
//!
//! Lengths live in fixed chunks of atomics, so that a scan reads them without holding a
//! lock while fold-in sets them: the chunk list is copied (one `Arc` per 4096 slots) at
//! the start of a scan, and only growing it takes a write lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use doppel_index::{PointId, VectorIndex, dot};
use parking_lot::{Mutex, MutexGuard, RwLock};
use rayon::prelude::*;

use crate::classifier::Moments;

/// The length of a vector that was never given one (a unit vector's).
const UNKNOWN_LENGTH: f32 = 1.0;
/// Slots per chunk.
const CHUNK: usize = 4096;

type Chunk = Arc<[AtomicU32]>;

fn new_chunk() -> Chunk {
    (0..CHUNK)
        .map(|_| AtomicU32::new(UNKNOWN_LENGTH.to_bits()))
        .collect()
}

/// The lengths as of a moment (later changes may or may not show).
#[derive(Clone, Default)]
pub(crate) struct LengthTable {
    chunks: Vec<Chunk>,
}

impl LengthTable {
    /// The length of `slot`'s vector.
    pub(crate) fn get(&self, slot: PointId) -> f32 {
        let at = slot as usize;
        self.chunks.get(at / CHUNK).map_or(UNKNOWN_LENGTH, |c| {
            f32::from_bits(c[at % CHUNK].load(Ordering::Relaxed))
        })
    }
}

/// Customer vector lengths by slot, and per-shard moments.
pub(crate) struct CustomerLengths {
    chunks: RwLock<Vec<Chunk>>,
    /// Per logical shard: its moments once computed. Held while the shard's vectors change
    /// (see [`CustomerLengths::shard`]) and while they are computed, so the two never mix.
    moments: Vec<Mutex<Option<Arc<Moments>>>>,
}

/// The euclidean length of `v`.
pub(crate) fn euclidean_length(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

/// A logical shard whose vectors are about to change: hold it across the change and
/// report what moved.
pub(crate) struct ShardChange<'a> {
    moments: MutexGuard<'a, Option<Arc<Moments>>>,
}

impl ShardChange<'_> {
    /// A vector left the shard (unit vector and length).
    pub(crate) fn removed(&mut self, unit: &[f32], length: f32) {
        if let Some(m) = self.moments.as_mut() {
            Arc::make_mut(m).remove(unit, length);
        }
    }

    /// A vector joined the shard (unit vector and length).
    pub(crate) fn added(&mut self, unit: &[f32], length: f32) {
        if let Some(m) = self.moments.as_mut() {
            Arc::make_mut(m).add(unit, length);
        }
    }

    /// The whole shard was replaced: its moments are computed again when next needed.
    pub(crate) fn replaced(&mut self) {
        *self.moments = None;
    }
}

impl CustomerLengths {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            chunks: RwLock::new(Vec::new()),
            moments: (0..shards).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The chunk holding `slot`, created (with the ones before it) when missing.
    fn chunk_of(&self, slot: PointId) -> Chunk {
        let at = slot as usize / CHUNK;
        if let Some(c) = self.chunks.read().get(at) {
            return Arc::clone(c);
        }
        let mut chunks = self.chunks.write();
        while chunks.len() <= at {
            chunks.push(new_chunk());
        }
        Arc::clone(&chunks[at])
    }

    /// Sets the length of `slot`'s vector.
    pub(crate) fn set(&self, slot: PointId, length: f32) {
        self.chunk_of(slot)[slot as usize % CHUNK].store(length.to_bits(), Ordering::Relaxed);
    }

    /// Sets the lengths of row-major `vectors` (`dim` values each) for `slots`.
    pub(crate) fn set_rows(&self, slots: &[PointId], vectors: &[f32], dim: usize) {
        for (slot, v) in slots.iter().zip(vectors.chunks_exact(dim.max(1))) {
            self.set(*slot, euclidean_length(v));
        }
    }

    /// Every length, as of now.
    pub(crate) fn read(&self) -> LengthTable {
        LengthTable {
            chunks: self.chunks.read().clone(),
        }
    }

    /// Logical shard `shard`, held until the returned change is dropped: take it before
    /// changing any of its vectors one by one and report the change through it. Never
    /// hold it across a call that may wait on rayon (`replace_with`, `merge_delta`):
    /// [`CustomerLengths::moments`] holds it on rayon's workers. Lock order: this, then the
    /// version's `members`.
    pub(crate) fn shard(&self, shard: usize) -> ShardChange<'_> {
        ShardChange {
            moments: self.moments[shard].lock(),
        }
    }

    /// The moments of each of `wanted` (logical shards of `indexes`), in that order:
    /// cached ones as they are, the others computed in parallel from the indexes' unit
    /// vectors and the lengths.
    pub(crate) fn moments(
        &self,
        indexes: &[VectorIndex],
        wanted: &[usize],
        dim: usize,
    ) -> Vec<Arc<Moments>> {
        wanted
            .par_iter()
            .map(|&shard| {
                let mut cached = self.moments[shard].lock();
                if let Some(m) = cached.as_ref() {
                    return Arc::clone(m);
                }
                let lengths = self.read();
                let mut m = Moments::new(dim);
                indexes[shard].for_each_live(&mut |slot, v| m.add(v, lengths.get(slot)));
                let m = Arc::new(m);
                *cached = Some(Arc::clone(&m));
                m
            })
            .collect()
    }
}
