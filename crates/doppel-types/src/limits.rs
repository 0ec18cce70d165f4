//! Size bounds for every request. Requests beyond them are refused with a status naming
//! the field (`INVALID_ARGUMENT` or `RESOURCE_EXHAUSTED`), never truncated silently.

/// Largest `k` of a recommendation or similar-items query.
pub const MAX_K: usize = 1_000;
/// Largest number of seed customers of a lookalike query.
pub const MAX_SEEDS: usize = 100_000;
/// Largest number of negative (excluded) customers of a lookalike query.
pub const MAX_NEGATIVES: usize = 100_000;
/// Largest vector dimension accepted.
pub const MAX_DIM: usize = 4_096;
/// Longest customer or item id, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Most attributes per customer or item.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute key or value, in bytes.
pub const MAX_ATTRIBUTE_LEN: usize = 1_024;
/// Largest number of rows in one embedding import chunk.
pub const MAX_IMPORT_ROWS_PER_CHUNK: usize = 65_536;
/// Largest gRPC message, decoded or encoded (bytes).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Prospects per streamed lookalike page.
pub const LOOKALIKE_PAGE_SIZE: usize = 1_000;
/// Earliest event time accepted: 1990-01-01T00:00:00Z, in ms since the Unix epoch.
pub const MIN_EVENT_TIMESTAMP_MS: i64 = 631_152_000_000;
/// How far ahead of the server clock an event time may be (clock skew), in ms: one day.
pub const MAX_EVENT_AHEAD_MS: i64 = 86_400_000;
