//! Lowering: from the raw sections of `raw.rs` (directives with their `file:line`) to the
//! typed model of `model.rs`. Each section kind has its table of known keys (an unknown key is
//! an error naming `file:line`, with a hint when a space between key and value was lost, as in
//! the seed documents); templates (`<host default>`, `<check default>`) apply below each
//! section. Validation across sections is `validate.rs`'s.

use super::{
    etcd,
    model::*,
    raw::{Directive, Raw},
    scalar::{list, parse_duration},
    scope::{allows, Scope},
    ConfigError,
};
use crate::roles::Mode;
use std::{collections::BTreeMap, time::Duration};

/// Keys per scope (for unknown-directive errors and the missing-space hint).
const GLOBAL_KEYS: &[&str] = &[
    "this",
    "debug",
    "active_master_role",
    "max_kill_retries",
    "catchup_timeout",
    "catchup_strict",
    "max_lag_on_failover",
    "kill_timeout",
    "writer_lease",
    "semisync",
    "semisync_timeout",
    "garp_rounds",
    "peer_neighbours",
    "peer_ping_interval",
    "peer_ping_misses",
    "monitor_ips",
    // mmm_tools (MMM's cloning tools; accepted, not used):
    "default_copy_method",
    "clone_dirs",
];
const HOST_KEYS: &[&str] = &[
    "ip",
    "mode",
    "peer",
    "cluster_interface",
    "agent_port",
    "mysql_port",
    "agent_user",
    "agent_password",
    "monitor_user",
    "monitor_password",
    "replication_user",
    "replication_password",
    "pid_path",
    "bin_path",
    "metrics_port",
    // MMM's agent reads these (accepted, not used):
    "mysql_pidfile",
    "mysql_rcscript",
    "mysql_cnf",
    // mmm_tools (accepted, not used):
    "backup_dir",
    "restore_dir",
    "clone_dirs",
    "ssh_*",
    "tools_*",
    "lvm_*",
];
/// `<copy_method NAME>` of mmm_tools (accepted, not used).
const COPY_METHOD_KEYS: &[&str] = &[
    "backup_command",
    "restore_command",
    "incremental_command",
    "incremental",
    "single_run",
    "true_copy",
];
/// Directives mmm accepts for compatibility and does not use (`config check` lists them).
const UNUSED: &[&str] = &[
    "default_copy_method",
    "clone_dirs",
    "mysql_pidfile",
    "mysql_rcscript",
    "mysql_cnf",
    "backup_dir",
    "restore_dir",
    "ssh_*",
    "tools_*",
    "lvm_*",
];

/// Every key the parser accepts, by scope (`global`, `host`, …): checked against the
/// documentation (`doc.rs`).
pub fn accepted_keys() -> Vec<(&'static str, &'static str)> {
    let scopes: [(&str, &[&str]); 8] = [
        ("global", GLOBAL_KEYS),
        ("host", HOST_KEYS),
        ("role", ROLE_KEYS),
        ("check", CHECK_KEYS),
        ("monitor", MONITOR_KEYS),
        ("socket", SOCKET_KEYS),
        ("copy_method", COPY_METHOD_KEYS),
        ("etcd", etcd::KEYS),
    ];
    scopes
        .iter()
        .flat_map(|(scope, keys)| keys.iter().map(move |k| (*scope, *k)))
        .collect()
}

/// The notes of `config check` about directives that are accepted and not used.
fn unused_notes(raw: &Raw) -> Vec<String> {
    let mut notes = Vec::new();
    for ((kind, name), ds) in &raw.sections {
        for d in ds {
            let why = match kind.as_str() {
                "copy_method" => Some("mmm_tools' <copy_method> is not used by mmm"),
                "" | "host" if allows(UNUSED, &d.key) => {
                    Some("accepted for MMM compatibility, not used by mmm")
                }
                "" if d.key == "max_kill_retries" => Some(
                    "not used: a demoted writer's running writes get kill_timeout (default 2 s) instead",
                ),
                _ => None,
            };
            if let Some(why) = why {
                let scope = if kind.is_empty() {
                    String::new()
                } else {
                    format!(" in <{kind} {name}>")
                };
                notes.push(format!("{}: {}{scope}: {why}", d.at, d.key));
            }
        }
    }
    notes.sort();
    notes
}

