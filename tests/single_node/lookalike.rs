//! FindLookalikes: seeds excluded, consent respected, size modes, paging, explain.

use std::collections::HashSet;

use doppel_proto::v1 as pb;
use doppel_proto::v1::lookalike_request::Size;

use crate::fixture::{VERSION, audience, count, loaded, prospects};

#[tokio::test]
async fn audience_follows_the_seeds_and_the_rules() {
    let fx = loaded().await;
    let taste = fx.taste();
    let consent = fx.ads_consent();
    let seeds = fx.seeds(0, 30);
    // One seed without ads consent: ignored and listed, never fatal.
    let no_consent = fx
        .data
        .customers
        .iter()
        .find(|c| !c.consent.ads_personalization)
        .expect("a customer without ads consent")
        .id
        .clone();
    let mut request = count(seeds.clone(), 50);
    request.seed_customer_ids.push(no_consent.clone());
    request.explain = true;
    let batches = audience(fx.channel(), request).await.expect("lookalike");
    let first = &batches[0];
    assert_eq!(first.model_version, VERSION);
    assert_eq!(first.ignored_seed_ids, vec![no_consent.clone()]);
    assert!(first.shards_total > 0 && first.shards_answered == first.shards_total);
    assert!(batches.iter().all(|b| b.model_version == VERSION));

    let people = prospects(&batches);
    assert_eq!(people.len(), 50);
    let seed_set: HashSet<&str> = seeds.iter().map(String::as_str).collect();
    let mut same_taste = 0;
    for pair in people.windows(2) {
        assert!(pair[0].score >= pair[1].score, "scores must not increase");
    }
    for p in &people {
        assert!(
            !seed_set.contains(p.customer_id.as_str()),
            "seed in audience"
        );
        assert_ne!(p.customer_id, no_consent);
        assert!(consent.contains(p.customer_id.as_str()), "no ads consent");
        assert!((-1.0..=1.0001).contains(&p.score));
        assert!(!p.nearest_seed_ids.is_empty() && p.nearest_seed_ids.len() <= 3);
        assert!(
            p.nearest_seed_ids
                .iter()
                .all(|s| seed_set.contains(s.as_str()))
        );
        same_taste += usize::from(taste[p.customer_id.as_str()] == 0);
    }
    assert!(
        same_taste >= 40,
        "only {same_taste}/50 share the planted taste"
    );
}

/// CLASSIFIER through gRPC: the audience of one planted taste's seeds shares that taste,
/// scores stay in (−1, 1), explanations name seeds, and AUTO fits it from 100 seeds on.
#[tokio::test]
async fn the_classifier_finds_the_seeds_taste_and_auto_fits_it_for_many_seeds() {
    let fx = loaded().await;
    let taste = fx.taste();
    let seeds = fx.seeds(3, 120);
    assert!(seeds.len() >= 100, "{} seeds", seeds.len());
    let seed_set: HashSet<&str> = seeds.iter().map(String::as_str).collect();
    let mut request = count(seeds.clone(), 50);
    request.strategy = pb::Strategy::Classifier as i32;
    request.explain = true;
    let batches = audience(fx.channel(), request).await.expect("classifier");
    assert_eq!(batches[0].strategy_used, pb::Strategy::Classifier as i32);
    let people = prospects(&batches);
    assert_eq!(people.len(), 50);
    let same = people
        .iter()
        .filter(|p| taste[p.customer_id.as_str()] == 3)
        .count();
    assert!(same >= 40, "only {same}/50 share the planted taste");
    for p in &people {
        assert!(p.score > -1.0 && p.score < 1.0, "{}", p.score);
        assert!(!seed_set.contains(p.customer_id.as_str()));
        assert!(
            !p.nearest_seed_ids.is_empty()
                && p.nearest_seed_ids
                    .iter()
                    .all(|s| seed_set.contains(s.as_str()))
        );
    }

    let auto = audience(fx.channel(), count(seeds.clone(), 50))
        .await
        .expect("auto");
    assert_eq!(auto[0].strategy_used, pb::Strategy::Classifier as i32);
    let few = audience(fx.channel(), count(seeds[..50].to_vec(), 50))
        .await
        .expect("auto, few seeds");
    assert_eq!(few[0].strategy_used, pb::Strategy::Centroid as i32);
}

#[tokio::test]
async fn size_modes_filters_and_exclusions() {
    let fx = loaded().await;
    let seeds = fx.seeds(1, 20);

    let mut request = count(seeds.clone(), 1);
    request.size = Some(Size::TopPercent(10.0));
    let batches = audience(fx.channel(), request).await.expect("top percent");
    let eligible = batches[0].eligible_population;
    assert!(eligible > 100);
    assert_eq!(
        prospects(&batches).len() as u64,
        (eligible as f64 * 0.10).ceil() as u64
    );

    let mut request = count(seeds.clone(), 1);
    request.size = Some(Size::MinScore(0.6));
    let batches = audience(fx.channel(), request).await.expect("min score");
    let people = prospects(&batches);
    assert!(!people.is_empty());
    assert!(people.iter().all(|p| p.score >= 0.6));

    let mut request = count(seeds.clone(), 200);
    request.exclude_existing_customers = true;
    let buyers = fx.buyers();
    let batches = audience(fx.channel(), request)
        .await
        .expect("exclude existing");
    let people = prospects(&batches);
    assert!(!people.is_empty());
    assert!(
        people
            .iter()
            .all(|p| !buyers.contains(p.customer_id.as_str()))
    );

    let country = fx.data.customers[0].attributes["country"].clone();
    let mut request = count(seeds.clone(), 100);
    request.filter.insert("country".into(), country.clone());
    let batches = audience(fx.channel(), request).await.expect("filter");
    let by_id: std::collections::HashMap<&str, &doppel_types::Customer> = fx
        .data
        .customers
        .iter()
        .map(|c| (c.id.as_str(), c))
        .collect();
    let people = prospects(&batches);
    assert!(!people.is_empty());
    assert!(
        people
            .iter()
            .all(|p| by_id[p.customer_id.as_str()].attributes["country"] == country)
    );

    for strategy in [pb::Strategy::Centroid, pb::Strategy::MaxSimilarity] {
        let mut request = count(seeds.clone(), 30);
        request.strategy = strategy as i32;
        let batches = audience(fx.channel(), request).await.expect("strategy");
        assert_eq!(batches[0].strategy_used, strategy as i32);
        assert_eq!(prospects(&batches).len(), 30);
    }
}

#[tokio::test]
async fn large_audiences_stream_in_pages_with_non_increasing_scores() {
    let fx = loaded().await;
    let mut request = count(fx.seeds(2, 10), 1);
    request.size = Some(Size::TopPercent(100.0));
    let batches = audience(fx.channel(), request).await.expect("everyone");
    let eligible = batches[0].eligible_population;
    assert!(
        batches.len() >= 2,
        "a big audience must come in several pages"
    );
    assert!(batches.iter().all(|b| b.prospects.len() <= 1_000));
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(b.batch_index as usize, i);
    }
    let people = prospects(&batches);
    assert_eq!(people.len() as u64, eligible);
    assert!(people.windows(2).all(|w| w[0].score >= w[1].score));
    let unique: HashSet<&str> = people.iter().map(|p| p.customer_id.as_str()).collect();
    assert_eq!(unique.len(), people.len(), "a prospect appears twice");
}
