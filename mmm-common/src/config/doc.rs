//! The reference of every directive (MMM's and ours, with defaults): the source of the
//! `mmm.conf(5)` man page, checked against the keys the parser accepts (`lower.rs`).

/// One directive's documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectiveDoc {
    /// `global`, `host`, `role`, `check`, `monitor`, `socket`, `etcd` or `copy_method`.
    pub scope: &'static str,
    /// The key (`ssh_*` stands for every key with that prefix).
    pub key: &'static str,
    /// The default as written in a file (empty: none / required).
    pub default: &'static str,
    /// Ours (not in MySQL-MMM 2.2.1).
    pub ours: bool,
    /// What it does.
    pub text: &'static str,
}

const fn d(
    scope: &'static str,
    key: &'static str,
    default: &'static str,
    ours: bool,
    text: &'static str,
) -> DirectiveDoc {
    DirectiveDoc {
        scope,
        key,
        default,
        ours,
        text,
    }
}

/// Every directive, by scope.
pub const DIRECTIVES: &[DirectiveDoc] = &[
    d("global", "this", "", false, "The host this agent runs on (agent configs only)."),
    d("global", "debug", "0", false, "1 raises the log level to debug."),
    d("global", "active_master_role", "writer", false, "The exclusive role whose holder is the writable active master."),
    d("global", "max_kill_retries", "10", false, "Accepted; replaced by kill_timeout."),
    d("global", "catchup_timeout", "5s", true, "Longest wait for a new writer's relay log (and a repointed replica's) before promotion."),
    d("global", "catchup_strict", "the semisync value", true, "yes: refuse a promotion whose catch-up (the relay log, or the old writer's final GTID position after it confirmed its demotion) did not finish within catchup_timeout, rather than promote with a possible loss; the monitor pushes the table again until it does. Defaults to yes with semisync yes (lossless), no otherwise (MMM's behaviour)."),
    d("global", "max_lag_on_failover", "5s", true, "A master candidate whose replication lacked, at its last report, transactions the writer had reported more than this long before is not promoted when the writer fails (judged by GTID): the writer role stays unassigned."),
    d("global", "kill_timeout", "2s", true, "How long a demoted writer lets running writes finish before killing them."),
    d("global", "writer_lease", "2s", true, "The writer keeps write permission only while it heard from the monitor or reached a majority of its peers (see peer_neighbours) within this long; otherwise it fences itself, and the monitor waits it out before promoting another writer. At least 5 peer_ping_interval; 0 turns it off."),
    d("global", "semisync", "no", true, "yes: the agents run lossless semi-synchronous replication (AFTER_SYNC): the writer commits once the standby master received the transaction."),
    d("global", "semisync_timeout", "10s", true, "How long the writer waits for the standby's acknowledgement before falling back to asynchronous replication; never: it waits for a standby."),
    d("global", "garp_rounds", "3", true, "Gratuitous ARP rounds after a VIP is acquired (100 ms apart)."),
    d("global", "peer_neighbours", "4", true, "Each agent probes this many hosts on each side of it, in the order of the <host> sections (wrapping around), and a host that may be the writer every other such host; the writer lease counts the hosts the writer probes. Up to 2 × this + 1 hosts, every agent probes every host (0-32)."),
    d("global", "peer_ping_interval", "200ms", true, "How often each agent probes its peers by ICMP (up to 3 echoes per probe within the period), 20ms-1s. Shorter finds a dead host sooner; the monitor's wait for an old writer's lease grows with it (one period of margin)."),
    d("global", "peer_ping_misses", "2", true, "How many probes in a row must fail before an agent counts a peer unreachable (1-10): in the writer lease's majority, and in the reports the monitor takes as a second observer of a dead host. Fewer finds a dead host sooner and is fooled by a lossy link more often."),
    d("global", "monitor_ips", "<monitor> ip", true, "Addresses monitors call agents from; in plaintext mode agents take control calls from these only."),
    d("global", "default_copy_method", "", false, "mmm_tools; accepted, not used."),
    d("global", "clone_dirs", "", false, "mmm_tools; accepted, not used."),
    d("host", "ip", "", false, "The host's address (required)."),
    d("host", "mode", "", false, "master or slave (required)."),
    d("host", "peer", "", false, "The other master (required for masters)."),
    d("host", "cluster_interface", "eth0", false, "The interface the XDP data plane and the VIPs live on."),
    d("host", "agent_port", "9989", false, "The agent's gRPC port."),
    d("host", "mysql_port", "3306", false, "The server's port."),
    d("host", "agent_user", "", false, "Account the agent uses on its local server (needs SUPER or READ_ONLY ADMIN, REPLICATION SLAVE ADMIN, PROCESS, CONNECTION ADMIN)."),
    d("host", "agent_password", "", false, "Its password."),
    d("host", "monitor_user", "", false, "Account the monitor checks with (REPLICATION CLIENT; SLAVE MONITOR on MariaDB 10.5+)."),
    d("host", "monitor_password", "", false, "Its password."),
    d("host", "replication_user", "", false, "Account replicas read the binary log with."),
    d("host", "replication_password", "", false, "Its password (never shown in any log or report)."),
    d("host", "pid_path", "", false, "The agent's pid file (written at start, removed at exit)."),
    d("host", "bin_path", "", false, "Accepted; not used by the agent."),
    d("host", "metrics_port", "9991", true, "The agent's Prometheus endpoint (http://ip:port/metrics; 0: none)."),
    d("host", "mysql_pidfile", "", false, "MMM's agent; accepted, not used."),
    d("host", "mysql_rcscript", "", false, "MMM's agent; accepted, not used."),
    d("host", "mysql_cnf", "", false, "MMM's agent; accepted, not used."),
    d("host", "backup_dir", "", false, "mmm_tools; accepted, not used."),
    d("host", "restore_dir", "", false, "mmm_tools; accepted, not used."),
    d("host", "clone_dirs", "", false, "mmm_tools; accepted, not used."),
    d("host", "ssh_*", "", false, "mmm_tools; accepted, not used."),
    d("host", "tools_*", "", false, "mmm_tools; accepted, not used."),
    d("host", "lvm_*", "", false, "mmm_tools; accepted, not used."),
    d("role", "mode", "", false, "exclusive (one IP, one host) or balanced (IPs spread over hosts)."),
    d("role", "hosts", "", false, "Hosts that may hold the role."),
    d("role", "ips", "", false, "The role's VIPs (one for an exclusive role)."),
    d("role", "prefer", "", false, "Exclusive roles: the host that takes the role back when ONLINE (ACTIVE mode)."),
    d("check", "check_period", "1s", false, "How often the check runs (MMM: 5)."),
    d("check", "trap_period", "2s", false, "How long a failure must last to count alone (MMM: 10)."),
    d("check", "timeout", "1s", false, "Longest a check may take (MMM: 2)."),
    d("check", "restart_after", "10000", false, "Accepted; no effect (as in MMM)."),
    d("check", "max_backlog", "60", false, "rep_backlog: seconds behind the source that count as an error."),
    d("monitor", "ip", "127.0.0.1", false, "Where the monitor's gRPC service listens."),
    d("monitor", "port", "9988", false, "Its port."),
    d("monitor", "pid_path", "", false, "The monitor's pid file (written at start, removed at exit)."),
    d("monitor", "bin_path", "", false, "Directory a relative kill_host_bin is found in."),
    d("monitor", "status_path", "/var/lib/mmm-monitor/mmm_mond.status", false, "The status file (states, roles, epoch), written atomically; the history is kept beside it (.history). The default is the systemd unit's StateDirectory."),
    d("monitor", "ping_ips", "", false, "Addresses the monitor pings to know its own network is up."),
    d("monitor", "ping_interval", "1", false, "How often (must be above zero)."),
    d("monitor", "flap_duration", "3600", false, "Window of flap detection, in seconds."),
    d("monitor", "flap_count", "3", false, "Departures from ONLINE within flap_duration that make a host flapping."),
    d("monitor", "auto_set_online", "0", false, "Seconds in AWAITING_RECOVERY after which a host is set ONLINE by itself (0: never)."),
    d("monitor", "kill_host_bin", "", false, "Run as `kill_host_bin HOST 1|0` when a demoted host's agent cannot be told."),
    d("monitor", "kill_host_fences", "0", true, "kill_host_bin is a fence (STONITH: power off, switch port shut): exit 0 proves the host takes no more writes. A failed-over writer whose agent cannot confirm is fenced at once and its role moves without waiting out writer_lease. Needs kill_host_bin."),
    d("monitor", "careful_startup", "1", false, "A role IP on two hosts at start-up makes the monitor PASSIVE."),
    d("monitor", "mode", "active", false, "active, manual, wait or passive at start-up."),
    d("monitor", "wait_for_other_master", "120", false, "WAIT mode: seconds after which one ONLINE master suffices (0: wait for ever)."),
    d("monitor", "agent_timeout", "2s", true, "Longest one call to an agent may take (must be above zero)."),
    d("monitor", "metrics_port", "9990", true, "The monitor's Prometheus endpoint (http://ip:port/metrics; 0: none)."),
    d("monitor", "notify_bin", "", true, "Run on every state change and role move: arguments `state HOST FROM TO`, `role ROLE(IP) FROM TO` or `mode FROM TO`, the event as JSON on stdin; 10 s at most."),
    d("socket", "type", "plain", false, "ssl: mutual TLS on every gRPC connection; plain: MMM-compatible, unauthenticated."),
    d("socket", "cert_file", "", false, "This party's certificate (PEM)."),
    d("socket", "key_file", "", false, "Its key (PEM; refused when others may read it)."),
    d("socket", "ca_file", "", false, "The cluster CA (PEM)."),
    d("socket", "control_cert_file", "cert_file", true, "The certificate mmm_control presents (operator identity)."),
    d("socket", "control_key_file", "key_file", true, "Its key."),
    d("etcd", "endpoints", "", true, "Monitor high availability: etcd's client addresses (host:port, comma-separated). With <etcd>, every monitor of the cluster campaigns, the leader alone acts, and the state lives in etcd instead of the status file."),
    d("etcd", "prefix", "/mmm", true, "The key prefix of this cluster (several clusters may share one etcd)."),
    d("etcd", "lease_ttl", "2s", true, "The leader lease's TTL, whole seconds (2-60): a leader that cannot renew it stops acting before another monitor may lead."),
    d("etcd", "name", "<monitor> ip", true, "This monitor's name in the election and in show (unique per cluster)."),
    d("etcd", "ca_file", "", true, "TLS to etcd: the CA that signed etcd's certificate (with cert_file and key_file)."),
    d("etcd", "cert_file", "", true, "TLS to etcd: this monitor's client certificate."),
    d("etcd", "key_file", "", true, "TLS to etcd: its key."),
    d("copy_method", "backup_command", "", false, "mmm_tools; accepted, not used."),
    d("copy_method", "restore_command", "", false, "mmm_tools; accepted, not used."),
    d("copy_method", "incremental_command", "", false, "mmm_tools; accepted, not used."),
    d("copy_method", "incremental", "", false, "mmm_tools; accepted, not used."),
    d("copy_method", "single_run", "", false, "mmm_tools; accepted, not used."),
    d("copy_method", "true_copy", "", false, "mmm_tools; accepted, not used."),
];