const ROLE_KEYS: &[&str] = &["mode", "hosts", "ips", "prefer"];
const CHECK_KEYS: &[&str] = &[
    "check_period",
    "trap_period",
    "timeout",
    "restart_after",
    "max_backlog",
];
const MONITOR_KEYS: &[&str] = &[
    "ip",
    "port",
    "pid_path",
    "bin_path",
    "status_path",
    "ping_ips",
    "ping_interval",
    "flap_duration",
    "flap_count",
    "auto_set_online",
    "kill_host_bin",
    "kill_host_fences",
    "careful_startup",
    "mode",
    "wait_for_other_master",
    "agent_timeout",
    "metrics_port",
    "notify_bin",
];
const SOCKET_KEYS: &[&str] = &[
    "type",
    "cert_file",
    "key_file",
    "ca_file",
    "control_cert_file",
    "control_key_file",
];

impl Config {
    /// Builds and validates the model.
    pub fn from_raw(raw: &Raw) -> Result<Config, ConfigError> {
        let empty: &[Directive] = &[];
        let section = |k: &str, n: &str| -> &[Directive] {
            raw.sections
                .get(&(k.to_string(), n.to_string()))
                .map(Vec::as_slice)
                .unwrap_or(empty)
        };
        for (kind, name) in raw.sections.keys() {
            let known = matches!(
                kind.as_str(),
                "" | "host" | "role" | "check" | "monitor" | "socket" | "copy_method" | "etcd"
            );
            if !known {
                let at = raw.opened.get(&(kind.clone(), name.clone()));
                let msg = format!("unknown section <{kind}>");
                return Err(match at {
                    Some(o) => ConfigError::syntax(o, msg),
                    None => ConfigError::Invalid(msg),
                });
            }
            if matches!(kind.as_str(), "host" | "role" | "check" | "copy_method") && name.is_empty()
            {
                let at = raw.opened.get(&(kind.clone(), name.clone()));
                let msg = format!("section <{kind}> needs a name (<{kind} NAME>)");
                return Err(match at {
                    Some(o) => ConfigError::syntax(o, msg),
                    None => ConfigError::Invalid(msg),
                });
            }
        }
        let global = Scope::new(
            "the global scope".into(),
            None,
            GLOBAL_KEYS,
            &[section("", "")],
        )?;
        let semisync = global.bool("semisync", false)?;
        let mut cfg = Config {
            this: global.str("this"),
            debug: global.bool("debug", false)?,
            active_master_role: global
                .str("active_master_role")
                .unwrap_or_else(|| "writer".into()),
            max_kill_retries: global.num("max_kill_retries", 10)?,
            catchup_timeout: global.duration("catchup_timeout", Duration::from_secs(5))?,
            // Semi-synchronous replication promises no acknowledged write is lost: a
            // promotion that could not catch up is refused rather than allowed to lose one.
            catchup_strict: global.bool("catchup_strict", semisync)?,
            max_lag_on_failover: global
                .duration("max_lag_on_failover", DEFAULT_MAX_LAG_ON_FAILOVER)?,
            kill_timeout: global.duration("kill_timeout", Duration::from_secs(2))?,
            writer_lease: global.duration("writer_lease", DEFAULT_WRITER_LEASE)?,
            semisync,
            semisync_timeout: global.parse(
                "semisync_timeout",
                Some(DEFAULT_SEMISYNC_TIMEOUT),
                "a duration or 'never'",
                |v| match v.trim() {
                    "never" => Some(None),
                    v => parse_duration(v).map(Some),
                },
            )?,
            garp_rounds: global.num("garp_rounds", 3)?,
            peer_neighbours: global.num("peer_neighbours", DEFAULT_PEER_NEIGHBOURS)?,
            peer_ping_interval: global
                .duration("peer_ping_interval", DEFAULT_PEER_PING_INTERVAL)?,
            peer_ping_misses: global.num("peer_ping_misses", DEFAULT_PEER_PING_MISSES)?,
            monitor_ips: global.ips("monitor_ips")?,
            notes: Vec::new(),
            has_monitor: raw
                .sections
                .contains_key(&("monitor".into(), String::new())),
            monitor: MonitorConfig::default(),
            hosts: Vec::new(),
            roles: Vec::new(),
            checks: BTreeMap::new(),
            socket: SocketConfig::default(),
            etcd: None,
        };

        let host_default = section("host", "default");
        let check_default = section("check", "default");
        for id in &raw.order {
            let (kind, name) = (id.0.as_str(), id.1.as_str());
            let opened = raw.opened.get(id);
            match kind {
                "host" if name != "default" => {
                    let s = Scope::new(
                        format!("<host {name}>"),
                        opened,
                        HOST_KEYS,
                        &[host_default, section(kind, name)],
                    )?;
                    cfg.hosts.push(host(&s, name)?);
                }
                "role" => {
                    let s = Scope::new(
                        format!("<role {name}>"),
                        opened,
                        ROLE_KEYS,
                        &[section(kind, name)],
                    )?;
                    cfg.roles.push(role(&s, name)?);
                }
                "check" if name != "default" => {
                    let kind = CheckKind::from_name(name).ok_or_else(|| {
                        let msg = format!(
                            "unknown check '{name}' (ping, mysql, rep_threads, rep_backlog)"
                        );
                        match opened {
                            Some(o) => ConfigError::syntax(o, msg),
                            None => ConfigError::Invalid(msg),
                        }
                    })?;
                    let s = Scope::new(
                        format!("<check {name}>"),
                        opened,
                        CHECK_KEYS,
                        &[check_default, section("check", name)],
                    )?;
                    cfg.checks.insert(kind, check(&s)?);
                }
                _ => {}
            }
        }
        if !check_default.is_empty() {
            let s = Scope::new("<check default>".into(), None, CHECK_KEYS, &[check_default])?;
            let c = check(&s)?;
            for k in CheckKind::ALL {
                cfg.checks.entry(k).or_insert(c);
            }
        }
        // A template no host uses is still checked for unknown keys.
        Scope::new("<host default>".into(), None, HOST_KEYS, &[host_default])?;
        let m = Scope::new(
            "<monitor>".into(),
            raw.opened.get(&("monitor".into(), String::new())),
            MONITOR_KEYS,
            &[section("monitor", "")],
        )?;
        cfg.monitor = monitor(&m)?;
        let so = Scope::new(
            "<socket>".into(),
            None,
            SOCKET_KEYS,
            &[section("socket", "")],
        )?;
        cfg.socket = SocketConfig {
            ssl: match so.get("type") {
                None => false,
                Some(d) => match d.value.as_str() {
                    "plain" => false,
                    "ssl" => true,
                    v => {
                        return Err(ConfigError::syntax(
                            &d.at,
                            format!("socket type '{v}' is not plain or ssl"),
                        ))
                    }
                },
            },
            cert_file: so.path("cert_file"),
            key_file: so.path("key_file"),
            ca_file: so.path("ca_file"),
            control_cert_file: so.path("control_cert_file"),
            control_key_file: so.path("control_key_file"),
        };
        // copy_method sections are checked for unknown keys too.
        for ((kind, name), ds) in &raw.sections {
            if kind == "copy_method" {
                Scope::new(
                    format!("<copy_method {name}>"),
                    raw.opened.get(&(kind.clone(), name.clone())),
                    COPY_METHOD_KEYS,
                    &[ds.as_slice()],
                )?;
            }
        }
        cfg.etcd = etcd::lower(raw, &cfg.monitor)?;
        cfg.notes = unused_notes(raw);
        cfg.validate()?;
        Ok(cfg)
    }
}

