//! `mmm_control`'s own options around MMM's command words: `--version`, `--json`,
//! `--monitor HOST:PORT` (or `$MMM_MONITOR`), `--config FILE`, and MMM's `@cluster` first
//! word, which picks `/etc/mysql-mmm/mmm_mon_<cluster>.conf` (docs/mmm-2.2.1.md §4). Pure:
//! the binary passes its arguments and the environment's `MMM_MONITOR`.

use std::path::PathBuf;

/// What `mmm_control` was asked: its options, and MMM's command words left over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// `--version` / `-V`: print the version, nothing else.
    pub version: bool,
    pub json: bool,
    /// `--monitor` (else `$MMM_MONITOR`): the monitor's `host:port`, overriding the config.
    pub monitor: Option<String>,
    /// The monitor's configuration: `--config`, else by `@cluster`, else `mmm_mon.conf`.
    pub config: PathBuf,
    /// MMM's command words (`show`, `move_role writer db2`, …).
    pub words: Vec<String>,
}

/// Splits `args` (without the program name) into `mmm_control`'s options and MMM's words.
pub fn invocation(mut args: Vec<String>, env_monitor: Option<String>) -> Invocation {
    let mut inv = Invocation {
        version: false,
        json: false,
        monitor: env_monitor,
        config: PathBuf::new(),
        words: vec![],
    };
    let (mut config, mut cluster) = (None, None);
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--version" | "-V" => {
                inv.version = true;
                args.remove(i);
            }
            "--json" => {
                inv.json = true;
                args.remove(i);
            }
            "--monitor" | "--config" | "-c" if i + 1 < args.len() => {
                let v = args.remove(i + 1);
                if args.remove(i) == "--monitor" {
                    inv.monitor = Some(v);
                } else {
                    config = Some(PathBuf::from(v));
                }
            }
            s if s.starts_with('@') && i == 0 => {
                cluster = Some(s[1..].to_string());
                args.remove(i);
            }
            _ => i += 1,
        }
    }
    inv.config = config.unwrap_or_else(|| match &cluster {
        Some(c) => PathBuf::from(format!("/etc/mysql-mmm/mmm_mon_{c}.conf")),
        None => PathBuf::from("/etc/mysql-mmm/mmm_mon.conf"),
    });
    inv.words = args;
    inv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(args: &[&str], env: Option<&str>) -> Invocation {
        invocation(
            args.iter().map(|s| s.to_string()).collect(),
            env.map(str::to_string),
        )
    }

    #[test]
    fn options_clusters_and_words() {
        let i = inv(&["show"], None);
        assert_eq!(i.config, PathBuf::from("/etc/mysql-mmm/mmm_mon.conf"));
        assert_eq!(
            (i.words, i.json, i.monitor),
            (vec!["show".to_string()], false, None)
        );
        // MMM's @cluster picks mmm_mon_<cluster>.conf; only as the first word.
        let i = inv(&["@c1", "move_role", "writer", "db2"], None);
        assert_eq!(i.config, PathBuf::from("/etc/mysql-mmm/mmm_mon_c1.conf"));
        assert_eq!(i.words, ["move_role", "writer", "db2"]);
        let i = inv(&["set_online", "@c1"], None);
        assert_eq!(i.words, ["set_online", "@c1"]);
        // --config wins over @cluster; --monitor over $MMM_MONITOR; anywhere on the line.
        let i = inv(
            &[
                "@c1",
                "show",
                "--json",
                "--config",
                "/tmp/x.conf",
                "--monitor",
                "198.18.0.5:9988",
            ],
            Some("198.18.0.9:9988"),
        );
        assert_eq!(i.config, PathBuf::from("/tmp/x.conf"));
        assert_eq!(i.monitor.as_deref(), Some("198.18.0.5:9988"));
        assert!(i.json);
        assert_eq!(i.words, ["show"]);
        assert_eq!(
            inv(&[], Some("198.18.0.9:9988")).monitor.as_deref(),
            Some("198.18.0.9:9988")
        );
        assert!(inv(&["-V"], None).version);
        // A trailing --config without a value is left to the command parser (an error).
        assert_eq!(inv(&["show", "--config"], None).words, ["show", "--config"]);
    }
}
