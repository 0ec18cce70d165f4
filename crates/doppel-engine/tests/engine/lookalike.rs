//! Audiences: planted tastes, graph vs exact agreement, negatives, strategies, erasure.

use std::collections::HashSet;

use doppel_engine::{AudienceSize, Error, LookalikeQuery, Strategy};

use crate::fixture::loaded;

fn query(seeds: Vec<String>, size: AudienceSize) -> LookalikeQuery {
    crate::fixture::query(&seeds, Strategy::Auto, size)
}

#[test]
fn graph_search_agrees_with_the_exact_scan() {
    // 20k customers: a count of 20 takes the graph path; min_score −1 scores everyone.
    let fx = loaded(20_000);
    let seeds = fx.seeds(3, 15);
    for strategy in [Strategy::Centroid, Strategy::MaxSimilarity] {
        let mut q = query(seeds.clone(), AudienceSize::Count(20));
        q.strategy = strategy;
        let fast = fx.engine.lookalike(&q).expect("graph");
        q.size = AudienceSize::MinScore(-1.0);
        let exact = fx.engine.lookalike(&q).expect("exact");
        assert_eq!(exact.prospects.len() as u64, exact.eligible_population);
        let truth: HashSet<&str> = exact.prospects[..20]
            .iter()
            .map(|p| p.customer_id.as_str())
            .collect();
        let found = fast
            .prospects
            .iter()
            .filter(|p| truth.contains(p.customer_id.as_str()))
            .count();
        // Failure budget: 2 of 20 may be missed by the approximate search.
        assert!(
            found >= 18,
            "{strategy:?}: graph found {found}/20 of the exact top 20"
        );
        assert_eq!(fast.eligible_population, exact.eligible_population);
    }
}

#[test]
fn seeds_of_one_taste_find_their_taste_and_explanations_name_seeds() {
    let fx = loaded(3_000);
    let taste = fx.taste_of();
    let seeds = fx.seeds(2, 25);
    let mut q = query(seeds.clone(), AudienceSize::Count(100));
    q.explain = true;
    let audience = fx.engine.lookalike(&q).expect("audience");
    assert_eq!(audience.prospects.len(), 100);
    let seed_set: HashSet<&str> = seeds.iter().map(String::as_str).collect();
    let same = audience
        .prospects
        .iter()
        .filter(|p| taste[p.customer_id.as_str()] == 2)
        .count();
    assert!(same >= 90, "{same}/100 share the seeds' taste");
    for p in &audience.prospects {
        assert!(!seed_set.contains(p.customer_id.as_str()));
        assert!((1..=3).contains(&p.nearest_seed_ids.len()));
        assert!(
            p.nearest_seed_ids
                .iter()
                .all(|s| seed_set.contains(s.as_str()))
        );
    }
}

#[test]
fn seeds_from_two_tastes_get_both_niches_served() {
    let fx = loaded(3_000);
    let taste = fx.taste_of();
    let mut seeds = fx.seeds(0, 15);
    seeds.extend(fx.seeds(5, 15));
    // 30 seeds: AUTO scores by the centroid (chosen on real data, where seed sets this size
    // are rarely two clean modes). Asked for by name, max-similarity keeps every niche by
    // construction, and the classifier too here: both serve both niches, not the empty
    // space between them.
    let auto = fx
        .engine
        .lookalike(&query(seeds.clone(), AudienceSize::Count(100)))
        .expect("auto");
    assert_eq!(auto.strategy_used, Strategy::Centroid);
    for (strategy, used) in [
        (Strategy::Classifier, Strategy::Classifier),
        (Strategy::MaxSimilarity, Strategy::MaxSimilarity),
    ] {
        let mut q = query(seeds.clone(), AudienceSize::Count(100));
        q.strategy = strategy;
        let audience = fx.engine.lookalike(&q).expect("audience");
        assert_eq!(audience.strategy_used, used);
        let both = |t| {
            audience
                .prospects
                .iter()
                .filter(|p| taste[p.customer_id.as_str()] == t)
                .count()
        };
        assert!(
            both(0) >= 25 && both(5) >= 25,
            "{strategy:?}: taste 0: {}, taste 5: {}",
            both(0),
            both(5)
        );
    }
}

#[test]
fn auto_keeps_the_cosine_rules_below_ten_seeds() {
    let fx = loaded(3_000);
    let mut seeds = fx.seeds(0, 4);
    seeds.extend(fx.seeds(5, 4));
    let two = fx
        .engine
        .lookalike(&query(seeds, AudienceSize::Count(100)))
        .expect("audience");
    assert_eq!(two.strategy_used, Strategy::MaxSimilarity);
    let one = fx
        .engine
        .lookalike(&query(fx.seeds(1, 8), AudienceSize::Count(10)))
        .expect("audience");
    assert_eq!(one.strategy_used, Strategy::Centroid);
}

#[test]
fn negatives_push_their_taste_out_and_are_never_in_the_audience() {
    let fx = loaded(3_000);
    let taste = fx.taste_of();
    let mut seeds = fx.seeds(0, 15);
    seeds.extend(fx.seeds(5, 15));
    let negatives = fx.seeds(5, 40)[15..].to_vec();
    let mut q = query(seeds, AudienceSize::Count(100));
    q.strategy = Strategy::MaxSimilarity;
    let before = fx.engine.lookalike(&q).expect("without negatives");
    q.negative_customer_ids = negatives.clone();
    let after = fx.engine.lookalike(&q).expect("with negatives");
    let count5 = |a: &doppel_engine::Audience| {
        a.prospects
            .iter()
            .filter(|p| taste[p.customer_id.as_str()] == 5)
            .count()
    };
    assert!(
        count5(&after) < count5(&before) / 2,
        "{} vs {}",
        count5(&after),
        count5(&before)
    );
    let negative_set: HashSet<&str> = negatives.iter().map(String::as_str).collect();
    assert!(
        after
            .prospects
            .iter()
            .all(|p| !negative_set.contains(p.customer_id.as_str()))
    );
    assert!(
        after
            .prospects
            .iter()
            .all(|p| (-1.0..=1.0).contains(&p.score))
    );
}

