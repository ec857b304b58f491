//! Start-up (`docs/mmm-2.2.1.md` §5): before the first distribution the monitor looks at what the agents
//! report. The same role IP on two hosts is a conflict: with `careful_startup` the monitor goes
//! PASSIVE and says why. Otherwise the active master is voted — +4 writable, +2 writer IP
//! configured, +1 the status file says so, +1 its data plane answers for the IP, +1 per replica
//! reading from it — and a winner that really serves (writable, or holding the IP) keeps the
//! role and is taken ONLINE if its checks pass, so a monitor started without its status file
//! does not take the writer away from a running cluster.

use super::{Cluster, HostState, Log, Mode, RoleIp, Time};
use mmm_common::config::CheckKind;
use std::{collections::BTreeMap, net::Ipv4Addr};

impl Cluster {
    pub(super) fn startup_vote(&mut self, now: Time) {
        let mut holders: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
        for h in self.hosts.iter().filter(|h| h.agent.reachable) {
            let mut ips = h.agent.configured_ips.clone();
            ips.extend(h.agent.owned_ips.iter().copied());
            ips.sort();
            ips.dedup();
            for ip in ips {
                holders.entry(ip).or_default().push(h.name.clone());
            }
        }
        let role_ips: Vec<Ipv4Addr> = self
            .roles
            .iter()
            .flat_map(|r| r.ips.iter().copied())
            .collect();
        let conflicts: Vec<String> = holders
            .iter()
            .filter(|(ip, hs)| hs.len() > 1 && role_ips.contains(ip))
            .map(|(ip, hs)| format!("{ip} is configured on {}", hs.join(" and ")))
            .collect();
        if !conflicts.is_empty() {
            let what = conflicts.join("; ");
            if self.careful_startup {
                self.log(Log::fatal(format!(
                    "Conflicting roles at start-up: {what} - switching to PASSIVE mode"
                )));
                self.passive_cause = Some(format!(
                    "Conflicting roles at start-up (careful_startup): {what}"
                ));
                self.set_mode(Mode::Passive);
                return;
            }
            self.log(Log::error(format!(
                "Conflicting roles at start-up: {what} (careful_startup off: resolving by vote)"
            )));
        }
        let Some(role) = self
            .roles
            .iter()
            .find(|r| r.name == self.active_master_role)
            .cloned()
        else {
            return;
        };
        let Some(&ip) = role.ips.first() else { return };
        let score = |c: &Cluster, name: &str| -> (u32, bool) {
            let Some(h) = c.host(name) else {
                return (0, false);
            };
            // A host whose mysqld is down serves nothing, whatever it held.
            if h.agent.mysqld_down || h.failed(CheckKind::Mysql) {
                return (0, false);
            }
            let writable = h.agent.writable == Some(true);
            let configured = h.agent.configured_ips.contains(&ip);
            let owned = h.agent.owned_ips.contains(&ip);
            let file = h.roles.iter().any(|r| r.role == role.name);
            let replicas = c
                .hosts
                .iter()
                .filter(|o| o.agent.source_ip == Some(h.ip))
                .count() as u32;
            let s = 4 * u32::from(writable)
                + 2 * u32::from(configured)
                + u32::from(file)
                + u32::from(owned)
                + replicas;
            (s, writable || configured || owned)
        };
        let votes: Vec<(String, u32, bool)> = role
            .hosts
            .iter()
            .map(|n| {
                let (s, serves) = score(self, n);
                (n.clone(), s, serves)
            })
            .collect();
        let summary = votes
            .iter()
            .map(|(n, s, _)| format!("{n}={s}"))
            .collect::<Vec<_>>()
            .join(", ");
        let winner = votes
            .iter()
            .filter(|(_, s, serves)| *serves && *s > 0)
            .fold(None::<&(String, u32, bool)>, |best, v| match best {
                Some(b) if b.1 >= v.1 => Some(b),
                _ => Some(v),
            });
        let Some((name, _, _)) = winner.cloned() else {
            self.log(Log::info(format!(
                "Start-up vote for the active master: {summary}: no host serves it"
            )));
            return;
        };
        self.log(Log::info(format!(
            "Start-up vote for the active master: {summary}: '{name}' keeps role '{}'",
            role.name
        )));
        let rip = RoleIp {
            role: role.name.clone(),
            ip,
        };
        for h in &mut self.hosts {
            if h.name != name {
                h.roles.remove(&rip);
            }
        }
        let Some(i) = self.idx(&name) else { return };
        self.hosts[i].roles.insert(rip);
        if self.hosts[i].state != HostState::Online && self.hosts[i].alive() {
            self.change_state(
                i,
                HostState::Online,
                now,
                " because it serves the active master role (start-up vote)",
                false,
            );
        }
    }
}
