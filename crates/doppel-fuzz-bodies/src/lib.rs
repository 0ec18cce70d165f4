//! What the fuzz targets in `fuzz/` run, one function per target, so that the committed
//! corpus and the crashing inputs found are replayed by `cargo test` on stable Rust
//! (`tests/replay.rs`) as well as fuzzed with cargo-fuzz on nightly. Each function must
//! return for any input, never panic (the assertions are properties of what it returns).

use std::path::Path;

use doppel_grpc::convert;
use doppel_proto::v1 as pb;
use prost::Message;

/// Client requests decoded from arbitrary bytes (the first byte picks the message type)
/// and run through the validation and conversion the services apply.
pub fn requests(data: &[u8]) {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    match kind % 11 {
        0 => {
            if let Ok(m) = pb::LookalikeRequest::decode(bytes) {
                let _ = convert::query_from_pb(m);
            }
        }
        1 => {
            if let Ok(m) = pb::ReachRequest::decode(bytes) {
                let _ = convert::reach_from_pb(m);
            }
        }
        2 => {
            if let Ok(m) = pb::RecommendRequest::decode(bytes) {
                let _ = doppel_grpc::recommendations_service::query_from_pb(m);
            }
        }
        3 => {
            if let Ok(m) = pb::ContactPolicy::decode(bytes) {
                let _ = convert::contact_policy_from_pb(m);
            }
        }
        4 => {
            if let Ok(m) = pb::CreateExperimentRequest::decode(bytes) {
                let _ = doppel_types_checks(m);
            }
        }
        5 => {
            if let Ok(m) = pb::TrainRequest::decode(bytes) {
                let _ = convert::plan_from_pb(m);
            }
        }
        6 => {
            if let Ok(m) = pb::EmbeddingChunk::decode(bytes) {
                let dim = m.dim;
                let _ = convert::chunk_rows(m, "v1", dim);
            }
        }
        7 => {
            if let Ok(m) = pb::Event::decode(bytes) {
                let _ = convert::event_from_pb(m);
            }
        }
        8 => {
            if let Ok(m) = pb::Customer::decode(bytes) {
                let _ = convert::customer_from_pb(m);
            }
        }
        9 => {
            if let Ok(m) = pb::Item::decode(bytes) {
                let _ = convert::item_from_pb(m);
            }
        }
        _ => {
            if let Ok(m) = pb::ActivateVersionRequest::decode(bytes) {
                let _ = convert::validate_version_name(&m.model_version);
                let _ = doppel_node::canary_guard::validate_guard(&convert::guard_from_pb(m.guard));
            }
        }
    }
}

/// An experiment request as the node validates it.
fn doppel_types_checks(m: pb::CreateExperimentRequest) -> Option<()> {
    let _ = doppel_types_name(&m.name);
    let arms = convert::arms_from_pb(m.arms, true).ok()?;
    let traffic = if m.traffic_percent == 0 {
        100
    } else {
        m.traffic_percent
    };
    doppel_types::experiment::validate_arms(&arms, traffic).ok()?;
    let weights: Vec<u32> = arms.iter().map(|a| a.weight).collect();
    let buckets = doppel_types::experiment::allocate(None, &weights, traffic);
    let _ = doppel_types::experiment::allocate(Some(&buckets), &weights, traffic.min(100));
    Some(())
}

fn doppel_types_name(name: &str) -> bool {
    doppel_types::experiment::is_valid_name(name)
}

/// The API keys file parser.
pub fn keys_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = doppel_grpc::auth::KeyRing::parse("fuzz", text);
    }
}

/// The index-file (snapshot) loader: `data` as a whole file, and `data` as a file's body
/// behind a valid header (length and checksum), so the fuzzer gets past the checksum into
/// the parser.
pub fn index_file(data: &[u8]) {
    let _ = doppel_index::check_index_file(data);
    let mut file = Vec::with_capacity(24 + data.len());
    file.extend_from_slice(b"DOPPELIX");
    file.extend_from_slice(&doppel_index::FORMAT_VERSION.to_le_bytes());
    file.extend_from_slice(&(data.len() as u64).to_le_bytes());
    file.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    file.extend_from_slice(data);
    let _ = doppel_index::check_index_file(&file);
}

/// The transaction-file reader of `doppel import events` (Online Retail layout), with
/// what it promises of any file it reads: every event names a customer and an item, its
/// quantity is positive and its time falls in years 1..=9999 (or on 10000-01-01 00:00 after a leap second); every customer and item is
/// listed once.
pub fn events_csv(data: &[u8]) {
    use doppel_client::retail_csv;
    let Ok(read) = retail_csv::read(data, doppel_types::Consent::default(), || {}) else {
        return;
    };
    // 0001-01-01 and 10000-01-01 (a leap second 60 on 9999-12-31 23:59 lands there), in ms
    // since 1970.
    const FIRST_MS: i64 = -62_135_596_800_000;
    const LAST_MS: i64 = 253_402_300_800_000;
    for e in &read.events {
        assert!(!e.customer_id.is_empty() && !e.item_id.is_empty());
        assert!(e.quantity > 0, "quantity {}", e.quantity);
        assert!(
            (FIRST_MS..=LAST_MS).contains(&e.timestamp_ms),
            "{}",
            e.timestamp_ms
        );
        assert!(e.value.is_finite() && e.value >= 0.0, "value {}", e.value);
    }
    let customers: std::collections::HashSet<&str> =
        read.customers.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(customers.len(), read.customers.len());
    let items: std::collections::HashSet<&str> = read.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(items.len(), read.items.len());
    assert!(
        read.events
            .iter()
            .all(|e| customers.contains(e.customer_id.as_str())
                && items.contains(e.item_id.as_str()))
    );
}

/// Runs `body` over every file in `dir` (missing: none); returns how many.
pub fn replay(dir: &Path, body: fn(&[u8])) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries.flatten() {
        if let Ok(bytes) = std::fs::read(entry.path()) {
            body(&bytes);
            n += 1;
        }
    }
    n
}
