//! A growable bitset over point ids, used for allowed sets and tombstones.

use crate::point_id::PointId;

/// A set of point ids as bits. Inserting past the end grows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
    ones: usize,
}

impl Bitset {
    /// An empty set able to hold ids `0..len_bits` without growing.
    pub fn new(len_bits: usize) -> Self {
        Self {
            words: vec![0; len_bits.div_ceil(64)],
            len: len_bits,
            ones: 0,
        }
    }

    /// A set holding `ids`, sized for at least `len` bits.
    pub fn from_ids(ids: impl IntoIterator<Item = PointId>, len: usize) -> Self {
        let mut set = Self::new(len);
        for id in ids {
            set.insert(id);
        }
        set
    }

    /// Number of bits the set can hold without growing.
    pub fn len_bits(&self) -> usize {
        self.len
    }

    /// Adds `id`; returns true if it was not present.
    pub fn insert(&mut self, id: PointId) -> bool {
        let i = id as usize;
        if i >= self.len {
            self.len = i + 1;
            self.words.resize(self.len.div_ceil(64), 0);
        }
        let (w, b) = (i / 64, i % 64);
        let fresh = self.words[w] & (1 << b) == 0;
        self.words[w] |= 1 << b;
        self.ones += usize::from(fresh);
        fresh
    }

    /// Removes `id`; returns true if it was present.
    pub fn remove(&mut self, id: PointId) -> bool {
        let i = id as usize;
        if i >= self.len {
            return false;
        }
        let (w, b) = (i / 64, i % 64);
        let was = self.words[w] & (1 << b) != 0;
        self.words[w] &= !(1 << b);
        self.ones -= usize::from(was);
        was
    }

    /// True if `id` is in the set.
    #[inline]
    pub fn contains(&self, id: PointId) -> bool {
        let i = id as usize;
        match self.words.get(i / 64) {
            Some(w) => w & (1 << (i % 64)) != 0,
            None => false,
        }
    }

    /// Number of ids in the set (O(1)).
    pub fn count(&self) -> usize {
        self.ones
    }

    /// True if the set holds no id.
    pub fn is_empty(&self) -> bool {
        self.ones == 0
    }

    /// The ids in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = PointId> + '_ {
        self.words.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros();
                bits &= bits - 1;
                Some((w * 64) as PointId + b)
            })
        })
    }

    /// Keeps only the ids also in `other` (word by word).
    pub fn intersect_with(&mut self, other: &Bitset) {
        let mut ones = 0;
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= other.words.get(i).copied().unwrap_or(0);
            ones += w.count_ones() as usize;
        }
        self.ones = ones;
    }

    /// Removes every id that is in `other` (word by word).
    pub fn subtract(&mut self, other: &Bitset) {
        let mut ones = 0;
        for (i, w) in self.words.iter_mut().enumerate() {
            *w &= !other.words.get(i).copied().unwrap_or(0);
            ones += w.count_ones() as usize;
        }
        self.ones = ones;
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.words.capacity() * 8
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    pub(crate) fn from_words(words: Vec<u64>, len: usize) -> Option<Self> {
        if words.len() != len.div_ceil(64) {
            return None;
        }
        let ones = words.iter().map(|w| w.count_ones() as usize).sum();
        Some(Self { words, len, ones })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersection_keeps_common_ids_and_counts_them() {
        let mut a = Bitset::from_ids([1, 5, 64, 130, 200], 0);
        let b = Bitset::from_ids([5, 130, 131], 0);
        a.intersect_with(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![5, 130]);
        assert_eq!(a.count(), 2);
    }

    #[test]
    fn subtraction_drops_common_ids_and_counts_the_rest() {
        let mut a = Bitset::from_ids([1, 5, 64, 130, 200], 0);
        // Shorter and longer than `a`: missing words remove nothing.
        a.subtract(&Bitset::from_ids([5, 130, 131], 0));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![1, 64, 200]);
        a.subtract(&Bitset::from_ids([200, 9_000], 0));
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![1, 64]);
        assert_eq!(a.count(), 2);
    }

    #[test]
    fn insert_remove_count_iter() {
        let mut s = Bitset::new(10);
        assert!(s.insert(3));
        assert!(!s.insert(3));
        assert!(s.insert(200));
        assert!(s.contains(200) && s.contains(3) && !s.contains(4) && !s.contains(9999));
        assert_eq!(s.count(), 2);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![3, 200]);
        assert!(s.remove(3) && !s.remove(3) && !s.remove(5000));
        assert_eq!(s.count(), 1);
    }
}
