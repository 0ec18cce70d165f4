//! Per-thread search scratch: an epoch-tagged visited set and the two heaps, reused across queries.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A scored internal node; ordered by score (greater = closer).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scored {
    pub(crate) score: f32,
    pub(crate) idx: u32,
}

impl PartialEq for Scored {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scored {
    fn cmp(&self, o: &Self) -> Ordering {
        self.score.total_cmp(&o.score).then(o.idx.cmp(&self.idx))
    }
}

/// Reversed order: a `BinaryHeap<Worst>` keeps the worst result on top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Worst(pub(crate) Scored);

impl PartialOrd for Worst {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Worst {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.cmp(&self.0)
    }
}

/// Visited marks as epochs: a node is visited when its tag equals the current epoch, so
/// clearing is one increment (a full wipe every 65,535 queries).
#[derive(Default)]
pub(crate) struct Visited {
    tags: Vec<u16>,
    epoch: u16,
}

impl Visited {
    /// Starts a new query over `n` nodes.
    pub(crate) fn reset(&mut self, n: usize) {
        if self.tags.len() < n {
            self.tags.resize(n, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.tags.fill(0);
            self.epoch = 1;
        }
    }

    /// Marks `i`; returns true if it was not yet visited in this query.
    #[inline(always)]
    pub(crate) fn insert(&mut self, i: u32) -> bool {
        let t = &mut self.tags[i as usize];
        if *t == self.epoch {
            false
        } else {
            *t = self.epoch;
            true
        }
    }
}

/// Everything a graph search needs, kept per thread.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(crate) visited: Visited,
    pub(crate) candidates: BinaryHeap<Scored>,
    pub(crate) results: BinaryHeap<Worst>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if re-entered).
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        Err(_) => f(&mut Scratch::default()),
    })
}
