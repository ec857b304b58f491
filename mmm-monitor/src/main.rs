//! `mmm-monitor`: the monitor daemon and control CLI (not built yet: see the monitor issue).

fn main() -> anyhow::Result<()> {
    anyhow::bail!(
        "mmm-monitor is not implemented yet in this version; only the data plane (mmm-agent) is"
    )
}
