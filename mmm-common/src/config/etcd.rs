//! `<etcd>` (ours, monitor configs): where the monitors of one cluster elect their leader and
//! keep the shared state — etcd's endpoints, the key prefix (one cluster per prefix, so several
//! clusters share one etcd), the leader lease's TTL, this monitor's name, optional TLS files.
//! Without the section the monitor runs alone with its status file, as MMM does.

use super::{model::MonitorConfig, raw::Raw, scalar::list, scope::Scope, ConfigError};
use std::{path::PathBuf, time::Duration};

/// The keys `<etcd>` accepts.
pub(super) const KEYS: &[&str] = &[
    "endpoints",
    "prefix",
    "lease_ttl",
    "name",
    "ca_file",
    "cert_file",
    "key_file",
];

/// The default leader lease TTL: 2 s, etcd's own minimum with its default election timeout
/// (etcd grants `max(TTL, 3/2 × election timeout)`: 1.5 s, rounded up to whole seconds).
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(2);
/// The longest leader lease TTL accepted (s): a longer one only delays a new leader.
pub const MAX_LEASE_TTL_S: u64 = 60;

/// `<etcd>`: monitor high availability (ARCHITECTURE.md "Monitor high availability").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// `endpoints`: etcd's client addresses, `host:port` each (comma-separated; at least one).
    pub endpoints: Vec<String>,
    /// `prefix`: every key of this cluster lives under it (default `/mmm`); it starts with `/`
    /// and does not end with one.
    pub prefix: String,
    /// `lease_ttl`: the leader lease's TTL, whole seconds, 2–60 (default 2 s). A leader that
    /// could not renew it for this long has stopped acting before another is elected.
    pub lease_ttl: Duration,
    /// `name`: this monitor's name in the election and in `show` (default: its `<monitor>`
    /// ip). Unique per cluster.
    pub name: String,
    /// `ca_file`, `cert_file`, `key_file`: TLS to etcd (all three, or none: plaintext).
    pub tls: Option<EtcdTls>,
}

