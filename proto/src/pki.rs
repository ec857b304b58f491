//! Certificates in one command (`mmm-monitor tls init`): a cluster CA, and a key and
//! certificate for the monitor, for `mmm_control` and for every host's agent, each carrying
//! its identity (`auth.rs`: a URI subjectAltName `mmm://<kind>/<name>`) and, for servers,
//! the IP address clients dial (a subjectAltName of type IP, checked by `tls.rs`).
//!
//! Keys are written mode 0600 in a directory of mode 0700; an existing CA is never
//! overwritten. Certificates are valid for 10 years (rotate by running `tls init` into a new
//! directory and pointing the `<socket>` sections at it).

use crate::auth::{Identity, Kind};
use mmm_common::config::Config;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::{
    fmt::Write as _,
    io::Write as _,
    net::IpAddr,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

/// Why the certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{0} already holds a CA (ca.key): choose another directory, or remove it first")]
    Exists(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("making the certificate of {what}: {source}")]
    Cert {
        what: String,
        #[source]
        source: rcgen::Error,
    },
}

/// One issued key pair: whose, and the two files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    pub identity: Identity,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// What [`init`] made.
#[derive(Clone, Debug)]
pub struct Pki {
    pub ca: PathBuf,
    pub monitor: Issued,
    pub control: Issued,
    /// One per host of the configuration, in its order.
    pub agents: Vec<Issued>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.into(),
        source,
    }
}

/// Writes `text` to `path` with `mode` (created with it: never readable by others, not even
/// for an instant).
fn write(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io(path))?;
    f.write_all(text.as_bytes()).map_err(io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io(path))
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
}

fn cert_err(what: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |source| PkiError::Cert {
        what: what.into(),
        source,
    }
}

fn leaf(
    ca: &Ca,
    ca_cert: &rcgen::Certificate,
    id: &Identity,
    ips: &[IpAddr],
    dir: &Path,
    file: &str,
) -> Result<Issued, PkiError> {
    let what = id.uri();
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(cert_err(&what))?;
    p.distinguished_name.push(
        DnType::CommonName,
        format!("mmm {} {}", id.kind.word(), id.name),
    );
    let uri = id.uri().try_into().map_err(cert_err(&what))?;
    p.subject_alt_names = std::iter::once(SanType::URI(uri))
        .chain(ips.iter().map(|ip| SanType::IpAddress(*ip)))
        .collect();
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = ca.params.not_after;
    let key = KeyPair::generate().map_err(cert_err(&what))?;
    let cert = p
        .signed_by(&key, ca_cert, &ca.key)
        .map_err(cert_err(&what))?;
    let (cert_path, key_path) = (
        dir.join(format!("{file}.crt")),
        dir.join(format!("{file}.key")),
    );
    write(&key_path, &key.serialize_pem(), 0o600)?;
    write(&cert_path, &cert.pem(), 0o644)?;
    Ok(Issued {
        identity: id.clone(),
        cert: cert_path,
        key: key_path,
    })
}

/// Makes the CA and every key pair of `cfg`'s cluster in `dir` (created mode 0700). The
/// monitor is named `monitor` (its certificate names `<monitor> ip` and `monitor_ips`).
pub fn init(cfg: &Config, dir: &Path) -> Result<Pki, PkiError> {
    if dir.join("ca.key").exists() {
        return Err(PkiError::Exists(dir.into()));
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_err("the CA"))?;
    params
        .distinguished_name
        .push(DnType::CommonName, "mmm cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let ca = Ca {
        key: KeyPair::generate().map_err(cert_err("the CA"))?,
        params,
    };
    let ca_cert = ca
        .params
        .clone()
        .self_signed(&ca.key)
        .map_err(cert_err("the CA"))?;
    write(&dir.join("ca.key"), &ca.key.serialize_pem(), 0o600)?;
    let ca_path = dir.join("ca.crt");
    write(&ca_path, &ca_cert.pem(), 0o644)?;

    let mut monitor_ips: Vec<IpAddr> = vec![cfg.monitor.ip.into()];
    monitor_ips.extend(cfg.monitor_ips.iter().map(|ip| IpAddr::from(*ip)));
    monitor_ips.dedup();
    let monitor = leaf(
        &ca,
        &ca_cert,
        &Identity::new(Kind::Monitor, "monitor"),
        &monitor_ips,
        dir,
        "monitor",
    )?;
    let control = leaf(
        &ca,
        &ca_cert,
        &Identity::new(Kind::Operator, "mmm_control"),
        &[],
        dir,
        "control",
    )?;
    let agents = cfg
        .hosts
        .iter()
        .map(|h| {
            leaf(
                &ca,
                &ca_cert,
                &Identity::new(Kind::Agent, h.name.clone()),
                &[h.ip.into()],
                dir,
                &h.name,
            )
        })
        .collect::<Result<_, _>>()?;
    Ok(Pki {
        ca: ca_path,
        monitor,
        control,
        agents,
    })
}

