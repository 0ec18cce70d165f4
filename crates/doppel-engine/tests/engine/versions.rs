//! Version lifecycle: loading, activation, description, live vector updates.

use doppel_engine::{Engine, EngineConfig, Error, LoadVersion, RecommendQuery};
use doppel_index::NoProgress;

use crate::fixture::{VERSION, info, loaded};

#[test]
fn nothing_answers_before_a_version_is_active() {
    let engine = Engine::new(EngineConfig::default());
    let err = engine.similar_items("x", 3).unwrap_err();
    match err {
        Error::FailedPrecondition(message) => assert!(message.contains("version")),
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    assert!(matches!(
        engine.describe(None),
        Err(Error::FailedPrecondition(_))
    ));
    assert!(matches!(
        engine.activate("v9"),
        Err(Error::NotFound {
            field: "model_version",
            ..
        })
    ));
}

#[test]
fn bad_vectors_are_refused_naming_the_row() {
    let engine = Engine::new(EngineConfig::default());
    let load = |customer_vectors| {
        engine.load_version(
            LoadVersion {
                info: info("bad", 3),
                customer_vectors,
                item_vectors: Vec::new(),
            },
            &NoProgress,
        )
    };
    let err = load(vec![("a".into(), vec![1.0, 0.0])]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidArgument {
                field: "customer_vectors",
                ..
            }
        ),
        "{err:?}"
    );
    let err = load(vec![("a".into(), vec![1.0, f32::NAN, 0.0])]).unwrap_err();
    assert!(err.to_string().contains("`a`"), "{err}");
    let err = load(vec![
        ("a".into(), vec![1.0, 0.0, 0.0]),
        ("a".into(), vec![0.0, 1.0, 0.0]),
    ])
    .unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn describe_counts_and_live_vector_updates() {
    let fx = loaded(1_000);
    let d = fx.engine.describe(None).expect("describe");
    assert_eq!(d.version, VERSION);
    assert_eq!(d.customer_count, 1_000);
    assert_eq!(d.item_count, 300);
    assert_eq!((d.dim, d.shard_count, d.delta), (16, 4, 0));
    assert!(d.memory_bytes > 1_000 * 16 * 4);
    // The breakdown adds up to the total; 16-dim rows are one 64-byte line each.
    let m = &d.memory;
    assert_eq!(m.customers.total() + m.items.total(), d.memory_bytes);
    assert!(m.customers.vectors >= 1_000 * 64, "{m:?}");
    assert!(m.customers.graph > 0 && m.customers.ids > 0, "{m:?}");
    assert!(
        m.profiles.customers > 0 && m.profiles.id_tables > 1_000,
        "{m:?}"
    );
    let per_customer = m.bytes_per_customer(d.customer_count);
    assert!((100.0..10_000.0).contains(&per_customer), "{per_customer}");

    // A brand-new customer becomes personalisable the moment its vector is set.
    let newcomer = doppel_types::Customer {
        id: "newcomer".into(),
        consent: doppel_types::Consent {
            ads_personalization: true,
            onsite_personalization: true,
        },
        ..Default::default()
    };
    fx.engine.upsert_customer(&newcomer);
    let q = RecommendQuery {
        customer_id: "newcomer".into(),
        k: 5,
        ..RecommendQuery::default()
    };
    assert!(!fx.engine.recommend(&q).expect("fallback").personalized);
    let item_vector = fx.data.item_vectors[7].1.clone();
    fx.engine
        .upsert_customer_vector(VERSION, "newcomer", &item_vector)
        .expect("set vector");
    let r = fx.engine.recommend(&q).expect("personalised");
    assert!(r.personalized);
    let d = fx.engine.describe(Some(VERSION)).expect("describe");
    assert_eq!((d.customer_count, d.delta), (1_001, 1));

    assert!(fx.engine.erase_customer("newcomer"));
    assert!(matches!(
        fx.engine
            .upsert_customer_vector(VERSION, "newcomer", &item_vector),
        Err(Error::FailedPrecondition(_))
    ));
    assert!(matches!(
        fx.engine.upsert_customer_vector(VERSION, "x", &[1.0]),
        Err(Error::InvalidArgument {
            field: "vector",
            ..
        })
    ));
}

#[test]
fn activation_keeps_one_previous_version_for_rollback() {
    let fx = loaded(300);
    for name in ["v2", "v3"] {
        fx.engine
            .load_version(
                LoadVersion {
                    info: info(name, 16),
                    customer_vectors: fx.data.customer_vectors.clone(),
                    item_vectors: fx.data.item_vectors.clone(),
                },
                &NoProgress,
            )
            .expect("load");
        fx.engine.activate(name).expect("activate");
    }
    assert_eq!(fx.engine.active_version().as_deref(), Some("v3"));
    assert_eq!(
        fx.engine.loaded_versions(),
        vec!["v2".to_owned(), "v3".to_owned()]
    );
    fx.engine.activate("v2").expect("rollback");
    assert_eq!(fx.engine.active_version().as_deref(), Some("v2"));
}

/// A loaded 2,000-customer engine with its snapshot saved under a temporary directory, and
/// the audience every snapshot test compares: all prospects of ten seeds.
struct Saved {
    fx: crate::fixture::Loaded,
    _dir: tempfile::TempDir,
    snap: std::path::PathBuf,
    query: doppel_engine::LookalikeQuery,
}

impl Saved {
    fn new() -> Self {
        use doppel_engine::{AudienceSize, Strategy};

        let fx = loaded(2_000);
        let dir = tempfile::tempdir().expect("tempdir");
        let snap = dir.path().join("v1");
        fx.engine.save_snapshot(VERSION, &snap).expect("save");
        let seeds: Vec<String> = fx.data.customers[..10]
            .iter()
            .map(|c| c.id.clone())
            .collect();
        let query =
            crate::fixture::query(&seeds, Strategy::Centroid, AudienceSize::TopPercent(100.0));
        Self {
            fx,
            _dir: dir,
            snap,
            query,
        }
    }

    fn audience(&self, engine: &Engine) -> Vec<String> {
        engine
            .lookalike(&self.query)
            .expect("lookalike")
            .prospects
            .into_iter()
            .map(|p| p.customer_id)
            .collect()
    }
}

#[test]
fn a_snapshot_loads_into_another_process_state_and_refuses_damage() {
    let saved = Saved::new();
    let (fx, snap) = (&saved.fx, &saved.snap);
    let ids = |e: &Engine| saved.audience(e);
    let expected = ids(&fx.engine);

    // Another engine interns ids in another order (reversed), so every slot differs.
    let fresh = || {
        let engine = Engine::new(EngineConfig {
            shard_count: 4,
            ..EngineConfig::default()
        });
        fx.data
            .customers
            .iter()
            .rev()
            .for_each(|c| engine.upsert_customer(c));
        fx.data
            .items
            .iter()
            .rev()
            .for_each(|i| engine.upsert_item(i));
        engine
    };
    let engine = fresh();
    let erased = fx.data.customers[500].id.clone();
    engine
        .load_snapshot(info(VERSION, 16), snap, std::slice::from_ref(&erased))
        .expect("load snapshot");
    engine.activate(VERSION).expect("activate");
    assert!(engine.describe(None).expect("describe").from_snapshot);
    let got = ids(&engine);
    let without: Vec<String> = expected
        .iter()
        .filter(|id| **id != erased)
        .cloned()
        .collect();
    assert_eq!(
        got, without,
        "same audience, minus the customer erased since"
    );

    // A flipped byte, a wrong version or a wrong shard count: refused, nothing loaded.
    let seg = snap.join("shard-0001.seg");
    let mut bytes = std::fs::read(&seg).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&seg, bytes).expect("write");
    let engine = fresh();
    assert!(engine.load_snapshot(info(VERSION, 16), snap, &[]).is_err());
    assert!(engine.loaded_versions().is_empty());
    assert!(engine.load_snapshot(info("v7", 16), snap, &[]).is_err());
}

