//! `mmm-monitor tls init` and `config check` as a DBA runs them: certificates for every party
//! of the configuration, the `<socket>` sections printed, an existing CA never overwritten; a
//! plaintext configuration is called unauthenticated.

use std::{fs, os::unix::fs::PermissionsExt, path::Path, process::Command};

fn private_copy(dir: &Path) -> std::path::PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab");
    for f in ["mmm_common.conf", "mmm_mon.conf"] {
        let to = dir.join(f);
        fs::copy(src.join(f), &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).unwrap();
    }
    dir.join("mmm_mon.conf")
}

fn monitor(args: &[&str]) -> (String, String, bool) {
    let o = Command::new(env!("CARGO_BIN_EXE_mmm-monitor"))
        .args(args)
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
        o.status.success(),
    )
}

#[test]
fn tls_init_makes_every_certificate_and_prints_the_sections() {
    let d = tempfile::tempdir().unwrap();
    let conf = private_copy(d.path());
    let out = d.path().join("pki");
    let init = [
        "--config",
        conf.to_str().unwrap(),
        "tls",
        "init",
        "--out",
        out.to_str().unwrap(),
    ];
    let (stdout, stderr, ok) = monitor(&init);
    assert!(ok, "{stderr}");
    for f in ["ca.crt", "monitor.crt", "control.key", "db1.crt", "db3.key"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(stdout.contains("type                ssl"), "{stdout}");
    assert!(stdout.contains("control_cert_file"), "{stdout}");
    assert!(stdout.contains("Add to mmm_agent.conf on db2"), "{stdout}");
    let mode = fs::metadata(out.join("db2.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // Never over an existing CA.
    let (_, stderr, ok) = monitor(&init);
    assert!(!ok && stderr.contains("already holds a CA"), "{stderr}");
    // config check calls plaintext what it is.
    let (stdout, _, ok) = monitor(&["config", "check", conf.to_str().unwrap()]);
    assert!(ok);
    assert!(
        stdout.contains("WARNING: the control plane is unauthenticated"),
        "{stdout}"
    );
}
