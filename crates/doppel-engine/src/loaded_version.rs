//! One model version in memory: a customer index per logical shard and one item index,
//! all keyed by the engine's id slots.

use std::sync::Arc;
use std::time::Instant;

use doppel_index::{Bitset, BuildParams, Metric, PointId, Progress, VectorIndex};
use doppel_types::shard::shard_of;
use doppel_types::{OfferPrior, RecencyShift, VectorLayout, VersionInfo};
use parking_lot::RwLock;

use crate::classifier::{CLASSIFIER_MAX_DIM, Moments};
use crate::config::EngineConfig;
use crate::context_ranking::ContextRanking;
use crate::customer_lengths::{CustomerLengths, euclidean_length};
use crate::error::Result;

/// Vectors of one entity, ready to build: slots and row-major vectors.
#[derive(Default)]
pub(crate) struct Rows {
    pub(crate) slots: Vec<PointId>,
    pub(crate) vectors: Vec<f32>,
}

/// Passes a build's progress on to a version-wide bar (each index build announces its own
/// total, which must not reset the version's).
struct VersionWide<'a>(&'a dyn Progress);

impl Progress for VersionWide<'_> {
    fn set_total(&self, _total: u64) {}
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
}

/// A built version.
pub(crate) struct LoadedVersion {
    pub(crate) info: VersionInfo,
    pub(crate) dim: usize,
    pub(crate) shard_count: u32,
    /// Customer indexes, one per logical shard.
    pub(crate) shards: Vec<VectorIndex>,
    /// The item index.
    pub(crate) items: VectorIndex,
    /// Slots of the customers with a vector in this version.
    pub(crate) members: RwLock<Bitset>,
    /// HNSW parameters the indexes were built with.
    pub(crate) config: EngineConfig,
    /// Seconds the build (or the snapshot load) took.
    pub(crate) build_seconds: f64,
    /// Loaded from a snapshot file rather than built.
    pub(crate) from_snapshot: bool,
    /// What the version learned about context (none: offers ignore context).
    pub(crate) context: RwLock<Option<Arc<ContextRanking>>>,
    /// The recent-popularity prior of a trained version's offers (none: offers rank by the
    /// customer's vector alone).
    pub(crate) offer_prior: Option<OfferPrior>,
    /// The recency shift of a trained version's offers (none: the query is the customer's
    /// vector).
    pub(crate) recency: Option<(RecencyShift, VectorLayout)>,
    /// Each customer's vector length (the shards keep unit vectors) and the shards'
    /// moments, for classifier audiences.
    pub(crate) lengths: CustomerLengths,
}

/// The `VersionInfo.params` key naming the vectors customer scans read: `int8` or `f32`
/// (the default when absent).
pub const SCAN_VECTORS_PARAM: &str = "scan_vectors";

/// The offer prior of a version laid out with one (see [`doppel_types::offer_prior`]), from
/// its item vectors.
pub(crate) fn offer_prior_of<'a>(
    info: &VersionInfo,
    items: impl Iterator<Item = &'a [f32]>,
) -> Option<OfferPrior> {
    OfferPrior::new(VectorLayout::of(info)?, items)
}

/// The recency shift of a version trained with one, and its layout (which part of a
/// vector is latent factors).
pub(crate) fn recency_of(info: &VersionInfo) -> Option<(RecencyShift, VectorLayout)> {
    Some((RecencyShift::of(info)?, VectorLayout::of(info)?))
}

/// True when `info` asks for int8 scans.
pub(crate) fn int8_scan_of(info: &VersionInfo) -> bool {
    info.params
        .get(SCAN_VECTORS_PARAM)
        .is_some_and(|v| v == "int8")
}

impl LoadedVersion {
    /// Makes the customer indexes' scans read int8 codes when the version asks for it.
    pub(crate) fn apply_scan_vectors(&self) {
        if int8_scan_of(&self.info) {
            for shard in &self.shards {
                shard.set_int8_scan(true);
            }
        }
    }