impl Pki {
    /// The `<socket>` section of the monitor's config (`mmm_mon.conf`).
    pub fn monitor_socket(&self) -> String {
        format!(
            "<socket>\n    type                ssl\n    cert_file           {}\n    key_file            {}\n    ca_file             {}\n    control_cert_file   {}\n    control_key_file    {}\n</socket>\n",
            self.monitor.cert.display(),
            self.monitor.key.display(),
            self.ca.display(),
            self.control.cert.display(),
            self.control.key.display(),
        )
    }

    /// The `<socket>` section of host `host`'s agent config (`mmm_agent.conf`).
    pub fn agent_socket(&self, host: &str) -> Option<String> {
        let a = self.agents.iter().find(|a| a.identity.name == host)?;
        Some(format!(
            "<socket>\n    type                ssl\n    cert_file           {}\n    key_file            {}\n    ca_file             {}\n</socket>\n",
            a.cert.display(),
            a.key.display(),
            self.ca.display(),
        ))
    }

    /// What `tls init` prints: the files and the sections to add.
    pub fn instructions(&self) -> String {
        let mut s = format!(
            "Made a cluster CA ({}) and a key and certificate for the monitor, mmm_control and {} agent(s).\nKeep ca.key offline once every certificate is made.\n\nAdd to mmm_mon.conf (the monitor; mmm_control uses the control_* files):\n\n{}",
            self.ca.display(),
            self.agents.len(),
            self.monitor_socket()
        );
        for a in &self.agents {
            let _ = write!(
                s,
                "\nAdd to mmm_agent.conf on {} (copy {}, {} and {} there; keys stay mode 0600):\n\n{}",
                a.identity.name,
                a.cert.display(),
                a.key.display(),
                self.ca.display(),
                self.agent_socket(&a.identity.name).unwrap_or_default()
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::identities;

    fn cfg() -> Config {
        let text = format!(
            "{}\n<monitor>\n ip 198.18.0.5\n</monitor>\n",
            include_str!("../../examples/lab/mmm_common.conf")
        );
        Config::parse_str(Path::new("mmm_mon.conf"), &text).unwrap()
    }

    fn der(pem_path: &Path) -> Vec<u8> {
        let text = std::fs::read(pem_path).unwrap();
        x509_parser::pem::parse_x509_pem(&text).unwrap().1.contents
    }

    #[test]
    fn every_party_gets_its_identity_and_keys_stay_private() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("pki");
        let pki = init(&cfg(), &out).unwrap();
        assert_eq!(
            identities(&der(&pki.monitor.cert)),
            [Identity::new(Kind::Monitor, "monitor")]
        );
        assert_eq!(
            identities(&der(&pki.control.cert)),
            [Identity::new(Kind::Operator, "mmm_control")]
        );
        let names: Vec<_> = pki
            .agents
            .iter()
            .map(|a| a.identity.name.as_str())
            .collect();
        assert_eq!(names, ["db1", "db2", "db3"]);
        assert_eq!(
            identities(&der(&pki.agents[0].cert)),
            [Identity::new(Kind::Agent, "db1")]
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), 0o700);
        for k in [&pki.monitor.key, &pki.control.key, &out.join("ca.key")] {
            assert_eq!(mode(k), 0o600, "{}", k.display());
        }
        // The files load as the daemons load them.
        crate::TlsFiles::load(
            Some(&pki.agents[1].cert),
            Some(&pki.agents[1].key),
            Some(&pki.ca),
        )
        .unwrap();
        assert!(pki.instructions().contains("control_cert_file"));
        // Never over an existing CA.
        assert!(matches!(init(&cfg(), &out), Err(PkiError::Exists(_))));
    }
}
