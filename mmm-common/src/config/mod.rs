//! MMM configuration, read unchanged from MySQL-MMM 2.x files (`mmm_common.conf`,
//! `mmm_mon.conf`, `mmm_agent.conf`) into a typed model.
//!
//! Syntax (as MMM): `#` comments; `key value` (the value is everything after the first run of
//! whitespace; lists are comma-separated); `include FILE` (relative to the including file);
//! sections `<kind>` / `<kind name>` … `</kind>`; `<host default>` and `<check default>` are
//! templates for every host / check; booleans `true/on/yes/1`, `false/off/no/0`. Unknown
//! directives are errors that name `file:line`; a file holding a password that others can read
//! or write is refused.
//!
//! Our additions (documented in [`DURATION_SYNTAX`] and on each field): durations may be
//! fractional seconds (`0.5`) or carry a unit (`500ms`, `2s`); global `catchup_timeout`,
//! `catchup_strict`, `kill_timeout`, `garp_rounds`; `<monitor>` `agent_timeout`.
//! Defaults are faster than MMM's where MMM's slowness was the weakness (see [`CheckConfig`]).

mod raw;

pub use raw::{Directive, Origin, Raw};
use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    time::Duration,
};

/// How durations may be written.
pub const DURATION_SYNTAX: &str = "seconds (e.g. 5 or 0.5) or with a unit (500ms, 2s)";

/// A configuration error; the message names the file and line where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path}: holds passwords but is readable or writable by others (mode {mode:03o}); run chmod o-rwx on it")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{at}: {msg}")]
    At { at: String, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{inner} (included from {from})")]
    Included {
        inner: Box<ConfigError>,
        from: String,
    },
}

impl ConfigError {
    fn syntax(at: &Origin, msg: String) -> Self {
        ConfigError::At {
            at: at.to_string(),
            msg,
        }
    }
    fn included_from(self, at: &Origin) -> Self {
        ConfigError::Included {
            inner: Box::new(self),
            from: at.to_string(),
        }
    }
}

/// `master` or `slave`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostMode {
    Master,
    Slave,
}

impl std::fmt::Display for HostMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HostMode::Master => "master",
            HostMode::Slave => "slave",
        })
    }
}

/// `<host NAME>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    pub name: String,
    pub ip: Ipv4Addr,
    pub mode: HostMode,
    /// The other master (required for masters).
    pub peer: Option<String>,
    pub cluster_interface: String,
    pub agent_port: u16,
    pub mysql_port: u16,
    pub agent_user: String,
    pub agent_password: String,
    pub monitor_user: String,
    pub monitor_password: String,
    pub replication_user: String,
    pub replication_password: String,
    pub pid_path: Option<PathBuf>,
    pub bin_path: Option<PathBuf>,
}

/// `exclusive` (one IP, one host) or `balanced` (IPs spread over hosts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleMode {
    Exclusive,
    Balanced,
}

/// `<role NAME>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleConfig {
    pub name: String,
    pub mode: RoleMode,
    pub hosts: Vec<String>,
    pub ips: Vec<Ipv4Addr>,
    pub prefer: Option<String>,
}

/// The four checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckKind {
    Ping,
    Mysql,
    RepThreads,
    RepBacklog,
}

impl CheckKind {
    pub const ALL: [CheckKind; 4] = [
        CheckKind::Ping,
        CheckKind::Mysql,
        CheckKind::RepThreads,
        CheckKind::RepBacklog,
    ];
    /// MMM's name of the check.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Ping => "ping",
            CheckKind::Mysql => "mysql",
            CheckKind::RepThreads => "rep_threads",
            CheckKind::RepBacklog => "rep_backlog",
        }
    }
    /// The check called `name`.
    pub fn from_name(name: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// `<check NAME>`. Defaults (ours; MMM's in brackets): check_period 1 s [5 s], trap_period
/// 2 s [10 s], timeout 1 s [2 s], max_backlog 60 s [60 s]. Values written in a config win.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    pub check_period: Duration,
    pub trap_period: Duration,
    pub timeout: Duration,
    /// Accepted for compatibility; MMM ignores it too.
    pub restart_after: u64,
    /// rep_backlog only: seconds behind master that count as an error.
    pub max_backlog: u64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            check_period: Duration::from_secs(1),
            trap_period: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            restart_after: 10_000,
            max_backlog: 60,
        }
    }
}

/// Monitor mode at start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MonitorMode {
    Active,
    Manual,
    Wait,
    Passive,
}

