//! CPU placement for the benchmarks: on a small machine, which CPU does what decides what a
//! number means.

use anyhow::{Context, Result};

/// CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Pins task `pid` (0: the calling thread) to CPU `cpu`.
pub fn pin(pid: i32, cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET and sched_setaffinity get valid
    // pointers and sizes.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("sched_setaffinity({pid}, CPU {cpu})"));
        }
    }
    Ok(())
}

/// Time CPU `cpu` (all CPUs: `None`) spent working — user, system, interrupts; not idle, not
/// stolen by the hypervisor — in clock ticks, from `/proc/stat`.
pub fn busy_ticks(cpu: Option<usize>) -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    let name = cpu.map_or("cpu".to_string(), |c| format!("cpu{c}"));
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .with_context(|| format!("/proc/stat has no {name} line"))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal …
    Ok([0, 1, 2, 5, 6]
        .iter()
        .map(|i| f.get(*i).copied().unwrap_or(0))
        .sum())
}

/// Clock ticks per second of `/proc/stat`.
pub fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64
}
