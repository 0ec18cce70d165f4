//! doppel-train's integration tests, one binary:
//! * `planted_structure` — ALS recovers planted tastes; k-means recovers them as clusters
//! * `determinism` — same seed, same bits, on any number of threads
//! * `fold_in` — new and updated customers land next to their taste
//! * `rfm_clv` — RFM quintiles, segments and CLV tiers on a hand-computed fixture
//! * `parameters` — bad hyper-parameters name the right field
//! * `offer_weights` — the recency weight a run chooses on its own log

mod context;
mod determinism;
mod fold_in;
mod offer_weights;
mod parameters;
mod planted_structure;
mod rfm_clv;
mod support;
