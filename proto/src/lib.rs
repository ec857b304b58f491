//! The `mmm.v1` gRPC protocol shared by the monitor and the agents: generated tonic/prost code
//! and the encoded file descriptor set that the servers hand to gRPC reflection.
//! Only this crate and the gRPC adapters see prost types.

/// Generated code of package `mmm.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("mmm.v1");
}

/// The encoded `FileDescriptorSet` of `mmm.v1`, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mmm_v1_descriptor");