fn host(s: &Scope, name: &str) -> Result<HostConfig, ConfigError> {
    let ipd = s.required("ip")?;
    let ip = s.ip(ipd, &ipd.value)?;
    let md = s.required("mode")?;
    let mode = match md.value.as_str() {
        "master" => HostMode::Master,
        "slave" => HostMode::Slave,
        v => {
            return Err(ConfigError::syntax(
                &md.at,
                format!("mode '{v}' is not master or slave"),
            ))
        }
    };
    let text = |k: &str| s.str(k).unwrap_or_default();
    Ok(HostConfig {
        name: name.into(),
        ip,
        mode,
        peer: s.str("peer").filter(|p| !p.is_empty()),
        cluster_interface: s.str("cluster_interface").unwrap_or_else(|| "eth0".into()),
        agent_port: s.num("agent_port", 9989)?,
        mysql_port: s.num("mysql_port", 3306)?,
        agent_user: text("agent_user"),
        agent_password: text("agent_password"),
        monitor_user: text("monitor_user"),
        monitor_password: text("monitor_password"),
        replication_user: text("replication_user"),
        replication_password: text("replication_password"),
        pid_path: s.path("pid_path"),
        bin_path: s.path("bin_path"),
        metrics_port: s.num("metrics_port", 9991)?,
    })
}

