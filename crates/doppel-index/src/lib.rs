//! doppel's vector index: hnsw_rs-built graphs frozen into a compact serving layout, with a live delta, filters, tombstones and snapshots.