/// `<monitor>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MonitorConfig {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub pid_path: Option<PathBuf>,
    pub bin_path: Option<PathBuf>,
    pub status_path: PathBuf,
    pub ping_ips: Vec<Ipv4Addr>,
    pub ping_interval: Duration,
    pub flap_duration: Duration,
    pub flap_count: u32,
    /// 0: never.
    pub auto_set_online: Duration,
    pub kill_host_bin: Option<PathBuf>,
    pub careful_startup: bool,
    pub mode: MonitorMode,
    pub wait_for_other_master: Duration,
    /// Ours: how long one call to an agent may take before it counts as unreachable.
    pub agent_timeout: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            ip: Ipv4Addr::LOCALHOST,
            port: 9988,
            pid_path: None,
            bin_path: None,
            status_path: PathBuf::from("/var/lib/mmm/mmm_mond.status"),
            ping_ips: Vec::new(),
            ping_interval: Duration::from_secs(1),
            flap_duration: Duration::from_secs(3600),
            flap_count: 3,
            auto_set_online: Duration::ZERO,
            kill_host_bin: None,
            careful_startup: true,
            mode: MonitorMode::Active,
            wait_for_other_master: Duration::from_secs(120),
            agent_timeout: Duration::from_secs(2),
        }
    }
}

/// `<socket>`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SocketConfig {
    pub ssl: bool,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

/// Everything in a set of MMM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The agent's own host (`this`), in agent configs.
    pub this: Option<String>,
    pub debug: bool,
    pub active_master_role: String,
    pub max_kill_retries: u32,
    /// Ours: longest wait for a new writer's relay log to be applied before promotion.
    pub catchup_timeout: Duration,
    /// Ours: on catch-up timeout refuse the promotion (true) or promote and log the loss (false).
    pub catchup_strict: bool,
    /// Ours: how long a demoted writer lets running writes finish before killing them.
    pub kill_timeout: Duration,
    /// Ours: gratuitous ARP rounds after acquiring a VIP.
    pub garp_rounds: u32,
    /// Whether a `<monitor>` section was given.
    pub has_monitor: bool,
    pub monitor: MonitorConfig,
    /// In the order they were first defined.
    pub hosts: Vec<HostConfig>,
    pub roles: Vec<RoleConfig>,
    pub checks: BTreeMap<CheckKind, CheckConfig>,
    pub socket: SocketConfig,
}

/// Keys per scope (for unknown-directive errors and the missing-space hint).
const GLOBAL_KEYS: &[&str] = &[
    "this",
    "debug",
    "active_master_role",
    "max_kill_retries",
    "default_role",
    "role",
    "catchup_timeout",
    "catchup_strict",
    "kill_timeout",
    "garp_rounds",
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
];
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
    "careful_startup",
    "mode",
    "wait_for_other_master",
    "agent_timeout",
];
const SOCKET_KEYS: &[&str] = &["type", "cert_file", "key_file", "ca_file"];

/// Parses a duration: plain (fractional) seconds or with `ms`/`s`.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1.0)
    } else {
        (v, 1.0)
    };
    let x: f64 = num.trim().parse().ok()?;
    if !x.is_finite() || x < 0.0 || x * scale > 1e9 {
        return None;
    }
    Some(Duration::from_secs_f64(x * scale))
}

/// Parses MMM's booleans.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" => Some(true),
        "0" | "false" | "off" | "no" => Some(false),
        _ => None,
    }
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The directives of one section with the template's applied below them, keyed by name
/// (a later directive overrides an earlier one).
struct Scope<'a> {
    what: String,
    opened: Option<&'a Origin>,
    items: BTreeMap<&'a str, &'a Directive>,
}

impl<'a> Scope<'a> {
    fn new(
        what: String,
        opened: Option<&'a Origin>,
        allowed: &[&str],
        layers: &[&'a [Directive]],
    ) -> Result<Self, ConfigError> {
        let mut items = BTreeMap::new();
        for layer in layers {
            for d in layer.iter() {
                if !allowed.contains(&d.key.as_str()) {
                    return Err(unknown(d, allowed, &what));
                }
                items.insert(d.key.as_str(), d);
            }
        }
        Ok(Scope {
            what,
            opened,
            items,
        })
    }

    fn get(&self, key: &str) -> Option<&'a Directive> {
        self.items.get(key).copied()
    }

    fn str(&self, key: &str) -> Option<String> {
        self.get(key).map(|d| d.value.clone())
    }

