//! The composition root: `build` wires every component from a validated
//! [`Config`] (one factory per queue backend, which also opens its control store); [`run`]
//! starts delivery, serves both listeners, reloads on request, and shuts down in order. The only
//! module that names concrete queue backends.
//!
//! Shutdown order (bounded by `[shutdown] grace`): stop accepting writes (503, `/health` fails)
//! → let in-flight requests finish → flush the producer → stop the admin listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::admin::{self, Admin, AdminParts, ClusterView, ReloadRequest};
use crate::config::{self, Config, Fsync, QueueBackend, RetentionPolicy};
use crate::control::kafka::KafkaControlStore;
use crate::control::{Control, ControlStore, FileControlStore};
use crate::drain::reroute::Reroute;
use crate::drain::{Drain, DrainKind};
use crate::health::{self, ClusterHealth};
use crate::influx::{ClientError, ClusterClient};
use crate::ingest::auth::Authenticator;
use crate::ingest::{self, Ingest, IngestSettings};
use crate::metrics::{
    ConnectionMetrics, DrainMetrics, IngestMetrics, KafkaClientMetrics, QueryMetrics, QueueMetrics,
    SchemaMetrics,
};
use crate::query::{QueryRouter, QuerySettings};
use crate::queue::embedded::{
    self, EmbeddedQueue, EmbeddedSettings, FsyncPolicy, RetentionSettings,
};
use crate::queue::kafka::{KafkaQueue, KafkaSettings};
use crate::queue::{self, Queue};
use crate::route::RouteTable;
use crate::schema::{Refresher, SchemaSettings, SchemaViews};
use crate::serve::{self, ServeOptions};
use crate::shutdown::NamedTasks;

mod build;
mod delivery;
mod reload;

use self::build::{authenticator, route_table, schema_settings, App};
use self::delivery::{start_delivery, Delivery};
pub use self::reload::ReloadSource;
use self::reload::{hangup_signals, next_hangup};

/// How long start-up waits for the queue (topic creation, metadata).
const QUEUE_SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the router could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Binding a listener failed.
    #[error("binding {what} listener on {addr}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A listener's TLS certificate, key or client CA could not be loaded.
    #[error("{what} listener TLS")]
    Tls {
        /// Which listener.
        what: &'static str,
        /// Cause.
        #[source]
        source: crate::tls::TlsError,
    },
    /// The queue could not be set up.
    #[error("setting up the queue")]
    Queue(#[from] queue::Error),
    /// A cluster's HTTP client could not be built.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// The listeners fluxroute serves on; tests pre-bind them on free ports.
#[derive(Debug)]
pub struct Listeners {
    /// Where clients write.
    pub ingest: TcpListener,
    /// The ops API.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    ///
    /// # Errors
    /// [`AppError::Bind`] when an address is taken or not local.
    pub async fn bind(config: &Config) -> Result<Listeners, AppError> {
        let bind = |what, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| AppError::Bind { what, addr, source })
        };
        Ok(Listeners {
            ingest: bind("ingest", config.ingest.listen).await?,
            admin: bind("admin", config.admin.listen).await?,
        })
    }
}

/// Runs fluxroute until `shutdown` is cancelled, then shuts down in order.
///
/// # Errors
/// Start-up failures ([`AppError::Queue`], [`AppError::Client`], [`AppError::Tls`]) and
/// listener failures.
pub async fn run(
    config: Arc<Config>,
    listeners: Listeners,
    shutdown: CancellationToken,
    reload: Option<ReloadSource>,
) -> Result<(), AppError> {
    App::build(config)
        .await?
        .run(listeners, shutdown, reload)
        .await
}

/// What runs beside the listeners and stops at shutdown.
struct Running {
    delivery: Option<Delivery>,
    stop_control: CancellationToken,
    control_task: tokio::task::JoinHandle<()>,
    stop_ingest: CancellationToken,
    stop_admin: CancellationToken,
    ingest_server: tokio::task::JoinHandle<()>,
    admin_server: tokio::task::JoinHandle<()>,
}

