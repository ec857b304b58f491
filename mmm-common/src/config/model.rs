//! The configuration's typed model: what a set of MMM files says, after lowering
//! (`lower.rs`) and validation (`validate.rs`). Defaults are documented on each field; our
//! additions to MMM's directives are marked "Ours" (`docs/mmm-2.2.1.md` §7 lists MMM's).

use crate::roles::Mode;
use std::{collections::BTreeMap, net::Ipv4Addr, path::PathBuf, time::Duration};

/// The default writer lease (`writer_lease`): 2 s — above the monitor's 1 s status poll
/// (its renewals when no peer answers) and ten of the agents' 200 ms peer pings.
pub const DEFAULT_WRITER_LEASE: Duration = Duration::from_secs(2);

/// The most hosts one cluster may define (`<host>` sections), enforced by the config check:
/// the size `cargo xtask bench scale` measures the monitor at (BENCHMARKS.md "Scale"). The
/// agents' probing is bounded (`peers.rs`); the monitor checks every host every check period.
/// MMM clusters are two masters and a few slaves; larger fleets are several clusters.
pub const MAX_HOSTS: usize = 256;

/// The default `peer_neighbours`: 4 — clusters of up to 9 hosts probe every host, as MMM's
/// small clusters always did.
pub const DEFAULT_PEER_NEIGHBOURS: usize = 4;

/// The largest `peer_neighbours` accepted (each agent probes at most twice as many hosts,
/// plus the other writer candidates).
pub const MAX_PEER_NEIGHBOURS: usize = 32;

/// The default `max_lag_on_failover`: 5 s.
pub const DEFAULT_MAX_LAG_ON_FAILOVER: Duration = Duration::from_secs(5);

/// The default `semisync_timeout`: 10 s (the servers' own default).
pub const DEFAULT_SEMISYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// The shortest writer lease accepted (other than 0, off), in peer-ping periods
/// (`peer_ping_interval`): five (1 s at the default 200 ms).
pub const MIN_WRITER_LEASE_PINGS: u32 = 5;

/// The default `peer_ping_interval`: 200 ms.
pub const DEFAULT_PEER_PING_INTERVAL: Duration = Duration::from_millis(200);

/// The range of `peer_ping_interval` accepted: 20 ms – 1 s.
pub const PEER_PING_INTERVALS: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(20)..=Duration::from_secs(1);

/// The default `peer_ping_misses`: 2.
pub const DEFAULT_PEER_PING_MISSES: u32 = 2;

/// The range of `peer_ping_misses` accepted: 1 – 10.
pub const PEER_PING_MISSES: std::ops::RangeInclusive<u32> = 1..=10;

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
    /// Ours: the agent's Prometheus endpoint's port (0: none).
    pub metrics_port: u16,
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
    /// Ours: `kill_host_bin` is a fence (STONITH): its exit status 0 proves the host can no
    /// longer take a client write (powered off, its switch port shut). A failed-over writer
    /// whose agent cannot confirm its demotion is then fenced at once and its role moves
    /// without waiting out its writer lease (ARCHITECTURE.md "No split brain"). Needs
    /// `kill_host_bin`.
    pub kill_host_fences: bool,
    pub careful_startup: bool,
    /// Mode at start-up (`mode`; default active).
    pub mode: Mode,
    pub wait_for_other_master: Duration,
    /// Ours: how long one call to an agent may take before it counts as unreachable.
    pub agent_timeout: Duration,
    /// Ours: the Prometheus endpoint's port (0: none).
    pub metrics_port: u16,
    /// Ours: run on every state change and role move (event as arguments and JSON on stdin).
    pub notify_bin: Option<PathBuf>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            ip: Ipv4Addr::LOCALHOST,
            port: 9988,
            pid_path: None,
            bin_path: None,
            status_path: PathBuf::from("/var/lib/mmm-monitor/mmm_mond.status"),
            ping_ips: Vec::new(),
            ping_interval: Duration::from_secs(1),
            flap_duration: Duration::from_secs(3600),
            flap_count: 3,
            auto_set_online: Duration::ZERO,
            kill_host_bin: None,
            kill_host_fences: false,
            careful_startup: true,
            mode: Mode::Active,
            wait_for_other_master: Duration::from_secs(120),
            agent_timeout: Duration::from_secs(2),
            metrics_port: 9990,
            notify_bin: None,
        }
    }
}

