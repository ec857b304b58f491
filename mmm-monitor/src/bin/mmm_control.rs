//! `mmm_control [@cluster] <command> [args]`: MMM's control tool, talking gRPC to the monitor.
//! The monitor's address comes from `/etc/mysql-mmm/mmm_mon[_cluster].conf` (or `$MMM_MONITOR`,
//! or `--monitor host:port`, or `--config FILE`); `--json` prints JSON.

use mmm_monitor::control;
use std::path::PathBuf;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut json = false;
    let mut monitor = std::env::var("MMM_MONITOR").ok();
    let mut config: Option<PathBuf> = None;
    let mut cluster: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--version" | "-V" => {
                println!("mmm_control {}", env!("MMM_VERSION"));
                return;
            }
            "--json" => {
                json = true;
                args.remove(i);
            }
            "--monitor" | "--config" | "-c" if i + 1 < args.len() => {
                let v = args.remove(i + 1);
                if args.remove(i) == "--monitor" {
                    monitor = Some(v);
                } else {
                    config = Some(PathBuf::from(v));
                }
            }
            s if s.starts_with('@') && i == 0 => {
                cluster = Some(s[1..].to_string());
                args.remove(i);
            }
            _ => i += 1,
        }
    }
    let cmd = match control::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            std::process::exit(2);
        }
    };
    let path = config.unwrap_or_else(|| match &cluster {
        Some(c) => PathBuf::from(format!("/etc/mysql-mmm/mmm_mon_{c}.conf")),
        None => PathBuf::from("/etc/mysql-mmm/mmm_mon.conf"),
    });
    let target = match control::Target::resolve(&path, monitor) {
        Ok(t) => t,
        Err(e) => {
            eprint!("{e}");
            std::process::exit(2);
        }
    };
    let (out, code) = control::run(&target, cmd, json).await;
    print!("{out}");
    std::process::exit(code);
}
