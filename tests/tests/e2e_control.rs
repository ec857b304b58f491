//! End to end, control plane: mmm_control commands, gRPC reflection used the way grpcurl uses
//! it (discover the service and method, build the request from the descriptor, call), health,
//! Watch, invalid arguments; the agent killed (VIP traffic continues) and restarted; the
//! monitor restarted (roles unchanged, epoch advanced); malformed configs refused cleanly.

use mmm_tests::{
    lab::{self, Bins, Lab},
    walkthrough::{roles_of, state_of},
};
use prost::Message;
use std::{path::Path, time::Duration};

const T: Duration = Duration::from_secs(30);

fn lab_online(tag: &str) -> Lab {
    Lab::up_online_plain(&format!("mmm{tag}{}", std::process::id())).expect("lab up")
}

/// Runs `f` in the monitor's namespace on a tokio runtime.
fn in_monitor<T: Send + 'static, F: std::future::Future<Output = T> + 'static>(
    lab: &Lab,
    f: impl FnOnce() -> F + Send + 'static,
) -> T {
    mmm_tests::netns::block_on_in(&lab.ns("monitor"), f).unwrap()
}

/// A codec that passes message bytes through, for calls built from reflected descriptors.
#[derive(Clone, Default)]
struct Raw;
struct RawEnc;
struct RawDec;
impl tonic::codec::Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEnc;
    type Decoder = RawDec;
    fn encoder(&mut self) -> RawEnc {
        RawEnc
    }
    fn decoder(&mut self) -> RawDec {
        RawDec
    }
}
impl tonic::codec::Encoder for RawEnc {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}
impl tonic::codec::Decoder for RawDec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

/// Encodes string/bool fields by name using the message descriptor found through reflection.
fn encode(desc: &prost_types::DescriptorProto, fields: &[(&str, &str)]) -> Vec<u8> {
    use prost_types::field_descriptor_proto::Type;
    let mut out = Vec::new();
    for (name, value) in fields {
        let f = desc
            .field
            .iter()
            .find(|f| f.name() == *name)
            .unwrap_or_else(|| panic!("no field {name}"));
        let n = f.number() as u64;
        match f.r#type() {
            Type::String => {
                prost::encoding::encode_varint(n << 3 | 2, &mut out);
                prost::encoding::encode_varint(value.len() as u64, &mut out);
                out.extend_from_slice(value.as_bytes());
            }
            Type::Bool => {
                prost::encoding::encode_varint(n << 3, &mut out);
                prost::encoding::encode_varint(u64::from(*value == "true"), &mut out);
            }
            t => panic!("field type {t:?} not handled"),
        }
    }
    out
}