/// `mmm.conf(5)` as roff.
pub fn man_page() -> String {
    let mut s = String::from(
        ".TH MMM.CONF 5 \"\" \"mmm\" \"File formats\"\n.SH NAME\nmmm.conf \\- configuration of mmm (mmm_common.conf, mmm_agent.conf, mmm_mon.conf)\n\
.SH DESCRIPTION\nMySQL-MMM 2.x files, read unchanged: \\fBkey value\\fR lines (lists comma-separated), \
\\fB#\\fR comments, \\fBinclude FILE\\fR, sections \\fB<kind>\\fR or \\fB<kind name>\\fR closed by \\fB</kind>\\fR \
(\\fB<kind name/>\\fR is empty); \\fB<host default>\\fR and \\fB<check default>\\fR are templates. \
Durations are seconds (0.5) or carry a unit (500ms, 2s). A file that others may read or write is refused. \
Directives marked (ours) are additions to MySQL-MMM 2.2.1.\n",
    );
    let mut scope = "";
    for x in DIRECTIVES {
        if x.scope != scope {
            scope = x.scope;
            let title = if scope == "global" {
                "GLOBAL DIRECTIVES".to_string()
            } else {
                format!("<{}> SECTION", scope.to_uppercase())
            };
            s += &format!(
                ".SH {}\n",
                title.replace('<', "\\(la").replace('>', "\\(ra")
            );
        }
        let default = if x.default.is_empty() {
            String::new()
        } else {
            format!(" (default: {})", x.default)
        };
        let ours = if x.ours { " (ours)" } else { "" };
        s += &format!(
            ".TP\n\\fB{}\\fR{default}{ours}\n{}\n",
            x.key.replace('-', "\\-"),
            x.text.replace('-', "\\-")
        );
    }
    s += ".SH SEE ALSO\nmmm\\-agent(8), mmm\\-monitor(8), mmm_control(8)\n";
    s
}
