//! The `mmm.v1` gRPC protocol shared by the monitor and the agents: generated tonic/prost code
//! and the encoded file descriptor set that the servers hand to gRPC reflection.
//! Only this crate and the gRPC adapters see prost types; `convert` is where the role-table
//! vocabulary of `mmm_common::roles` meets them.

pub mod auth;
pub mod convert;
pub mod metrics;
pub mod pki;
pub mod tls;

pub use tls::{endpoint, EndpointError, TlsError, TlsFiles};

/// Generated code of package `mmm.v1`.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("mmm.v1");
}

/// The encoded `FileDescriptorSet` of `mmm.v1`, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("mmm_v1_descriptor");

/// Largest message a daemon decodes (1 MiB: a role table of the largest cluster is a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// A gRPC server router with the standard services every mmm daemon serves: gRPC reflection
/// (v1 and v1alpha, listing `service`, health and reflection only, so that
/// `grpcurl list` and `describe` work with no .proto at hand) and `grpc.health.v1` reporting
/// `service` SERVING. With `tls`, every connection is mutual TLS (see [`tls`]). Limits against
/// a hostile network: 32 concurrent requests per connection, 64 streams, HTTP/2 keepalive
/// pings every 10 s (a peer that does not answer within 5 s is dropped), TCP keepalive 30 s.
pub async fn standard_router(
    service: &'static str,
    tls: Option<&TlsFiles>,
) -> Result<tonic::transport::server::Router, RouterError> {
    Ok(standard_router_reporting(service, tls).await?.0)
}

/// [`standard_router`], and the health reporter through which the daemon may later say
/// `service` is NOT_SERVING (a monitor that lost etcd).
pub async fn standard_router_reporting(
    service: &'static str,
    tls: Option<&TlsFiles>,
) -> Result<
    (
        tonic::transport::server::Router,
        tonic_health::server::HealthReporter,
    ),
    RouterError,
> {
    const LISTED: [&str; 3] = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(service)
        .with_service_name(LISTED[0])
        .with_service_name(LISTED[1])
        .with_service_name(LISTED[2])
        .build_v1()?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(service)
        .with_service_name(LISTED[0])
        .with_service_name(LISTED[1])
        .with_service_name(LISTED[2])
        .build_v1alpha()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(service, tonic_health::ServingStatus::Serving)
        .await;
    let mut builder = tonic::transport::Server::builder()
        .concurrency_limit_per_connection(32)
        .max_concurrent_streams(Some(64))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(5)))
        .tcp_keepalive(Some(std::time::Duration::from_secs(30)));
    if let Some(t) = tls {
        builder = builder.tls_config(t.server()).map_err(RouterError::Tls)?;
    }
    Ok((
        builder
            .add_service(health)
            .add_service(v1)
            .add_service(v1alpha),
        reporter,
    ))
}

/// Why [`standard_router`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("building gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("TLS: certificate or key not usable: {0}")]
    Tls(#[source] tonic::transport::Error),
}

/// Binds `addr`, tells systemd the daemon is ready (`READY=1` over `$NOTIFY_SOCKET`, for
/// `Type=notify` units; nothing without it), and serves `router` until SIGINT/SIGTERM.
pub async fn serve(
    router: tonic::transport::server::Router,
    addr: std::net::SocketAddr,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind(addr, e))?;
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    let r = router
        .serve_with_incoming_shutdown(incoming, shutdown_signal())
        .await
        .map_err(ServeError::Serve);
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    r
}

/// Why [`serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("binding {0}: {1}")]
    Bind(std::net::SocketAddr, #[source] std::io::Error),
    #[error("serving gRPC: {0}")]
    Serve(#[source] tonic::transport::Error),
}

/// Resolves on SIGINT or SIGTERM: the daemons' graceful-shutdown signal.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
