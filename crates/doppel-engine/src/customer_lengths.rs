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
//! Computing a shard's moments (a scan of its vectors on the low-priority heavy pool) holds
//! no lock a writer takes: the shard's vectors are pinned under the shard's lock (one
//! shard at a time, a moment each), the lengths copied without any lock, the scan runs on
//! the copies, and the changes made since the pin are kept aside and applied to the
//! result — a slot's first removal with the length the scan read for it (the copy may
//! postdate the pin). Fold-in never waits for a scan starved by load.
//!
//! Lengths live in fixed chunks of atomics, so that a scan reads them without holding a
//! lock while fold-in sets them: the chunk list is copied (one `Arc` per 4096 slots) at
//! the start of a scan, and only growing it takes a write lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use doppel_index::{LiveRows, PointId, VectorIndex, dot};
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
    /// Per logical shard: its moments, held while the shard's vectors change (see
    /// [`CustomerLengths::shard`]) and while a computation pins them.
    moments: Vec<Mutex<ShardMoments>>,
    /// Names computations under way.
    next_computation: AtomicU64,
}

/// What is known of a logical shard's moments.
#[derive(Default)]
struct ShardMoments {
    /// Computed and kept in step.
    ready: Option<Arc<Moments>>,
    /// Computations under way from pinned copies (by number): the changes made since, to
    /// apply to their result. Rarely more than one (queries racing on first use).
    computing: Vec<(u64, Vec<Change>)>,
}

/// A vector that left (`added` false) or joined a shard while its moments were computed.
struct Change {
    slot: PointId,
    added: bool,
    unit: Vec<f32>,
    length: f32,
}

/// The euclidean length of `v`.
pub(crate) fn euclidean_length(v: &[f32]) -> f32 {
    dot(v, v).sqrt()
}

/// A logical shard whose vectors are about to change: hold it across the change and
/// report what moved.
pub(crate) struct ShardChange<'a> {
    moments: MutexGuard<'a, ShardMoments>,
}

impl ShardChange<'_> {
    /// The vector at `slot` left the shard (unit vector and length).
    pub(crate) fn removed(&mut self, slot: PointId, unit: &[f32], length: f32) {
        self.moved(slot, false, unit, length);
    }

    /// A vector joined the shard at `slot` (unit vector and length).
    pub(crate) fn added(&mut self, slot: PointId, unit: &[f32], length: f32) {
        self.moved(slot, true, unit, length);
    }

    fn moved(&mut self, slot: PointId, added: bool, unit: &[f32], length: f32) {
        let state = &mut *self.moments;
        if let Some(m) = state.ready.as_mut() {
            let m = Arc::make_mut(m);
            if added {
                m.add(unit, length);
            } else {
                m.remove(unit, length);
            }
        }
        for (_, changes) in &mut state.computing {
            changes.push(Change {
                slot,
                added,
                unit: unit.to_vec(),
                length,
            });
        }
    }

    /// The whole shard was replaced: its moments are computed again when next needed (a
    /// computation under way is not kept).
    pub(crate) fn replaced(&mut self) {
        *self.moments = ShardMoments::default();
    }
}