#[test]
fn unknown_and_unusable_seeds_are_refused_by_field() {
    let fx = loaded(1_000);
    let err = fx
        .engine
        .lookalike(&query(vec!["nobody".into()], AudienceSize::Count(5)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                field: "seed_customer_ids",
                ..
            }
        ),
        "{err:?}"
    );
    let no_consent: Vec<String> = fx
        .data
        .customers
        .iter()
        .filter(|c| !c.consent.ads_personalization)
        .take(3)
        .map(|c| c.id.clone())
        .collect();
    let err = fx
        .engine
        .lookalike(&query(no_consent, AudienceSize::Count(5)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                field: "seed_customer_ids",
                ..
            }
        ),
        "{err:?}"
    );
    let mut q = query(fx.seeds(0, 3), AudienceSize::Count(5));
    q.negative_customer_ids = vec!["ghost".into()];
    let err = fx.engine.lookalike(&q).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                field: "negative_customer_ids",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn erased_customers_leave_every_audience_at_once() {
    let fx = loaded(2_000);
    let seeds = fx.seeds(4, 10);
    let q = query(seeds, AudienceSize::Count(30));
    let before = fx.engine.lookalike(&q).expect("before");
    let gone: Vec<String> = before.prospects[..5]
        .iter()
        .map(|p| p.customer_id.clone())
        .collect();
    for id in &gone {
        assert!(fx.engine.erase_customer(id));
        assert!(
            !fx.engine.erase_customer(id),
            "erasing twice reports nothing to erase"
        );
    }
    let mut all = q.clone();
    all.size = AudienceSize::TopPercent(100.0);
    let after = fx.engine.lookalike(&all).expect("after");
    assert!(
        after
            .prospects
            .iter()
            .all(|p| !gone.contains(&p.customer_id))
    );
    assert_eq!(after.eligible_population + 5, before.eligible_population);
    let err = fx
        .engine
        .lookalike(&query(vec![gone[0].clone()], AudienceSize::Count(1)));
    assert!(matches!(err, Err(Error::NotFound { .. })));
}

#[test]
fn a_cancelled_query_stops_on_both_paths_and_says_so() {
    let fx = loaded(3_000);
    let seeds = fx.seeds(1, 15);
    // Count(20) takes the graph path, TopPercent the exact scan.
    for size in [AudienceSize::Count(20), AudienceSize::TopPercent(50.0)] {
        let q = query(seeds.clone(), size);
        assert!(
            fx.engine.lookalike(&q).is_ok(),
            "{size:?} before cancelling"
        );
        q.cancel.guard(); // dropped at once: the caller went away
        assert!(
            matches!(fx.engine.lookalike(&q), Err(Error::Cancelled)),
            "{size:?}"
        );
    }
}

#[test]
fn int8_scans_answer_exactly_what_float_scans_answer() {
    use crate::fixture::info;
    use doppel_engine::{LoadVersion, SCAN_VECTORS_PARAM};
    use doppel_index::NoProgress;

    let fx = loaded(6_000);
    let seeds = fx.seeds(1, 40);
    let negatives = fx.seeds(4, 10);
    let mut cases = Vec::new();
    for strategy in [Strategy::Centroid, Strategy::MaxSimilarity] {
        for size in [
            AudienceSize::Count(300),
            AudienceSize::TopPercent(5.0),
            AudienceSize::MinScore(0.6),
        ] {
            for negatives in [Vec::new(), negatives.clone()] {
                let mut q = query(seeds.clone(), size);
                q.strategy = strategy;
                q.negative_customer_ids = negatives;
                cases.push(q);
            }
        }
    }
    let answers = |label: &str| -> Vec<Vec<(String, f32)>> {
        cases
            .iter()
            .map(|q| {
                let a = fx
                    .engine
                    .lookalike(q)
                    .unwrap_or_else(|e| panic!("{label}: {e}"));
                a.prospects
                    .into_iter()
                    .map(|p| (p.customer_id, p.score))
                    .collect()
            })
            .collect()
    };
    let floats = answers("f32");
    let mut int8 = info("v-int8", 16);
    int8.params
        .insert(SCAN_VECTORS_PARAM.to_owned(), "int8".to_owned());
    fx.engine
        .load_version(
            LoadVersion {
                info: int8,
                customer_vectors: fx.data.customer_vectors.clone(),
                item_vectors: fx.data.item_vectors.clone(),
            },
            &NoProgress,
        )
        .expect("load the int8 version");
    fx.engine.activate("v-int8").expect("activate");
    let d = fx.engine.describe(None).expect("describe");
    assert!(d.int8_scan);
    assert!(
        d.memory.customers.scan_codes >= 6_000 * 16,
        "{:?}",
        d.memory
    );
    let quantized = answers("int8");
    for (i, (f, q)) in floats.iter().zip(&quantized).enumerate() {
        assert!(!f.is_empty(), "case {i} is empty");
        assert_eq!(f, q, "case {i}: {:?}", cases[i].size);
    }
}
