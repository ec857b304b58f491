//! Tearing labs down: on drop, on `lab down`, and for test runs that died without cleaning
//! up (only processes the lab recorded, by pid, and only while they still run a lab program).

use super::{run_dir, Lab};
use crate::netns::Net;
use anyhow::Result;
use std::{
    path::Path,
    process::{Command, Stdio},
};

impl Lab {
    /// Leaves the lab running after this process exits (`lab up`).
    pub fn detach(mut self) {
        let _ = std::fs::remove_file(self.run.join("owner"));
        for (_, s) in std::mem::take(&mut self.servers) {
            s.leak();
        }
        let net = std::mem::replace(&mut self.net, Net::placeholder());
        net.leak();
        std::mem::forget(self);
    }

    /// Removes every namespace, pin, process and directory of lab `prefix` (only processes the
    /// lab recorded, by pid, and only if they still run one of the lab's programs).
    pub fn down(prefix: &str) -> Result<Vec<String>> {
        let mut done = Vec::new();
        let run = run_dir(prefix);
        if let Ok(pids) = std::fs::read_to_string(run.join("pids")) {
            for line in pids.lines() {
                let mut w = line.split_whitespace();
                let (Some(pid), Some(what)) =
                    (w.next().and_then(|p| p.parse::<i32>().ok()), w.next())
                else {
                    continue;
                };
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if !comm.trim().is_empty() && what.starts_with(comm.trim())
                    || (what == "mariadbd" && comm.trim() == "mariadbd")
                {
                    // SAFETY: signalling a process the lab started, checked by name.
                    unsafe {
                        libc::kill(pid, libc::SIGCONT);
                        libc::kill(pid, libc::SIGKILL);
                    }
                    done.push(format!("killed {what} ({pid})"));
                }
            }
        }
        for ns in existing_namespaces(prefix)?.collect::<Vec<_>>() {
            let _ = Command::new("ip").args(["netns", "del", &ns]).status();
            done.push(format!("deleted namespace {ns}"));
        }
        if let Ok(entries) = std::fs::read_dir("/sys/fs/bpf/mmm") {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("{prefix}-")) {
                    let _ = std::fs::remove_dir_all(e.path());
                    done.push(format!("removed pins {}", e.path().display()));
                }
            }
            let _ = std::fs::remove_dir("/sys/fs/bpf/mmm");
        }
        if run.exists() {
            std::fs::remove_dir_all(&run)?;
            done.push(format!("removed {}", run.display()));
        }
        Ok(done)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.kill_monitor();
        for (_, pid) in std::mem::take(&mut self.extra) {
            self.net.kill(pid);
        }
        let hosts: Vec<String> = self.agents.keys().cloned().collect();
        for h in hosts {
            self.kill_agent(&h);
        }
        self.servers.clear();
        for h in self.cfg.hosts.clone() {
            self.net.track_pins(self.pin_root(&h.name));
        }
        self.net.track_pins(self.pin_root("br"));
        let _ = std::fs::remove_dir_all(&self.run);
    }
}

/// Network namespaces whose name starts with `<prefix>-`.
pub fn existing_namespaces(prefix: &str) -> Result<impl Iterator<Item = String>> {
    let p = format!("{prefix}-");
    Ok(namespaces()?.into_iter().filter(move |n| n.starts_with(&p)))
}

/// Every network namespace's name (`ip netns list`).
fn namespaces() -> Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .stdin(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Tears down what test runs that died without cleaning up (SIGKILL, a CI timeout) left: labs
/// whose `owner` process is gone, and the namespaces (and pins) of `Net::new` segments,
/// `mmmt<pid>…`, whose process is gone. Labs left running on purpose (`lab up`) have no
/// owner and are never touched. Returns what was done.
pub fn sweep_dead() -> Result<Vec<String>> {
    let mut prefixes = std::collections::BTreeSet::new();
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(prefix) = name.strip_prefix("mmm-lab-") else {
                continue;
            };
            let owner = std::fs::read_to_string(e.path().join("owner"))
                .ok()
                .and_then(|o| o.trim().parse::<u32>().ok());
            if owner.is_some_and(|pid| !alive(pid)) {
                prefixes.insert(prefix.to_string());
            }
        }
    }
    for ns in namespaces()? {
        let prefix = ns.split('-').next().unwrap_or_default();
        let Some(rest) = prefix.strip_prefix("mmmt") else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if let Ok(pid) = digits.parse::<u32>() {
            if !alive(pid) {
                prefixes.insert(prefix.to_string());
            }
        }
    }
    let mut done = Vec::new();
    for p in prefixes {
        done.extend(Lab::down(&p)?);
    }
    Ok(done)
}
