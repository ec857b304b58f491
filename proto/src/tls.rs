//! TLS for both gRPC services (`<socket> type ssl` in the MMM config): mutual TLS under one CA.
//! Every daemon presents `cert_file`/`key_file` and accepts only peers whose certificate
//! `ca_file` signed; the monitor's calls to agents present the monitor's certificate and
//! `mmm_control`'s calls `control_cert_file` (what each may call is `auth.rs`'s business: the
//! identity in the certificate). A client checks that the server's certificate names
//! the IP address it dialled (a subjectAltName of type IP) — the address in the config.
//!
//! Files are read and checked when a daemon starts, so a wrong path, a file that is no PEM or a
//! private key readable by others stops it with a message naming the file.

use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// A TLS set-up problem, naming the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("<socket> type ssl needs {0} (cert_file, key_file and ca_file)")]
    Missing(&'static str),
    #[error("reading {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path} holds no PEM {expected} block")]
    NotPem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("key_file {0} is readable or writable by other users; run `chmod 600 {0}`")]
    KeyExposed(PathBuf),
}

/// The PEM files of one daemon (or of `mmm_control`).
#[derive(Clone, Debug)]
pub struct TlsFiles {
    identity: Identity,
    ca: Certificate,
}

fn read(what: &'static str, path: &Path, expected: &'static str) -> Result<Vec<u8>, TlsError> {
    let pem = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.into(),
        source,
    })?;
    let text = String::from_utf8_lossy(&pem);
    let found = text.lines().any(|l| {
        let l = l.trim();
        l.starts_with("-----BEGIN ") && l.ends_with(&format!("{expected}-----"))
    });
    if !found {
        return Err(TlsError::NotPem {
            what,
            path: path.into(),
            expected,
        });
    }
    Ok(pem)
}

impl TlsFiles {
    /// Reads the three files of `<socket>` (all three must be given).
    pub fn load(
        cert: Option<&Path>,
        key: Option<&Path>,
        ca: Option<&Path>,
    ) -> Result<TlsFiles, TlsError> {
        let cert = cert.ok_or(TlsError::Missing("cert_file"))?;
        let key = key.ok_or(TlsError::Missing("key_file"))?;
        let ca = ca.ok_or(TlsError::Missing("ca_file"))?;
        let meta = std::fs::metadata(key).map_err(|source| TlsError::Read {
            what: "key_file",
            path: key.into(),
            source,
        })?;
        if mmm_common::fsutil::open_to_others(&meta) {
            return Err(TlsError::KeyExposed(key.into()));
        }
        Ok(TlsFiles {
            identity: Identity::from_pem(
                read("cert_file", cert, "CERTIFICATE")?,
                read("key_file", key, "PRIVATE KEY")?,
            ),
            ca: Certificate::from_pem(read("ca_file", ca, "CERTIFICATE")?),
        })
    }

    /// The files of a config's `<socket>`: `None` for `type plain` (the default).
    pub fn for_socket(s: &mmm_common::config::SocketConfig) -> Result<Option<TlsFiles>, TlsError> {
        if !s.ssl {
            return Ok(None);
        }
        TlsFiles::load(
            s.cert_file.as_deref(),
            s.key_file.as_deref(),
            s.ca_file.as_deref(),
        )
        .map(Some)
    }

    /// The files `mmm_control` presents: `control_cert_file`/`control_key_file` (an operator
    /// identity), else `cert_file`/`key_file`. `None` for `type plain`.
    pub fn for_control(s: &mmm_common::config::SocketConfig) -> Result<Option<TlsFiles>, TlsError> {
        if !s.ssl {
            return Ok(None);
        }
        let (cert, key) = match (&s.control_cert_file, &s.control_key_file) {
            (Some(c), Some(k)) => (Some(c.as_path()), Some(k.as_path())),
            _ => (s.cert_file.as_deref(), s.key_file.as_deref()),
        };
        TlsFiles::load(cert, key, s.ca_file.as_deref()).map(Some)
    }

    /// A server that proves itself with the certificate and requires a client certificate
    /// signed by the CA.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(self.identity.clone())
            .client_ca_root(self.ca.clone())
    }

    /// A client of the server at `server` (the IP address or name dialled): checks the server's
    /// certificate against the CA and that name, and presents its own.
    pub fn client(&self, server: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(self.ca.clone())
            .identity(self.identity.clone())
            .domain_name(server)
    }
}

/// Why [`endpoint`] could not make an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("address {0}: {1}")]
    Address(String, #[source] tonic::transport::Error),
    #[error("TLS: {0}")]
    Tls(#[source] tonic::transport::Error),
}

/// A client endpoint for the server at `authority` (`host:port`): plain `http`, or with
/// `tls` `https` checking the server's certificate against `host`.
pub fn endpoint(authority: &str, tls: Option<&TlsFiles>) -> Result<Endpoint, EndpointError> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ep = Endpoint::from_shared(format!("{scheme}://{authority}"))
        .map_err(|e| EndpointError::Address(authority.into(), e))?;
    let Some(t) = tls else { return Ok(ep) };
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .trim_matches(|c| c == '[' || c == ']');
    ep.tls_config(t.client(host)).map_err(EndpointError::Tls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn bad_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let cert = write(
            d.path(),
            "c.pem",
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
            0o644,
        );
        let key = write(
            d.path(),
            "k.pem",
            "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
            0o600,
        );
        let junk = write(d.path(), "j.pem", "hello\n", 0o600);
        let open = write(
            d.path(),
            "open.pem",
            "-----BEGIN EC PRIVATE KEY-----\nAA==\n",
            0o644,
        );
        let none = d.path().join("none.pem");
        let e = |c: Option<&Path>, k: Option<&Path>, a: Option<&Path>| {
            TlsFiles::load(c, k, a).unwrap_err().to_string()
        };
        assert!(TlsFiles::load(Some(&cert), Some(&key), Some(&cert)).is_ok());
        assert!(e(None, Some(&key), Some(&cert)).contains("needs cert_file"));
        assert!(e(Some(&cert), Some(&key), None).contains("needs ca_file"));
        let m = e(Some(&junk), Some(&key), Some(&cert));
        assert!(
            m.contains("cert_file") && m.contains("j.pem") && m.contains("no PEM"),
            "{m}"
        );
        let m = e(Some(&cert), Some(&open), Some(&cert));
        assert!(m.contains("chmod 600") && m.contains("open.pem"), "{m}");
        let m = e(Some(&cert), Some(&key), Some(&none));
        assert!(m.contains("ca_file") && m.contains("none.pem"), "{m}");
        let m = e(Some(&cert), Some(&junk), Some(&cert));
        assert!(m.contains("key_file") && m.contains("PRIVATE KEY"), "{m}");
    }
}
