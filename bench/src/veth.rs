//! A veth's own counters (`ethtool -S`): per receive queue, frames seen by XDP and what it
//! did with them.

use anyhow::{bail, Context, Result};
use mmm_tests::Net;

/// Sum of the veth's `rx_queue_N_<counter>` counters in `ns`.
pub fn rx_counter(net: &Net, ns: &str, counter: &str) -> Result<u64> {
    let suffix = format!("_{counter}");
    let out = net.exec(ns, "ethtool", &["-S", "eth0"])?;
    let mut total = 0;
    let mut seen = false;
    for line in out.lines() {
        let Some((k, v)) = line.trim().split_once(':') else {
            continue;
        };
        if k.starts_with("rx_queue_") && k.ends_with(&suffix) {
            total += v
                .trim()
                .parse::<u64>()
                .with_context(|| format!("ethtool -S: bad value in '{line}'"))?;
            seen = true;
        }
    }
    if !seen {
        bail!("ethtool -S eth0 in {ns} shows no rx_queue_*_{counter} counter:\n{out}");
    }
    Ok(total)
}
