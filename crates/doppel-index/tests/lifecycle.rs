//! Tombstones, the live delta, merges, save/load, corrupt files and bad input.

mod support;

use doppel_index::{BuildParams, Error, Metric, NoProgress, PointId, SearchRequest, VectorIndex};
use doppel_types::vector::VectorError;
use rstest::rstest;
use support::{DIM, K, N, clustered, queries, recall};

const MIN_RECALL: f64 = 0.95;
/// Search breadth for the recall budget (in-distribution queries; ~0.99 expected, 0.95 required).
const EF: usize = 32;

fn never_returns(index: &VectorIndex, deleted: &[PointId]) {
    for q in queries(50) {
        let req = SearchRequest {
            query: &q,
            k: K,
            ef: 64,
            allowed: None,
        };
        for n in index.search(&req).expect("search") {
            assert!(!deleted.contains(&n.id), "deleted {} came back", n.id);
        }
        for n in index.exact_search(&req).expect("exact") {
            assert!(
                !deleted.contains(&n.id),
                "deleted {} came back (exact)",
                n.id
            );
        }
    }
    for &id in deleted {
        assert!(!index.contains(id));
        assert!(index.vector(id).is_none());
    }
}

#[rstest]
fn tombstones_delta_merge_and_reload(#[values(Metric::Cosine, Metric::L2)] metric: Metric) {
    let (index, _) = support::build(metric);
    let deleted: Vec<PointId> = (0..N as PointId).step_by(10).collect();
    for &id in &deleted {
        assert!(index.delete(id));
        assert!(!index.delete(id), "second delete reports not live");
    }
    assert_eq!(index.len(), N - deleted.len());
    never_returns(&index, &deleted);
    let r = recall(&index, &queries(200), EF, None);
    assert!(r >= MIN_RECALL, "recall {r}");

    // New points and updates go to the delta and are searchable at once.
    let fresh = clustered(300, DIM, 40, 99);
    for (j, v) in fresh.chunks(DIM).enumerate() {
        index
            .upsert(N as PointId + j as PointId, v)
            .expect("upsert new");
    }
    let moved = clustered(50, DIM, 40, 123);
    for (j, v) in moved.chunks(DIM).enumerate() {
        index.upsert(1 + 10 * j as PointId, v).expect("update");
    }
    let stats = index.stats();
    assert_eq!(stats.delta_len, 350);
    assert_eq!(stats.len, N - deleted.len() + 300);
    for (j, v) in moved.chunks(DIM).enumerate() {
        let id = 1 + 10 * j as PointId;
        let req = SearchRequest {
            query: v,
            k: 3,
            ef: 32,
            allowed: None,
        };
        let got = index.search(&req).expect("search");
        assert_eq!(got[0].id, id, "updated vector found first");
        assert_eq!(
            got.iter().filter(|n| n.id == id).count(),
            1,
            "no stale copy"
        );
    }
    let r = recall(&index, &queries(200), EF, None);
    assert!(r >= MIN_RECALL, "recall {r}");

    index.merge_delta(&NoProgress).expect("merge");
    let stats = index.stats();
    assert_eq!((stats.delta_len, stats.deleted), (0, 0));
    assert_eq!(stats.len, N - deleted.len() + 300);
    never_returns(&index, &deleted);
    let r = recall(&index, &queries(200), EF, None);
    assert!(r >= MIN_RECALL, "after merge: {r}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("index.dpx");
    index.delete(5);
    index.upsert(7, &moved[..DIM]).expect("upsert");
    index.save(&path).expect("save");
    let loaded = VectorIndex::load(&path).expect("load");
    let (a, b) = (loaded.stats(), index.stats());
    assert_eq!(
        (a.len, a.deleted, a.delta_len, a.dim, a.metric, a.m),
        (b.len, b.deleted, b.delta_len, b.dim, b.metric, b.m)
    );
    let mut all_deleted = deleted.clone();
    all_deleted.push(5);
    never_returns(&loaded, &all_deleted);
    for q in queries(30) {
        let req = SearchRequest {
            query: &q,
            k: K,
            ef: 64,
            allowed: None,
        };
        assert_eq!(
            loaded.search(&req).expect("a"),
            index.search(&req).expect("b")
        );
    }
    assert!(
        recall(&loaded, &queries(200), EF, None) >= MIN_RECALL,
        "after load"
    );
}

#[test]
fn corrupt_and_truncated_files_are_refused() {
    let data = clustered(500, 16, 5, 3);
    let ids: Vec<PointId> = (0..500).collect();
    let index = VectorIndex::build(BuildParams::new(16, Metric::L2), &ids, &data, &NoProgress)
        .expect("build");
    index.upsert(900, &data[..16]).expect("upsert");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("i.dpx");
    index.save(&path).expect("save");
    let good = std::fs::read(&path).expect("read");
    let bad = dir.path().join("bad.dpx");
    for pos in [0usize, 9, 13, 21, 30, good.len() / 2, good.len() - 1] {
        let mut b = good.clone();
        b[pos] ^= 0x5a;
        std::fs::write(&bad, &b).expect("write");
        match VectorIndex::load(&bad) {
            Err(Error::Corrupt { .. } | Error::UnsupportedFormat { .. }) => {}
            other => panic!("flipped byte {pos}: {:?}", other.map(|i| i.len())),
        }
    }
    for len in [0usize, 10, 24, good.len() / 3, good.len() - 1] {
        std::fs::write(&bad, &good[..len]).expect("write");
        assert!(
            matches!(VectorIndex::load(&bad), Err(Error::Corrupt { .. })),
            "truncated to {len}"
        );
    }
    let mut b = good.clone();
    b[8] = 99;
    std::fs::write(&bad, &b).expect("write");
    assert!(matches!(
        VectorIndex::load(&bad),
        Err(Error::UnsupportedFormat { version: 99 })
    ));
    assert!(matches!(
        VectorIndex::load(&dir.path().join("missing")),
        Err(Error::Io(_))
    ));
    assert_eq!(VectorIndex::load(&path).expect("good file").len(), 501);
}

#[test]
fn bad_input_is_typed() {
    let p = BuildParams::new(4, Metric::Cosine);
    let index = VectorIndex::new(p.clone()).expect("new");
    assert!(matches!(
        index.upsert(1, &[1.0, 2.0]),
        Err(Error::Vector(VectorError::Dimension {
            expected: 4,
            actual: 2
        }))
    ));
    assert!(matches!(
        index.upsert(1, &[1.0, f32::NAN, 0.0, 0.0]),
        Err(Error::Vector(VectorError::NotFinite { index: 1 }))
    ));
    assert!(matches!(
        index.upsert(1, &[0.0; 4]),
        Err(Error::Vector(VectorError::ZeroNorm))
    ));
    assert!(matches!(
        index.upsert(1, &[3e38, 1.0, 0.0, 0.0]),
        Err(Error::Vector(VectorError::Overflow { .. }))
    ));
    index.upsert(1, &[1.0, 0.0, 0.0, 0.0]).expect("good");
    let q = [1.0, 0.0, 0.0, 0.0];
    let req = |k| SearchRequest {
        query: &q,
        k,
        ef: 10,
        allowed: None,
    };
    assert!(matches!(
        index.search(&req(0)),
        Err(Error::InvalidParameter { name: "k", .. })
    ));
    assert!(matches!(
        index.search(&req(doppel_index::MAX_K + 1)),
        Err(Error::InvalidParameter { name: "k", .. })
    ));
    let zero = [0.0f32; 4];
    let zreq = SearchRequest {
        query: &zero,
        k: 1,
        ef: 10,
        allowed: None,
    };
    assert!(matches!(
        index.search(&zreq),
        Err(Error::Vector(VectorError::ZeroNorm))
    ));
    assert!(matches!(
        index.exact_search(&zreq),
        Err(Error::Vector(VectorError::ZeroNorm))
    ));
    assert_eq!(index.search(&req(5)).expect("search").len(), 1);

    let mut bad = p.clone();
    bad.m = 300;
    assert!(matches!(
        VectorIndex::new(bad),
        Err(Error::InvalidParameter { name: "m", .. })
    ));
    bad = p.clone();
    bad.dim = 0;
    assert!(matches!(
        VectorIndex::new(bad),
        Err(Error::InvalidParameter { name: "dim", .. })
    ));
    let b = |ids: &[PointId], v: &[f32]| {
        VectorIndex::build(p.clone(), ids, v, &NoProgress).map(|i| i.len())
    };
    assert!(matches!(
        b(&[1, 1], &[1.0; 8]),
        Err(Error::InvalidParameter { name: "ids", .. })
    ));
    assert!(matches!(
        b(&[1], &[1.0; 5]),
        Err(Error::InvalidParameter {
            name: "vectors",
            ..
        })
    ));
    assert!(matches!(
        b(&[1], &[1.0, 1.0, f32::INFINITY, 0.0]),
        Err(Error::Vector(VectorError::NotFinite { index: 2 }))
    ));
    assert!(matches!(
        b(&[1, 2], &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
        Err(Error::Vector(VectorError::ZeroNorm))
    ));
    assert_eq!(b(&[], &[]).expect("empty build"), 0);
}

#[test]
fn searches_keep_working_during_merge() {
    let (index, data) = support::build(Metric::Cosine);
    let index = std::sync::Arc::new(index);
    for j in 0..200u32 {
        index
            .upsert(
                N as PointId + j,
                &data[j as usize * DIM..(j as usize + 1) * DIM],
            )
            .expect("upsert");
    }
    let writer = {
        let index = std::sync::Arc::clone(&index);
        std::thread::spawn(move || index.merge_delta(&NoProgress))
    };
    let q = queries(1).remove(0);
    let mut raced = Vec::new();
    let mut n = 0u32;
    while !writer.is_finished() {
        let req = SearchRequest {
            query: &q,
            k: K,
            ef: 32,
            allowed: None,
        };
        assert_eq!(index.search(&req).expect("search").len(), K);
        let id = 100_000 + n;
        index.upsert(id, &q).expect("upsert during merge");
        if n.is_multiple_of(2) {
            index.delete(id);
        } else {
            raced.push(id);
        }
        index.delete(n);
        n += 1;
    }
    writer.join().expect("join").expect("merge");
    for &id in &raced {
        assert!(index.contains(id), "upsert during merge kept");
    }
    for d in 0..n {
        assert!(!index.contains(d), "delete during merge kept");
        assert!(!index.contains(100_000 + 2 * (d / 2)) || d % 2 == 1);
    }
}

#[test]
fn a_saved_index_loads_under_new_ids_keeping_tombstones_and_the_delta() {
    let n = 500usize;
    let data = clustered(n, DIM, 10, 7);
    let ids: Vec<PointId> = (0..n as PointId).collect();
    let index = VectorIndex::build(
        BuildParams::new(DIM, Metric::Cosine),
        &ids,
        &data,
        &NoProgress,
    )
    .expect("build");
    assert!(index.delete(7));
    index
        .upsert(5, &data[9 * DIM..10 * DIM])
        .expect("upsert into the delta");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("seg.bin");
    index.save(&path).expect("save");
    // Old id i becomes 10_000 + i; id 3 has no new name (erased meanwhile).
    let map = |id: PointId| (id != 3).then_some(10_000 + id);
    let loaded = VectorIndex::load_relabeled(&path, &map).expect("load");
    assert_eq!(loaded.len(), n - 2);
    assert!(loaded.contains(10_000) && loaded.contains(10_005));
    assert!(
        !loaded.contains(10_003) && !loaded.contains(3),
        "unmapped ids are gone"
    );
    assert!(!loaded.contains(10_007), "a tombstone survives the relabel");
    assert_eq!(
        loaded.vector(10_005),
        index.vector(5),
        "the delta keeps the newer vector"
    );
    let hits = loaded
        .search(&SearchRequest {
            query: &data[..DIM],
            k: 5,
            ef: 64,
            allowed: None,
        })
        .expect("search");
    assert!(
        hits.iter()
            .all(|h| h.id >= 10_000 && h.id != 10_003 && h.id != 10_007)
    );
    // Two old ids onto one new id is refused as corrupt.
    let collide = |id: PointId| Some(id / 2);
    assert!(matches!(
        VectorIndex::load_relabeled(&path, &collide),
        Err(Error::Corrupt { .. })
    ));
}
