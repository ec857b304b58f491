//! A section's directives as one scope: lookups by key with typed parsing, each error naming
//! the directive's `file:line` (shared by `lower.rs` and `etcd.rs`).

use super::{
    raw::{Directive, Origin},
    scalar::{list, parse_bool, parse_duration, DURATION_SYNTAX},
    ConfigError,
};
use std::{collections::BTreeMap, net::Ipv4Addr, path::PathBuf, time::Duration};

/// Whether `key` is among `allowed` (an entry `prefix_*` allows every key with that prefix).
pub(super) fn allows(allowed: &[&str], key: &str) -> bool {
    allowed.iter().any(|a| match a.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => *a == key,
    })
}

/// The directives of one section with its templates (a later directive overrides an earlier one).
pub(super) struct Scope<'a> {
    what: String,
    opened: Option<&'a Origin>,
    items: BTreeMap<&'a str, &'a Directive>,
}

impl<'a> Scope<'a> {
    pub(super) fn new(
        what: String,
        opened: Option<&'a Origin>,
        allowed: &[&str],
        layers: &[&'a [Directive]],
    ) -> Result<Self, ConfigError> {
        let mut items = BTreeMap::new();
        for layer in layers {
            for d in layer.iter() {
                if d.key == "role" && what == "the global scope" {
                    return Err(ConfigError::syntax(
                        &d.at,
                        "'role' should be a section (<role NAME> ... </role>) instead of a variable".into(),
                    ));
                }
                if !allows(allowed, &d.key) {
                    return Err(unknown(d, allowed, &what));
                }
                items.insert(d.key.as_str(), d);
            }
        }
        Ok(Scope {
            what,
            opened,
            items,
        })
    }

    /// An error about directive `d` of this scope, naming its `file:line`.
    pub(super) fn error_at(&self, d: &Directive, msg: &str) -> ConfigError {
        ConfigError::syntax(&d.at, msg.to_string())
    }

    pub(super) fn get(&self, key: &str) -> Option<&'a Directive> {
        self.items.get(key).copied()
    }

    pub(super) fn str(&self, key: &str) -> Option<String> {
        self.get(key).map(|d| d.value.clone())
    }

    pub(super) fn required(&self, key: &str) -> Result<&'a Directive, ConfigError> {
        self.get(key).ok_or_else(|| {
            let msg = format!("{} has no '{key}'", self.what);
            match self.opened {
                Some(o) => ConfigError::syntax(o, msg),
                None => ConfigError::Invalid(msg),
            }
        })
    }

    pub(super) fn parse<T>(
        &self,
        key: &str,
        default: T,
        want: &str,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(d) => f(&d.value).ok_or_else(|| {
                ConfigError::syntax(&d.at, format!("{key} '{}' is not {want}", d.value))
            }),
        }
    }

    pub(super) fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.parse(key, default, DURATION_SYNTAX, parse_duration)
    }

    pub(super) fn bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        self.parse(
            key,
            default,
            "a boolean (yes/no, on/off, true/false, 1/0)",
            parse_bool,
        )
    }

    pub(super) fn num<T: std::str::FromStr>(
        &self,
        key: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        self.parse(key, default, "a whole number in range", |v| v.parse().ok())
    }

    pub(super) fn ip(&self, d: &Directive, v: &str) -> Result<Ipv4Addr, ConfigError> {
        v.trim().parse().map_err(|_| {
            ConfigError::syntax(
                &d.at,
                format!("{} '{}' is not an IPv4 address", d.key, v.trim()),
            )
        })
    }

    pub(super) fn ips(&self, key: &str) -> Result<Vec<Ipv4Addr>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(d) => list(&d.value).iter().map(|v| self.ip(d, v)).collect(),
        }
    }

    pub(super) fn path(&self, key: &str) -> Option<PathBuf> {
        self.str(key).filter(|s| !s.is_empty()).map(PathBuf::from)
    }
}

pub(super) fn unknown(d: &Directive, allowed: &[&str], scope: &str) -> ConfigError {
    let hint = allowed
        .iter()
        .filter(|k| !k.ends_with('*'))
        .find(|k| d.key.len() > k.len() && d.key.starts_with(*k))
        .map(|k| format!(" (a space missing between '{k}' and its value?)"))
        .unwrap_or_default();
    ConfigError::syntax(
        &d.at,
        format!("unknown directive '{}' in {scope}{hint}", d.key),
    )
}
