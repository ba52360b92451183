//! The HTTP/1.1 server under the ingest and admin listeners: a bounded number of connections,
//! a deadline for each request head (slow or idle clients are closed), a cap on head size, and
//! TLS when configured.
//!
//! The accept loop keeps running while a connection misbehaves: every per-connection failure is
//! counted and logged, never returned.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::config::HttpLimits;
pub use crate::metrics::ConnectionMetrics;

/// Time a client has to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `reason` values of `fluxroute_http_connections_closed_total`.
const CLOSE_REASONS: [&str; 3] = ["connection_limit", "header_timeout", "tls"];

/// How one listener serves.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// `ingest` or `admin`: the `listener` label and log field.
    pub name: &'static str,
    /// Connection count, head deadline and head size.
    pub limits: HttpLimits,
    /// TLS server config; plain HTTP when `None`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Connection metrics.
    pub metrics: ConnectionMetrics,
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets open connections finish
/// their requests (kept-alive connections close after the one in progress).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    stop: CancellationToken,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.limits.header_read_timeout)
        .max_buf_size(options.limits.max_header_bytes.get().max(8192))
        .keep_alive(true);
    let http = Arc::new(http);
    let slots = Arc::new(Semaphore::new(options.limits.max_connections.get()));
    let acceptor = options.tls.clone().map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let name = options.name;
    let open = options.metrics.open.with_label_values(&[name]);
    // Every series exists from the start, so that rates and alerts see a 0 before the first event.
    for reason in CLOSE_REASONS {
        options.metrics.refused.with_label_values(&[name, reason]);
    }
    let refused = |reason: &str| {
        options
            .metrics
            .refused
            .with_label_values(&[name, reason])
            .inc();
    };
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and similar: back off briefly instead of spinning.
                tracing::warn!(listener = name, error = %e, "accepting a connection");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            refused("connection_limit");
            tracing::debug!(listener = name, %peer, "connection limit reached; closing");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let http = Arc::clone(&http);
        let acceptor = acceptor.clone();
        let watcher = graceful.watcher();
        let open = open.clone();
        let metrics = options.metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            open.inc();
            let result = match acceptor {
                None => {
                    let conn = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => match handshake(&acceptor, stream).await {
                    Ok(tls) => {
                        let conn = http.serve_connection(TokioIo::new(tls), service);
                        watcher.watch(conn).await
                    }
                    Err(reason) => {
                        metrics.refused.with_label_values(&[name, "tls"]).inc();
                        tracing::debug!(listener = name, %peer, %reason, "TLS handshake failed");
                        Ok(())
                    }
                },
            };
            open.dec();
            if let Err(e) = result {
                if e.is_timeout() {
                    metrics
                        .refused
                        .with_label_values(&[name, "header_timeout"])
                        .inc();
                }
                tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no handshake within {TLS_HANDSHAKE_TIMEOUT:?}")),
    }
}
