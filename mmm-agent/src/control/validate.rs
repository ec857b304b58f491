//! A role table checked against this agent's own configuration before anything is read or
//! done (whatever the transport: a forged or buggy table never reaches the server or the data
//! plane). Pure; the refusal names the problem and becomes INVALID_ARGUMENT.
//!
//! Epochs: a table may not jump more than `MAX_EPOCH_STEP` (2^32) above the applied epoch. The
//! monitor adds one per change, so no real cluster comes near it; an epoch of `u64::MAX` (which
//! would lock the real monitor out for good) is refused.

use crate::cli::fmt_mac;
use mmm_common::{
    config::Config,
    roles::{RoleTable, MAX_EPOCH_STEP},
};
use std::collections::BTreeMap;

/// Why a table is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("role table epoch {got} is more than {MAX_EPOCH_STEP} above the applied epoch {have}: refused")]
    EpochJump { have: u64, got: u64 },
    #[error("role table names host '{0}', which is not in this agent's configuration")]
    UnknownHost(String),
    #[error(
        "role table gives host '{host}' role '{role}', which is not in this agent's configuration"
    )]
    UnknownRole { host: String, role: String },
    #[error("role table gives host '{host}' {role}({ip}), but {ip} is not an ip of role '{role}'")]
    ForeignIp {
        host: String,
        role: String,
        ip: std::net::Ipv4Addr,
    },
    #[error("role table gives host '{host}' role '{role}', which only {allowed} may hold")]
    NotAllowed {
        host: String,
        role: String,
        allowed: String,
    },
    #[error("role table gives {ip} to both '{first}' and '{second}'")]
    TwoOwners {
        ip: std::net::Ipv4Addr,
        first: String,
        second: String,
    },
    #[error("role table's active master role is '{got}', the configuration's is '{want}'")]
    ActiveMasterRole { got: String, want: String },
    #[error("role table names '{named}' the active master, but {holder} holds role '{role}'")]
    ActiveMaster {
        named: String,
        holder: String,
        role: String,
    },
    #[error("role table gives host '{host}' the MAC {mac}, which is not a unicast address")]
    Mac { host: String, mac: String },
    #[error("role table gives host '{host}' the MAC {mac}, but {host} is at {seen} here (a steering MAC must be the host's own)")]
    ForeignMac {
        host: String,
        mac: String,
        seen: String,
    },
}

