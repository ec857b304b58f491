//! GTID sets of both server families, parsed once and compared: how many transactions a
//! candidate lacks of what the writer had (the promotion's lag bound, #13 item 4), and which
//! transactions a host holds that the writer never had (errant transactions, item 5).
//!
//! Formats (the servers' manuals):
//! - MariaDB: comma-separated `domain-server-seq` GTIDs. `@@gtid_binlog_state` holds the last
//!   GTID of each (domain, server) pair in the binary log; a position (`@@gtid_current_pos`,
//!   `Gtid_IO_Pos`) the last of each domain. Sequence numbers increase within a domain, whatever
//!   server committed them (MariaDB KB "Global Transaction ID", `gtid_strict_mode`).
//! - MySQL: `uuid:interval[:interval…]` per source, comma-separated (newlines allowed); MySQL
//!   8.4 tags (`uuid:tag:interval`) apply to the intervals after them.

use std::collections::BTreeMap;

/// One MariaDB GTID `domain-server-seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MariaGtid {
    /// `gtid_domain_id`.
    pub domain: u32,
    /// The `server_id` of the server that committed it first.
    pub server: u32,
    /// Its sequence number in the domain.
    pub seq: u64,
}

impl std::fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// A set of transactions as a server reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GtidSet {
    /// MariaDB: a binlog state or a position (an empty text parses as an empty one).
    Maria(Vec<MariaGtid>),
    /// MySQL: source (its UUID in lower case, `uuid:tag` for tagged GTIDs) → sorted, disjoint,
    /// non-adjacent closed intervals of transaction numbers.
    Mysql(BTreeMap<String, Vec<(u64, u64)>>),
}

/// A GTID text that is neither family's format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("GTID set '{text}' cannot be read: {why}")]
pub struct GtidError {
    /// The text as the server sent it.
    pub text: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl GtidSet {
    /// Reads either family's text (see the module doc); the empty text is the empty set.
    ///
    /// # Errors
    /// [`GtidError`] when a part is malformed or the two families are mixed.
    pub fn parse(text: &str) -> Result<GtidSet, GtidError> {
        let err = |why| GtidError {
            text: text.to_string(),
            why,
        };
        let parts: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        if parts.iter().all(|p| !p.contains(':')) {
            return parts
                .iter()
                .map(|p| maria(p).ok_or_else(|| err("a MariaDB GTID is domain-server-seq")))
                .collect::<Result<_, _>>()
                .map(GtidSet::Maria);
        }
        let mut sets: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for p in parts {
            let mut words = p.split(':').map(str::trim);
            let uuid = words.next().unwrap_or_default().to_ascii_lowercase();
            if uuid.len() != 36 || !uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(err("a MySQL GTID set names each source by its UUID"));
            }
            let mut key = uuid.clone();
            let mut any = false;
            for w in words {
                match interval(w) {
                    Some(iv) => {
                        sets.entry(key.clone()).or_default().push(iv);
                        any = true;
                    }
                    None if is_tag(w) => key = format!("{uuid}:{}", w.to_ascii_lowercase()),
                    None => return Err(err("an interval is N or N-M with N ≤ M, from 1")),
                }
            }
            if !any {
                return Err(err("a source without any interval"));
            }
        }
        Ok(GtidSet::Mysql(
            sets.into_iter().map(|(k, v)| (k, merged(v))).collect(),
        ))
    }

    /// Whether it holds no transaction.
    pub fn is_empty(&self) -> bool {
        match self {
            GtidSet::Maria(v) => v.is_empty(),
            GtidSet::Mysql(m) => m.is_empty(),
        }
    }

    /// Everything in `self` or in `other`; `None` when they are of different families (an
    /// empty set goes with either).
    pub fn union(&self, other: &GtidSet) -> Option<GtidSet> {
        if let (Some(a), Some(b)) = (self.maria(), other.maria()) {
            let mut v: Vec<MariaGtid> = a.iter().chain(b).copied().collect();
            v.sort();
            v.dedup();
            return Some(GtidSet::Maria(v));
        }
        let (a, b) = (self.mysql()?, other.mysql()?);
        let mut m = a.clone();
        for (k, iv) in b {
            let e = m.entry(k.clone()).or_default();
            e.extend(iv);
            *e = merged(std::mem::take(e));
        }
        Some(GtidSet::Mysql(m))
    }

    /// How many transactions of `self` are missing from `have` (`None`: different families).
    /// MariaDB: per domain, how far `have`'s highest sequence number is below `self`'s (the
    /// count of the writer's transactions a candidate lacks, sequence numbers being
    /// consecutive in a domain); MySQL: the exact count of the set difference.
    pub fn missing_from(&self, have: &GtidSet) -> Option<u64> {
        if let (Some(a), Some(b)) = (self.maria(), have.maria()) {
            let had = domain_max(b);
            return Some(
                domain_max(a)
                    .iter()
                    .map(|(d, n)| n.saturating_sub(had.get(d).copied().unwrap_or(0)))
                    .sum(),
            );
        }
        let (a, b) = (self.mysql()?, have.mysql()?);
        Some(
            a.iter()
                .map(|(k, iv)| count(&minus(iv, b.get(k).map_or(&[][..], Vec::as_slice))))
                .sum(),
        )
    }

