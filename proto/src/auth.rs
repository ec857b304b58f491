//! Who may call what (the trust boundary). Every mmm gRPC service is wrapped in an
//! [`Authorizer`], a tonic interceptor that runs before the service sees a request:
//!
//! - **mutual TLS** (`<socket> type ssl`): the client's certificate, already verified against
//!   the cluster CA by the TLS layer, must carry an identity of an allowed [`Kind`]. An identity
//!   is a subjectAltName of type URI, `mmm://<kind>/<name>` — `mmm://monitor/mon1`,
//!   `mmm://operator/mmm_control`, `mmm://agent/db1` — written by `mmm-monitor tls init`
//!   (SPIFFE-like: the identity is in the certificate the CA signed, never in the request).
//!   Agents serve monitors only; the monitor serves operators and monitors; an agent's
//!   certificate commands nothing.
//! - **plaintext** (MMM-compatible): the peer's address must be one of the allowed addresses
//!   (for agents: the monitor's, `monitor_ips`). Nothing proves who is behind an address, so
//!   the daemons say so at start-up.
//!
//! A refused call gets PERMISSION_DENIED naming what was missing (never which identities
//! exist), or UNAUTHENTICATED when a TLS server sees no client certificate at all.

use std::{fmt, net::IpAddr, sync::Arc};
use tonic::{Request, Status};

/// The kinds of identity a certificate can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A monitor: pushes role tables, reads agents' status and health; may command monitors.
    Monitor,
    /// An operator's tool (`mmm_control`, `mmm-monitor <command>`): commands the monitor.
    Operator,
    /// A database host's agent: serves, commands nothing.
    Agent,
}

impl Kind {
    /// The kind's word in an identity URI.
    pub fn word(self) -> &'static str {
        match self {
            Kind::Monitor => "monitor",
            Kind::Operator => "operator",
            Kind::Agent => "agent",
        }
    }

    fn from_word(w: &str) -> Option<Kind> {
        [Kind::Monitor, Kind::Operator, Kind::Agent]
            .into_iter()
            .find(|k| k.word() == w)
    }
}

/// An identity: a kind and a name (`monitor`/`mon1`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub kind: Kind,
    pub name: String,
}

/// The URI scheme of identities.
pub const SCHEME: &str = "mmm://";

impl Identity {
    /// `kind`/`name`.
    pub fn new(kind: Kind, name: impl Into<String>) -> Identity {
        Identity {
            kind,
            name: name.into(),
        }
    }

    /// The subjectAltName URI that carries it: `mmm://<kind>/<name>`.
    pub fn uri(&self) -> String {
        format!("{SCHEME}{}/{}", self.kind.word(), self.name)
    }

    /// Parses `mmm://<kind>/<name>`; anything else is `None`.
    pub fn from_uri(uri: &str) -> Option<Identity> {
        let (kind, name) = uri.strip_prefix(SCHEME)?.split_once('/')?;
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return None;
        }
        Some(Identity::new(Kind::from_word(kind)?, name))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri())
    }
}

/// The identities a DER certificate carries (its URI subjectAltNames of our scheme); an
/// unparsable certificate carries none.
pub fn identities(der: &[u8]) -> Vec<Identity> {
    use x509_parser::{extensions::GeneralName, prelude::FromDer};
    let Ok((_, cert)) = x509_parser::certificate::X509Certificate::from_der(der) else {
        return vec![];
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return vec![];
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Identity::from_uri(u),
            _ => None,
        })
        .collect()
}

/// What a service accepts.
#[derive(Clone, Debug)]
pub enum Policy {
    /// Mutual TLS: a client certificate with an identity of one of these kinds.
    Tls(Vec<Kind>),
    /// Plaintext: a peer address among these (none: nobody).
    Addresses(Vec<IpAddr>),
    /// Plaintext, anyone (the monitor in MMM-compatible mode: MMM's behaviour).
    Anyone,
}

/// The interceptor enforcing a [`Policy`] (cheap to clone).
#[derive(Clone, Debug)]
pub struct Authorizer {
    policy: Arc<Policy>,
    service: &'static str,
}

impl Authorizer {
    /// An authorizer of `service` (named in refusals) under `policy`.
    pub fn new(service: &'static str, policy: Policy) -> Authorizer {
        Authorizer {
            policy: Arc::new(policy),
            service,
        }
    }

    /// Decides a call from its peer: the certificate chain the TLS layer verified (leaf
    /// first) and the peer's address.
    pub fn decide(&self, leaf: Option<&[u8]>, peer: Option<IpAddr>) -> Result<(), Status> {
        match &*self.policy {
            Policy::Anyone => Ok(()),
            Policy::Addresses(ips) => match peer {
                Some(ip) if ips.contains(&ip.to_canonical()) => Ok(()),
                Some(ip) => Err(Status::permission_denied(format!(
                    "{}: calls from {ip} are not accepted (plaintext control: only the monitor's addresses, monitor_ips)",
                    self.service
                ))),
                None => Err(Status::permission_denied(format!(
                    "{}: the caller's address is unknown",
                    self.service
                ))),
            },
            Policy::Tls(kinds) => {
                let Some(der) = leaf else {
                    return Err(Status::unauthenticated(format!(
                        "{}: a client certificate is required",
                        self.service
                    )));
                };
                if identities(der).iter().any(|i| kinds.contains(&i.kind)) {
                    return Ok(());
                }
                let want: Vec<&str> = kinds.iter().map(|k| k.word()).collect();
                Err(Status::permission_denied(format!(
                    "{}: the client certificate carries no {} identity",
                    self.service,
                    want.join(" or ")
                )))
            }
        }
    }
}

impl tonic::service::Interceptor for Authorizer {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let certs = req.peer_certs();
        let leaf = certs.as_ref().and_then(|c| c.first()).map(|c| c.as_ref());
        self.decide(leaf, req.remote_addr().map(|a| a.ip()))?;
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_uris() {
        let i = Identity::new(Kind::Agent, "db1");
        assert_eq!(i.uri(), "mmm://agent/db1");
        assert_eq!(Identity::from_uri("mmm://agent/db1"), Some(i));
        for bad in [
            "mmm://root/db1",
            "mmm://agent/",
            "spiffe://agent/db1",
            "mmm://agent/db1/x",
            "mmm://agent",
        ] {
            assert_eq!(Identity::from_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn address_policy() {
        let a = Authorizer::new(
            "mmm.v1.Agent",
            Policy::Addresses(vec!["198.18.0.2".parse().unwrap()]),
        );
        assert!(a.decide(None, Some("198.18.0.2".parse().unwrap())).is_ok());
        assert!(a
            .decide(None, Some("::ffff:198.18.0.2".parse().unwrap()))
            .is_ok());
        let e = a
            .decide(None, Some("198.18.0.99".parse().unwrap()))
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(a.decide(None, None).is_err());
    }

    #[test]
    fn tls_policy_needs_a_certificate() {
        let a = Authorizer::new("mmm.v1.Agent", Policy::Tls(vec![Kind::Monitor]));
        assert_eq!(
            a.decide(None, None).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            a.decide(Some(b"not a certificate"), None)
                .unwrap_err()
                .code(),
            tonic::Code::PermissionDenied
        );
    }
}