    fn required(&self, key: &str) -> Result<&'a Directive, ConfigError> {
        self.get(key).ok_or_else(|| {
            let msg = format!("{} has no '{key}'", self.what);
            match self.opened {
                Some(o) => ConfigError::syntax(o, msg),
                None => ConfigError::Invalid(msg),
            }
        })
    }

    fn parse<T>(
        &self,
        key: &str,
        default: T,
        want: &str,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(d) => f(&d.value).ok_or_else(|| {
                ConfigError::syntax(&d.at, format!("{key} '{}' is not {want}", d.value))
            }),
        }
    }

    fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.parse(key, default, DURATION_SYNTAX, parse_duration)
    }

    fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        self.parse(
            key,
            default,
            "a boolean (yes/no, on/off, true/false, 1/0)",
            parse_bool,
        )
    }

    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError> {
        self.parse(key, default, "a whole number in range", |v| v.parse().ok())
    }

    fn ip(&self, d: &Directive, v: &str) -> Result<Ipv4Addr, ConfigError> {
        v.trim().parse().map_err(|_| {
            ConfigError::syntax(
                &d.at,
                format!("{} '{}' is not an IPv4 address", d.key, v.trim()),
            )
        })
    }

    fn ips(&self, key: &str) -> Result<Vec<Ipv4Addr>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(d) => list(&d.value).iter().map(|v| self.ip(d, v)).collect(),
        }
    }

    fn path(&self, key: &str) -> Option<PathBuf> {
        self.str(key).filter(|s| !s.is_empty()).map(PathBuf::from)
    }
}

fn unknown(d: &Directive, allowed: &[&str], scope: &str) -> ConfigError {
    let hint = allowed
        .iter()
        .find(|k| d.key.len() > k.len() && d.key.starts_with(*k))
        .map(|k| format!(" (a space missing between '{k}' and its value?)"))
        .unwrap_or_default();
    ConfigError::syntax(
        &d.at,
        format!("unknown directive '{}' in {scope}{hint}", d.key),
    )
}

