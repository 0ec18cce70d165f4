//! The request and answer types of lookalike audiences.

use std::collections::BTreeMap;

/// How big the audience should be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AudienceSize {
    /// Exactly this many prospects (fewer if fewer are eligible); 1..=the version's customers.
    Count(u64),
    /// The best `p` percent of the eligible population, `0 < p ≤ 100`, rounded up.
    TopPercent(f64),
    /// Every eligible customer scoring at least this, in `[-1, 1]`.
    MinScore(f32),
}

/// How prospects are scored against the seeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// Centroid for coherent seed sets, max-similarity for spread-out ones.
    #[default]
    Auto,
    /// Cosine to the mean of the seed vectors: one tight "typical seed".
    Centroid,
    /// Best cosine to any seed (to one of ≤ 128 seed prototypes for big seed sets): keeps
    /// every niche of a diverse seed set.
    MaxSimilarity,
}

/// A lookalike request, validated for shape at the edge.
#[derive(Clone, Debug)]
pub struct LookalikeQuery {
    /// Customers the audience should resemble.
    pub seed_customer_ids: Vec<String>,
    /// Customers the audience should not resemble (they are also left out of it).
    pub negative_customer_ids: Vec<String>,
    /// Audience size.
    pub size: AudienceSize,
    /// Scoring strategy.
    pub strategy: Strategy,
    /// Leave out customers who ever purchased.
    pub exclude_existing_customers: bool,
    /// Attribute equality filter (all must match).
    pub filter: BTreeMap<String, String>,
    /// Name up to three nearest seeds per prospect.
    pub explain: bool,
    /// `(kind, name)` customer segments whose members are seeds too.
    pub seed_segments: Vec<(String, String)>,
    /// `(kind, name)` customer segments whose members are left out.
    pub exclude_segments: Vec<(String, String)>,
    /// Stops the scan when the caller goes away.
    pub cancel: crate::cancellation::Cancellation,
}

/// One customer of an audience.
#[derive(Clone, Debug, PartialEq)]
pub struct Prospect {
    /// The customer.
    pub customer_id: String,
    /// Similarity to the seeds in `[-1, 1]` (higher is closer).
    pub score: f32,
    /// Up to three closest seeds, closest first (only when explanations were asked for).
    pub nearest_seed_ids: Vec<String>,
}

/// A computed audience, best prospects first.
#[derive(Clone, Debug)]
pub struct Audience {
    /// The model version that scored it.
    pub model_version: String,
    /// Prospects, scores non-increasing (ties by customer id).
    pub prospects: Vec<Prospect>,
    /// Seeds that were left out: no ads consent, or no vector in this version.
    pub ignored_seed_ids: Vec<String>,
    /// The strategy actually used (never `Auto`).
    pub strategy_used: Strategy,
    /// Customers that could have been in the audience (consent, filters, not seeds).
    pub eligible_population: u64,
}
