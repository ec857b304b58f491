//! MMM's master-master sanity warnings at start-up (`docs/mmm-2.2.1.md` §5): the masters should
//! replicate from each other, and their `auto_increment_increment` be at least 2 and equal,
//! with different `auto_increment_offset`s — otherwise both can generate the same
//! AUTO_INCREMENT keys and replication breaks the first time both take writes. Warnings only:
//! the monitor starts anyway. The verdicts are pure ([`warnings`]); [`read`] asks a server.

use crate::checks::{self, Target};
use mmm_common::replica::{row_of, ReplicaStatus};
use mysql_async::prelude::Queryable;

/// What one master says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MasterFacts {
    /// Host name from the configuration.
    pub name: String,
    /// Its address from the configuration.
    pub ip: String,
    /// Where its replication reads from (`Master_Host`), if it replicates.
    pub source_host: Option<String>,
    /// `@@auto_increment_increment`.
    pub increment: u64,
    /// `@@auto_increment_offset`.
    pub offset: u64,
}

/// The warnings for two masters (`a`'s peer is `b` and the other way round).
pub fn warnings(a: &MasterFacts, b: &MasterFacts) -> Vec<String> {
    let mut w = Vec::new();
    for (x, y) in [(a, b), (b, a)] {
        if x.source_host.as_deref() != Some(y.ip.as_str()) {
            w.push(format!(
                "Master '{}' does not replicate from its peer '{}' ({}): it replicates from {}",
                x.name,
                y.name,
                y.ip,
                x.source_host.as_deref().unwrap_or("nowhere")
            ));
        }
    }
    for x in [a, b] {
        if x.increment < 2 {
            w.push(format!(
                "auto_increment_increment is {} on master '{}': set it to 2 or more on both masters, or both may generate the same keys",
                x.increment, x.name
            ));
        }
    }
    if a.increment != b.increment {
        w.push(format!(
            "auto_increment_increment differs on the masters: {} on '{}', {} on '{}'",
            a.increment, a.name, b.increment, b.name
        ));
    }
    if a.offset == b.offset {
        w.push(format!(
            "auto_increment_offset is {} on both masters '{}' and '{}': give each its own",
            a.offset, a.name, b.name
        ));
    }
    w
}

/// Reads a master's facts as the monitor user.
pub async fn read(name: &str, t: &Target) -> Result<MasterFacts, String> {
    let mut c = checks::connect(t).await.map_err(|e| e.to_string())?;
    let (increment, offset): (u64, u64) = c
        .query_first("SELECT @@auto_increment_increment, @@auto_increment_offset")
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or((1, 1));
    let version: Option<String> = c
        .query_first("SELECT VERSION()")
        .await
        .map_err(|e| e.to_string())?;
    let q = checks::replica_status_query(version.as_deref().unwrap_or(""));
    let rows: Vec<mysql_async::Row> = c.query(q).await.map_err(|e| e.to_string())?;
    let _ = c.disconnect().await;
    let source_host = match rows.first() {
        Some(r) => Some(
            ReplicaStatus::from_row(&row_of(r))
                .map_err(|e| e.to_string())?
                .source_host,
        ),
        None => None,
    };
    Ok(MasterFacts {
        name: name.into(),
        ip: t.ip.to_string(),
        source_host,
        increment,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, ip: &str, src: Option<&str>, inc: u64, off: u64) -> MasterFacts {
        MasterFacts {
            name: name.into(),
            ip: ip.into(),
            source_host: src.map(str::to_string),
            increment: inc,
            offset: off,
        }
    }

    #[test]
    fn a_good_pair_has_no_warning_and_each_mistake_is_named() {
        let a = m("db1", "10.0.0.1", Some("10.0.0.2"), 2, 1);
        let b = m("db2", "10.0.0.2", Some("10.0.0.1"), 2, 2);
        assert!(warnings(&a, &b).is_empty());
        let w = warnings(
            &m("db1", "10.0.0.1", None, 1, 1),
            &m("db2", "10.0.0.2", Some("10.0.0.1"), 3, 1),
        );
        let all = w.join("\n");
        assert!(all.contains("Master 'db1' does not replicate from its peer 'db2' (10.0.0.2): it replicates from nowhere"), "{all}");
        assert!(
            all.contains("auto_increment_increment is 1 on master 'db1'"),
            "{all}"
        );
        assert!(
            all.contains("auto_increment_increment differs on the masters: 1 on 'db1', 3 on 'db2'"),
            "{all}"
        );
        assert!(
            all.contains("auto_increment_offset is 1 on both masters"),
            "{all}"
        );
        assert_eq!(w.len(), 4);
    }
}
