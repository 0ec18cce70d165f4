//! Replays the committed fuzz corpus and the crashing inputs found (`fuzz/corpus/<target>`,
//! `fuzz/regressions/<target>`) through the fuzz targets' bodies on stable Rust: none may
//! panic.

use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn replay(target: &str, body: fn(&[u8])) {
    let mut total = 0;
    for kind in ["corpus", "regressions"] {
        total += doppel_fuzz_bodies::replay(&fuzz_dir().join(kind).join(target), body);
    }
    // A moved corpus must not make this pass by replaying nothing.
    assert!(
        total > 0,
        "no corpus found for {target} under {}",
        fuzz_dir().display()
    );
    eprintln!("{target}: {total} inputs replayed");
}

#[test]
fn requests_corpus_replays() {
    replay("requests", doppel_fuzz_bodies::requests);
}

#[test]
fn keys_file_corpus_replays() {
    replay("keys_file", doppel_fuzz_bodies::keys_file);
}

#[test]
fn index_file_corpus_replays() {
    replay("index_file", doppel_fuzz_bodies::index_file);
}

#[test]
fn events_csv_corpus_replays() {
    replay("events_csv", doppel_fuzz_bodies::events_csv);
}
