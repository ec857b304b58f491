//! Config tests: the seed deployment's files, and malformed variants each giving a clear error.

use super::*;
use std::{fs, net::Ipv4Addr, os::unix::fs::PermissionsExt, time::Duration};

/// A private (mode 600) copy of examples/seed: git does not keep file modes, and files holding
/// passwords must not be readable by others.
fn seed_dir() -> tempfile::TempDir {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/seed");
    let d = tempfile::tempdir().unwrap();
    for f in ["mmm_common.conf", "mmm_mon.conf", "mmm_agent.conf"] {
        let to = d.path().join(f);
        fs::copy(src.join(f), &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o600)).unwrap();
    }
    d
}

/// A private temp dir with `files` written at mode 600.
fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = d.path().join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    }
    d
}

fn err(text: &str) -> String {
    let d = dir_with(&[("x.conf", text)]);
    Config::load(&d.path().join("x.conf"))
        .unwrap_err()
        .to_string()
}

const MIN: &str = "
<host db1>
  ip 198.18.0.11
  mode master
  peer db2
</host>
<host db2>
  ip 198.18.0.12
  mode master
  peer db1
</host>
<role writer>
  hosts db1, db2
  ips 198.18.0.100
  mode exclusive
</role>
";

#[test]
fn seed_monitor_config_reads_with_templates_and_includes() {
    let c = Config::load(&seed_dir().path().join("mmm_mon.conf")).unwrap();
    c.validate_for_monitor().unwrap();
    assert_eq!(c.active_master_role, "writer");
    let names: Vec<_> = c.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["db1", "db2", "db3"]);
    let db1 = c.host("db1").unwrap();
    assert_eq!(db1.ip, Ipv4Addr::new(192, 168, 8, 32));
    assert_eq!(db1.mode, HostMode::Master);
    assert_eq!(db1.peer.as_deref(), Some("db2"));
    assert_eq!(db1.cluster_interface, "eth0");
    assert_eq!(db1.replication_user, "repl");
    // <host default> given again in mmm_mon.conf after the hosts were defined still applies.
    assert_eq!(db1.monitor_user, "mmm_monitor");
    assert_eq!(db1.agent_port, 9989);
    assert_eq!(db1.mysql_port, 3306);
    let db3 = c.host("db3").unwrap();
    assert_eq!((db3.mode, db3.peer.as_deref()), (HostMode::Slave, None));
    let w = c.role("writer").unwrap();
    assert_eq!(w.mode, RoleMode::Exclusive);
    assert_eq!(w.hosts, ["db1", "db2"]);
    assert_eq!(w.ips, [Ipv4Addr::new(192, 168, 8, 30)]);
    let r = c.role("reader").unwrap();
    assert_eq!(r.mode, RoleMode::Balanced);
    assert_eq!(
        r.ips,
        [
            Ipv4Addr::new(192, 168, 8, 36),
            Ipv4Addr::new(192, 168, 8, 37)
        ]
    );
    assert_eq!(c.monitor.ping_ips.len(), 3);
    assert_eq!(
        c.monitor.status_path,
        PathBuf::from("/var/lib/misc/mmm_mond.status")
    );
    assert_eq!(c.monitor.port, 9988);
    assert!(
        c.monitor.careful_startup,
        "MMM's code defaults careful_startup to 1"
    );
    assert_eq!(c.check(CheckKind::Ping), CheckConfig::default());
    assert!(!c.debug);
    assert_eq!(c.log_level(), "info");
}

#[test]
fn debug_1_raises_the_log_level() {
    let c = Config::parse_str(Path::new("x.conf"), &format!("{MIN}debug 1\n")).unwrap();
    assert!(c.debug);
    assert_eq!(c.log_level(), "debug");
}

#[test]
fn seed_agent_config_names_its_host() {
    let c = Config::load(&seed_dir().path().join("mmm_agent.conf")).unwrap();
    assert_eq!(c.validate_for_agent().unwrap().name, "db1");
    assert!(c.validate_for_monitor().is_err());
}

#[test]
fn seed_lines_with_the_space_lost_are_refused_with_a_hint() {
    let e = err("active_master_rolewriter\n");
    assert!(e.ends_with("x.conf:1: unknown directive 'active_master_rolewriter' in the global scope (a space missing between 'active_master_role' and its value?)"), "{e}");
    let e = err(&MIN.replace("ip 198.18.0.11", "ip198.18.0.11"));
    assert!(e.contains("x.conf:3: unknown directive 'ip198.18.0.11' in <host db1> (a space missing between 'ip' and its value?)"), "{e}");
}

