//! Compiles `proto/doppel/v1/*.proto` and `proto/doppel/internal/v1/*.proto` with protox (pure Rust), so no system `protoc` is
//! needed, and writes the descriptor set used by gRPC reflection.

use std::path::PathBuf;

use prost::Message;

/// The public API: what reflection on a public port describes.
const PUBLIC_PROTOS: &[&str] = &[
    "doppel/v1/common.proto",
    "doppel/v1/ingest.proto",
    "doppel/v1/model_admin.proto",
    "doppel/v1/audiences.proto",
    "doppel/v1/recommendations.proto",
    "doppel/v1/segments.proto",
    "doppel/v1/policies.proto",
    "doppel/v1/experiments.proto",
];
/// The router ↔ shard-node API, served only on a shard node's internal port.
const INTERNAL_PROTOS: &[&str] = &["doppel/internal/v1/shard.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let public = protox::compile(PUBLIC_PROTOS, [&root])?;
    std::fs::write(
        out_dir.join("doppel_public_descriptor.bin"),
        public.encode_to_vec(),
    )?;
    let all: Vec<&str> = PUBLIC_PROTOS
        .iter()
        .chain(INTERNAL_PROTOS)
        .copied()
        .collect();
    let descriptors = protox::compile(all, [&root])?;
    let bytes = descriptors.encode_to_vec();
    std::fs::write(out_dir.join("doppel_descriptor.bin"), &bytes)?;
    // Round-trip through bytes so the descriptor type is tonic-prost-build's own.
    let descriptors = prost_types::FileDescriptorSet::decode(bytes.as_slice())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