    /// The transactions of `self` (a host's binlog state or executed set) that `writer` (the
    /// writer's) lacks, leaving out those first committed by `writer_origin` (the writer's
    /// `server_id` on MariaDB, `server_uuid` on MySQL: a replica may have received the
    /// writer's newest ones before the writer's own report was taken). Each is named: MariaDB
    /// `d-s-n` (the host's last GTID of that domain and server, with the writer's last of the
    /// pair when it has one); MySQL `uuid:N-M`. `None`: different families.
    pub fn errant_against(&self, writer: &GtidSet, writer_origin: &str) -> Option<Vec<String>> {
        let origin = writer_origin.trim().to_ascii_lowercase();
        if let (Some(mine), Some(theirs)) = (self.maria(), writer.maria()) {
            let named = mine
                .iter()
                .filter(|g| g.server.to_string() != origin)
                .filter_map(|g| {
                    let last = theirs
                        .iter()
                        .filter(|t| t.domain == g.domain && t.server == g.server)
                        .map(|t| t.seq)
                        .max();
                    match last {
                        Some(n) if n >= g.seq => None,
                        Some(n) => Some(format!(
                            "{g} (the writer's last of server {} in domain {}: {}-{}-{n})",
                            g.server, g.domain, g.domain, g.server
                        )),
                        None => Some(g.to_string()),
                    }
                })
                .collect();
            return Some(named);
        }
        let (mine, theirs) = (self.mysql()?, writer.mysql()?);
        Some(
            mine.iter()
                .filter(|(k, _)| k.split(':').next() != Some(origin.as_str()))
                .flat_map(|(k, iv)| {
                    minus(iv, theirs.get(k).map_or(&[][..], Vec::as_slice))
                        .into_iter()
                        .map(move |(a, b)| match a == b {
                            true => format!("{k}:{a}"),
                            false => format!("{k}:{a}-{b}"),
                        })
                })
                .collect(),
        )
    }

    /// The MariaDB GTIDs (an empty MySQL set is an empty MariaDB one).
    fn maria(&self) -> Option<&[MariaGtid]> {
        match self {
            GtidSet::Maria(v) => Some(v),
            GtidSet::Mysql(m) if m.is_empty() => Some(&[]),
            GtidSet::Mysql(_) => None,
        }
    }

    /// The MySQL sources (an empty MariaDB set is an empty MySQL one).
    fn mysql(&self) -> Option<&BTreeMap<String, Vec<(u64, u64)>>> {
        match self {
            GtidSet::Mysql(m) => Some(m),
            GtidSet::Maria(v) if v.is_empty() => Some(&NO_SOURCES),
            GtidSet::Maria(_) => None,
        }
    }
}

/// The empty MySQL set.
static NO_SOURCES: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();

fn maria(p: &str) -> Option<MariaGtid> {
    let mut it = p.split('-');
    let g = MariaGtid {
        domain: it.next()?.trim().parse().ok()?,
        server: it.next()?.trim().parse().ok()?,
        seq: it.next()?.trim().parse().ok()?,
    };
    it.next().is_none().then_some(g)
}

fn interval(w: &str) -> Option<(u64, u64)> {
    let (a, b) = match w.split_once('-') {
        Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
        None => {
            let n = w.parse().ok()?;
            (n, n)
        }
    };
    (a >= 1 && a <= b).then_some((a, b))
}

/// A MySQL 8.4 GTID tag: a letter or underscore, then up to 31 letters, digits, underscores.
fn is_tag(w: &str) -> bool {
    let mut c = w.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && w.len() <= 32
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Sorted, with overlapping and adjacent intervals joined.
fn merged(mut v: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    v.sort();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// `a` without `b` (both merged).
fn minus(a: &[(u64, u64)], b: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    for &(mut lo, hi) in a {
        for &(c, d) in b {
            if d < lo || c > hi {
                continue;
            }
            if c > lo {
                out.push((lo, c - 1));
            }
            lo = d.saturating_add(1);
            if lo > hi {
                break;
            }
        }
        if lo <= hi {
            out.push((lo, hi));
        }
    }
    out
}

fn count(v: &[(u64, u64)]) -> u64 {
    v.iter().map(|(a, b)| b - a + 1).sum()
}

/// The highest sequence number of each domain.
fn domain_max(v: &[MariaGtid]) -> BTreeMap<u32, u64> {
    let mut m = BTreeMap::new();
    for g in v {
        let e = m.entry(g.domain).or_insert(0);
        *e = g.seq.max(*e);
    }
    m
}

#[cfg(test)]
#[path = "gtid_tests.rs"]
mod tests;
