//! Which hosts each agent probes (ours; issue 18 "linear costs"): ICMP every 200 ms and a
//! MySQL login every 500 ms to each. Not every other host, which would grow with the square of
//! the cluster, but a bounded set:
//! - its ring neighbours: the `peer_neighbours` hosts before it and after it in the order of
//!   the `<host>` sections (wrapping around);
//! - if it may hold the writer role, every other host that may too (the masters watch each
//!   other: a candidate cut off from the writer is not promoted, `promotion.rs`).
//!
//! The relation is symmetric — `a` probes `b` exactly when `b` probes `a` — which the writer
//! lease relies on: the writer's agent counts the answers of the hosts it probes, and the
//! monitor judges whether the writer may still renew its lease from the reports of the same
//! hosts about it (ARCHITECTURE.md "The writer lease"). With up to `2 × peer_neighbours + 1`
//! hosts everyone probes everyone, as before.

use super::{Config, HostConfig};

impl Config {
    /// Whether host `name` may hold the writer role (is listed by the active master role).
    pub fn may_write(&self, name: &str) -> bool {
        self.roles
            .iter()
            .any(|r| r.name == self.active_master_role && r.hosts.iter().any(|h| h == name))
    }

    /// The hosts the agent of host `me` probes, in the order of the `<host>` sections; empty
    /// for a name that is no host.
    pub fn peers_of(&self, me: &str) -> Vec<&HostConfig> {
        let Some(at) = self.hosts.iter().position(|h| h.name == me) else {
            return Vec::new();
        };
        self.hosts
            .iter()
            .enumerate()
            .filter(|(i, h)| *i != at && self.probes(at, *i, &h.name))
            .map(|(_, h)| h)
            .collect()
    }

    /// Whether the host at position `a` probes the one at `b` (named `b_name`).
    fn probes(&self, a: usize, b: usize, b_name: &str) -> bool {
        let n = self.hosts.len();
        let ahead = (b + n - a) % n;
        let ring = ahead.min(n - ahead) <= self.peer_neighbours;
        ring || (self.may_write(&self.hosts[a].name) && self.may_write(b_name))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    /// A cluster of `masters` masters (both writer candidates) and `slaves` slaves.
    fn cluster(masters: usize, slaves: usize, neighbours: usize) -> Config {
        let mut text = format!("peer_neighbours {neighbours}\n");
        let names: Vec<String> = (1..=masters + slaves).map(|i| format!("db{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            let mode = if i < masters {
                format!("master\n peer db{}", 1 + (i + 1) % masters)
            } else {
                "slave".into()
            };
            text += &format!(
                "<host {n}>\n ip 198.18.{}.{}\n mode {mode}\n</host>\n",
                1 + i / 200,
                10 + i % 200
            );
        }
        let masters: Vec<&str> = names[..masters].iter().map(String::as_str).collect();
        text += &format!(
            "<role writer>\n hosts {}\n ips 198.19.0.100\n mode exclusive\n</role>\n",
            masters.join(", ")
        );
        Config::parse_str(std::path::Path::new("peers.conf"), &text).unwrap()
    }

    fn names(c: &Config, me: &str) -> Vec<String> {
        c.peers_of(me).iter().map(|h| h.name.clone()).collect()
    }

    #[test]
    fn small_clusters_probe_everyone() {
        let c = cluster(2, 1, 1);
        assert_eq!(names(&c, "db1"), ["db2", "db3"]);
        assert_eq!(names(&c, "db3"), ["db1", "db2"]);
        assert!(names(&c, "nobody").is_empty());
        let c = cluster(2, 7, 4);
        assert_eq!(names(&c, "db5").len(), 8);
    }

    #[test]
    fn large_clusters_probe_neighbours_and_candidates_their_fellows() {
        let c = cluster(2, 62, 2);
        // A slave: two hosts each side.
        assert_eq!(names(&c, "db10"), ["db8", "db9", "db11", "db12"]);
        // A master: its neighbours (wrapping) and the other master.
        assert_eq!(names(&c, "db1"), ["db2", "db3", "db63", "db64"]);
        assert_eq!(names(&c, "db2"), ["db1", "db3", "db4", "db64"]);
        for h in &c.hosts {
            assert!(c.peers_of(&h.name).len() <= 2 * 2 + 1, "{}", h.name);
        }
    }

    #[test]
    fn peer_neighbours_defaults_to_four_and_is_bounded() {
        let parse = |extra: &str| {
            Config::parse_str(
                std::path::Path::new("p.conf"),
                &format!("{extra}<host db1>\n ip 198.18.0.11\n mode slave\n</host>\n"),
            )
        };
        assert_eq!(parse("").unwrap().peer_neighbours, 4);
        assert_eq!(parse("peer_neighbours 0\n").unwrap().peer_neighbours, 0);
        for bad in [
            "peer_neighbours 33\n",
            "peer_neighbours many\n",
            "peer_neighbours -1\n",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("peer_neighbours"), "{bad}: {e}");
        }
    }

    #[test]
    fn probing_is_symmetric() {
        for (m, s, k) in [(2, 1, 1), (2, 30, 1), (3, 40, 3), (2, 9, 0), (4, 58, 2)] {
            let c = cluster(m, s, k);
            for a in &c.hosts {
                for b in c.peers_of(&a.name) {
                    assert!(
                        names(&c, &b.name).contains(&a.name),
                        "{} probes {} but not the other way ({m}, {s}, {k})",
                        a.name,
                        b.name
                    );
                }
            }
        }
    }
}
