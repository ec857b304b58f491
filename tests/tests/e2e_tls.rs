//! End to end over mutual TLS, the lab's default (certificates from `mmm-monitor tls init`'s
//! code): the monitor drives every agent and mmm_control drives the monitor; identities decide
//! who may call what, checked with the real grpcurl — an agent's certificate commands nothing,
//! mmm_control's cannot apply role tables, a client without a certificate or with another
//! CA's is refused, and even the monitor's certificate cannot push a table the agent's own
//! configuration forbids (a slave as writer, an epoch of u64::MAX).

use mmm_tests::{grpc::Party, lab::Lab, walkthrough::roles_of};
use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
use std::{net::IpAddr, os::unix::fs::PermissionsExt, path::Path, process::Output};

/// Writes `ca.pem`, `cert.pem` and `key.pem` (mode 600) into `dir`: a CA of its own and a
/// certificate for `ips` carrying the monitor's identity — everything but the right CA.
fn foreign_certs(dir: &Path, ips: &[IpAddr]) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.subject_alt_names = ips.iter().map(|ip| SanType::IpAddress(*ip)).collect();
    p.subject_alt_names
        .push(SanType::URI("mmm://monitor/monitor".try_into().unwrap()));
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A role table making db3 (a slave) the writer, as an attacker would send it.
fn forged(epoch: &str) -> String {
    format!(
        r#"{{"epoch":"{epoch}","active_master":"db3","active_master_role":"writer","hosts":[{{"host":"db3","state":"HOST_STATE_ONLINE","roles":[{{"name":"writer","ip":"198.18.0.100"}}]}}]}}"#
    )
}

