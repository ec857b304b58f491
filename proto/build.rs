//! Generates the tonic/prost code and the descriptor set (for gRPC reflection) from
//! `mmm/v1/mmm.proto`, with the vendored `protoc` so no system package is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded at this point.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("mmm_v1_descriptor.bin"))
        .compile_protos(&["mmm/v1/mmm.proto"], &["."])?;
    Ok(())
}