/// TLS files for etcd's client port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Lowers `<etcd>` (none: `Ok(None)`); `monitor` gives the default name.
pub(super) fn lower(raw: &Raw, monitor: &MonitorConfig) -> Result<Option<EtcdConfig>, ConfigError> {
    let id = ("etcd".to_string(), String::new());
    let Some(ds) = raw.sections.get(&id) else {
        for (kind, name) in raw.sections.keys() {
            if kind == "etcd" {
                return Err(ConfigError::Invalid(format!(
                    "section <etcd {name}> takes no name: write <etcd>"
                )));
            }
        }
        return Ok(None);
    };
    let opened = raw.opened.get(&id);
    let s = Scope::new("<etcd>".into(), opened, KEYS, &[ds.as_slice()])?;
    let d = s.required("endpoints")?;
    let endpoints = list(&d.value);
    if endpoints.is_empty() {
        return Err(s.error_at(d, "endpoints lists no address (host:port, comma-separated)"));
    }
    for e in &endpoints {
        let port = e.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
        if !matches!(port, Some((h, Ok(p))) if !h.is_empty() && p != 0 && !h.contains('/')) {
            return Err(s.error_at(
                d,
                &format!("etcd endpoint '{e}' is not host:port (e.g. 198.18.0.21:2379)"),
            ));
        }
    }
    let prefix = s.str("prefix").unwrap_or_else(|| "/mmm".into());
    if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains(char::is_whitespace) {
        let d = s.get("prefix");
        let msg =
            format!("prefix '{prefix}' must start with '/', not end with one and hold no space");
        return Err(match d {
            Some(d) => s.error_at(d, &msg),
            None => ConfigError::Invalid(msg),
        });
    }
    let lease_ttl = s.duration("lease_ttl", DEFAULT_LEASE_TTL)?;
    if lease_ttl.subsec_nanos() != 0 || !(2..=MAX_LEASE_TTL_S).contains(&lease_ttl.as_secs()) {
        if let Some(d) = s.get("lease_ttl") {
            return Err(s.error_at(
                d,
                &format!("lease_ttl must be whole seconds from 2 to {MAX_LEASE_TTL_S} (etcd leases count seconds)"),
            ));
        }
    }
    let name = s.str("name").unwrap_or_else(|| monitor.ip.to_string());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        let msg = format!("name '{name}' may hold only letters, digits, '-', '_' and '.'");
        return Err(match s.get("name") {
            Some(d) => s.error_at(d, &msg),
            None => ConfigError::Invalid(msg),
        });
    }
    let files = [s.path("ca_file"), s.path("cert_file"), s.path("key_file")];
    let tls = match files {
        [Some(ca_file), Some(cert_file), Some(key_file)] => Some(EtcdTls {
            ca_file,
            cert_file,
            key_file,
        }),
        [None, None, None] => None,
        _ => {
            let msg = "<etcd> TLS needs ca_file, cert_file and key_file together".to_string();
            return Err(match opened {
                Some(o) => ConfigError::syntax(o, msg),
                None => ConfigError::Invalid(msg),
            });
        }
    };
    Ok(Some(EtcdConfig {
        endpoints,
        prefix,
        lease_ttl,
        name,
        tls,
    }))
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn parse(etcd: &str) -> Result<Config, ConfigError> {
        let text = format!(
            "<host db1>\n ip 198.18.0.11\n mode slave\n</host>\n<monitor>\n ip 198.18.0.5\n</monitor>\n{etcd}"
        );
        Config::parse_str(Path::new("m.conf"), &text)
    }

    #[test]
    fn without_the_section_there_is_no_etcd() {
        assert_eq!(parse("").unwrap().etcd, None);
    }

    #[test]
    fn defaults_and_values() {
        let c = parse("<etcd>\n endpoints 198.18.0.21:2379, 198.18.0.22:2379\n</etcd>\n")
            .unwrap()
            .etcd
            .unwrap();
        assert_eq!(c.endpoints, ["198.18.0.21:2379", "198.18.0.22:2379"]);
        assert_eq!(c.prefix, "/mmm");
        assert_eq!(c.lease_ttl, super::DEFAULT_LEASE_TTL);
        assert_eq!(c.name, "198.18.0.5");
        assert_eq!(c.tls, None);
        let c = parse(
            "<etcd>\n endpoints e1:2379\n prefix /mmm/c1\n lease_ttl 5s\n name mon2\n</etcd>\n",
        )
        .unwrap()
        .etcd
        .unwrap();
        assert_eq!(
            (c.prefix.as_str(), c.lease_ttl.as_secs(), c.name.as_str()),
            ("/mmm/c1", 5, "mon2")
        );
    }

    #[test]
    fn bad_values_name_the_line_and_the_problem() {
        for (body, want) in [
            ("", "<etcd> has no 'endpoints'"),
            (
                " endpoints 198.18.0.21\n",
                "m.conf:9: etcd endpoint '198.18.0.21' is not host:port",
            ),
            (
                " endpoints e:2379\n prefix mmm\n",
                "m.conf:10: prefix 'mmm' must start with '/'",
            ),
            (
                " endpoints e:2379\n prefix /mmm/\n",
                "must start with '/', not end with one",
            ),
            (
                " endpoints e:2379\n lease_ttl 500ms\n",
                "m.conf:10: lease_ttl must be whole seconds from 2 to 60",
            ),
            (
                " endpoints e:2379\n lease_ttl 1\n",
                "lease_ttl must be whole seconds",
            ),
            (
                " endpoints e:2379\n name mon 1\n",
                "name 'mon 1' may hold only",
            ),
            (
                " endpoints e:2379\n ca_file /ca.pem\n",
                "TLS needs ca_file, cert_file and key_file together",
            ),
            (
                " endpoints e:2379\n ttl 2\n",
                "unknown directive 'ttl' in <etcd>",
            ),
        ] {
            let e = parse(&format!("<etcd>\n{body}</etcd>\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{body:?}: {e}");
        }
    }
}