#[test]
fn commands_reflection_health_watch_and_errors() {
    let lab = lab_online("c");
    // set_offline through the CLI: roles leave db3 and its replication stops.
    let (out, code) = lab.ctl(&["set_offline", "db3"]).unwrap();
    assert_eq!((out.trim(), code), ("OK: State of 'db3' changed to ADMIN_OFFLINE. Now you can wait some time and check all roles!", 0));
    let s = lab
        .wait_show(T, |s| {
            state_of(s, "db3") == "ADMIN_OFFLINE"
                && roles_of(s, "db2").matches("reader").count() == 2
        })
        .unwrap();
    assert_eq!(roles_of(&s, "db3"), "");
    assert!(
        mmm_tests::Net::wait_for(T, || lab
            .sql("db3", "SHOW SLAVE STATUS")
            .unwrap_or_default()
            .contains("\tNo\tNo\t")),
        "ADMIN_OFFLINE did not stop replication"
    );
    assert_eq!(lab.ctl(&["set_online", "db3"]).unwrap().1, 0);
    lab.wait_show(T, |s| roles_of(s, "db3").contains("reader"))
        .unwrap();

    // Modes through the CLI.
    assert_eq!(lab.ctl(&["mode"]).unwrap().0.trim(), "ACTIVE");
    assert_eq!(
        lab.ctl(&["set_manual"]).unwrap().0.trim(),
        "OK: Switched into manual mode."
    );
    assert_eq!(lab.ctl(&["mode"]).unwrap().0.trim(), "MANUAL");
    // Errors: exit 1 with MMM's text; an invalid command line exits 2.
    let (out, code) = lab.ctl(&["set_online", "db9"]).unwrap();
    assert_eq!((out.trim(), code), ("ERROR: Unknown host name 'db9'!", 1));
    let (out, code) = lab.ctl(&["set_ip", "nope", "db1"]).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("'nope' is not an IPv4 address"), "{out}");
    let (out, code) = lab.ctl(&["frobnicate"]).unwrap();
    assert_eq!(code, 2);
    assert!(out.starts_with("Invalid command 'frobnicate'"), "{out}");
    let (out, _) = lab.ctl(&["--json", "show"]).unwrap();
    assert!(out.contains("\"mode\":\"MANUAL\""), "{out}");

    // gRPC: reflection (v1 and v1alpha), a call built from the reflected descriptor, health,
    // Watch, invalid arguments.
    let addr = format!("http://{}:{}", lab.cfg.monitor.ip, lab.cfg.monitor.port);
    let reply = in_monitor(&lab, move || async move {
        use tonic_reflection::pb::{v1, v1alpha};
        let ch = tonic::transport::Endpoint::from_shared(addr)
            .unwrap()
            .connect()
            .await
            .unwrap();
        // list (v1alpha, as older grpcurl) and describe (v1).
        let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(ch.clone());
        let req = v1alpha::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::ListServices(String::new()),
            ),
        };
        let mut s = alpha
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
            s.message().await.unwrap().unwrap().message_response
        else {
            panic!("no list")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(
            !names.iter().any(|n| n == "mmm.v1.Agent"),
            "the monitor lists a service it does not serve: {names:?}"
        );
        for want in [
            "mmm.v1.Monitor",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} not listed: {names:?}"
            );
        }
        let mut refl = v1::server_reflection_client::ServerReflectionClient::new(ch.clone());
        let req = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                    "mmm.v1.Monitor".into(),
                ),
            ),
        };
        let mut s = refl
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(fd)) =
            s.message().await.unwrap().unwrap().message_response
        else {
            panic!("no descriptor")
        };
        let file = prost_types::FileDescriptorProto::decode(fd.file_descriptor_proto[0].as_slice())
            .unwrap();
        let svc = file.service.iter().find(|s| s.name() == "Monitor").unwrap();
        let method = svc.method.iter().find(|m| m.name() == "MoveRole").unwrap();
        let input = method.input_type().rsplit('.').next().unwrap();
        let desc = file
            .message_type
            .iter()
            .find(|m| m.name() == input)
            .unwrap();
        let body = encode(
            desc,
            &[("role", "writer"), ("host", "db2"), ("force", "false")],
        );
        let mut grpc = tonic::client::Grpc::new(ch.clone());
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::from_maybe_shared(format!(
            "/{}.{}/{}",
            file.package(),
            svc.name(),
            method.name()
        ))
        .unwrap();
        let resp: Vec<u8> = grpc
            .unary(tonic::Request::new(body), path, Raw)
            .await
            .unwrap()
            .into_inner();
        let reply = mmm_proto::v1::CommandReply::decode(resp.as_slice())
            .unwrap()
            .message;

        // Health.
        let mut h = tonic_health::pb::health_client::HealthClient::new(ch.clone());
        let st = h
            .check(tonic_health::pb::HealthCheckRequest {
                service: "mmm.v1.Monitor".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            st.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );

        // Watch sees a mode change; invalid arguments are INVALID_ARGUMENT.
        let mut m = mmm_proto::v1::monitor_client::MonitorClient::new(ch);
        let mut watch = m
            .watch(mmm_proto::v1::WatchRequest {})
            .await
            .unwrap()
            .into_inner();
        m.set_mode(mmm_proto::v1::SetModeRequest {
            mode: mmm_proto::v1::Mode::Active as i32,
        })
        .await
        .unwrap();
        let ev = tokio::time::timeout(Duration::from_secs(5), watch.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(
            matches!(
                ev.event,
                Some(mmm_proto::v1::cluster_event::Event::ModeChange(_))
            ),
            "{ev:?}"
        );
        let e = m
            .set_ip(mmm_proto::v1::SetIpRequest {
                ip: "300.1.1.1".into(),
                host: "db1".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = m
            .set_mode(mmm_proto::v1::SetModeRequest { mode: 0 })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = m
            .set_online(mmm_proto::v1::HostRequest {
                host: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        let e = m
            .move_role(mmm_proto::v1::MoveRoleRequest {
                role: "writer".into(),
                host: "db3".into(),
                force: false,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        assert!(
            e.message()
                .starts_with("ERROR: Host 'db3' can't handle role 'writer'"),
            "{}",
            e.message()
        );
        reply
    });
    assert_eq!(reply, "OK: Role 'writer' has been moved from 'db1' to 'db2'. Now you can wait some time and check new roles info!");
    lab.wait_show(T, |s| roles_of(s, "db2").contains("writer"))
        .unwrap();
    let vip = lab.cfg.role("writer").unwrap().ips[0];
    let end = std::time::Instant::now() + T;
    let id = loop {
        match lab.client_sql(vip, "SELECT @@server_id") {
            Ok(id) if id.trim() == "2" => break id,
            _ if std::time::Instant::now() > end => panic!("the writer VIP does not reach db2"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    assert_eq!(id.trim(), "2");
    assert_eq!(lab.sql("db1", "SELECT @@read_only").unwrap().trim(), "1");
}

#[test]
fn killed_agent_keeps_vips_and_a_restarted_monitor_keeps_roles() {
    let mut lab = lab_online("r");
    let vip = lab.cfg.role("writer").unwrap().ips[0];
    lab.client_sql(vip, "CREATE TABLE r (id INT PRIMARY KEY)")
        .unwrap();
    let state =
        |lab: &Lab| std::fs::read_to_string(lab.run.join("db1/state/mmm_agent-db1.state")).unwrap();
    let before = state(&lab);
    lab.kill_agent("db1");
    // VIP traffic continues with the agent gone (the data plane is pinned).
    lab.client_sql(vip, "INSERT INTO r VALUES (1)").unwrap();
    lab.wait_show(T, |s| {
        s.contains("# Warning: agent on host db1 is not reachable")
    })
    .unwrap();
    // Type=notify: the daemon says READY=1 once it serves (systemd's $NOTIFY_SOCKET).
    let ready = |path: std::path::PathBuf| {
        let _ = std::fs::remove_file(&path);
        let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(T)).unwrap();
        move || {
            let mut buf = [0u8; 256];
            let n = sock.recv(&mut buf).unwrap_or(0);
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }
    };
    let agent_ready = ready(lab.run.join("db1/notify.sock"));
    lab.start_agent("db1").unwrap();
    assert!(agent_ready().contains("READY=1"));
    lab.wait_show(T, |s| !s.contains("# Warning")).unwrap();
    assert!(state(&lab).contains("\"epoch\""), "state lost");
    let epoch = |s: &str| -> u64 {
        s.split("\"epoch\": ")
            .nth(1)
            .and_then(|x| x.split(',').next())
            .and_then(|x| x.trim().parse().ok())
            .unwrap()
    };
    assert!(
        epoch(&state(&lab)) >= epoch(&before),
        "the agent's epoch went back"
    );
    lab.client_sql(vip, "INSERT INTO r VALUES (2)").unwrap();

    // The monitor restarted: same roles, a newer epoch.
    let json_epoch = |lab: &Lab| -> u64 {
        let (out, _) = lab.ctl(&["--json", "show"]).unwrap();
        out.split("\"epoch\":")
            .nth(1)
            .and_then(|x| x.split([',', '}']).next())
            .and_then(|x| x.trim().parse().ok())
            .unwrap()
    };
    let roles_before = lab.ctl(&["show"]).unwrap().0;
    let e0 = json_epoch(&lab);
    lab.kill_monitor();
    let monitor_ready = ready(lab.run.join("monitor/notify.sock"));
    lab.start_monitor().unwrap();
    assert!(monitor_ready().contains("READY=1"));
    let roles_after = lab
        .wait_show(T, |s| s.contains("ONLINE") && !s.contains("# Warning"))
        .unwrap();
    assert_eq!(roles_before, roles_after);
    assert!(
        mmm_tests::Net::wait_for(T, || json_epoch(&lab) > e0),
        "epoch did not advance past {e0}"
    );
    lab.client_sql(vip, "INSERT INTO r VALUES (3)").unwrap();
}

#[test]
fn malformed_configs_are_refused_and_nothing_is_created() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lab");
    let dir = tempfile::tempdir().unwrap();
    let common = std::fs::read_to_string(good.join("mmm_common.conf")).unwrap();
    std::fs::write(
        dir.path().join("mmm_mon.conf"),
        std::fs::read_to_string(good.join("mmm_mon.conf")).unwrap(),
    )
    .unwrap();
    let prefix = format!("mmmbad{}", std::process::id());
    // The line (1-based) of the example that holds `text`.
    let line_of = |text: &str| common.lines().position(|l| l == text).map_or(0, |i| i + 1);
    let ip_line = line_of("    ip      198.18.0.12");
    for (bad, want) in [
        (common.replace("    ip      198.18.0.12", "    ip198.18.0.12"), format!("mmm_common.conf:{ip_line}: unknown directive 'ip198.18.0.12' in <host db2> (a space missing between 'ip' and its value?)")),
        (common.replace("198.18.0.100", "10.1.2.3"), "role writer has address 10.1.2.3, outside 198.18.0.0/15".to_string()),
    ] {
        std::fs::write(dir.path().join("mmm_common.conf"), &bad).unwrap();
        let e = format!("{:#}", Lab::up(&prefix, dir.path(), Bins::workspace()).err().expect("a malformed config was accepted"));
        assert!(e.contains(&want), "want {want:?} in: {e}");
        assert_eq!(lab::existing_namespaces(&prefix).unwrap().count(), 0, "namespaces were created");
        assert!(!lab::run_dir(&prefix).exists(), "a run directory was created");
    }
    // The daemons refuse it too, naming the problem.
    use std::os::unix::fs::PermissionsExt;
    let bad = dir.path().join("mmm_common.conf");
    std::fs::write(
        &bad,
        common.replace("    mode    slave", "    mode    replica"),
    )
    .unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(
        dir.path().join("mmm_mon.conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("mmm_agent.conf"),
        "include mmm_common.conf\nthis db1\n",
    )
    .unwrap();
    std::fs::set_permissions(
        dir.path().join("mmm_agent.conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let bins = Bins::workspace();
    let out = std::process::Command::new(&bins.monitor)
        .arg("--config")
        .arg(dir.path().join("mmm_mon.conf"))
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "mmm_common.conf:{}: mode 'replica' is not master or slave",
            line_of("    mode    slave")
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(&bins.agent)
        .args(["--pin-root", "/nonexistent", "serve", "--config"])
        .arg(dir.path().join("mmm_agent.conf"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mode 'replica' is not master or slave"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(&bins.monitor)
        .args(["config", "check"])
        .arg(dir.path().join("mmm_mon.conf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("ERROR: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&bad, &common).unwrap();
    let out = std::process::Command::new(&bins.monitor)
        .args(["config", "check"])
        .arg(dir.path().join("mmm_mon.conf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("OK: configuration is valid"));
}
