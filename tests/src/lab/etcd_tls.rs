//! Mutual TLS for the lab's etcd cluster (the lab's default transport; etcd's "Transport
//! security model" guide): a CA of etcd's own in `run/etcd-pki` — not the mmm cluster's, so an
//! agent's certificate opens no etcd — a key pair per member (client and peer traffic, its
//! address as an IP subjectAltName) and one client key pair per monitor
//! (`<monitor dir>/etcd-client.{crt,key}`), named by the `<etcd>` section's `ca_file`,
//! `cert_file` and `key_file`. Keys are mode 0600.

use super::{run_dir, write_private};
use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

/// The directory of etcd's CA and its members' key pairs.
pub fn pki_dir(prefix: &str) -> PathBuf {
    run_dir(prefix).join("etcd-pki")
}

/// Whether lab `prefix` runs etcd over TLS (its CA exists).
pub fn enabled(prefix: &str) -> bool {
    pki_dir(prefix).join("ca.crt").exists()
}

/// The CA's certificate.
pub fn ca_file(prefix: &str) -> PathBuf {
    pki_dir(prefix).join("ca.crt")
}

/// Member `n`'s certificate and key (server and peer) in the CA's directory `d`.
pub fn member_files(d: &Path, n: usize) -> (PathBuf, PathBuf) {
    (
        d.join(format!("etcd{n}.crt")),
        d.join(format!("etcd{n}.key")),
    )
}

/// A monitor's client certificate and key in its run directory `dir`.
pub fn client_files(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("etcd-client.crt"), dir.join("etcd-client.key"))
}

/// The `<etcd>` lines that turn TLS on for the monitor whose run directory is `dir`.
pub fn section_lines(prefix: &str, dir: &Path) -> String {
    let (cert, key) = client_files(dir);
    format!(
        "    ca_file {}\n    cert_file {}\n    key_file {}\n",
        ca_file(prefix).display(),
        cert.display(),
        key.display()
    )
}

/// Writes `cert` (mode 0644) and `key` (mode 0600).
fn write_pair(cert: &Path, key: &Path, c: &rcgen::Certificate, k: &KeyPair) -> Result<()> {
    write_private(key, &k.serialize_pem())?;
    std::fs::write(cert, c.pem()).with_context(|| format!("writing {}", cert.display()))
}

/// Makes in `dir` (the lab's [`pki_dir`]) the CA, a key pair for each member at `members`
/// and one for each monitor run directory.
pub fn make(dir: &Path, members: &[Ipv4Addr], monitor_dirs: &[PathBuf]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "etcd CA of an mmm lab");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    write_pair(&dir.join("ca.crt"), &dir.join("ca.key"), &ca_cert, &ca_key)?;
    let leaf = |cn: String, ip: Option<Ipv4Addr>, cert: &Path, key: &Path| -> Result<()> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = ip
            .map(|ip| SanType::IpAddress(IpAddr::V4(ip)))
            .into_iter()
            .collect();
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // Members dial each other (peer traffic) and themselves (etcd's gRPC gateway).
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let k = KeyPair::generate()?;
        let c = p.signed_by(&k, &ca_cert, &ca_key)?;
        write_pair(cert, key, &c, &k)
    };
    for (i, ip) in members.iter().enumerate() {
        let (cert, key) = member_files(dir, i + 1);
        leaf(format!("etcd{}", i + 1), Some(*ip), &cert, &key)?;
    }
    for (i, d) in monitor_dirs.iter().enumerate() {
        let (cert, key) = client_files(d);
        leaf(format!("mmm monitor mon{}", i + 1), None, &cert, &key)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_pair_per_member_and_per_monitor_with_private_keys_named_in_each_section() {
        let t = tempfile::tempdir().unwrap();
        let pki = t.path().join("etcd-pki");
        let mons = [t.path().join("monitor"), t.path().join("monitor2")];
        for d in &mons {
            std::fs::create_dir_all(d).unwrap();
        }
        let members = [Ipv4Addr::new(198, 18, 0, 21), Ipv4Addr::new(198, 18, 0, 22)];
        make(&pki, &members, &mons).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&pki.join("ca.key")), 0o600);
        for n in 1..=2 {
            let (cert, key) = member_files(&pki, n);
            assert!(std::fs::read_to_string(cert)
                .unwrap()
                .contains("BEGIN CERTIFICATE"));
            assert_eq!(mode(&key), 0o600);
        }
        for d in &mons {
            let (cert, key) = client_files(d);
            assert!(cert.exists());
            assert_eq!(mode(&key), 0o600);
        }
        let s = section_lines("p", &mons[1]);
        assert!(s.contains(&format!("cert_file {}", client_files(&mons[1]).0.display())));
        assert!(s.contains(&format!("key_file {}", client_files(&mons[1]).1.display())));
        assert!(s.contains("ca_file ") && s.ends_with('\n'), "{s}");
    }
}
