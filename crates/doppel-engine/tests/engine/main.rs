//! Engine tests: one binary, real indexes over a generated customer base.

mod classifier;
mod context_offers;
mod fixture;
mod lookalike;
mod recommend;
mod versions;
