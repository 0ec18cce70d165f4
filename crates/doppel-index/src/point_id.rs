//! [`PointId`], the external id of an indexed point. It sits at the bottom of the crate's
//! module graph: the bitset and the API types both build on it, and it imports nothing.

/// External id of a point. Ids are dense-ish: bitsets are sized by the largest id + 1.
pub type PointId = u32;
