//! Role distribution, MySQL-MMM 2.2.1's `Roles.pm` (`docs/mmm-2.2.1.md` §3), with one change: an
//! orphaned active-master role goes to the most up-to-date eligible master.

use super::{Cluster, Event, HostState, Log, Mode, RoleIp, Time};

impl Cluster {
    /// Hosts that may receive role `r` now: listed for it, ONLINE, agent reachable.
    fn eligible(&self, r: usize) -> Vec<usize> {
        self.roles[r]
            .hosts
            .iter()
            .filter_map(|n| self.idx(n))
            .filter(|&i| self.hosts[i].state == HostState::Online && self.hosts[i].agent.reachable)
            .collect()
    }

    /// MMM's load of a host: its role IPs, the active-master role counting half.
    fn load(&self, i: usize) -> usize {
        self.hosts[i]
            .roles
            .iter()
            .map(|r| {
                if r.role == self.active_master_role {
                    1
                } else {
                    2
                }
            })
            .sum()
    }

    fn holder(&self, ip: &RoleIp) -> Option<usize> {
        self.hosts.iter().position(|h| h.roles.contains(ip))
    }

    fn assign(&mut self, ip: RoleIp, to: usize, from: Option<usize>) {
        let to_name = self.hosts[to].name.clone();
        let from_name = from.map(|f| self.hosts[f].name.clone());
        if let Some(f) = from {
            self.hosts[f].roles.remove(&ip);
            self.log(Log::info(format!(
                "Moving role '{ip}' from host '{}' to host '{to_name}'",
                from_name.clone().unwrap_or_default()
            )));
        } else {
            self.log(Log::info(format!(
                "Orphaned role '{ip}' has been assigned to '{to_name}'"
            )));
        }
        self.hosts[to].roles.insert(ip.clone());
        self.out.push(Action::Event(Event::RoleMoved {
            role: ip,
            from: from_name,
            to: Some(to_name),
        }));
    }

    /// Where an orphaned IP of role `r` goes.
    fn pick(&self, r: usize, candidates: &[usize]) -> Option<usize> {
        let role = &self.roles[r];
        if role.exclusive {
            if let Some(p) = role.prefer.as_deref().and_then(|p| self.idx(p)) {
                if candidates.contains(&p) {
                    return Some(p);
                }
            }
        }
        let is_master_role = role.name == self.active_master_role;
        // min by (less progress first negated → most up-to-date), then load, then list order.
        candidates
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(order, i)| {
                let progress = if is_master_role {
                    self.hosts[i].agent.progress
                } else {
                    None
                };
                (std::cmp::Reverse(progress), self.load(i), order)
            })
            .map(|(_, i)| i)
    }

    pub(super) fn distribute(&mut self, now: Time) {
        // ACTIVE mode: a role never stays on a host that is not ONLINE.
        if self.mode == Mode::Active {
            for i in 0..self.hosts.len() {
                if self.hosts[i].state != HostState::Online {
                    self.clear_roles(i, false);
                }
            }
        }
        // A failed-over writer that may still hold its lease keeps the writer role from
        // everyone else (`holistic.rs`).
        let fenced_wait = self.fence_holds(now);
        // 1. Orphaned roles, exclusive first.
        let mut order: Vec<usize> = (0..self.roles.len()).collect();
        order.sort_by_key(|&r| !self.roles[r].exclusive);
        for &r in &order {
            for ip in self.roles[r].ips.clone() {
                let rip = RoleIp {
                    role: self.roles[r].name.clone(),
                    ip,
                };
                if self.holder(&rip).is_some()
                    || (fenced_wait && rip.role == self.active_master_role)
                {
                    continue;
                }
                let mut cands = self.eligible(r);
                let writer_role = rip.role == self.active_master_role;
                if writer_role {
                    cands = self.promotable(cands);
                }
                let target = self
                    .switchover_to
                    .take()
                    .and_then(|t| self.idx(&t))
                    .filter(|t| writer_role && cands.contains(t));
                if let Some(to) = target.or_else(|| self.pick(r, &cands)) {
                    self.assign(rip, to, None);
                    if writer_role {
                        self.writer_lost_at = None;
                    }
                }
            }
        }
        // 2. ACTIVE mode: preferred exclusive roles go back to their preferred host.
        if self.mode == Mode::Active {
            for r in 0..self.roles.len() {
                let role = &self.roles[r];
                let (Some(pref), true) = (role.prefer.clone(), role.exclusive) else {
                    continue;
                };
                let Some(p) = self.idx(&pref) else { continue };
                if !self.eligible(r).contains(&p) {
                    continue;
                }
                let rip = RoleIp {
                    role: role.name.clone(),
                    ip: role.ips[0],
                };
                if let Some(h) = self.holder(&rip) {
                    if h != p && rip.role == self.active_master_role {
                        self.log(Log::info(format!(
                            "Moving role '{rip}' from host '{}' to host '{pref}'",
                            self.hosts[h].name
                        )));
                        self.begin_switchover(h, p, now);
                    } else if h != p {
                        self.assign(rip, p, Some(h));
                    }
                }
            }
        }
        // 3. Balanced roles: one IP at a time from the most to the least loaded host.
        for r in 0..self.roles.len() {
            if self.roles[r].exclusive {
                continue;
            }
            let cands = self.eligible(r);
            if cands.len() < 2 {
                continue;
            }
            let name = self.roles[r].name.clone();
            loop {
                let count = |c: &Cluster, i: usize| {
                    c.hosts[i].roles.iter().filter(|x| x.role == name).count()
                };
                let max = cands
                    .iter()
                    .copied()
                    .max_by_key(|&i| (count(self, i), std::cmp::Reverse(i)));
                let min = cands.iter().copied().min_by_key(|&i| (count(self, i), i));
                let (Some(max), Some(min)) = (max, min) else {
                    break;
                };
                if count(self, max) <= count(self, min) + 1 {
                    break;
                }
                let Some(ip) = self.hosts[max]
                    .roles
                    .iter()
                    .rev()
                    .find(|x| x.role == name)
                    .cloned()
                else {
                    break;
                };
                self.assign(ip, min, Some(max));
            }
        }
    }
}

use super::Action;
