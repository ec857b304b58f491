//! The Debian packages `cargo xtask deb` built (`cargo xtask test` builds them first):
//! their contents and modes, their maintainer scripts, and an install into a throw-away root
//! (the packages unpacked as dpkg would) where the installed binaries run `--version` and
//! `config check` on the shipped example configs, and the systemd units pass
//! `systemd-analyze verify`.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

/// The newest `target/debian/<name>_*.deb`.
fn package(name: &str) -> PathBuf {
    let dir = mmm_tests::workspace_root().join("target/debian");
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run `cargo xtask deb`)", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with(&format!("{name}_")) && f.ends_with(".deb"))
        })
        .collect();
    debs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    debs.pop().unwrap_or_else(|| {
        panic!(
            "no {name} package in {} (run `cargo xtask deb`)",
            dir.display()
        )
    })
}

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{cmd:?}: {text}");
    text
}

/// `(mode, path)` of every entry of `deb`.
fn contents(deb: &Path) -> Vec<(String, String)> {
    run(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.first()?.to_string(),
                f.get(5)?.trim_start_matches('.').to_string(),
            ))
        })
        .collect()
}

fn has(list: &[(String, String)], path: &str, mode: &str) {
    assert!(
        list.iter().any(|(m, p)| p == path && m == mode),
        "{path} ({mode}) missing: {list:#?}"
    );
}

#[test]
fn the_packages_hold_what_a_dba_expects_and_run_from_their_installed_paths() {
    let (agent, monitor) = (package("mmm-agent"), package("mmm-monitor"));
    let a = contents(&agent);
    has(&a, "/usr/bin/mmm-agent", "-rwxr-xr-x");
    has(&a, "/usr/share/man/man8/mmm-agent.8.gz", "-rw-r--r--");
    // The subcommand pages the top-level page refers to.
    has(&a, "/usr/share/man/man8/mmm-agent-serve.8.gz", "-rw-r--r--");
    has(
        &a,
        "/usr/share/doc/mmm-agent/examples/mmm_agent.conf",
        "-rw-r--r--",
    );
    has(
        &a,
        "/usr/share/bash-completion/completions/mmm-agent",
        "-rw-r--r--",
    );
    let m = contents(&monitor);
    for bin in ["/usr/bin/mmm-monitor", "/usr/bin/mmm_control"] {
        has(&m, bin, "-rwxr-xr-x");
    }
    for page in [
        "/usr/share/man/man8/mmm-monitor.8.gz",
        "/usr/share/man/man8/mmm_control.8.gz",
        "/usr/share/man/man8/mmm-monitor-serve.8.gz",
        "/usr/share/man/man5/mmm.conf.5.gz",
        "/usr/share/doc/mmm-monitor/examples/mmm_mon.conf",
        "/usr/share/doc/mmm-monitor/examples/mmm_common.conf",
    ] {
        has(&m, page, "-rw-r--r--");
    }
    // Completions for every command, in every shell.
    for (list, cmd) in [(&a, "mmm-agent"), (&m, "mmm-monitor"), (&m, "mmm_control")] {
        for path in [
            format!("/usr/share/bash-completion/completions/{cmd}"),
            format!("/usr/share/zsh/vendor-completions/_{cmd}"),
            format!("/usr/share/fish/vendor_completions.d/{cmd}.fish"),
        ] {
            has(list, &path, "-rw-r--r--");
        }
    }
    let unit = |list: &[(String, String)], name: &str| -> String {
        list.iter()
            .map(|(_, p)| p.clone())
            .find(|p| p.ends_with(&format!("systemd/system/{name}.service")))
            .unwrap_or_else(|| panic!("no {name}.service: {list:#?}"))
    };
    let (agent_unit, monitor_unit) = (unit(&a, "mmm-agent"), unit(&m, "mmm-monitor"));
    // Maintainer scripts: the monitor's user, /etc/mysql-mmm with safe modes.
    let scripts = tempfile::tempdir().unwrap();
    let control_file = |deb: &std::path::Path, file: &str| {
        let dir = scripts.path().join(deb.file_name().unwrap());
        if !dir.exists() {
            run(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&dir));
        }
        std::fs::read_to_string(dir.join(file)).unwrap()
    };
    let postinst = control_file(&monitor, "postinst");
    assert!(
        postinst.contains("adduser --system") && postinst.contains("-m 0750"),
        "{postinst}"
    );
    let control = control_file(&monitor, "control");
    assert!(control.contains("Package: mmm-monitor"), "{control}");
    // The agent's makes /etc/mysql-mmm once: an upgrade keeps the modes a DBA (or the monitor's
    // package on the same host: root:mmm 0750) set.
    let postinst = control_file(&agent, "postinst");
    assert!(
        postinst.contains("[ ! -d /etc/mysql-mmm ]") && postinst.contains("-m 0700"),
        "{postinst}"
    );

    // Installed into a throw-away root.
    let root = tempfile::tempdir().unwrap();
    for deb in [&agent, &monitor] {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(root.path()));
    }
    // The monitor runs as `mmm`: its pid file goes to a runtime directory of its own.
    let text =
        std::fs::read_to_string(root.path().join(monitor_unit.trim_start_matches('/'))).unwrap();
    for line in [
        "User=mmm",
        "RuntimeDirectory=mmm-monitor",
        "StateDirectory=mmm-monitor",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    let bin = |b: &str| root.path().join("usr/bin").join(b);
    for b in ["mmm-agent", "mmm-monitor", "mmm_control"] {
        let v = run(Command::new(bin(b)).arg("--version"));
        assert!(
            v.contains(env!("CARGO_PKG_VERSION")) && v.contains('('),
            "{b}: {v}"
        );
    }
    // The shipped examples, made private as a DBA installs them.
    let etc = tempfile::tempdir().unwrap();
    for (pkg, f) in [
        ("mmm-monitor", "mmm_mon.conf"),
        ("mmm-monitor", "mmm_common.conf"),
        ("mmm-agent", "mmm_agent.conf"),
    ] {
        let from = root
            .path()
            .join(format!("usr/share/doc/{pkg}/examples/{f}"));
        let to = etc.path().join(f);
        std::fs::copy(&from, &to).unwrap();
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = run(Command::new(bin("mmm-monitor"))
        .args(["config", "check"])
        .arg(etc.path().join("mmm_mon.conf")));
    assert!(out.starts_with("OK: configuration is valid"), "{out}");
    let out = run(Command::new(bin("mmm-agent"))
        .args(["config", "check"])
        .arg(etc.path().join("mmm_agent.conf")));
    assert!(
        out.contains("OK: configuration is valid") && out.contains("this host: db1"),
        "{out}"
    );
    // The units, as systemd reads them: the installed binaries and man pages (the unit's
    // /usr/bin paths and MANPATH pointed into the throw-away root).
    let units = tempfile::tempdir().unwrap();
    for u in [agent_unit, monitor_unit] {
        let text = std::fs::read_to_string(root.path().join(u.trim_start_matches('/'))).unwrap();
        let text = text.replace("/usr/bin/", &format!("{}/usr/bin/", root.path().display()));
        let copy = units.path().join(Path::new(&u).file_name().unwrap());
        std::fs::write(&copy, text).unwrap();
        run(Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .env("MANPATH", root.path().join("usr/share/man")));
    }
}
