//! Generated protobuf messages and gRPC clients/servers of `doppel.v1`.
//!
//! The `.proto` files live in `proto/doppel/v1/` at the workspace root; `build.rs` compiles
//! them with protox. [`FILE_DESCRIPTOR_SET`] (public) and [`INTERNAL_FILE_DESCRIPTOR_SET`]
//! (everything) feed gRPC server reflection.

/// `doppel.v1`: the public API.
pub mod v1 {
    #![allow(missing_docs, reason = "generated code")]
    #![allow(clippy::all, reason = "generated code")]
    tonic::include_proto!("doppel.v1");
}

/// `doppel.internal.v1`: the router ↔ shard-node API (never exposed to clients).
pub mod internal {
    /// Version 1.
    pub mod v1 {
        #![allow(missing_docs, reason = "generated code")]
        #![allow(clippy::all, reason = "generated code")]
        tonic::include_proto!("doppel.internal.v1");
    }
}

/// Encoded `FileDescriptorSet` of the public protos (`doppel.v1`), for reflection on a
/// public port: the internal API is never listed there.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/doppel_public_descriptor.bin"));

/// Encoded `FileDescriptorSet` of every doppel proto, public and internal, for reflection
/// on a shard node's internal port (which serves both).
pub const INTERNAL_FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/doppel_descriptor.bin"));
