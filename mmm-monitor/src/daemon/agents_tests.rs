//! The agents' connection tasks: the backoff, the outcome of a push, and the three tasks
//! against a real gRPC agent (a fake one in a namespace of its own).

use super::*;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

#[test]
fn backoff_doubles_to_a_bound_and_starts_over() {
    let mut b = Backoff::default();
    let ms: Vec<u128> = (0..6).map(|_| b.fail().as_millis()).collect();
    assert_eq!(ms, [500, 1000, 2000, 4000, 4000, 4000]);
    b.reset();
    assert_eq!(b.fail(), Duration::from_millis(500));
}

#[test]
fn stale_refusals_are_read_from_metadata_not_text() {
    let t = Duration::from_millis(3);
    let stale = convert::stale_epoch_status("refused".into(), 17);
    let (ok, applied, _) = outcome("db1", Ok(Err(stale)), t);
    assert_eq!((ok, applied), (false, Some(17)));
    let other = tonic::Status::failed_precondition("the applied epoch 17");
    let (ok, applied, report) = outcome("db1", Ok(Err(other)), t);
    assert_eq!((ok, applied), (false, None));
    assert_eq!(report.error, "the applied epoch 17");
}

/// A real gRPC agent for the connection tasks: it counts tables (acknowledging them) and
/// `Health` subscriptions (each gets one event, then ends), and keeps the epoch the last
/// `Status` call carried.
#[derive(Default)]
struct FakeAgent {
    applies: AtomicUsize,
    subscriptions: AtomicUsize,
    status_epoch: AtomicU64,
    /// A table of this epoch takes 3 s to apply (a hand-over waiting for its new owner).
    slow_epoch: AtomicU64,
}

/// The served handle of a [`FakeAgent`] (the test keeps the other).
struct Served(Arc<FakeAgent>);

#[tonic::async_trait]
impl pb::agent_server::Agent for Served {
    async fn apply_roles(
        &self,
        req: tonic::Request<pb::RoleTable>,
    ) -> Result<tonic::Response<pb::AgentReport>, tonic::Status> {
        self.0.applies.fetch_add(1, SeqCst);
        let epoch = req.into_inner().epoch;
        if epoch == self.0.slow_epoch.load(SeqCst) {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        Ok(tonic::Response::new(pb::AgentReport {
            epoch,
            ..Default::default()
        }))
    }
    async fn status(
        &self,
        req: tonic::Request<pb::StatusRequest>,
    ) -> Result<tonic::Response<pb::AgentStatus>, tonic::Status> {
        self.0.status_epoch.store(req.into_inner().epoch, SeqCst);
        Ok(tonic::Response::new(pb::AgentStatus {
            mysqld_up: true,
            applied_epoch: 3,
            ..Default::default()
        }))
    }
    type HealthStream = tokio_stream::Once<Result<pb::HealthEvent, tonic::Status>>;
    async fn health(
        &self,
        _: tonic::Request<pb::HealthRequest>,
    ) -> Result<tonic::Response<Self::HealthStream>, tonic::Status> {
        self.0.subscriptions.fetch_add(1, SeqCst);
        Ok(tonic::Response::new(tokio_stream::once(Ok(
            pb::HealthEvent {
                mysqld_up: false,
                peers_down: vec!["db2".into()],
                ..Default::default()
            },
        ))))
    }
}

/// Runs `f` with a client of a [`FakeAgent`] served in a namespace of its own (lab
/// addresses only; `tag` tells the tests' namespaces apart), and returns what it returns.
fn with_fake_agent<T: Send + 'static, F: std::future::Future<Output = T>>(
    tag: &str,
    f: impl FnOnce(Arc<FakeAgent>, AgentClient<Channel>) -> F + Send + 'static,
) -> T {
    let mut net = mmm_tests::Net::new(&format!("mmm{tag}{}", std::process::id())).unwrap();
    let ip = std::net::Ipv4Addr::new(198, 18, 0, 11);
    let ns = net.add_host("db1", "eth0", ip, 0x11).unwrap().ns.clone();
    let out = mmm_tests::netns::block_on_in(&ns, move || async move {
        let fake = Arc::new(FakeAgent::default());
        let addr = std::net::SocketAddr::from((ip, 9989));
        let server = tonic::transport::Server::builder()
            .add_service(pb::agent_server::AgentServer::new(Served(fake.clone())))
            .serve(addr);
        tokio::spawn(server);
        let ep = mmm_proto::endpoint(&addr.to_string(), None).unwrap();
        f(fake, AgentClient::new(ep.connect_lazy())).await
    })
    .unwrap();
    drop(net);
    out
}

