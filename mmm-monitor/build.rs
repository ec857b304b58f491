//! Sets `MMM_VERSION` (package version and commit) for `--version`.

include!("../build/version.rs");

fn main() {
    version_env();
}
