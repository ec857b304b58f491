//! The daemons' Prometheus endpoint: `GET /metrics` in the OpenMetrics text format
//! (prometheus-client), on its own port (monitor 9990, agent 9991 by default). Read-only and
//! unauthenticated, like mysqld_exporter's: bind it to an address your Prometheus reaches.

use std::{net::SocketAddr, sync::Arc};

/// Renders the current metrics (called at every scrape; may read the server or the maps).
pub type Render = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>> + Send + Sync,
>;

/// The OpenMetrics content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `render` at `http://addr/metrics` in the background. A port that cannot be bound is
/// logged, not fatal (metrics never stop a failover daemon).
pub fn spawn(addr: SocketAddr, render: Render) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    render().await,
                )
            }
        }),
    );
    tokio::spawn(async move {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tracing::info!(%addr, "metrics at http://{addr}/metrics");
                if let Err(e) = axum::serve(l, app).await {
                    tracing::error!("metrics server on {addr}: {e}");
                }
            }
            Err(e) => tracing::error!("metrics: cannot listen on {addr}: {e}"),
        }
    });
}

/// Encodes `registry` as OpenMetrics text.
pub fn encode(registry: &prometheus_client::registry::Registry) -> String {
    let mut s = String::new();
    if prometheus_client::encoding::text::encode(&mut s, registry).is_err() {
        s.clear();
    }
    s
}
