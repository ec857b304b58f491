//! Sets the version string with the commit, and locates the XDP object built by `cargo xtask build-ebpf` so that `mmm-agent` can embed it.

use std::path::PathBuf;

include!("../build/version.rs");

fn main() {
    version_env();
    println!("cargo:rerun-if-env-changed=MMM_EBPF_OBJ");
    let obj = match std::env::var_os("MMM_EBPF_OBJ") {
        Some(p) => PathBuf::from(p),
        None => {
            let manifest =
                PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
            manifest
                .join("..")
                .join("target")
                .join("ebpf")
                .join("mmm-ebpf.o")
        }
    };
    println!("cargo:rerun-if-changed={}", obj.display());
    if !obj.is_file() {
        eprintln!(
            "error: mmm-agent embeds the XDP program, which is not built yet.\n\
             Run `cargo xtask build-ebpf` first (it installs rust-src and bpf-linker when missing).\n\
             Expected object: {}",
            obj.display()
        );
        std::process::exit(1);
    }
    println!("cargo:rustc-env=MMM_EBPF_OBJ={}", obj.display());
}