    /// True when customer scans of this version read int8 codes.
    pub(crate) fn int8_scan(&self) -> bool {
        int8_scan_of(&self.info)
    }

    /// Builds every index of a version. `customers` holds one [`Rows`] per shard.
    pub(crate) fn build(
        info: VersionInfo,
        config: &EngineConfig,
        customers: Vec<Rows>,
        items: Rows,
        progress: &dyn Progress,
    ) -> Result<Self> {
        let started = Instant::now();
        let dim = info.dim as usize;
        let params = BuildParams {
            dim,
            metric: Metric::Cosine,
            m: config.m,
            ef_construction: config.ef_construction,
            threads: config.build_threads,
        };
        let total: usize =
            customers.iter().map(|r| r.slots.len()).sum::<usize>() + items.slots.len();
        progress.set_total(total as u64);
        let progress = &VersionWide(progress);
        let build = |rows: &Rows| -> Result<VectorIndex> {
            if rows.slots.is_empty() {
                return Ok(VectorIndex::new(params.clone())?);
            }
            Ok(VectorIndex::build(
                params.clone(),
                &rows.slots,
                &rows.vectors,
                progress,
            )?)
        };
        let members = Bitset::from_ids(customers.iter().flat_map(|r| r.slots.iter().copied()), 0);
        // Shards are built one after another, each using every core.
        let shards = customers.iter().map(build).collect::<Result<Vec<_>>>()?;
        let offer_prior = offer_prior_of(&info, items.vectors.chunks_exact(dim.max(1)));
        let recency = recency_of(&info);
        let items = build(&items)?;
        let lengths = CustomerLengths::new(shards.len());
        for rows in &customers {
            lengths.set_rows(&rows.slots, &rows.vectors, dim);
        }
        let mut version = Self {
            info,
            dim,
            shard_count: config.shard_count,
            shards,
            items,
            members: RwLock::new(members),
            config: config.clone(),
            build_seconds: started.elapsed().as_secs_f64(),
            from_snapshot: false,
            context: RwLock::default(),
            offer_prior,
            recency,
            lengths,
        };
        version.apply_scan_vectors();
        // The classifier's moments now, while the build has the cores, rather than on the
        // first classifier query (about 0.5 s at 1M × 64 on 2 cores). Versions loaded from
        // a snapshot or shards installed later compute theirs on first use.
        if dim <= CLASSIFIER_MAX_DIM {
            let all: Vec<usize> = (0..version.shards.len()).collect();
            version.population_moments(&all);
        }
        version.build_seconds = started.elapsed().as_secs_f64();
        Ok(version)
    }

    /// The customer index of logical shard `shard`.
    pub(crate) fn shard(&self, shard: u32) -> Result<&VectorIndex> {
        self.shards.get(shard as usize).ok_or_else(|| {
            crate::error::Error::invalid("shard", format!("must be below {}", self.shard_count))
        })
    }

    /// The index holding customer `id`.
    pub(crate) fn shard_for(&self, id: &str) -> &VectorIndex {
        &self.shards[shard_of(id, self.shard_count) as usize]
    }

    /// Removes customer `id` at `slot` (tombstoned in its shard).
    pub(crate) fn remove_customer(&self, id: &str, slot: PointId) {
        let shard = shard_of(id, self.shard_count) as usize;
        let mut change = self.lengths.shard(shard);
        if let Some(unit) = self.shards[shard].vector(slot) {
            change.removed(slot, &unit, self.lengths.read().get(slot));
        }
        self.shards[shard].delete(slot);
        self.members.write().remove(slot);
    }

