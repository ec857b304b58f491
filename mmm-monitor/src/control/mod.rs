//! `mmm_control` (and `mmm-monitor <command>`): MMM's commands and output, over gRPC.
//!
//! Parsing and rendering are pure and snapshot-tested; [`run`] talks to the monitor. Exit
//! status: 0 for `OK` replies and reports, 1 for `ERROR:` replies (including an unreachable
//! monitor), 2 for an invalid command line.

use mmm_proto::v1::{self as pb, monitor_client::MonitorClient};
use std::fmt::Write;

mod invocation;
pub use invocation::{invocation, Invocation};

/// MMM's help text.
pub const HELP: &str = "Valid commands are:
    help                              - show this message
    ping                              - ping monitor
    show                              - show status
    checks [<host>|all [<check>|all]] - show checks status
    set_online <host>                 - set host <host> online
    set_offline <host>                - set host <host> offline
    mode                              - print current mode.
    set_active                        - switch into active mode.
    set_manual                        - switch into manual mode.
    set_passive                       - switch into passive mode.
    move_role [--force] <role> <host> - move exclusive role <role> to host <host>
                                        (Only use --force if you know what you are doing!)
    set_ip <ip> <host>                - set role with ip <ip> to host <host>
    history [<n>]                     - last n decisions with the agents' steps (ours)
";

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlCmd {
    Help,
    Ping,
    Show,
    Checks {
        host: String,
        check: String,
    },
    SetOnline(String),
    SetOffline(String),
    Mode,
    SetMode(pb::Mode),
    MoveRole {
        role: String,
        host: String,
        force: bool,
    },
    SetIp {
        ip: String,
        host: String,
    },
    /// Ours: the last N decisions (0: 20).
    History(u32),
}

/// Parses MMM's command words; an error is MMM's `Invalid command '...'` followed by the help.
pub fn parse(words: &[String]) -> Result<ControlCmd, String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let cmd = match w.as_slice() {
        [] | ["help"] => ControlCmd::Help,
        ["ping"] => ControlCmd::Ping,
        ["show"] => ControlCmd::Show,
        ["checks"] => ControlCmd::Checks {
            host: "all".into(),
            check: "all".into(),
        },
        ["checks", h] => ControlCmd::Checks {
            host: h.to_string(),
            check: "all".into(),
        },
        ["checks", h, c] => ControlCmd::Checks {
            host: h.to_string(),
            check: c.to_string(),
        },
        ["set_online", h] => ControlCmd::SetOnline(h.to_string()),
        ["set_offline", h] => ControlCmd::SetOffline(h.to_string()),
        ["mode"] => ControlCmd::Mode,
        ["set_active"] => ControlCmd::SetMode(pb::Mode::Active),
        ["set_manual"] => ControlCmd::SetMode(pb::Mode::Manual),
        ["set_passive"] => ControlCmd::SetMode(pb::Mode::Passive),
        ["move_role", "--force", r, h] => ControlCmd::MoveRole {
            role: r.to_string(),
            host: h.to_string(),
            force: true,
        },
        ["move_role", r, h] => ControlCmd::MoveRole {
            role: r.to_string(),
            host: h.to_string(),
            force: false,
        },
        ["set_ip", ip, h] => ControlCmd::SetIp {
            ip: ip.to_string(),
            host: h.to_string(),
        },
        ["history"] => ControlCmd::History(0),
        ["history", n] if n.parse::<u32>().is_ok() => {
            ControlCmd::History(n.parse().unwrap_or_default())
        }
        _ => return Err(format!("Invalid command '{}'\n\n{HELP}", w.join(" "))),
    };
    Ok(cmd)
}

fn state_name(s: i32) -> &'static str {
    mmm_proto::convert::host_state(s).name()
}

/// MMM's name of a mode as the wire carries it (`UNKNOWN` for a number no mode has).
pub fn mode_name(m: i32) -> &'static str {
    mmm_proto::convert::mode(m)
        .map(|m| m.name())
        .unwrap_or("UNKNOWN")
}

/// `history`: each decision as a timeline — time, kind and epoch, what changed, then every
/// agent's answer (`+ms` after the decision) with its steps' durations.
pub fn render_history(r: &pb::HistoryReply) -> String {
    render_history_in(r, &chrono::Local)
}