fn role(s: &Scope, name: &str) -> Result<RoleConfig, ConfigError> {
    let md = s.required("mode")?;
    let mode = match md.value.as_str() {
        "exclusive" => RoleMode::Exclusive,
        "balanced" => RoleMode::Balanced,
        v => {
            return Err(ConfigError::syntax(
                &md.at,
                format!("mode '{v}' is not exclusive or balanced"),
            ))
        }
    };
    Ok(RoleConfig {
        name: name.into(),
        mode,
        hosts: s.get("hosts").map(|d| list(&d.value)).unwrap_or_default(),
        ips: s.ips("ips")?,
        prefer: s.str("prefer").filter(|p| !p.is_empty()),
    })
}

fn check(s: &Scope) -> Result<CheckConfig, ConfigError> {
    let d = CheckConfig::default();
    let c = CheckConfig {
        check_period: s.duration("check_period", d.check_period)?,
        trap_period: s.duration("trap_period", d.trap_period)?,
        timeout: s.duration("timeout", d.timeout)?,
        restart_after: s.num("restart_after", d.restart_after)?,
        max_backlog: s.num("max_backlog", d.max_backlog)?,
    };
    for (k, v) in [("check_period", c.check_period), ("timeout", c.timeout)] {
        if v.is_zero() {
            let d = s.required(k)?;
            return Err(ConfigError::syntax(
                &d.at,
                format!("{k} must be greater than zero"),
            ));
        }
    }
    Ok(c)
}

fn monitor(s: &Scope) -> Result<MonitorConfig, ConfigError> {
    let d = MonitorConfig::default();
    let mode = match s.get("mode") {
        None => d.mode,
        Some(m) => Mode::from_config(&m.value).ok_or_else(|| {
            ConfigError::syntax(
                &m.at,
                format!("mode '{}' is not active, manual, wait or passive", m.value),
            )
        })?,
    };
    let ip = match s.get("ip") {
        None => d.ip,
        Some(x) => s.ip(x, &x.value)?,
    };
    for key in ["ping_interval", "agent_timeout"] {
        if let Some(d) = s.get(key) {
            if parse_duration(&d.value).is_some_and(|v| v.is_zero()) {
                return Err(ConfigError::syntax(
                    &d.at,
                    format!("{key} must be greater than zero"),
                ));
            }
        }
    }
    Ok(MonitorConfig {
        ip,
        port: s.num("port", d.port)?,
        pid_path: s.path("pid_path"),
        bin_path: s.path("bin_path"),
        status_path: s.path("status_path").unwrap_or(d.status_path),
        ping_ips: s.ips("ping_ips")?,
        ping_interval: s.duration("ping_interval", d.ping_interval)?,
        flap_duration: s.duration("flap_duration", d.flap_duration)?,
        flap_count: s.num("flap_count", d.flap_count)?,
        auto_set_online: s.duration("auto_set_online", d.auto_set_online)?,
        kill_host_bin: s.path("kill_host_bin"),
        kill_host_fences: s.bool("kill_host_fences", d.kill_host_fences)?,
        careful_startup: s.bool("careful_startup", d.careful_startup)?,
        mode,
        wait_for_other_master: s.duration("wait_for_other_master", d.wait_for_other_master)?,
        agent_timeout: s.duration("agent_timeout", d.agent_timeout)?,
        metrics_port: s.num("metrics_port", d.metrics_port)?,
        notify_bin: s.path("notify_bin"),
    })
}