impl App {
    /// Starts following the control store and delivering, serves both listeners, reloads on
    /// request until `shutdown`, then stops everything in order.
    async fn run(
        mut self,
        listeners: Listeners,
        shutdown: CancellationToken,
        reload: Option<ReloadSource>,
    ) -> Result<(), AppError> {
        let stop_control = CancellationToken::new();
        let control_task = {
            let (store, control, cancel) = (
                Arc::clone(&self.control_store),
                Arc::clone(&self.control),
                stop_control.clone(),
            );
            tokio::spawn(
                async move { store.follow(control, cancel).await }
                    .instrument(tracing::info_span!("control")),
            )
        };
        let (delivery, views) = start_delivery(
            &self.config,
            &self.queue,
            &self.control,
            &self.drain_metrics,
            &self.schema,
        )?;
        self.ingest
            .queries()
            .set_clusters(views.clone(), route_table(&self.config));
        self.admin.reconfigure(views, self.config.redacted_json());

        let ingest_addr = listeners.ingest.local_addr().ok();
        let admin_addr = listeners.admin.local_addr().ok();
        tracing::info!(ingest = ?ingest_addr, admin = ?admin_addr, "fluxroute serving");
        let stop_ingest = CancellationToken::new();
        let stop_admin = CancellationToken::new();
        let tasks = TaskTracker::new();
        let ingest_server = tasks.spawn(serve::serve(
            listeners.ingest,
            ingest::router(Arc::clone(&self.ingest)),
            ServeOptions {
                name: "ingest",
                limits: self.config.ingest.http,
                tls: self.ingest_tls.take(),
                metrics: self.connection_metrics.clone(),
            },
            stop_ingest.clone(),
        ));
        let admin_server = tasks.spawn(serve::serve(
            listeners.admin,
            admin::router(Arc::clone(&self.admin)),
            ServeOptions {
                name: "admin",
                limits: crate::config::defaults::ADMIN_HTTP,
                tls: self.admin_tls.take(),
                metrics: self.connection_metrics.clone(),
            },
            stop_admin.clone(),
        ));
        tasks.spawn(Arc::clone(&self.admin).keep_history(stop_admin.clone()));
        tasks.close();
        let mut running = Running {
            delivery: Some(delivery),
            stop_control,
            control_task,
            stop_ingest,
            stop_admin,
            ingest_server,
            admin_server,
        };

        // Serve until shutdown, reloading clusters, routes and users on request or SIGHUP.
        let mut hangups = hangup_signals(reload.is_some());
        loop {
            let reply = tokio::select! {
                () = shutdown.cancelled() => break,
                Some(req) = self.reloads.recv() => Some(req.reply),
                () = next_hangup(&mut hangups) => None,
            };
            let result = match reload.as_ref() {
                Some(source) => self.reload(source, &mut running.delivery).await,
                None => Err(vec![
                    "fluxroute was not started from a config file: nothing to reload".into(),
                ]),
            };
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
        }
        self.shutdown(running).await;
        Ok(())
    }

    /// Stops in order within `[shutdown] grace`: no new writes, in-flight requests finish, the
    /// producer flushes, the drains commit, then the control follower and the admin listener.
    async fn shutdown(&self, mut running: Running) {
        let grace = self.config.shutdown.grace;
        let deadline = tokio::time::Instant::now() + grace;
        tracing::info!(?grace, "shutting down: no new writes");
        self.ingest.stop_accepting();
        running.stop_ingest.cancel();
        match tokio::time::timeout_at(deadline, running.ingest_server).await {
            Ok(Ok(())) => {}
            Ok(Err(join)) => tracing::error!(error = %join, "ingest task failed"),
            Err(_) => {
                tracing::warn!(
                    "in-flight writes still pending after the grace period; abandoning them"
                )
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if let Err(e) = self
            .producer
            .flush(left.max(Duration::from_millis(100)))
            .await
        {
            tracing::warn!(error = %e, "producer flush incomplete at shutdown");
        }
        if let Some(d) = running.delivery.take() {
            d.stop(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await;
        }
        running.stop_control.cancel();
        let _ = running.control_task.await;
        running.stop_admin.cancel();
        match tokio::time::timeout(Duration::from_secs(5), running.admin_server).await {
            Ok(Err(e)) => tracing::warn!(error = %e, "admin task failed"),
            Err(_) => tracing::warn!("admin listener did not stop in time"),
            Ok(Ok(())) => {}
        }
        tracing::info!("fluxroute stopped");
    }
}
