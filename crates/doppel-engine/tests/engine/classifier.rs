//! `Strategy::Classifier` on a planted world where the seeds are multi-modal and a
//! high-variance direction carries nothing: the classifier finds the hidden group members
//! far better than the centroid or max-similarity, `Auto` picks it for big seed sets, the
//! int8 scan gives the same audience, and a snapshot keeps the vector lengths it needs.

use std::collections::{BTreeMap, HashSet};

use doppel_engine::{
    AudienceSize, Engine, EngineConfig, LoadVersion, LookalikeQuery, SCAN_VECTORS_PARAM, Strategy,
};
use doppel_index::NoProgress;
use doppel_types::{Consent, Customer};

use crate::fixture::{info, query};

const DIM: usize = 8;
const CUSTOMERS: usize = 4_000;
/// Every tenth customer belongs to the planted group; 60 % of those are seeds.
const GROUP_EVERY: usize = 10;

/// A deterministic normal sample (splitmix64 + Box-Muller).
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn sample(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

struct World {
    engine: Engine,
    seeds: Vec<String>,
    hidden: HashSet<String>,
    vectors: Vec<(String, Vec<f32>)>,
}

fn id(i: usize) -> String {
    format!("c{i:05}")
}

/// Group members have 2 ± 0.3 on coordinate 0 (half of them) or on coordinate 1 (the
/// other half); everyone else has 0 ± 0.3 there. Coordinates 2.. are N(0, 1) noise for
/// everyone: they dominate cosines without telling anyone apart.
fn world(params: &[(&str, &str)]) -> World {
    let mut rng = Normal(7);
    let mut vectors = Vec::new();
    let (mut seeds, mut hidden) = (Vec::new(), HashSet::new());
    for i in 0..CUSTOMERS {
        let mut v: Vec<f32> = (0..DIM).map(|_| rng.sample()).collect();
        v[0] *= 0.3;
        v[1] *= 0.3;
        if i % GROUP_EVERY == 0 {
            v[(i / GROUP_EVERY) % 2] += 2.0;
            if (i / GROUP_EVERY) % 5 < 3 {
                seeds.push(id(i));
            } else {
                hidden.insert(id(i));
            }
        }
        vectors.push((id(i), v));
    }
    World {
        engine: engine_with(&vectors, params),
        seeds,
        hidden,
        vectors,
    }
}

/// An engine serving `vectors` (every customer consenting) as the active `v1`.
fn engine_with(vectors: &[(String, Vec<f32>)], params: &[(&str, &str)]) -> Engine {
    let engine = Engine::new(EngineConfig {
        shard_count: 4,
        ..EngineConfig::default()
    });
    for (customer, _) in vectors {
        engine.upsert_customer(&Customer {
            id: customer.clone(),
            attributes: BTreeMap::new(),
            consent: Consent {
                ads_personalization: true,
                onsite_personalization: true,
            },
        });
    }
    let mut version = info("v1", DIM);
    for (k, v) in params {
        version.params.insert((*k).to_owned(), (*v).to_owned());
    }
    engine
        .load_version(
            LoadVersion {
                info: version,
                customer_vectors: vectors.to_vec(),
                item_vectors: vec![("item".to_owned(), vec![1.0; DIM])],
            },
            &NoProgress,
        )
        .expect("load");
    engine.activate("v1").expect("activate");
    engine
}

/// The audience of `q` on `engine`: ids and scores, best first.
fn audience_of(engine: &Engine, q: &LookalikeQuery) -> Vec<(String, f32)> {
    engine
        .lookalike(q)
        .expect("audience")
        .prospects
        .into_iter()
        .map(|p| (p.customer_id, p.score))
        .collect()
}

impl World {
    /// The share of the audience that is a hidden group member, and the strategy used.
    fn precision(&self, strategy: Strategy) -> (f64, Strategy) {
        let n = self.hidden.len();
        let audience = self
            .engine
            .lookalike(&query(&self.seeds, strategy, AudienceSize::Count(n as u64)))
            .expect("audience");
        let found = audience
            .prospects
            .iter()
            .filter(|p| self.hidden.contains(&p.customer_id))
            .count();
        (found as f64 / n as f64, audience.strategy_used)
    }
}

#[test]
fn the_classifier_separates_a_planted_multi_modal_group_better_than_cosines() {
    let w = world(&[]);
    assert!(w.seeds.len() >= 200, "{} seeds", w.seeds.len());
    let (classifier, used) = w.precision(Strategy::Classifier);
    assert_eq!(used, Strategy::Classifier);
    let (centroid, _) = w.precision(Strategy::Centroid);
    let (max_similarity, _) = w.precision(Strategy::MaxSimilarity);
    assert!(
        classifier >= 0.9,
        "classifier precision {classifier:.3} (centroid {centroid:.3})"
    );
    assert!(
        classifier >= 1.2 * centroid && classifier >= 1.2 * max_similarity,
        "classifier {classifier:.3}, centroid {centroid:.3}, max-similarity {max_similarity:.3}"
    );
    // Auto fits the classifier for 100 seeds or more, and not below.
    let (auto, used) = w.precision(Strategy::Auto);
    assert_eq!(used, Strategy::Classifier);
    assert_eq!(auto, classifier);
    let few = w
        .engine
        .lookalike(&query(
            &w.seeds[..50],
            Strategy::Auto,
            AudienceSize::Count(10),
        ))
        .expect("few seeds");
    assert_eq!(few.strategy_used, Strategy::Centroid);
}

#[test]
fn classifier_scores_stay_in_range_thresholds_and_explanations_work() {
    let w = world(&[]);
    let mut q = query(&w.seeds, Strategy::Classifier, AudienceSize::MinScore(0.5));
    q.explain = true;
    let audience = w.engine.lookalike(&q).expect("min score");
    assert!(!audience.prospects.is_empty());
    let seeds: HashSet<&str> = w.seeds.iter().map(String::as_str).collect();
    for pair in audience.prospects.windows(2) {
        assert!(pair[0].score >= pair[1].score, "best first");
    }
    for p in &audience.prospects {
        assert!(p.score >= 0.5 && p.score < 1.0, "{}", p.score);
        assert!(
            !seeds.contains(p.customer_id.as_str()),
            "seeds are left out"
        );
        assert!(!p.nearest_seed_ids.is_empty());
        assert!(
            p.nearest_seed_ids
                .iter()
                .all(|s| seeds.contains(s.as_str()))
        );
    }
    // Everyone eligible, scored in (−1, 1).
    let all = w
        .engine
        .lookalike(&query(
            &w.seeds,
            Strategy::Classifier,
            AudienceSize::TopPercent(100.0),
        ))
        .expect("everyone");
    assert_eq!(all.prospects.len() as u64, all.eligible_population);
    assert!(
        all.prospects
            .iter()
            .all(|p| p.score > -1.0 && p.score < 1.0)
    );
}

#[test]
fn int8_scans_and_snapshots_give_the_same_classifier_audience() {
    let f32_world = world(&[]);
    let int8_world = world(&[(SCAN_VECTORS_PARAM, "int8")]);
    let q = query(
        &f32_world.seeds,
        Strategy::Classifier,
        AudienceSize::Count(300),
    );
    let ids = |e: &Engine| audience_of(e, &q);
    let expected = ids(&f32_world.engine);
    assert_eq!(ids(&int8_world.engine), expected, "int8 scan = f32 scan");

    let dir = tempfile::tempdir().expect("tempdir");
    let snap = dir.path().join("v1");
    f32_world.engine.save_snapshot("v1", &snap).expect("save");
    let engine = Engine::new(EngineConfig {
        shard_count: 4,
        ..EngineConfig::default()
    });
    for i in (0..CUSTOMERS).rev() {
        engine.upsert_customer(&Customer {
            id: id(i),
            attributes: BTreeMap::new(),
            consent: Consent {
                ads_personalization: true,
                onsite_personalization: true,
            },
        });
    }
    engine
        .load_snapshot(info("v1", DIM), &snap, &[])
        .expect("load snapshot");
    engine.activate("v1").expect("activate");
    assert_eq!(ids(&engine), expected, "lengths survive a snapshot");

    // A fold-in upsert moves a customer's length, and the classifier sees it.
    let last = expected.last().expect("an audience").0.clone();
    let mut v = vec![0.0f32; DIM];
    v[0] = 8.0;
    v[1] = 8.0;
    engine
        .upsert_customer_vector("v1", &last, &v)
        .expect("upsert");
    assert_eq!(
        ids(&engine)[0].0,
        last,
        "a long vector on the group's side ranks first"
    );
}

#[test]
fn moments_kept_in_step_with_fold_in_and_erasure_match_a_fresh_load() {
    let w = world(&[]);
    let q = query(&w.seeds, Strategy::Classifier, AudienceSize::Count(200));
    let ids = |e: &Engine| audience_of(e, &q);
    // The first query computes every shard's moments; the changes below update them.
    let before = ids(&w.engine);
    let mut vectors = w.vectors.clone();
    for (i, (customer, v)) in vectors.iter_mut().enumerate().skip(1).step_by(37) {
        v.iter_mut().for_each(|x| *x = -*x * (1.0 + (i % 3) as f32));
        w.engine
            .upsert_customer_vector("v1", customer, v)
            .expect("fold-in");
    }
    // Erased customers are never seeds (every GROUP_EVERY-th customer may be one).
    let erased: Vec<String> = (3..CUSTOMERS).step_by(100).map(id).collect();
    for customer in &erased {
        assert!(w.engine.erase_customer(customer));
    }
    vectors.retain(|(c, _)| !erased.contains(c));
    let after = ids(&w.engine);
    assert_ne!(before, after, "the changes move the audience");
    let fresh = ids(&engine_with(&vectors, &[]));
    assert_eq!(after.len(), fresh.len());
    for (a, b) in after.iter().zip(&fresh) {
        assert!((a.1 - b.1).abs() < 1e-5, "{a:?} vs {b:?}");
    }
    let same = after.iter().zip(&fresh).filter(|(a, b)| a.0 == b.0).count();
    assert!(
        same + 2 >= after.len(),
        "{same}/{} in the same place",
        after.len()
    );
}
