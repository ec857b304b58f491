//! Reaching a lab's daemons over gRPC as its parties do: the monitor with `mmm_control`'s
//! operator certificate, an agent with the monitor's certificate (plain `http` in a plaintext
//! lab), and grpcurl with any of the lab's certificates (`run/pki`).

use crate::lab::Lab;
use anyhow::{Context, Result};
use mmm_proto::TlsFiles;
use std::{path::PathBuf, process::Output};
use tonic::transport::Endpoint;

/// A party of a TLS lab, by the certificate it presents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Party {
    /// `monitor.crt` (identity `mmm://monitor/monitor`).
    Monitor,
    /// `control.crt` (identity `mmm://operator/mmm_control`).
    Control,
    /// An agent's certificate (`mmm://agent/<host>`), by host index in the config.
    Agent(usize),
    /// No certificate (plaintext in a plaintext lab; a TLS client without one in a TLS lab).
    Nobody,
}

impl Lab {
    /// The certificate and key files of `who` (`None` for [`Party::Nobody`] or a plain lab).
    pub fn cert_of(&self, who: Party) -> Option<(PathBuf, PathBuf)> {
        if !self.cfg.socket.ssl {
            return None;
        }
        let pki = self.run.join("pki");
        let name = match who {
            Party::Monitor => "monitor".to_string(),
            Party::Control => "control".to_string(),
            Party::Agent(i) => self.cfg.hosts.get(i)?.name.clone(),
            Party::Nobody => return None,
        };
        Some((
            pki.join(format!("{name}.crt")),
            pki.join(format!("{name}.key")),
        ))
    }

    /// The monitor's gRPC endpoint, as `mmm_control` reaches it.
    pub fn monitor_endpoint(&self) -> Result<Endpoint> {
        let tls = TlsFiles::for_control(&self.cfg.socket)?;
        let addr = format!("{}:{}", self.cfg.monitor.ip, self.cfg.monitor.port);
        Ok(mmm_proto::endpoint(&addr, tls.as_ref())?)
    }

    /// Host `host`'s agent endpoint, as the monitor reaches it.
    pub fn agent_endpoint(&self, host: &str) -> Result<Endpoint> {
        let h = self.cfg.host(host).context("no such host")?;
        let tls = TlsFiles::for_socket(&self.cfg.socket)?;
        Ok(mmm_proto::endpoint(
            &format!("{}:{}", h.ip, h.agent_port),
            tls.as_ref(),
        )?)
    }

    /// Runs grpcurl in namespace `from` (`client`, `monitor`, a host) against `addr`
    /// (`ip:port`) as `who`, with `args` before the address and `after` it (method, …);
    /// `data` is the request as JSON (`-d`).
    pub fn grpcurl(
        &self,
        from: &str,
        who: Party,
        addr: &str,
        data: Option<&str>,
        after: &[&str],
    ) -> Result<Output> {
        let mut cmd = crate::netns::command_in(&self.ns(from), crate::grpcurl()?)?;
        cmd.args(["-max-time", "5"]);
        if self.cfg.socket.ssl {
            cmd.arg("-cacert").arg(self.run.join("pki/ca.crt"));
            if let Some((cert, key)) = self.cert_of(who) {
                cmd.arg("-cert").arg(cert).arg("-key").arg(key);
            }
        } else {
            cmd.arg("-plaintext");
        }
        if let Some(d) = data {
            cmd.args(["-d", d]);
        }
        cmd.arg(addr).args(after);
        cmd.output().context("running grpcurl")
    }
}