impl CustomerLengths {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            chunks: RwLock::new(Vec::new()),
            moments: (0..shards).map(|_| Mutex::default()).collect(),
            next_computation: AtomicU64::new(0),
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
    /// changing any of its vectors one by one and report the change through it. Held only
    /// briefly by anything else. Lock order: this, then the shard's index, then the
    /// version's `members`.
    pub(crate) fn shard(&self, shard: usize) -> ShardChange<'_> {
        ShardChange {
            moments: self.moments[shard].lock(),
        }
    }

    /// The moments of each of `wanted` (logical shards of `indexes`, ascending), in that
    /// order: computed ones as they are, the others computed in parallel from the indexes'
    /// unit vectors and the lengths, pinned at one moment. Waits for no other caller: two
    /// racing on a shard's first use both compute it.
    pub(crate) fn moments(
        &self,
        indexes: &[VectorIndex],
        wanted: &[usize],
        dim: usize,
    ) -> Vec<Arc<Moments>> {
        self.moments_pinned_then(indexes, wanted, dim, &|| {})
    }

    /// [`Self::moments`], running `between` after the pins and before the lengths are
    /// copied (tests change vectors there).
    fn moments_pinned_then(
        &self,
        indexes: &[VectorIndex],
        wanted: &[usize],
        dim: usize,
        between: &dyn Fn(),
    ) -> Vec<Arc<Moments>> {
        if let Some(ready) = self.ready(wanted) {
            return ready;
        }
        let me = self.next_computation.fetch_add(1, Ordering::Relaxed);
        // Pin each missing shard's vectors under its lock, one shard at a time.
        let mut known: Vec<Option<Arc<Moments>>> = Vec::with_capacity(wanted.len());
        let mut pinned: Vec<(usize, LiveRows)> = Vec::new();
        for &shard in wanted {
            let mut state = self.moments[shard].lock();
            known.push(state.ready.clone());
            if state.ready.is_none() {
                state.computing.push((me, Vec::new()));
                pinned.push((shard, indexes[shard].live_rows()));
            }
        }
        between();
        // Copied after the pins and without a lock: a length set since a pin is corrected
        // for when the changes are applied.
        let lengths = if pinned.is_empty() {
            Vec::new()
        } else {
            self.pinned_lengths()
        };
        let length_of = |slot: PointId| {
            lengths
                .get(slot as usize)
                .map_or(UNKNOWN_LENGTH, |&b| f32::from_bits(b))
        };
        let computed: Vec<(usize, Moments)> = pinned
            .into_par_iter()
            .map(|(shard, rows)| {
                let mut m = Moments::new(dim);
                rows.for_each(&mut |slot, v| m.add(v, length_of(slot)));
                (shard, m)
            })
            .collect();
        let mut computed = computed.into_iter();
        wanted
            .iter()
            .zip(known)
            .map(|(&shard, known)| {
                if let Some(m) = known {
                    return m;
                }
                let (_, mut m) = computed.next().expect("one computed per missing shard");
                let mut state = self.moments[shard].lock();
                let Some(at) = state.computing.iter().position(|(id, _)| *id == me) else {
                    // The shard was replaced meanwhile: this answer is of the old one, and
                    // the next query computes the new one.
                    return Arc::new(m);
                };
                let (_, changes) = state.computing.swap_remove(at);
                let mut seen = std::collections::HashSet::new();
                for c in &changes {
                    let first = seen.insert(c.slot);
                    if c.added {
                        m.add(&c.unit, c.length);
                    } else if first {
                        // The scan read this slot's pinned vector with the copied length.
                        m.remove(&c.unit, length_of(c.slot));
                    } else {
                        m.remove(&c.unit, c.length);
                    }
                }
                Arc::clone(state.ready.get_or_insert_with(|| Arc::new(m)))
            })
            .collect()
    }

    /// The moments of `wanted` when every one is computed.
    fn ready(&self, wanted: &[usize]) -> Option<Vec<Arc<Moments>>> {
        wanted
            .iter()
            .map(|&s| self.moments[s].lock().ready.clone())
            .collect()
    }

    /// A copy of every length (as bits), indexed by slot.
    fn pinned_lengths(&self) -> Vec<u32> {
        let chunks = self.chunks.read();
        let mut out = Vec::with_capacity(chunks.len() * CHUNK);
        for c in chunks.iter() {
            out.extend(c.iter().map(|a| a.load(Ordering::Relaxed)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use doppel_index::{BuildParams, Metric, NoProgress};

    use super::*;

    const DIM: usize = 8;

    fn vector(seed: u32) -> Vec<f32> {
        (0..DIM as u32)
            .map(|i| ((seed * 31 + i * 7) % 17) as f32 - 8.0 + 0.5)
            .collect()
    }

    /// Sets `slot` of `shard` to `v` as fold-in does: under the shard's lock.
    fn set(lengths: &CustomerLengths, index: &VectorIndex, slot: PointId, v: &[f32]) {
        let mut change = lengths.shard(0);
        let old = index.vector(slot);
        index.upsert(slot, v).unwrap();
        if let Some(unit) = old {
            change.removed(slot, &unit, lengths.read().get(slot));
        }
        let length = euclidean_length(v);
        lengths.set(slot, length);
        change.added(slot, &index.vector(slot).unwrap(), length);
    }

    /// One shard of `n` vectors, indexed, with their lengths.
    fn one_shard(n: u32) -> (Vec<VectorIndex>, CustomerLengths) {
        let ids: Vec<PointId> = (0..n).collect();
        let rows: Vec<f32> = ids.iter().flat_map(|&i| vector(i)).collect();
        let params = BuildParams {
            ef_construction: 20,
            ..BuildParams::new(DIM, Metric::Cosine)
        };
        let indexes = vec![VectorIndex::build(params, &ids, &rows, &NoProgress).unwrap()];
        let lengths = CustomerLengths::new(1);
        lengths.set_rows(&ids, &rows, DIM);
        (indexes, lengths)
    }

    fn assert_close(a: &Moments, b: &Moments) {
        assert_eq!(a.n, b.n);
        for (x, y) in a.sum.iter().zip(&b.sum).chain(a.gram.iter().zip(&b.gram)) {
            assert!((x - y).abs() <= 1e-6 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn a_length_set_between_the_pin_and_the_copy_is_corrected_for() {
        let (indexes, lengths) = one_shard(200);
        let scaled: Vec<f32> = vector(7).iter().map(|x| x * 3.0).collect();
        lengths.moments_pinned_then(&indexes, &[0], DIM, &|| {
            set(&lengths, &indexes[0], 7, &scaled);
            set(&lengths, &indexes[0], 9, &vector(900));
        });
        let kept = lengths.moments(&indexes, &[0], DIM).remove(0);
        let fresh = CustomerLengths::new(1);
        for slot in 0..200 {
            fresh.set(slot, lengths.read().get(slot));
        }
        assert_close(&kept, &fresh.moments(&indexes, &[0], DIM).remove(0));
    }

    #[test]
    fn moments_computed_while_vectors_change_match_a_fresh_count() {
        const N: u32 = 5_000;
        let (indexes, lengths) = one_shard(N);
        for round in 0..3u32 {
            lengths.shard(0).replaced();
            let started = std::sync::Barrier::new(2);
            std::thread::scope(|s| {
                s.spawn(|| {
                    started.wait();
                    for i in 0..5_000u32 {
                        let slot = (i * 7 + round) % (N + 500);
                        set(&lengths, &indexes[0], slot, &vector(i + round * 100_000));
                    }
                });
                started.wait();
                lengths.moments(&indexes, &[0], DIM);
            });
            let kept = lengths.moments(&indexes, &[0], DIM).remove(0);
            let fresh = CustomerLengths::new(1);
            for slot in 0..N + 500 {
                fresh.set(slot, lengths.read().get(slot));
            }
            let counted = fresh.moments(&indexes, &[0], DIM).remove(0);
            assert_close(&kept, &counted);
        }
    }
}
