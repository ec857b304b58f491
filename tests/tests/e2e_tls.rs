//! End to end over mutual TLS (`<socket> type ssl`): with certificates from one CA the monitor
//! drives every agent (hosts set ONLINE, roles placed) and mmm_control drives the monitor; an
//! agent refuses a plaintext client and a client whose certificate another CA signed.

use mmm_tests::lab::Lab;
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
use std::{net::IpAddr, os::unix::fs::PermissionsExt, path::Path, time::Duration};
use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};

/// Writes `ca.pem`, `cert.pem` and `key.pem` (mode 600) into `dir`: a CA, and one certificate
/// it signed naming every address in `ips`, for servers and clients alike.
fn write_certs(dir: &Path, ips: &[IpAddr]) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, &ca, &ca_key).unwrap();
    for (name, body) in [
        ("ca.pem", ca.pem()),
        ("cert.pem", cert.pem()),
        ("key.pem", key.serialize_pem()),
    ] {
        let f = dir.join(name);
        std::fs::write(&f, body).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// The lab's example configuration with `<socket> type ssl`, certificates included. Copies
/// at mode 600: git does not keep file modes, and files holding passwords must be private.
fn tls_config(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab");
    let write = |name: &str, body: String| {
        let f = dir.join(name);
        std::fs::write(&f, body).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    let common = std::fs::read_to_string(src.join("mmm_common.conf")).unwrap();
    write("mmm_common.conf", common.clone());
    write(
        "mmm_mon.conf",
        std::fs::read_to_string(src.join("mmm_mon.conf")).unwrap(),
    );
    let cfg = mmm_common::config::Config::load(&dir.join("mmm_mon.conf")).unwrap();
    let mut ips: Vec<IpAddr> = cfg.hosts.iter().map(|h| h.ip.into()).collect();
    ips.push(cfg.monitor.ip.into());
    write_certs(dir, &ips);
    let socket = format!(
        "\n<socket>\n    type ssl\n    cert_file {0}/cert.pem\n    key_file {0}/key.pem\n    ca_file {0}/ca.pem\n</socket>\n",
        dir.display()
    );
    write("mmm_common.conf", common + &socket);
}

/// A health check of the agent at `ip:port`, from the monitor's namespace, plain or with TLS.
fn check(lab: &Lab, ip: IpAddr, port: u16, tls: Option<mmm_proto::TlsFiles>) -> Result<(), String> {
    mmm_tests::netns::block_on_in(&lab.ns("monitor"), move || async move {
        let ep = mmm_proto::endpoint(&format!("{ip}:{port}"), tls.as_ref())
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(2));
        let ch = ep.connect().await.map_err(|e| format!("connect: {e}"))?;
        HealthClient::new(ch)
            .check(HealthCheckRequest {
                service: "mmm.v1.Agent".into(),
            })
            .await
            .map(drop)
            .map_err(|e| format!("call: {e}"))
    })
    .unwrap()
}

#[test]
fn the_control_plane_runs_over_mutual_tls_and_refuses_other_clients() {
    let dir = tempfile::tempdir().unwrap();
    tls_config(dir.path());
    let lab = Lab::up_online_with(&format!("mmmtls{}", std::process::id()), dir.path())
        .expect("lab up over TLS: monitor → agents and mmm_control → monitor");
    let (out, code) = lab.ctl(&["show"]).unwrap();
    assert_eq!(code, 0, "{out}");
    let h = &lab.cfg.hosts[0];
    let (ip, port) = (IpAddr::from(h.ip), h.agent_port);
    let ours = mmm_proto::TlsFiles::for_socket(&lab.cfg.socket)
        .unwrap()
        .expect("ssl configured");
    check(&lab, ip, port, Some(ours)).expect("a client with the cluster's certificate");
    let plain = check(&lab, ip, port, None);
    assert!(plain.is_err(), "a plaintext client was served");
    // A certificate for the same addresses, signed by another CA.
    let other = tempfile::tempdir().unwrap();
    write_certs(other.path(), &[ip, lab.cfg.monitor.ip.into()]);
    let stranger = mmm_proto::TlsFiles::load(
        Some(&other.path().join("cert.pem")),
        Some(&other.path().join("key.pem")),
        Some(&other.path().join("ca.pem")),
    )
    .unwrap();
    let e = check(&lab, ip, port, Some(stranger)).unwrap_err();
    assert!(!e.is_empty());
}
