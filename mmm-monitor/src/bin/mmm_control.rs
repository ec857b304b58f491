//! `mmm_control [@cluster] <command> [args]`: MMM's control tool, talking gRPC to the monitor.
//! The monitor's address comes from `/etc/mysql-mmm/mmm_mon[_cluster].conf` (or `$MMM_MONITOR`,
//! or `--monitor host:port`, or `--config FILE`); `--json` prints JSON.

use mmm_monitor::control;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let inv = control::invocation(
        std::env::args().skip(1).collect(),
        std::env::var("MMM_MONITOR").ok(),
    );
    if inv.version {
        println!("mmm_control {}", env!("MMM_VERSION"));
        return;
    }
    let cmd = match control::parse(&inv.words) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            std::process::exit(2);
        }
    };
    let target = match control::Target::resolve(&inv.config, inv.monitor) {
        Ok(t) => t,
        Err(e) => {
            eprint!("{e}");
            std::process::exit(2);
        }
    };
    let (out, code) = control::run(&target, cmd, inv.json).await;
    print!("{out}");
    std::process::exit(code);
}