/// A table of epoch `epoch` (no hosts: the fake agent does not look).
fn table(epoch: u64) -> Arc<RoleTable> {
    Arc::new(RoleTable {
        epoch,
        active_master: None,
        active_master_role: "writer".into(),
        hosts: vec![],
        catch_up: None,
    })
}

/// A pusher for db1 through `client` (calls bounded by `timeout`); what it tells the driver.
fn spawn_pusher(
    client: AgentClient<Channel>,
    latest: Latest,
    network: watch::Receiver<bool>,
    timeout: Duration,
) -> mpsc::Receiver<Msg> {
    let (tx, rx) = mpsc::channel(8);
    let pusher = Pusher {
        host: "db1".into(),
        client,
        latest,
        again: Arc::new(Notify::new()),
        network,
        metrics: Arc::new(MonitorMetrics::new()),
    };
    tokio::spawn(push(pusher, tx, timeout));
    rx
}

/// The next input the driver would get, within 5 s.
async fn next_input(rx: &mut mpsc::Receiver<Msg>) -> Option<Input> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await? {
                Msg::Input(i) => return Some(i),
                _ => continue,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[test]
fn the_status_poll_carries_the_latest_epoch_and_health_events_become_inputs() {
    let (status, epoch, health, subscriptions) =
        with_fake_agent("ags", |fake, client| async move {
            let (_latest_tx, latest) = watch::channel(Some(table(7)));
            let (tx, mut rx) = mpsc::channel(8);
            tokio::spawn(poll_status(
                StatusPoll {
                    host: "db1".into(),
                    client: client.clone(),
                    timeout: Duration::from_secs(2),
                    again: Arc::new(Notify::new()),
                    latest,
                },
                tx,
            ));
            let status = next_input(&mut rx).await;
            let epoch = fake.status_epoch.load(SeqCst);
            let (tx, mut rx) = mpsc::channel(8);
            tokio::spawn(subscribe_health("db1".into(), client, tx));
            let health = next_input(&mut rx).await;
            // The stream ended: subscribed again after RESUBSCRIBE, its event forwarded again.
            let again = next_input(&mut rx).await;
            assert!(again.is_some(), "not subscribed again");
            (status, epoch, health, fake.subscriptions.load(SeqCst))
        });
    // The call carries the latest table's epoch (a renewal of the writer lease).
    assert_eq!(epoch, 7);
    assert!(
        matches!(status, Some(Input::AgentStatus { ref host, ref view }) if host == "db1" && view.applied_epoch == 3 && !view.mysqld_down),
        "{status:?}"
    );
    assert!(
        matches!(health, Some(Input::AgentHealth { ref host, up: false, ref peers_down, .. }) if host == "db1" && peers_down == &["db2"]),
        "{health:?}"
    );
    assert!(subscriptions >= 2, "{subscriptions}");
}

#[test]
fn nothing_is_pushed_while_the_monitors_network_is_down() {
    // MMM: commands to agents wait for the monitor's network (docs/mmm-2.2.1.md §2).
    let (pushed, acked) = with_fake_agent("agp", |fake, client| async move {
        let (latest_tx, latest) = watch::channel(None);
        let (network_tx, network) = watch::channel(false);
        let mut rx = spawn_pusher(client, latest, network, Duration::from_secs(5));
        latest_tx.send_replace(Some(table(3)));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pushed = fake.applies.load(SeqCst);
        network_tx.send_replace(true);
        let acked = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match rx.recv().await {
                    Some(Msg::Acked {
                        epoch, ok: true, ..
                    }) => break (epoch, true),
                    Some(_) => continue,
                    None => break (0, false),
                }
            }
        })
        .await
        .unwrap_or((0, false));
        (pushed, acked)
    });
    assert_eq!(pushed, 0, "pushed while the network was down");
    assert_eq!(acked, (3, true), "not pushed once the network was back");
}

#[test]
fn a_newer_table_goes_out_while_the_agent_still_applies_the_older_one() {
    let first_ack = with_fake_agent("agn", |fake, client| async move {
        fake.slow_epoch.store(3, SeqCst);
        let (latest_tx, latest) = watch::channel(Some(table(3)));
        let (_network_tx, network) = watch::channel(true);
        let mut rx = spawn_pusher(client, latest, network, Duration::from_secs(10));
        while fake.applies.load(SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latest_tx.send_replace(Some(table(4)));
        let mut acks = vec![];
        while acks.len() < 2 {
            match rx.recv().await {
                Some(Msg::Acked { epoch, ok, .. }) => acks.push((epoch, ok)),
                Some(_) => continue,
                None => break,
            }
        }
        acks
    });
    // Epoch 4 was sent without waiting for epoch 3's answer; its answer is the first, and
    // epoch 3's still reaches the core (that call renewed the writer's lease).
    assert_eq!(first_ack, vec![(4, true), (3, true)]);
}
