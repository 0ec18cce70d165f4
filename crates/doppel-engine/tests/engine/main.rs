//! Engine tests: one binary, real indexes over a generated customer base.

mod context_offers;
mod fixture;
mod lookalike;
mod recommend;
mod versions;