/// `<socket>`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SocketConfig {
    /// `type ssl`: mutual TLS on every gRPC connection (`type plain`: MMM-compatible).
    pub ssl: bool,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// Ours: the certificate `mmm_control` (and `mmm-monitor <command>`) presents, carrying an
    /// operator identity; default `cert_file`.
    pub control_cert_file: Option<PathBuf>,
    /// Ours: its key; default `key_file`.
    pub control_key_file: Option<PathBuf>,
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
    /// Ours: on catch-up timeout refuse the promotion (true) or promote and log the loss
    /// (false). Default: the value of `semisync` (lossless replication asks for no loss).
    pub catchup_strict: bool,
    /// Ours (Patroni's `maximum_lag_on_failover`): a master candidate whose replication had
    /// not received, by its last report, transactions the writer had reported more than this
    /// long before is not promoted after the writer fails (`mmm-monitor` `core/gtids.rs`).
    /// Judged from GTIDs; without GTIDs only the IO-thread and cut rules apply.
    pub max_lag_on_failover: Duration,
    /// Ours: how long a demoted writer lets running writes finish before killing them.
    pub kill_timeout: Duration,
    /// Ours: the writer lease (ARCHITECTURE.md "The writer lease"). The writer's agent keeps
    /// write permission only while it heard from the monitor, or reached a majority of its
    /// peers (`peers.rs`, counting itself), within this long; the monitor promotes no new
    /// writer while the old one could still hold it. Zero turns the lease off.
    pub writer_lease: Duration,
    /// Ours: semi-synchronous replication managed by the agents (`AFTER_SYNC`): the writer
    /// commits only once the standby master received the transaction (MariaDB's built-in
    /// semisync; MySQL 8's `rpl_semi_sync_source`/`replica` plugins, installed when missing).
    pub semisync: bool,
    /// Ours: how long the writer waits for the standby's acknowledgement before it falls back
    /// to asynchronous replication (`rpl_semi_sync_master_timeout`); `None` (`never`): it
    /// never falls back, writes wait for a standby.
    pub semisync_timeout: Option<Duration>,
    /// Ours: gratuitous ARP rounds after acquiring a VIP.
    pub garp_rounds: u32,
    /// Ours: how many hosts on each side of it, in the order of the `<host>` sections, an
    /// agent probes (`peers.rs`; writer candidates also probe each other).
    pub peer_neighbours: usize,
    /// Ours: how often each agent probes its peers by ICMP (each probe up to 3 echoes within
    /// this period; default 200 ms, 20 ms – 1 s). It also bounds the monitor's fence wait:
    /// one period is part of the margin it adds to the writer lease (`mmm-monitor`
    /// `holistic.rs` `lease_margin`).
    pub peer_ping_interval: Duration,
    /// Ours: how many probes in a row must fail before a peer counts as unreachable (default
    /// 2, 1 – 10): in the writer lease's majority and in the reports the monitor uses as a
    /// second observer.
    pub peer_ping_misses: u32,
    /// Ours: the addresses monitors call agents from. In plaintext mode an agent accepts
    /// control calls from these only (default: the `<monitor>` ip, when the agent's files
    /// have a `<monitor>` section). Unused with `<socket> type ssl`, where identities decide.
    pub monitor_ips: Vec<Ipv4Addr>,
    /// Directives accepted for MMM compatibility that mmm does not use, each with its
    /// `file:line` (`config check` prints them).
    pub notes: Vec<String>,
    /// Whether a `<monitor>` section was given.
    pub has_monitor: bool,
    pub monitor: MonitorConfig,
    /// In the order they were first defined.
    pub hosts: Vec<HostConfig>,
    pub roles: Vec<RoleConfig>,
    pub checks: BTreeMap<CheckKind, CheckConfig>,
    pub socket: SocketConfig,
    /// Ours: monitor high availability on etcd (`<etcd>`, monitor configs); `None`: one
    /// monitor with its status file, as MMM.
    pub etcd: Option<super::EtcdConfig>,
}