#[test]
fn identities_decide_who_may_call_what() {
    let lab = Lab::up_online(&format!("mmmtls{}", std::process::id())).expect("lab up over TLS");
    assert!(lab.cfg.socket.ssl, "the lab runs over TLS by default");
    let (show, code) = lab.ctl(&["show"]).unwrap();
    assert_eq!(code, 0, "{show}");
    let monitor = format!("{}:{}", lab.cfg.monitor.ip, lab.cfg.monitor.port);
    let db3 = lab.cfg.host("db3").unwrap();
    let agent = format!("{}:{}", db3.ip, db3.agent_port);

    // grpcurl as the operator: list and describe; the monitor lists only what it serves.
    let o = lab
        .grpcurl("monitor", Party::Control, &monitor, None, &["list"])
        .unwrap();
    let listed = text(&o);
    assert!(o.status.success(), "{listed}");
    assert!(listed.contains("mmm.v1.Monitor") && listed.contains("grpc.health.v1.Health"));
    assert!(!listed.contains("mmm.v1.Agent"), "{listed}");
    let o = lab
        .grpcurl(
            "monitor",
            Party::Control,
            &monitor,
            None,
            &["describe", "mmm.v1.Monitor"],
        )
        .unwrap();
    assert!(text(&o).contains("rpc SetOffline"), "{}", text(&o));

    // An agent's certificate commands nothing.
    let o = lab
        .grpcurl(
            "client",
            Party::Agent(2),
            &monitor,
            Some(r#"{"host":"db1"}"#),
            &["mmm.v1.Monitor/SetOffline"],
        )
        .unwrap();
    let said = text(&o);
    assert!(
        !o.status.success() && said.contains("PermissionDenied"),
        "{said}"
    );
    assert!(said.contains("no operator or monitor identity"), "{said}");

    // mmm_control's certificate cannot apply role tables.
    let o = lab
        .grpcurl(
            "client",
            Party::Control,
            &agent,
            Some(&forged("1000000")),
            &["mmm.v1.Agent/ApplyRoles"],
        )
        .unwrap();
    let said = text(&o);
    assert!(
        !o.status.success() && said.contains("PermissionDenied"),
        "{said}"
    );
    // Nor may it, or another agent's certificate, read an agent's status or health: only
    // the monitor talks to agents.
    for party in [Party::Control, Party::Agent(1)] {
        for method in ["mmm.v1.Agent/Status", "mmm.v1.Agent/Health"] {
            let o = lab
                .grpcurl("client", party, &agent, Some("{}"), &[method])
                .unwrap();
            let said = text(&o);
            assert!(
                !o.status.success() && said.contains("PermissionDenied"),
                "{method}: {said}"
            );
        }
    }

    // No certificate at all: the TLS handshake fails, at the agent and at the monitor alike.
    let o = lab
        .grpcurl("client", Party::Nobody, &agent, None, &["list"])
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let o = lab
        .grpcurl(
            "client",
            Party::Nobody,
            &monitor,
            Some(r#"{"host":"db1"}"#),
            &["mmm.v1.Monitor/SetOffline"],
        )
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));

    // The monitor's identity, but tables the agent's configuration forbids.
    for (epoch, why) in [
        ("1000000", "which only db1, db2 may hold"),
        ("18446744073709551615", "above the applied epoch"),
    ] {
        let o = lab
            .grpcurl(
                "monitor",
                Party::Monitor,
                &agent,
                Some(&forged(epoch)),
                &["mmm.v1.Agent/ApplyRoles"],
            )
            .unwrap();
        let said = text(&o);
        assert!(
            !o.status.success() && said.contains("InvalidArgument") && said.contains(why),
            "{said}"
        );
    }
    // A steering MAC that is not the host's (a gateway's, say): refused too.
    let foreign_mac = r#"{"epoch":"1000000","active_master":"db1","active_master_role":"writer","hosts":[{"host":"db1","state":"HOST_STATE_ONLINE","roles":[{"name":"writer","ip":"198.18.0.100"}],"mac":"AgAAAACZ"},{"host":"db3","state":"HOST_STATE_ONLINE","roles":[{"name":"reader","ip":"198.18.0.102"}]}]}"#;
    let o = lab
        .grpcurl(
            "monitor",
            Party::Monitor,
            &agent,
            Some(foreign_mac),
            &["mmm.v1.Agent/ApplyRoles"],
        )
        .unwrap();
    let said = text(&o);
    assert!(
        !o.status.success() && said.contains("the MAC 02:00:00:00:00:99, but db1 is at"),
        "{said}"
    );
    // Nothing changed: db3 read-only, the writer where it was, the monitor's table still
    // accepted by db3 (no epoch locked it out).
    assert_eq!(lab.sql("db3", "SELECT @@read_only").unwrap().trim(), "1");
    let (after, _) = lab.ctl(&["show"]).unwrap();
    assert_eq!(roles_of(&after, "db1"), roles_of(&show, "db1"), "{after}");
    let o = lab
        .grpcurl(
            "monitor",
            Party::Monitor,
            &agent,
            None,
            &["mmm.v1.Agent/Status"],
        )
        .unwrap();
    let status = text(&o);
    assert!(o.status.success(), "{status}");
    let (out, code) = lab.ctl(&["set_offline", "db3"]).unwrap();
    assert_eq!(code, 0, "the monitor still commands db3: {out}");

    // A client with another CA's certificate, even one claiming the monitor's identity.
    let other = tempfile::tempdir().unwrap();
    foreign_certs(other.path(), &[db3.ip.into(), lab.cfg.monitor.ip.into()]);
    let mut cmd =
        mmm_tests::netns::command_in(&lab.ns("monitor"), mmm_tests::grpcurl().unwrap()).unwrap();
    cmd.args(["-max-time", "5", "-cacert"])
        .arg(lab.run.join("pki/ca.crt"))
        .arg("-cert")
        .arg(other.path().join("cert.pem"))
        .arg("-key")
        .arg(other.path().join("key.pem"))
        .arg(&agent)
        .arg("mmm.v1.Agent/Status");
    let o = cmd.output().unwrap();
    assert!(!o.status.success(), "{}", text(&o));
}
