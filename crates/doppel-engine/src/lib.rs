//! doppel's serving logic: model versions in memory, lookalike audiences and next-best offers over the vector indexes. Synchronous: no tokio, no tonic.