impl Config {
    /// Reads `path` (and its includes) and validates it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_raw(&Raw::read(path)?)
    }

    /// Parses configuration text (includes resolved relative to `name`).
    pub fn parse_str(name: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::from_raw(&Raw::parse_str(name, text)?)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&HostConfig> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// Settings of one check.
    pub fn check(&self, kind: CheckKind) -> CheckConfig {
        self.checks.get(&kind).copied().unwrap_or_default()
    }

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
                "" | "host" | "role" | "check" | "monitor" | "socket"
            );
            if !known {
                let at = raw.opened.get(&(kind.clone(), name.clone()));
                let msg = format!("unknown section <{kind}>");
                return Err(match at {
                    Some(o) => ConfigError::syntax(o, msg),
                    None => ConfigError::Invalid(msg),
                });
            }
            if matches!(kind.as_str(), "host" | "role" | "check") && name.is_empty() {
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
        let mut cfg = Config {
            this: global.str("this"),
            debug: global.bool("debug", false)?,
            active_master_role: global
                .str("active_master_role")
                .unwrap_or_else(|| "writer".into()),
            max_kill_retries: global.num("max_kill_retries", 10)?,
            catchup_timeout: global.duration("catchup_timeout", Duration::from_secs(5))?,
            catchup_strict: global.bool("catchup_strict", false)?,
            kill_timeout: global.duration("kill_timeout", Duration::from_secs(2))?,
            garp_rounds: global.num("garp_rounds", 3)?,
            has_monitor: raw
                .sections
                .contains_key(&("monitor".into(), String::new())),
            monitor: MonitorConfig::default(),
            hosts: Vec::new(),
            roles: Vec::new(),
            checks: BTreeMap::new(),
            socket: SocketConfig::default(),
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
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let inv = |m: String| Err(ConfigError::Invalid(m));
        if self.socket.ssl {
            let s = &self.socket;
            let missing: Vec<&str> = [
                ("cert_file", s.cert_file.is_none()),
                ("key_file", s.key_file.is_none()),
                ("ca_file", s.ca_file.is_none()),
            ]
            .iter()
            .filter(|(_, m)| *m)
            .map(|(k, _)| *k)
            .collect();
            if !missing.is_empty() {
                return inv(format!(
                    "<socket> type ssl needs cert_file, key_file and ca_file; missing: {}",
                    missing.join(", ")
                ));
            }
        }
        let mut seen_ips = BTreeMap::new();
        for h in &self.hosts {
            if let Some(p) = &h.peer {
                if self.host(p).is_none() {
                    return inv(format!(
                        "host '{}' has peer '{p}', which is not a defined host",
                        h.name
                    ));
                }
                if p == &h.name {
                    return inv(format!("host '{}' is its own peer", h.name));
                }
            } else if h.mode == HostMode::Master {
                return inv(format!(
                    "host '{}' is a master without a peer (set 'peer' to the other master)",
                    h.name
                ));
            }
            if let Some(other) = seen_ips.insert(h.ip, &h.name) {
                return inv(format!(
                    "hosts '{other}' and '{}' have the same ip {}",
                    h.name, h.ip
                ));
            }
        }
        let mut role_ips = BTreeMap::new();
        for r in &self.roles {
            for hn in &r.hosts {
                if self.host(hn).is_none() {
                    return inv(format!(
                        "role '{}' names host '{hn}', which is not defined",
                        r.name
                    ));
                }
            }
            if r.hosts.is_empty() {
                return inv(format!("role '{}' has no hosts", r.name));
            }
            if r.ips.is_empty() {
                return inv(format!("role '{}' has no ips", r.name));
            }
            if r.mode == RoleMode::Exclusive && r.ips.len() != 1 {
                return inv(format!(
                    "exclusive role '{}' must have exactly one ip, not {}",
                    r.name,
                    r.ips.len()
                ));
            }
            if let Some(p) = &r.prefer {
                if r.mode != RoleMode::Exclusive {
                    return inv(format!(
                        "role '{}': prefer is only for exclusive roles",
                        r.name
                    ));
                }
                if !r.hosts.contains(p) {
                    return inv(format!(
                        "role '{}' prefers '{p}', which is not among its hosts",
                        r.name
                    ));
                }
            }
            for ip in &r.ips {
                if let Some(other) = role_ips.insert(*ip, &r.name) {
                    return inv(format!(
                        "ip {ip} belongs to roles '{other}' and '{}'",
                        r.name
                    ));
                }
                if let Some(h) = self.hosts.iter().find(|h| h.ip == *ip) {
                    return inv(format!(
                        "role ip {ip} of '{}' is the address of host '{}'",
                        r.name, h.name
                    ));
                }
            }
        }
        if let Some(amr) = self.role(&self.active_master_role) {
            if amr.mode != RoleMode::Exclusive {
                return inv(format!(
                    "active_master_role '{}' must be an exclusive role",
                    amr.name
                ));
            }
        } else if !self.roles.is_empty() {
            return inv(format!(
                "active_master_role '{}' is not a defined role",
                self.active_master_role
            ));
        }
        if let Some(t) = &self.this {
            if self.host(t).is_none() {
                return inv(format!("this '{t}' is not a defined host"));
            }
        }
        Ok(())
    }

    /// Hosts that may hold the active-master role.
    pub fn master_candidates(&self) -> Vec<&str> {
        self.role(&self.active_master_role)
            .map(|r| r.hosts.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// Monitor-specific validation (MMM refuses to start with more than two hosts able to hold
    /// the active-master role).
    pub fn validate_for_monitor(&self) -> Result<(), ConfigError> {
        if !self.has_monitor {
            return Err(ConfigError::Invalid(
                "no <monitor> section: is this the monitor's config (mmm_mon.conf)?".into(),
            ));
        }
        let c = self.master_candidates();
        if c.len() > 2 {
            return Err(ConfigError::Invalid(format!(
                "more than two hosts can hold the active master role '{}': {}",
                self.active_master_role,
                c.join(", ")
            )));
        }
        if self.hosts.is_empty() {
            return Err(ConfigError::Invalid("no hosts defined".into()));
        }
        Ok(())
    }

    /// Agent-specific validation: `this` must be set.
    pub fn validate_for_agent(&self) -> Result<&HostConfig, ConfigError> {
        let t = self.this.as_deref().ok_or_else(|| {
            ConfigError::Invalid(
                "no 'this' directive: the agent's config must say which host it runs on".into(),
            )
        })?;
        self.host(t)
            .ok_or_else(|| ConfigError::Invalid(format!("this '{t}' is not a defined host")))
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
        Some(m) => match m.value.as_str() {
            "active" => MonitorMode::Active,
            "manual" => MonitorMode::Manual,
            "wait" => MonitorMode::Wait,
            "passive" => MonitorMode::Passive,
            v => {
                return Err(ConfigError::syntax(
                    &m.at,
                    format!("mode '{v}' is not active, manual, wait or passive"),
                ))
            }
        },
    };
    let ip = match s.get("ip") {
        None => d.ip,
        Some(x) => s.ip(x, &x.value)?,
    };
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
        careful_startup: s.bool("careful_startup", d.careful_startup)?,
        mode,
        wait_for_other_master: s.duration("wait_for_other_master", d.wait_for_other_master)?,
        agent_timeout: s.duration("agent_timeout", d.agent_timeout)?,
    })
}

#[cfg(test)]
mod tests;
