//! A generated customer base for demos, tests and benchmarks: customers with latent tastes, items in categories, events and vectors.
