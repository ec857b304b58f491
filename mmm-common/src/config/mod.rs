//! MMM configuration, read unchanged from MySQL-MMM 2.x files (`mmm_common.conf`,
//! `mmm_mon.conf`, `mmm_agent.conf`) into a typed model.
//!
//! Syntax (as MMM): `#` comments; `key value` (the value is everything after the first run of
//! whitespace; lists are comma-separated); `include FILE` (relative to the including file);
//! sections `<kind>` / `<kind name>` … `</kind>`; `<host default>` and `<check default>` are
//! templates for every host / check; booleans `true/on/yes/1`, `false/off/no/0`. Unknown
//! directives are errors that name `file:line`; a file holding a password that others can read
//! or write is refused.
//!
//! Our additions (documented in [`DURATION_SYNTAX`] and on each field): durations may be
//! fractional seconds (`0.5`) or carry a unit (`500ms`, `2s`); global `catchup_timeout`,
//! `catchup_strict`, `kill_timeout`, `garp_rounds`, `peer_neighbours`; `<monitor>`
//! `agent_timeout`.
//! Defaults are faster than MMM's where MMM's slowness was the weakness (see [`CheckConfig`]).

pub mod doc;
mod etcd;
mod lower;
mod model;
mod peers;
mod raw;
mod scalar;
mod scope;
mod validate;

pub use etcd::EtcdConfig;
pub use lower::accepted_keys;
pub use model::*;
pub use raw::{Directive, Origin, Raw};
pub use scalar::{parse_bool, parse_duration, DURATION_SYNTAX};
use std::path::{Path, PathBuf};

/// A configuration error; the message names the file and line where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path}: is readable or writable by others (mode {mode:03o}); a config may hold passwords and name programs run as root: run chmod o-rwx on it")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{at}: {msg}")]
    At { at: String, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{inner} (included from {from})")]
    Included {
        inner: Box<ConfigError>,
        from: String,
    },
}

impl ConfigError {
    fn syntax(at: &Origin, msg: String) -> Self {
        ConfigError::At {
            at: at.to_string(),
            msg,
        }
    }
    fn included_from(self, at: &Origin) -> Self {
        ConfigError::Included {
            inner: Box::new(self),
            from: at.to_string(),
        }
    }
}

impl Config {
    /// Where slaves replicate from under `table` (`None`: no active master): the active
    /// master; with `semisync` on, its peer — the standby master, which acknowledged every
    /// commit — while that is ONLINE in the table. A slave is then never ahead of the host
    /// that would be promoted: with `AFTER_SYNC` a dying writer may have shipped a
    /// transaction no one acknowledged to a slave of its own, which the new writer never had
    /// (the slave could not follow it: MariaDB error 1236).
    pub fn slave_source<'t>(&self, table: &'t crate::roles::RoleTable) -> Option<&'t str> {
        table.slave_source(self.semisync, |h| {
            self.host(h).and_then(|c| c.peer.as_deref())
        })
    }

    /// Reads `path` (and its includes) and validates it.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::from_raw(&Raw::read(path)?)
    }

    /// Parses configuration text (includes resolved relative to `name`).
    pub fn parse_str(name: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::from_raw(&Raw::parse_str(name, text)?)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Option<&HostConfig> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// The daemons' log level (a `tracing` filter directive): `debug` with `debug 1`, as
    /// MMM's `debug` raises its logging (docs/mmm-2.2.1.md §7); `info` otherwise. The
    /// `MMM_LOG` environment variable, read by the daemons, wins over it.
    pub fn log_level(&self) -> &'static str {
        if self.debug {
            "debug"
        } else {
            "info"
        }
    }

    /// Settings of one check.
    pub fn check(&self, kind: CheckKind) -> CheckConfig {
        self.checks.get(&kind).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