/// Checks `table` against `cfg`; `applied` is the epoch this agent has applied; `known` the
/// MACs this host knows of cluster hosts (its own interface's, and the kernel's resolved
/// neighbours): a table naming another MAC for such a host is refused.
pub fn validate(
    table: &RoleTable,
    cfg: &Config,
    applied: u64,
    known: &BTreeMap<String, [u8; 6]>,
) -> Result<(), Invalid> {
    if table.epoch > applied.saturating_add(MAX_EPOCH_STEP) {
        return Err(Invalid::EpochJump {
            have: applied,
            got: table.epoch,
        });
    }
    let amr = &cfg.active_master_role;
    if !table.active_master_role.is_empty() && table.active_master_role != *amr {
        return Err(Invalid::ActiveMasterRole {
            got: table.active_master_role.clone(),
            want: amr.clone(),
        });
    }
    let mut owners: BTreeMap<std::net::Ipv4Addr, &str> = BTreeMap::new();
    for a in &table.hosts {
        if cfg.host(&a.host).is_none() {
            return Err(Invalid::UnknownHost(a.host.clone()));
        }
        if let Some(mac) = a.mac {
            if mac[0] & 1 == 1 || mac == [0; 6] {
                return Err(Invalid::Mac {
                    host: a.host.clone(),
                    mac: fmt_mac(&mac),
                });
            }
            if let Some(seen) = known.get(&a.host).filter(|s| **s != mac) {
                return Err(Invalid::ForeignMac {
                    host: a.host.clone(),
                    mac: fmt_mac(&mac),
                    seen: fmt_mac(seen),
                });
            }
        }
        for r in &a.roles {
            let Some(role) = cfg.role(&r.role) else {
                return Err(Invalid::UnknownRole {
                    host: a.host.clone(),
                    role: r.role.clone(),
                });
            };
            if !role.ips.contains(&r.ip) {
                return Err(Invalid::ForeignIp {
                    host: a.host.clone(),
                    role: r.role.clone(),
                    ip: r.ip,
                });
            }
            if !role.hosts.contains(&a.host) {
                return Err(Invalid::NotAllowed {
                    host: a.host.clone(),
                    role: r.role.clone(),
                    allowed: role.hosts.join(", "),
                });
            }
            if let Some(first) = owners.insert(r.ip, &a.host) {
                return Err(Invalid::TwoOwners {
                    ip: r.ip,
                    first: first.into(),
                    second: a.host.clone(),
                });
            }
        }
    }
    let holder = table
        .hosts
        .iter()
        .find(|a| a.roles.iter().any(|r| r.role == *amr))
        .map(|a| a.host.as_str());
    if table.active_master.as_deref() != holder {
        if let Some(named) = &table.active_master {
            return Err(Invalid::ActiveMaster {
                named: named.clone(),
                holder: holder.map_or("nobody".into(), |h| format!("'{h}'")),
                role: amr.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmm_common::roles::{Assignment, HostState, RoleIp};
    use std::{net::Ipv4Addr, path::Path};

    fn cfg() -> Config {
        let text = include_str!("../../../examples/lab/mmm_common.conf");
        Config::parse_str(Path::new("mmm_common.conf"), text).unwrap()
    }

    fn line(host: &str, roles: &[(&str, u8)]) -> Assignment {
        Assignment {
            host: host.into(),
            state: HostState::Online,
            roles: roles
                .iter()
                .map(|(r, last)| RoleIp::new(*r, Ipv4Addr::new(198, 18, 0, *last)))
                .collect(),
            mac: Some([2, 0, 0, 0, 0, 1]),
        }
    }

    fn table(hosts: Vec<Assignment>, am: Option<&str>) -> RoleTable {
        RoleTable {
            epoch: 8,
            active_master: am.map(str::to_string),
            active_master_role: "writer".into(),
            catch_up: None,
            hosts,
        }
    }

    fn good() -> RoleTable {
        table(
            vec![
                line("db1", &[("writer", 100)]),
                line("db2", &[("reader", 101)]),
                line("db3", &[("reader", 102)]),
            ],
            Some("db1"),
        )
    }

    fn refused(t: RoleTable) -> String {
        validate(&t, &cfg(), 7, &BTreeMap::new())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_table_the_config_allows_passes() {
        assert_eq!(validate(&good(), &cfg(), 7, &BTreeMap::new()), Ok(()));
    }

    #[test]
    fn the_forged_tables_of_the_issue_are_refused_with_the_reason() {
        // db3, a slave, given the writer VIP while db1 has it.
        let mut t = good();
        t.hosts[2].roles = vec![RoleIp::new("writer", Ipv4Addr::new(198, 18, 0, 100))];
        assert_eq!(
            refused(t),
            "role table gives host 'db3' role 'writer', which only db1, db2 may hold"
        );
        // A gateway's address as a reader VIP.
        let mut t = good();
        t.hosts[2].roles = vec![RoleIp::new("reader", Ipv4Addr::new(198, 18, 0, 1))];
        assert!(refused(t).contains("198.18.0.1 is not an ip of role 'reader'"));
        // A role that does not exist.
        let mut t = good();
        t.hosts[1]
            .roles
            .push(RoleIp::new("backup", Ipv4Addr::new(198, 18, 0, 103)));
        assert!(refused(t).contains("role 'backup', which is not in this agent's configuration"));
        // The writer on two hosts.
        let mut t = good();
        t.hosts[1]
            .roles
            .push(RoleIp::new("writer", Ipv4Addr::new(198, 18, 0, 100)));
        assert_eq!(
            refused(t),
            "role table gives 198.18.0.100 to both 'db1' and 'db2'"
        );
        // Another active master role, a stranger host, a broadcast MAC.
        let mut t = good();
        t.active_master_role = "reader".into();
        assert!(refused(t).contains("active master role is 'reader'"));
        let mut t = good();
        t.hosts.push(line("db9", &[]));
        assert!(refused(t).contains("host 'db9'"));
        let mut t = good();
        t.hosts[0].mac = Some([0xff; 6]);
        assert!(refused(t).contains("ff:ff:ff:ff:ff:ff"));
        let mut t = good();
        t.active_master = Some("db2".into());
        assert!(refused(t).contains("names 'db2' the active master, but 'db1' holds"));
    }

    #[test]
    fn a_steering_mac_must_be_the_hosts_own() {
        // db1 is known (its neighbour entry) at 02:00:00:00:00:11; the table says a gateway's.
        let known = BTreeMap::from([("db1".to_string(), [2, 0, 0, 0, 0, 0x11])]);
        let mut t = good();
        t.hosts[0].mac = Some([2, 0, 0, 0, 0, 0x99]);
        let e = validate(&t, &cfg(), 7, &known).unwrap_err().to_string();
        assert!(e.contains("but db1 is at 02:00:00:00:00:11 here"), "{e}");
        t.hosts[0].mac = Some([2, 0, 0, 0, 0, 0x11]);
        assert_eq!(validate(&t, &cfg(), 7, &known), Ok(()));
    }

    #[test]
    fn epochs_may_not_jump_beyond_the_bound() {
        let mut t = good();
        t.epoch = u64::MAX;
        assert!(refused(t).contains("more than 4294967296 above the applied epoch 7"));
        let mut t = good();
        t.epoch = 7 + MAX_EPOCH_STEP;
        assert_eq!(validate(&t, &cfg(), 7, &BTreeMap::new()), Ok(()));
    }
}
