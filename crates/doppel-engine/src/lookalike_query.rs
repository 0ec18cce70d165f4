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
    /// Classifier for 100 seeds or more, centroid for 10 to 99; below 10, centroid for
    /// coherent seed sets and max-similarity for spread-out ones.
    #[default]
    Auto,
    /// Cosine to the mean of the seed vectors: one tight "typical seed".
    Centroid,
    /// Best cosine to any seed (to one of ≤ 128 seed prototypes for big seed sets): keeps
    /// every niche of a diverse seed set.
    MaxSimilarity,
    /// A ridge-regularised linear discriminant fitted on the seeds' raw vectors against
    /// every other customer of the version (see `classifier`), scoring every eligible
    /// customer exactly.
    Classifier,
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
    /// Customer attributes whose groups are audited.
    pub audit_attributes: Vec<String>,
    /// Re-select the audience so that every group of this attribute is served fairly.
    pub balance: Option<Balance>,
    /// Stops the scan when the caller goes away.
    pub cancel: crate::cancellation::Cancellation,
}

/// A balanced audience: every group of `attribute` selected at a rate of at least
/// `min_selection_ratio` × the best-served group's.
#[derive(Clone, Debug, PartialEq)]
pub struct Balance {
    /// The customer attribute.
    pub attribute: String,
    /// In `(0, 1]`.
    pub min_selection_ratio: f64,
}

impl LookalikeQuery {
    /// The attributes grouped for audits and balancing: the audited ones, then the balance
    /// attribute when not among them.
    pub fn group_attributes(&self) -> Vec<String> {
        let mut attributes = self.audit_attributes.clone();
        if let Some(b) = &self.balance
            && !attributes.contains(&b.attribute)
        {
            attributes.push(b.attribute.clone());
        }
        attributes
    }

    /// An empty group table over [`Self::group_attributes`], the balance attribute's field
    /// named when it was appended.
    pub fn groups(&self) -> crate::audience_groups::Groups {
        let attributes = self.group_attributes();
        let appended = attributes.len() > self.audit_attributes.len();
        let last = attributes.len().saturating_sub(1);
        let groups = crate::audience_groups::Groups::new(attributes);
        if appended {
            groups.with_field(last, "balance_attribute")
        } else {
            groups
        }
    }
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
    /// Seeds that were used (with ads consent and a vector).
    pub seeds_used: u64,
    /// With audited or balanced attributes: the audit of the prospects.
    pub audit: Vec<crate::fairness::GroupAudit>,
    /// Mean score of the prospects (0 when there are none).
    pub mean_score: f32,
    /// Mean score of the best prospects of the same size without balancing.
    pub mean_score_unbalanced: f32,
}

/// Mean of `scores` (0 for none), summed in f64.
pub fn mean_score(scores: impl ExactSizeIterator<Item = f32>) -> f32 {
    let n = scores.len();
    if n == 0 {
        return 0.0;
    }
    (scores.map(f64::from).sum::<f64>() / n as f64) as f32
}