    /// Sets (or replaces) the vector of customer `id` at `slot`, keeping its length and
    /// its shard's moments in step.
    pub(crate) fn set_customer_vector(
        &self,
        id: &str,
        slot: PointId,
        vector: &[f32],
    ) -> Result<()> {
        let shard = shard_of(id, self.shard_count) as usize;
        let index = &self.shards[shard];
        let mut change = self.lengths.shard(shard);
        let old = index.vector(slot);
        index.upsert(slot, vector)?;
        if let Some(unit) = old {
            change.removed(slot, &unit, self.lengths.read().get(slot));
        }
        let length = euclidean_length(vector);
        self.lengths.set(slot, length);
        if let Some(unit) = index.vector(slot) {
            change.added(slot, &unit, length);
        }
        self.members.write().insert(slot);
        Ok(())
    }

    /// Computes the classifier's moments of `shard` (all shards: `None`) on rayon's pool in
    /// the background, so that the first classifier query after a snapshot load or a shard
    /// install finds them ready (or waits only for the rest). Nothing for versions over
    /// [`CLASSIFIER_MAX_DIM`] dims.
    ///
    /// One shard after another, in one job: in parallel, the job held every thread of the
    /// pool, and the first query after a 10M restart (any strategy: queries run on the same
    /// pool) waited 4–5.5 s for all 16 shards. The pool's other threads now stay free.
    pub(crate) fn warm_moments(self: &Arc<Self>, shard: Option<usize>) {
        if self.dim > CLASSIFIER_MAX_DIM {
            return;
        }
        let shards: Vec<usize> = match shard {
            Some(s) => vec![s],
            None => (0..self.shards.len()).collect(),
        };
        let version = Arc::clone(self);
        rayon::spawn(move || {
            for shard in shards {
                version
                    .lengths
                    .moments(&version.shards, &[shard], version.dim);
            }
        });
    }

    /// The moments of every customer vector on `shards` (logical shards, added in the
    /// order given: callers pass them ascending).
    pub(crate) fn population_moments(&self, shards: &[usize]) -> Moments {
        let mut total = Moments::new(self.dim);
        for m in self.lengths.moments(&self.shards, shards, self.dim) {
            total.merge(&m);
        }
        total
    }

    /// The query offers search the item index with for a customer's stored vector: the
    /// vector itself, moved towards the items of `newest` (the customer's purchases,
    /// newest first) when the version has a recency shift, with the prior's coordinate set
    /// when it has a prior.
    pub(crate) fn offer_query(
        &self,
        mut customer: Vec<f32>,
        newest: impl Iterator<Item = PointId>,
    ) -> Vec<f32> {
        if let Some((shift, layout)) = &self.recency {
            // The newest purchases the version knows; a long history of items it does not
            // know (a new catalogue) is not walked to the end.
            let recent: Vec<Vec<f32>> = newest
                .take(4 * doppel_types::offer_recency::RECENT_ITEMS)
                .filter_map(|slot| self.items.vector(slot))
                .take(doppel_types::offer_recency::RECENT_ITEMS)
                .collect();
            let factors = layout.factors.min(customer.len());
            shift.apply(&mut customer[..factors], recent.iter().map(Vec::as_slice));
        }
        match &self.offer_prior {
            Some(prior) => prior.query(&customer),
            None => customer,
        }
    }

    /// The vector of customer `id` at `slot`, if this version has one.
    pub(crate) fn customer_vector(&self, id: &str, slot: PointId) -> Option<Vec<f32>> {
        self.shard_for(id).vector(slot)
    }

    /// The length of the vector customer `slot` was given (the index keeps it unit).
    pub(crate) fn customer_length(&self, slot: PointId) -> f32 {
        self.lengths.read().get(slot)
    }

    /// Live customers over all shards.
    pub(crate) fn customer_count(&self) -> usize {
        self.shards.iter().map(VectorIndex::len).sum()
    }

    /// Approximate heap bytes of every index.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.shards
            .iter()
            .chain(std::iter::once(&self.items))
            .map(|i| i.stats().memory_bytes)
            .sum()
    }
}