#[test]
fn catchup_strict_follows_semisync_unless_set() {
    let load = |extra: &str| {
        let d = dir_with(&[("x.conf", &format!("{extra}{MIN}"))]);
        Config::load(&d.path().join("x.conf"))
            .unwrap()
            .catchup_strict
    };
    assert!(!load(""));
    assert!(load("semisync yes\n"));
    assert!(!load("semisync yes\ncatchup_strict no\n"));
    assert!(load("catchup_strict yes\n"));
}

#[test]
fn durations_booleans_and_check_overrides() {
    assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
    assert_eq!(parse_duration("0.5"), Some(Duration::from_millis(500)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
    for bad in ["", "-1", "x", "1h", "NaN", "inf"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
    for (t, v) in [
        ("yes", true),
        ("On", true),
        ("1", true),
        ("no", false),
        ("off", false),
        ("0", false),
    ] {
        assert_eq!(parse_bool(t), Some(v));
    }
    let text = format!(
        "{MIN}<check default>\n check_period 5\n trap_period 10\n timeout 2\n</check>\n<check rep_backlog>\n max_backlog 30\n</check>\n<check ping>\n timeout 500ms\n</check>\n"
    );
    let d = dir_with(&[("x.conf", &text)]);
    let c = Config::load(&d.path().join("x.conf")).unwrap();
    let mysql = c.check(CheckKind::Mysql);
    assert_eq!(
        (mysql.check_period, mysql.trap_period, mysql.timeout),
        (
            Duration::from_secs(5),
            Duration::from_secs(10),
            Duration::from_secs(2)
        )
    );
    assert_eq!(c.check(CheckKind::RepBacklog).max_backlog, 30);
    assert_eq!(
        c.check(CheckKind::RepBacklog).check_period,
        Duration::from_secs(5)
    );
    assert_eq!(c.check(CheckKind::Ping).timeout, Duration::from_millis(500));
}

#[test]
fn malformed_files_name_file_line_and_problem() {
    let cases: &[(String, &str)] = &[
        (
            format!("{MIN}bogus 1\n"),
            "x.conf:17: unknown directive 'bogus' in the global scope",
        ),
        (
            format!("{MIN}<frobnicate>\n</frobnicate>\n"),
            "x.conf:17: unknown section <frobnicate>",
        ),
        (
            format!("{MIN}<host db3>\n ip 198.18.0.13\n"),
            "x.conf:17: section <host db3> is never closed",
        ),
        (
            format!("{MIN}</host>\n"),
            "x.conf:17: '</host>' closes a section that was never opened",
        ),
        (
            format!("{MIN}<host db3>\n<role x>\n"),
            "x.conf:18: section <role> opened inside <host db3>",
        ),
        (
            MIN.replace("198.18.0.11", "198.18.0.300"),
            "x.conf:3: ip '198.18.0.300' is not an IPv4 address",
        ),
        (
            MIN.replace("mode master\n  peer db2", "mode primary\n  peer db2"),
            "x.conf:4: mode 'primary' is not master or slave",
        ),
        (
            MIN.replace("  peer db2\n", ""),
            "host 'db1' is a master without a peer",
        ),
        (
            MIN.replace("peer db2", "peer db9"),
            "host 'db1' has peer 'db9', which is not a defined host",
        ),
        (
            MIN.replace("hosts db1, db2", "hosts db1, db7"),
            "role 'writer' names host 'db7', which is not defined",
        ),
        (
            MIN.replace("ips 198.18.0.100", "ips 198.18.0.100, 198.18.0.101"),
            "exclusive role 'writer' must have exactly one ip, not 2",
        ),
        (
            MIN.replace("ips 198.18.0.100", "ips 198.18.0.11"),
            "role ip 198.18.0.11 of 'writer' is the address of host 'db1'",
        ),
        (
            MIN.replace("  ip 198.18.0.11\n", ""),
            "x.conf:2: <host db1> has no 'ip'",
        ),
        (
            format!("{MIN}debug maybe\n"),
            "x.conf:17: debug 'maybe' is not a boolean",
        ),
        (
            format!("{MIN}<monitor>\n ping_interval soon\n</monitor>\n"),
            "x.conf:18: ping_interval 'soon' is not seconds",
        ),
        (
            format!("{MIN}<monitor>\n port 99999\n</monitor>\n"),
            "x.conf:18: port '99999' is not a whole number in range",
        ),
        (
            format!("{MIN}<check pong>\n</check>\n"),
            "x.conf:17: unknown check 'pong'",
        ),
        (
            format!("{MIN}<host>\n</host>\n"),
            "x.conf:17: section <host> needs a name",
        ),
        (
            format!("{MIN}active_master_role boss\n"),
            "active_master_role 'boss' is not a defined role",
        ),
        (
            format!("{MIN}this db5\n"),
            "this 'db5' is not a defined host",
        ),
        (format!("{MIN}include nowhere.conf\n"), "(included from "),
    ];
    for (text, want) in cases {
        let e = err(text);
        assert!(e.contains(want), "want {want:?} in: {e}");
    }
}

#[test]
fn includes_resolve_relative_and_loops_are_caught() {
    let d = dir_with(&[
        ("a.conf", "include b.conf\n"),
        ("b.conf", "include a.conf\n"),
    ]);
    let e = Config::load(&d.path().join("a.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("includes nested deeper than 16"), "{e}");
    let d = dir_with(&[("main.conf", "\ninclude missing.conf\n")]);
    let e = Config::load(&d.path().join("main.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.conf: No such file or directory"), "{e}");
    assert!(
        e.contains("(included from ") && e.ends_with("main.conf:2)"),
        "{e}"
    );
    let d2 = dir_with(&[
        ("main.conf", "include common.conf\nthis db1\n"),
        ("common.conf", MIN),
    ]);
    let c = Config::load(&d2.path().join("main.conf")).unwrap();
    assert_eq!(c.this.as_deref(), Some("db1"));
}

#[test]
fn config_files_readable_or_writable_by_others_are_refused() {
    let text = format!("{MIN}<host default>\n monitor_password secret\n</host>\n");
    let d = dir_with(&[("x.conf", &text)]);
    let p = d.path().join("x.conf");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    let e = Config::load(&p).unwrap_err().to_string();
    assert!(
        e.contains("is readable or writable by others (mode 644)"),
        "{e}"
    );
    fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
    Config::load(&p).unwrap();
    // Without passwords too: a world-writable config could set kill_host_bin, run as root.
    let d = dir_with(&[("y.conf", MIN)]);
    let p = d.path().join("y.conf");
    for mode in [0o644, 0o602] {
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        assert!(matches!(
            Config::load(&p),
            Err(ConfigError::Permissions { .. })
        ));
    }
    // An included file likewise.
    let d = dir_with(&[("inc.conf", MIN), ("main.conf", "include inc.conf\n")]);
    fs::set_permissions(d.path().join("inc.conf"), fs::Permissions::from_mode(0o604)).unwrap();
    let e = Config::load(&d.path().join("main.conf")).unwrap_err();
    assert!(e.to_string().contains("inc.conf"), "{e}");
}

#[test]
fn more_hosts_than_a_cluster_may_have_are_refused() {
    let slaves = |n: usize| -> String {
        (0..n)
            .map(|i| {
                format!(
                    "<host s{i}>\n ip 198.18.{}.{}\n mode slave\n</host>\n",
                    1 + i / 250,
                    1 + i % 250
                )
            })
            .collect()
    };
    let at_most = MIN.to_string() + &slaves(MAX_HOSTS - 2);
    let d = dir_with(&[("x.conf", &at_most)]);
    assert_eq!(
        Config::load(&d.path().join("x.conf")).unwrap().hosts.len(),
        MAX_HOSTS
    );
    let e = err(&(MIN.to_string() + &slaves(MAX_HOSTS - 1)));
    assert!(
        e.contains(&format!(
            "{} hosts are defined; a cluster has at most {MAX_HOSTS}",
            MAX_HOSTS + 1
        )),
        "{e}"
    );
}

#[test]
fn more_than_two_master_candidates_are_refused_for_the_monitor() {
    let text = MIN.replace("hosts db1, db2", "hosts db1, db2, db3")
        + "<host db3>\n ip 198.18.0.13\n mode master\n peer db1\n</host>\n<monitor>\n</monitor>\n";
    let d = dir_with(&[("x.conf", &text)]);
    let c = Config::load(&d.path().join("x.conf")).unwrap();
    let e = c.validate_for_monitor().unwrap_err().to_string();
    assert!(
        e.contains("more than two hosts can hold the active master role 'writer': db1, db2, db3"),
        "{e}"
    );
}

#[test]
fn kill_host_fences_is_off_by_default_and_needs_kill_host_bin() {
    let load = |monitor: &str| {
        let d = dir_with(&[("x.conf", &format!("{MIN}<monitor>\n{monitor}</monitor>\n"))]);
        Config::load(&d.path().join("x.conf")).unwrap()
    };
    assert!(!load("").monitor.kill_host_fences);
    let c = load(" kill_host_fences yes\n");
    let e = c.validate_for_monitor().unwrap_err().to_string();
    assert!(
        e.contains("kill_host_fences is set but no kill_host_bin"),
        "{e}"
    );
    let c = load(" kill_host_bin /usr/lib/mysql-mmm/fence\n kill_host_fences yes\n");
    assert!(c.monitor.kill_host_fences);
    c.validate_for_monitor().unwrap();
}

#[test]
fn ssl_sockets_need_all_three_files() {
    let e = err(&format!(
        "{MIN}\n<socket>\n    type ssl\n    cert_file /etc/mmm/cert.pem\n</socket>\n"
    ));
    assert!(
        e.contains("<socket> type ssl needs") && e.contains("missing: key_file, ca_file"),
        "{e}"
    );
    let d = dir_with(&[(
        "x.conf",
        &format!("{MIN}\n<socket>\n    type ssl\n    cert_file /c.pem\n    key_file /k.pem\n    ca_file /a.pem\n</socket>\n"),
    )]);
    let c = Config::load(&d.path().join("x.conf")).unwrap();
    assert!(c.socket.ssl);
    assert_eq!(c.socket.ca_file.as_deref(), Some(Path::new("/a.pem")));
}

#[test]
fn mmm_tools_and_agent_only_directives_load_and_are_noted() {
    let text = format!(
        "default_copy_method rsync\nclone_dirs data\nmax_kill_retries 5\n{MIN}\
<host default>\n ssh_user root\n ssh_port 22\n tools_user mmm_tools\n tools_password x\n \
backup_dir /backup\n restore_dir /restore\n lvm_snapshot_size 1G\n lvm_mount_opts -o ro\n \
mysql_pidfile /run/mysqld.pid\n mysql_rcscript /etc/init.d/mysql\n mysql_cnf /etc/my.cnf\n</host>\n\
<copy_method rsync>\n backup_command x\n restore_command y\n true_copy 1\n</copy_method>\n"
    );
    let d = dir_with(&[("x.conf", &text)]);
    let c = Config::load(&d.path().join("x.conf")).unwrap();
    let notes = c.notes.join("\n");
    for key in [
        "default_copy_method",
        "ssh_user",
        "lvm_mount_opts",
        "mysql_cnf",
        "backup_command",
        "max_kill_retries",
    ] {
        assert!(notes.contains(key), "{key} not noted:\n{notes}");
    }
    assert!(notes.contains("x.conf:"), "notes name file:line: {notes}");
    assert!(notes.contains("kill_timeout"), "{notes}");
    // An unknown key in a copy_method section is still an error.
    let bad = text.replace("true_copy 1", "frobnicate 1");
    assert!(err(&bad).contains("unknown directive 'frobnicate' in <copy_method rsync>"));
}

#[test]
fn empty_element_sections_and_mmm_include_names() {
    let d = dir_with(&[
        ("common.conf", MIN),
        ("main.conf", "include common\n<host db3/>\n<monitor/>\n"),
    ]);
    // `<host db3/>` is a host without an ip: refused for that, not for its syntax.
    let e = Config::load(&d.path().join("main.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("<host db3> has no 'ip'"), "{e}");
    let d = dir_with(&[
        ("common.conf", MIN),
        ("main.conf", "include common\n<monitor/>\n"),
    ]);
    let c = Config::load(&d.path().join("main.conf")).unwrap();
    assert!(c.has_monitor);
}

#[test]
fn globals_mmm_refuses_and_zero_intervals_are_refused() {
    assert!(err(&format!("role writer\n{MIN}")).contains("'role' should be a section"));
    assert!(
        err(&format!("default_role reader\n{MIN}")).contains("unknown directive 'default_role'")
    );
    let m = |k: &str| format!("{MIN}<monitor>\n {k} 0\n</monitor>\n");
    assert!(err(&m("ping_interval")).contains("ping_interval must be greater than zero"));
    assert!(err(&m("agent_timeout")).contains("agent_timeout must be greater than zero"));
}

#[test]
fn every_accepted_directive_is_documented_and_nothing_else() {
    let mut accepted = accepted_keys();
    let mut documented: Vec<(&str, &str)> =
        doc::DIRECTIVES.iter().map(|d| (d.scope, d.key)).collect();
    accepted.sort();
    documented.sort();
    assert_eq!(accepted, documented);
    let page = doc::man_page();
    assert!(page.starts_with(".TH MMM.CONF 5"));
    assert!(
        page.contains("\\fBcatchup_strict\\fR (default: the semisync value) (ours)"),
        "{page}"
    );
}

#[test]
fn names_that_would_break_the_status_file_are_refused() {
    for (from, to) in [
        ("<host db2>", "<host db|2>"),
        ("<role writer>", "<role wri,ter>"),
    ] {
        let text = MIN
            .replace(from, to)
            .replace("peer db2", "peer db|2")
            .replace("hosts db1, db2", "hosts db1, db|2");
        let e = err(&text);
        assert!(
            e.contains("which the status file uses as a separator"),
            "{e}"
        );
    }
}

#[test]
fn the_writer_lease_defaults_to_2s_can_be_off_and_is_never_too_short() {
    let load = |extra: &str| {
        let d = dir_with(&[("x.conf", &format!("{extra}\n{MIN}"))]);
        Config::load(&d.path().join("x.conf"))
    };
    assert_eq!(load("").unwrap().writer_lease, DEFAULT_WRITER_LEASE);
    assert_eq!(load("writer_lease 0").unwrap().writer_lease, Duration::ZERO);
    assert_eq!(
        load("writer_lease 3500ms").unwrap().writer_lease,
        Duration::from_millis(3500)
    );
    let e = load("writer_lease 300ms").unwrap_err().to_string();
    assert!(
        e.contains("writer_lease") && e.contains("shorter than"),
        "{e}"
    );
    // Faster peer probing allows a shorter lease: five probe periods.
    let c = load("peer_ping_interval 50ms\npeer_ping_misses 3\nwriter_lease 250ms").unwrap();
    assert_eq!(
        (c.peer_ping_interval, c.peer_ping_misses, c.writer_lease),
        (Duration::from_millis(50), 3, Duration::from_millis(250))
    );
    assert!(load("peer_ping_interval 50ms\nwriter_lease 200ms").is_err());
}

#[test]
fn peer_probing_defaults_and_bounds() {
    let load = |extra: &str| {
        let d = dir_with(&[("x.conf", &format!("{extra}\n{MIN}"))]);
        Config::load(&d.path().join("x.conf"))
    };
    let c = load("").unwrap();
    assert_eq!(
        (c.peer_ping_interval, c.peer_ping_misses),
        (Duration::from_millis(200), 2)
    );
    for (bad, key) in [
        ("peer_ping_interval 10ms", "peer_ping_interval"),
        ("peer_ping_interval 2s", "peer_ping_interval"),
        ("peer_ping_interval soon", "peer_ping_interval"),
        ("peer_ping_misses 0", "peer_ping_misses"),
        ("peer_ping_misses 11", "peer_ping_misses"),
        ("peer_ping_misses -1", "peer_ping_misses"),
    ] {
        let e = load(bad).unwrap_err().to_string();
        assert!(e.contains(key), "{bad}: {e}");
    }
}

#[test]
fn a_plaintext_agent_takes_calls_from_the_monitors_addresses_only() {
    let agent = |extra: &str| {
        Config::parse_str(Path::new("x.conf"), &format!("{MIN}this db1\n{extra}")).unwrap()
    };
    // monitor_ips wins; else the <monitor> section's ip; else the agent refuses to start.
    let c = agent("monitor_ips 198.18.0.5, 198.18.0.6\n<monitor>\n ip 198.18.0.2\n</monitor>\n");
    assert_eq!(
        c.monitor_sources(),
        [
            "198.18.0.5".parse::<std::net::Ipv4Addr>().unwrap(),
            "198.18.0.6".parse().unwrap()
        ]
    );
    c.validate_for_agent().unwrap();
    let c = agent("<monitor>\n ip 198.18.0.2\n</monitor>\n");
    assert_eq!(
        c.monitor_sources(),
        ["198.18.0.2".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    let c = agent("");
    assert!(c.monitor_sources().is_empty());
    let e = c.validate_for_agent().unwrap_err().to_string();
    assert!(e.contains("set monitor_ips"), "{e}");
}