#[test]
fn a_snapshot_loads_before_some_of_the_profiles_it_names() {
    let saved = Saved::new();
    let fx = &saved.fx;
    let expected = saved.audience(&fx.engine);

    // Half the customers are known before the load (their ids found), the other half are
    // new to the process (interned by the load) and get their profiles only after it.
    let engine = Engine::new(EngineConfig {
        shard_count: 4,
        ..EngineConfig::default()
    });
    let (before, after) = fx.data.customers.split_at(fx.data.customers.len() / 2);
    before.iter().for_each(|c| engine.upsert_customer(c));
    fx.data.items.iter().for_each(|i| engine.upsert_item(i));
    engine
        .load_snapshot(info(VERSION, 16), &saved.snap, &[])
        .expect("load snapshot");
    after.iter().for_each(|c| engine.upsert_customer(c));
    engine.activate(VERSION).expect("activate");
    assert_eq!(saved.audience(&engine), expected);
}

/// Erases `id` from `engine` the first time a build reports progress (while the build
/// runs, outside every engine lock).
struct EraseMidBuild<'a> {
    engine: &'a Engine,
    id: String,
    erased: std::sync::atomic::AtomicBool,
}

impl doppel_index::Progress for EraseMidBuild<'_> {
    fn set_total(&self, _: u64) {}

    fn inc(&self, _: u64) {
        if !self.erased.swap(true, std::sync::atomic::Ordering::SeqCst) {
            assert!(self.engine.erase_customer(&self.id));
        }
    }
}

#[test]
fn a_customer_erased_while_a_version_builds_is_not_in_it() {
    let fx = loaded(1_000);
    let (id, vector) = fx.data.customer_vectors[3].clone();
    let progress = EraseMidBuild {
        engine: &fx.engine,
        id: id.clone(),
        erased: Default::default(),
    };
    fx.engine
        .load_version(
            LoadVersion {
                info: info("v2", 16),
                customer_vectors: fx.data.customer_vectors.clone(),
                item_vectors: fx.data.item_vectors.clone(),
            },
            &progress,
        )
        .expect("load v2");
    assert!(
        progress.erased.into_inner(),
        "the build reported no progress"
    );
    // The erasure forgot the customer's slot before v2 was listed: v2 must not keep the
    // vector under the old slot.
    for version in [VERSION, "v2"] {
        let d = fx.engine.describe(Some(version)).expect("describe");
        assert_eq!(d.customer_count, 999, "{version}");
    }
    fx.engine.activate("v2").expect("activate v2");
    let r = fx
        .engine
        .lookalike(&crate::fixture::query(
            &fx.data.customer_vectors[10..40]
                .iter()
                .map(|(id, _)| id.clone())
                .collect::<Vec<_>>(),
            doppel_engine::Strategy::Centroid,
            doppel_engine::AudienceSize::Count(999),
        ))
        .expect("lookalike");
    assert!(r.prospects.iter().all(|p| p.customer_id != id));
    assert!(
        fx.engine
            .upsert_customer_vector("v2", &id, &vector)
            .is_err(),
        "an erased customer's vector is refused"
    );
}