/// [`render_history`] with times in `tz`.
pub fn render_history_in<Tz: chrono::TimeZone>(r: &pb::HistoryReply, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let mut out = String::new();
    for e in &r.entries {
        let ms = e.at_unix_ms.rem_euclid(1000);
        let _ = writeln!(
            out,
            "{}.{ms:03}  {} (epoch {})",
            fmt_time_in(e.at_unix_ms, tz),
            e.kind,
            e.epoch
        );
        for c in &e.changes {
            let _ = writeln!(out, "    {c}");
        }
        for a in &e.agents {
            let steps: Vec<String> = a
                .steps
                .iter()
                .map(|s| {
                    let fail = if s.ok { "" } else { " FAILED" };
                    format!("{} {:.1} ms{fail}", s.name, s.micros as f64 / 1000.0)
                })
                .collect();
            let what = if a.ok {
                steps.join(", ")
            } else {
                format!("not applied: {}", a.error)
            };
            let _ = writeln!(out, "    {:<8} +{} ms  {what}", a.host, a.took_ms);
        }
        if e.applied_ms > 0 {
            let _ = writeln!(out, "    applied by every agent in {} ms", e.applied_ms);
        }
    }
    out
}

fn history_json(r: &pb::HistoryReply) -> serde_json::Value {
    serde_json::json!(r.entries.iter().map(|e| serde_json::json!({
        "at_unix_ms": e.at_unix_ms, "epoch": e.epoch, "kind": e.kind, "changes": e.changes,
        "applied_ms": e.applied_ms,
        "agents": e.agents.iter().map(|a| serde_json::json!({
            "host": a.host, "ok": a.ok, "took_ms": a.took_ms, "error": a.error,
            "steps": a.steps.iter().map(|s| serde_json::json!({"name": s.name, "micros": s.micros, "ok": s.ok, "detail": s.detail})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })).collect::<Vec<_>>())
}

/// `mmm_control`'s command line described for clap (its man page and completions; the tool
/// itself parses MMM's words with [`parse`]).
pub fn command() -> clap::Command {
    use clap::{Arg, ArgAction, Command};
    let cmd = |name: &'static str, about: &'static str| Command::new(name).about(about);
    Command::new("mmm_control")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true)
        .about("Control the mmm monitor with MMM's commands (mmm_control of MySQL-MMM 2.x)")
        .long_about(
            "Talks gRPC to the monitor named by /etc/mysql-mmm/mmm_mon.conf (mmm_mon_CLUSTER.conf with @CLUSTER), prints MMM's texts. Exit status: 0 OK, 1 ERROR (including an unreachable monitor), 2 invalid command line.",
        )
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("JSON output for scripts"))
        .arg(Arg::new("monitor").long("monitor").value_name("HOST:PORT").help("The monitor's address (also $MMM_MONITOR)"))
        .arg(Arg::new("config").long("config").short('c').value_name("FILE").help("The monitor's configuration"))
        .subcommands([
            cmd("help", "show this message"),
            cmd("ping", "ping monitor"),
            cmd("show", "show status"),
            cmd("checks", "show checks status: checks [<host>|all [<check>|all]]"),
            cmd("set_online", "set host <host> online"),
            cmd("set_offline", "set host <host> offline"),
            cmd("mode", "print current mode."),
            cmd("set_active", "switch into active mode."),
            cmd("set_manual", "switch into manual mode."),
            cmd("set_passive", "switch into passive mode."),
            cmd("move_role", "move exclusive role <role> to host <host>: move_role [--force] <role> <host>"),
            cmd("set_ip", "set role with ip <ip> to host <host> (passive mode)"),
            cmd("history", "last n decisions with every agent's steps: history [<n>] (ours)"),
        ])
}

/// `show`, as MMM prints it.
pub fn render_show(r: &pb::ShowReply) -> String {
    let mut out = String::new();
    // Ours: monitor high availability (`<etcd>`).
    if r.ha {
        match r.leader.as_str() {
            "" => out += "# Warning: no monitor leads at the moment\n",
            l => {
                let _ = writeln!(out, "# Monitor leader: {l}");
            }
        }
        if !r.etcd_error.is_empty() {
            let _ = writeln!(
                out,
                "# Warning: etcd does not answer this monitor ({}): it can neither lead nor follow; what it shows may be stale",
                r.etcd_error
            );
        }
    }
    if r.mode == pb::Mode::Passive as i32 {
        out += "# --- Monitor is in PASSIVE MODE ---\n";
        if !r.passive_cause.is_empty() {
            let _ = writeln!(out, "# Cause: {}", r.passive_cause);
        }
    }
    let mut hosts = r.hosts.clone();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    for h in hosts.iter().filter(|h| !h.agent_reachable) {
        let _ = writeln!(out, "# Warning: agent on host {} is not reachable", h.name);
    }
    for h in hosts.iter().filter(|h| !h.analysis.is_empty()) {
        let _ = writeln!(out, "# Warning: host {}: {}", h.name, h.analysis);
    }
    for h in hosts.iter().filter(|h| !h.drift.is_empty()) {
        let _ = writeln!(
            out,
            "# Warning: host {} differs from its role table ({}); pushed again {} time(s)",
            h.name, h.drift, h.repairs
        );
    }
    for h in &hosts {
        let mut roles: Vec<String> = h
            .roles
            .iter()
            .map(|r| format!("{}({})", r.name, r.ip))
            .collect();
        roles.sort();
        let _ = writeln!(
            out,
            "  {}({}) {}/{}. Roles: {}",
            h.name,
            h.ip,
            h.mode,
            state_name(h.state),
            roles.join(", ")
        );
    }
    for p in &r.preferences {
        let _ = if p.current_host == p.preferred_host {
            writeln!(
                out,
                "# Role {} is assigned to it's preferred host {}.",
                p.role, p.preferred_host
            )
        } else if p.current_host.is_empty() {
            writeln!(
                out,
                "# Role {} is not assigned; its preferred host is {}.",
                p.role, p.preferred_host
            )
        } else {
            writeln!(
                out,
                "# Role {} is assigned to host {}, but its preferred host is {}.",
                p.role, p.current_host, p.preferred_host
            )
        };
    }
    out
}

/// `yyyy/MM/dd HH:mm:ss` in local time (as MMM prints it) of a Unix time in milliseconds.
pub fn fmt_time(unix_ms: i64) -> String {
    fmt_time_in(unix_ms, &chrono::Local)
}

/// [`fmt_time`] in time zone `tz`.
pub fn fmt_time_in<Tz: chrono::TimeZone>(unix_ms: i64, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    chrono::DateTime::from_timestamp_millis(unix_ms)
        .map(|t| t.with_timezone(tz).format("%Y/%m/%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "????/??/?? ??:??:??".into())
}

/// `checks`, as MMM prints it (host names padded to the longest).
pub fn render_checks(r: &pb::ChecksReply) -> String {
    render_checks_in(r, &chrono::Local)
}

/// [`render_checks`] with times in `tz`.
pub fn render_checks_in<Tz: chrono::TimeZone>(r: &pb::ChecksReply, tz: &Tz) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let width = r.checks.iter().map(|c| c.host.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in &r.checks {
        let _ = writeln!(
            out,
            "{:<width$}  {:<11}  [last change: {}]  {}",
            c.host,
            c.check,
            fmt_time_in(c.last_change_unix_ms, tz),
            c.message
        );
    }
    out
}

/// The reply of a successful call, as text and as JSON.
pub enum Output {
    Text(String),
    Json(serde_json::Value),
}

fn show_json(r: &pb::ShowReply) -> serde_json::Value {
    serde_json::json!({
        "mode": mode_name(r.mode),
        "passive_cause": r.passive_cause,
        "epoch": r.epoch,
        "leader": (r.ha && !r.leader.is_empty()).then_some(&r.leader),
        "etcd_error": (!r.etcd_error.is_empty()).then_some(&r.etcd_error),
        "hosts": r.hosts.iter().map(|h| serde_json::json!({
            "name": h.name, "ip": h.ip, "mode": h.mode, "state": state_name(h.state),
            "agent_reachable": h.agent_reachable,
            "drift": (!h.drift.is_empty()).then_some(&h.drift), "repairs": h.repairs,
            "analysis": (!h.analysis.is_empty()).then_some(&h.analysis),
            "roles": h.roles.iter().map(|r| serde_json::json!({"role": r.name, "ip": r.ip})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Where `mmm_control` connects: the monitor's address and, with `<socket> type ssl`, the TLS
/// files (the same as the monitor's).
pub struct Target {
    pub addr: String,
    pub tls: Option<mmm_proto::TlsFiles>,
}

impl Target {
    /// The address from `explicit` or else from the monitor's `config` (or else the default
    /// port on localhost); TLS from `config` whenever it can be read. A TLS file that cannot
    /// be used is an error (the text to print).
    pub fn resolve(config: &std::path::Path, explicit: Option<String>) -> Result<Target, String> {
        let cfg = mmm_common::config::Config::load(config).ok();
        let addr = explicit
            .or_else(|| {
                cfg.as_ref()
                    .map(|c| format!("{}:{}", c.monitor.ip, c.monitor.port))
            })
            .unwrap_or_else(|| format!("127.0.0.1:{}", crate::DEFAULT_MONITOR_PORT));
        let tls = match &cfg {
            Some(c) => mmm_proto::TlsFiles::for_control(&c.socket)
                .map_err(|e| format!("ERROR: {}: {e}\n", config.display()))?,
            None => None,
        };
        Ok(Target { addr, tls })
    }
}

/// Runs `cmd` against the monitor at `target`; returns what to print and the exit status.
pub async fn run(target: &Target, cmd: ControlCmd, json: bool) -> (String, i32) {
    if cmd == ControlCmd::Help {
        return (HELP.into(), 0);
    }
    let addr = &target.addr;
    let unreachable = || ("ERROR: Can't connect to monitor daemon!\n".to_string(), 1);
    let ep = match mmm_proto::endpoint(addr, target.tls.as_ref()) {
        Ok(ep) => ep,
        Err(mmm_proto::EndpointError::Address(..)) => return unreachable(),
        Err(e @ mmm_proto::EndpointError::Tls(_)) => return (format!("ERROR: {e}\n"), 1),
    };
    let ep = ep
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(30));
    let Ok(ch) = ep.connect().await else {
        return unreachable();
    };
    let mut c = MonitorClient::new(ch);
    let reply = |r: Result<tonic::Response<pb::CommandReply>, tonic::Status>| match r {
        Ok(r) => Ok(r.into_inner().message),
        Err(s) => Err(s),
    };
    let r: Result<Output, tonic::Status> = match cmd {
        ControlCmd::Help => unreachable!(),
        ControlCmd::Ping => reply(c.ping(pb::PingRequest {}).await).map(Output::Text),
        ControlCmd::Show => c.show(pb::ShowRequest {}).await.map(|r| {
            let r = r.into_inner();
            if json { Output::Json(show_json(&r)) } else { Output::Text(render_show(&r)) }
        }),
        ControlCmd::Checks { host, check } => c.checks(pb::ChecksRequest { host, check }).await.map(|r| {
            let r = r.into_inner();
            if json {
                Output::Json(serde_json::json!(r.checks.iter().map(|c| serde_json::json!({
                    "host": c.host, "check": c.check, "last_change_unix_ms": c.last_change_unix_ms, "message": c.message,
                    "result": pb::CheckResult::try_from(c.result).map(|x| x.as_str_name().trim_start_matches("CHECK_RESULT_")).unwrap_or("UNSPECIFIED"),
                })).collect::<Vec<_>>()))
            } else {
                Output::Text(render_checks(&r))
            }
        }),
        ControlCmd::SetOnline(host) => reply(c.set_online(pb::HostRequest { host }).await).map(Output::Text),
        ControlCmd::SetOffline(host) => reply(c.set_offline(pb::HostRequest { host }).await).map(Output::Text),
        ControlCmd::Mode => c.get_mode(pb::GetModeRequest {}).await.map(|r| Output::Text(mode_name(r.into_inner().mode).into())),
        ControlCmd::SetMode(m) => reply(c.set_mode(pb::SetModeRequest { mode: m as i32 }).await).map(Output::Text),
        ControlCmd::MoveRole { role, host, force } => reply(c.move_role(pb::MoveRoleRequest { role, host, force }).await).map(Output::Text),
        ControlCmd::SetIp { ip, host } => reply(c.set_ip(pb::SetIpRequest { ip, host }).await).map(Output::Text),
        ControlCmd::History(limit) => c.history(pb::HistoryRequest { limit }).await.map(|r| {
            let r = r.into_inner();
            if json {
                Output::Json(history_json(&r))
            } else {
                Output::Text(render_history(&r))
            }
        }),
    };
    render(r, json)
}

/// What `mmm_control` prints for a call's result, and its exit status: an UNAVAILABLE that
/// the monitor did not answer itself (`mmm_proto::convert::is_answered`) means the monitor
/// could not be reached, as MMM says it.
fn render(r: Result<Output, tonic::Status>, json: bool) -> (String, i32) {
    let unreachable = || ("ERROR: Can't connect to monitor daemon!\n".to_string(), 1);
    match r {
        Ok(Output::Json(v)) => (format!("{v}\n"), 0),
        Ok(Output::Text(t)) if json => (
            format!(
                "{}\n",
                serde_json::json!({ "ok": true, "message": t.trim_end() })
            ),
            0,
        ),
        Ok(Output::Text(t)) => (
            if t.ends_with('\n') {
                t
            } else {
                format!("{t}\n")
            },
            0,
        ),
        Err(s) if s.code() == tonic::Code::Unavailable && !mmm_proto::convert::is_answered(&s) => {
            unreachable()
        }
        Err(s) if json => (
            format!(
                "{}\n",
                serde_json::json!({ "ok": false, "message": s.message() })
            ),
            1,
        ),
        Err(s) => (format!("{}\n", s.message()), 1),
    }
}

#[cfg(test)]
mod tests;
