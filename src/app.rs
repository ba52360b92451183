//! The composition root: builds every component from a validated [`Config`], runs them, and
//! shuts them down in order. The only module that names concrete queue backends.
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
    ConnectionMetrics, DrainMetrics, IngestMetrics, KafkaClientMetrics, QueueMetrics,
};
use crate::queue::embedded::{
    self, EmbeddedQueue, EmbeddedSettings, FsyncPolicy, RetentionSettings,
};
use crate::queue::kafka::{KafkaQueue, KafkaSettings};
use crate::queue::{self, Queue};
use crate::route::RouteTable;
use crate::serve::{self, ServeOptions};
use crate::shutdown::NamedTasks;

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

/// Kafka settings from the validated config.
pub fn kafka_settings(config: &Config) -> KafkaSettings {
    let k = &config.queue.kafka;
    KafkaSettings {
        brokers: k.brokers.iter().map(ToString::to_string).collect(),
        topic: k.topic.clone(),
        partitions: k.partitions.get(),
        replication_factor: k.replication_factor.get(),
        max_record_bytes: k.max_record_bytes.get(),
        linger: k.linger,
        produce_timeout: k.produce_timeout,
        properties: k
            .properties
            .iter()
            .map(|(key, v)| (key.to_owned(), v.to_owned()))
            .collect(),
        client_metrics: None,
    }
}

/// Operator control shared by the instances: a compacted topic on Kafka, a file beside the
/// embedded log. Its state is read before the drains start.
async fn open_control(config: &Config) -> Result<(Arc<Control>, Arc<dyn ControlStore>), AppError> {
    let store: Arc<dyn ControlStore> = match config.queue.backend {
        QueueBackend::Kafka => Arc::new(
            KafkaControlStore::connect(&kafka_settings(config), QUEUE_SETUP_TIMEOUT).await?,
        ),
        QueueBackend::Embedded => {
            // Beside the log's directory, not in it: the storage engine owns that directory.
            let dir = &config.queue.embedded.dir;
            let name = dir
                .file_name()
                .map_or_else(|| "queue".into(), |n| n.to_string_lossy().into_owned());
            Arc::new(FileControlStore::new(
                dir.with_file_name(format!("{name}-control.json")),
            ))
        }
    };
    let initial = store.load().await?;
    let control = Control::new(
        config.clusters.iter().map(|c| c.name.clone()),
        &initial,
        Arc::clone(&store),
    );
    Ok((Arc::new(control), store))
}

/// Embedded queue settings from the validated config.
pub fn embedded_settings(config: &Config) -> EmbeddedSettings {
    let e = &config.queue.embedded;
    EmbeddedSettings {
        dir: e.dir.clone(),
        fsync: match e.fsync {
            Fsync::Always => FsyncPolicy::Always,
            Fsync::Interval => FsyncPolicy::Interval(e.fsync_interval),
        },
        partitions: e.partitions.get(),
        max_record_bytes: e.max_record_bytes.get(),
        retention: RetentionSettings {
            policy: match e.retention.policy {
                RetentionPolicy::KeepUntilDelivered => {
                    embedded::RetentionPolicy::KeepUntilDelivered
                }
                RetentionPolicy::Bounded => embedded::RetentionPolicy::Bounded,
            },
            max_bytes: (e.retention.max_bytes > 0).then_some(e.retention.max_bytes),
            max_age: (!e.retention.max_age.is_zero()).then_some(e.retention.max_age),
        },
    }
}

fn route_table(config: &Config) -> RouteTable {
    RouteTable::new(config.routes.clone())
}

fn authenticator(config: &Config) -> Authenticator {
    Authenticator::new(config.ingest.users.clone())
}

/// Opens the configured queue; for the embedded log also a hook that refreshes its storage
/// metrics (called on each scrape).
async fn open_queue(
    config: &Config,
    registry: &prometheus::Registry,
) -> Result<(Arc<dyn Queue>, Option<admin::MetricsRefresh>), AppError> {
    match config.queue.backend {
        QueueBackend::Kafka => {
            let mut settings = kafka_settings(config);
            settings.client_metrics = Some(KafkaClientMetrics::new(registry));
            let q = KafkaQueue::connect(settings, QUEUE_SETUP_TIMEOUT).await?;
            Ok((Arc::new(q), None))
        }
        QueueBackend::Embedded => {
            let settings = embedded_settings(config);
            let budget = settings.retention.max_bytes.unwrap_or(0);
            // Opening replays the journal: blocking work off the runtime's threads.
            let q = tokio::task::spawn_blocking(move || EmbeddedQueue::open(settings))
                .await
                .map_err(|e| queue::Error::Setup(format!("opening the embedded queue: {e}")))??;
            let q = Arc::new(q);
            let m = QueueMetrics::new(registry);
            m.budget_bytes
                .set(i64::try_from(budget).unwrap_or(i64::MAX));
            let seen_dropped = std::sync::atomic::AtomicU64::new(0);
            let store = Arc::clone(&q);
            let refresh = admin::MetricsRefresh(Box::new(move || {
                m.stored_bytes
                    .set(i64::try_from(store.stored_bytes()).unwrap_or(i64::MAX));
                m.records
                    .set(i64::try_from(store.retained_records()).unwrap_or(i64::MAX));
                m.oldest_record_age_seconds
                    .set(store.oldest_record_age().map_or(0.0, |d| d.as_secs_f64()));
                let dropped = store.dropped_records_total();
                let before = seen_dropped.swap(dropped, std::sync::atomic::Ordering::Relaxed);
                m.dropped_records.inc_by(dropped.saturating_sub(before));
            }));
            Ok((q, Some(refresh)))
        }
    }
}

/// The delivery side of one configuration: probes, drains and reroutes of every cluster.
#[derive(Debug)]
struct Delivery {
    stop: CancellationToken,
    tasks: NamedTasks,
}

impl Delivery {
    /// Stops every drain; in-flight writes finish (or are replayed later) within `grace`, and
    /// whatever is still running a few seconds after it (the drains commit then) is aborted, so
    /// no drain of this configuration outlives it.
    async fn stop(self, grace: Duration) {
        self.stop.cancel();
        let overran = self.tasks.stop_within(grace + Duration::from_secs(5)).await;
        if !overran.is_empty() {
            tracing::warn!(
                aborted = ?overran,
                "drains still running after the grace period were aborted; their uncommitted records will be replayed"
            );
        }
    }
}

/// Starts probes, drains and reroutes for `config`'s clusters.
fn start_delivery(
    config: &Config,
    queue: &Arc<dyn Queue>,
    control: &Arc<Control>,
    drain_metrics: &DrainMetrics,
) -> Result<(Delivery, Vec<ClusterView>), AppError> {
    let stop_drains = CancellationToken::new();
    let mut background = NamedTasks::new();
    let mut views = Vec::new();
    let mut healths = std::collections::HashMap::new();
    let mut clients = std::collections::HashMap::new();
    let mut reroutes = std::collections::HashMap::new();
    for cluster in &config.clusters {
        let client = ClusterClient::from_config(cluster)?;
        let health = Arc::new(ClusterHealth::new(
            &cluster.name,
            cluster.endpoints.len(),
            cluster.health_rise.get(),
            cluster.health_fall.get(),
        ));
        for (i, endpoint) in cluster.endpoints.iter().enumerate() {
            let span = tracing::info_span!("probe", cluster = %cluster.name, endpoint = i);
            background.spawn(
                format!("probe {} endpoint {i}", cluster.name),
                health::probe_loop(
                    client.clone(),
                    endpoint.clone(),
                    i,
                    Arc::clone(&health),
                    cluster.health_interval,
                    stop_drains.clone(),
                )
                .instrument(span),
            );
        }
        healths.insert(cluster.name.clone(), Arc::clone(&health));
        clients.insert(cluster.name.clone(), client.clone());
        let drain = Drain::new(
            Arc::new(cluster.clone()),
            DrainKind::Primary,
            route_table(config),
            Arc::clone(queue),
            client,
            Arc::clone(&health),
            drain_metrics.clone(),
        );
        let drain = match control.subscribe(&cluster.name) {
            Some(rx) => drain.with_control(rx),
            None => drain,
        };
        let rerouting = config.standby_of(&cluster.name).map(|_| {
            let (tx, rx) = watch::channel(false);
            reroutes.insert(cluster.name.clone(), tx);
            rx
        });
        views.push(ClusterView {
            name: cluster.name.clone(),
            endpoints: cluster.endpoints.iter().map(ToString::to_string).collect(),
            standby: cluster.standby.clone(),
            health: Arc::clone(&health),
            drain: Some(drain.status()),
            rerouting,
        });
        let span = tracing::info_span!("drain", cluster = %cluster.name);
        let (cancel, grace, name) = (
            stop_drains.clone(),
            config.shutdown.grace,
            cluster.name.clone(),
        );
        background.spawn(
            format!("drain {}", cluster.name),
            async move {
                if let Err(e) = drain.run(cancel, grace).await {
                    tracing::error!(cluster = %name, error = %e, "drain failed to start");
                }
            }
            .instrument(span),
        );
    }
    for cluster in &config.clusters {
        let Some(standby) = config.standby_of(&cluster.name) else {
            continue;
        };
        let (Some(primary_health), Some(standby_health), Some(standby_client), Some(active)) = (
            healths.get(&cluster.name),
            healths.get(&standby.name),
            clients.get(&standby.name),
            reroutes.remove(&cluster.name),
        ) else {
            continue;
        };
        let reroute = Reroute {
            primary: Arc::new(cluster.clone()),
            primary_health: Arc::clone(primary_health),
            standby: Arc::new(standby.clone()),
            standby_health: Arc::clone(standby_health),
            standby_client: standby_client.clone(),
            routes: route_table(config),
            queue: Arc::clone(queue),
            metrics: drain_metrics.clone(),
            standby_control: control.subscribe(&standby.name),
            active,
        };
        let Some(primary_control) = control.subscribe(&cluster.name) else {
            continue;
        };
        let span = tracing::info_span!("reroute", cluster = %cluster.name, standby = %standby.name);
        background.spawn(
            format!("reroute {} to {}", cluster.name, standby.name),
            reroute
                .run(primary_control, stop_drains.clone(), config.shutdown.grace)
                .instrument(span),
        );
    }
    Ok((
        Delivery {
            stop: stop_drains,
            tasks: background,
        },
        views,
    ))
}

/// Where a reload reads the configuration from.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// The config file.
    pub path: std::path::PathBuf,
    /// Variables for `${VAR}`.
    pub env: std::collections::HashMap<String, String>,
}

/// Settings a reload cannot change while running.
fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if old.ingest.listen != new.ingest.listen {
        out.push("ingest.listen");
    }
    if old.admin.listen != new.admin.listen {
        out.push("admin.listen");
    }
    if old.redacted_json()["queue"] != new.redacted_json()["queue"] {
        out.push("queue");
    }
    if old.ingest.max_body_bytes != new.ingest.max_body_bytes
        || old.ingest.max_concurrent_requests != new.ingest.max_concurrent_requests
        || old.ingest.enqueue_timeout != new.ingest.enqueue_timeout
        || old.ingest.http != new.ingest.http
    {
        out.push("ingest limits");
    }
    if old.ingest.tls != new.ingest.tls {
        out.push("ingest.tls");
    }
    if old.admin.tls != new.admin.tls {
        out.push("admin.tls");
    }
    out
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

/// SIGHUP, when reloading is possible.
fn hangup_signals(enabled: bool) -> Hangups {
    #[cfg(unix)]
    {
        enabled
            .then(|| tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()))
            .and_then(|r| {
                r.map_err(|e| tracing::warn!(error = %e, "SIGHUP reloads unavailable"))
                    .ok()
            })
    }
    #[cfg(not(unix))]
    {
        let _ = enabled;
        None
    }
}

async fn next_hangup(h: &mut Hangups) {
    #[cfg(unix)]
    if let Some(sig) = h.as_mut() {
        if sig.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            return;
        }
    }
    let _ = h;
    std::future::pending::<()>().await;
}

/// Runs fluxroute until `shutdown` is cancelled, then shuts down in order.
///
/// # Errors
/// Start-up failures ([`AppError::Queue`], [`AppError::Client`]) and listener
/// failures.
pub async fn run(
    config: Arc<Config>,
    listeners: Listeners,
    shutdown: CancellationToken,
    reload: Option<ReloadSource>,
) -> Result<(), AppError> {
    let (reload_tx, mut reload_rx) = tokio::sync::mpsc::channel::<ReloadRequest>(4);
    let load_tls = |what, tls: &Option<crate::config::TlsConfig>| {
        tls.as_ref()
            .map(crate::tls::server_config)
            .transpose()
            .map_err(|source| AppError::Tls { what, source })
    };
    let ingest_tls = load_tls("ingest", &config.ingest.tls)?;
    let admin_tls = load_tls("admin", &config.admin.tls)?;
    let registry = prometheus::Registry::new();
    let connection_metrics = ConnectionMetrics::new(&registry);
    crate::metrics::register_process(&registry);
    let (queue, metrics_refresh) = open_queue(&config, &registry).await?;
    let producer = queue.producer();
    let drain_metrics = DrainMetrics::new(&registry);
    let (control, control_store) = open_control(&config).await?;
    let stop_control = CancellationToken::new();
    let control_task = {
        let (store, control, cancel) = (
            Arc::clone(&control_store),
            Arc::clone(&control),
            stop_control.clone(),
        );
        tokio::spawn(
            async move { store.follow(control, cancel).await }
                .instrument(tracing::info_span!("control")),
        )
    };
    let (delivery, views) = start_delivery(&config, &queue, &control, &drain_metrics)?;
    let ingest = Arc::new(Ingest::new(
        Arc::clone(&producer),
        authenticator(&config),
        route_table(&config),
        IngestSettings {
            max_body_bytes: config.ingest.max_body_bytes.get(),
            max_concurrent_requests: config.ingest.max_concurrent_requests.get(),
            enqueue_timeout: config.ingest.enqueue_timeout,
            retry_after: config.ingest.retry_after,
            body_read_timeout: config.ingest.body_read_timeout,
        },
        IngestMetrics::new(&registry),
    ));
    let admin = Arc::new(Admin::new(AdminParts {
        registry,
        token: config.admin.token.as_ref().map(|t| t.expose().to_owned()),
        config_view: config.redacted_json(),
        control: Arc::clone(&control),
        clusters: views,
        drain_metrics: drain_metrics.clone(),
        producer: Arc::clone(&producer),
        dead_letters: queue.dead_letters(),
        backend: config.queue.backend.as_str(),
        reload: reload_tx,
        metrics_refresh,
    }));

    let ingest_addr = listeners.ingest.local_addr().ok();
    let admin_addr = listeners.admin.local_addr().ok();
    tracing::info!(ingest = ?ingest_addr, admin = ?admin_addr, "fluxroute serving");

    let stop_ingest = CancellationToken::new();
    let stop_admin = CancellationToken::new();
    let tasks = TaskTracker::new();
    let ingest_server = tasks.spawn(serve::serve(
        listeners.ingest,
        ingest::router(Arc::clone(&ingest)),
        ServeOptions {
            name: "ingest",
            limits: config.ingest.http,
            tls: ingest_tls,
            metrics: connection_metrics.clone(),
        },
        stop_ingest.clone(),
    ));
    let admin_server = tasks.spawn(serve::serve(
        listeners.admin,
        admin::router(Arc::clone(&admin)),
        ServeOptions {
            name: "admin",
            limits: crate::config::defaults::ADMIN_HTTP,
            tls: admin_tls,
            metrics: connection_metrics,
        },
        stop_admin.clone(),
    ));
    let _history = tasks.spawn(Arc::clone(&admin).keep_history(stop_admin.clone()));
    tasks.close();

    // Serve until shutdown, reloading clusters, routes and users on request or SIGHUP.
    let mut delivery = Some(delivery);
    let mut config = config;
    let mut hangups = hangup_signals(reload.is_some());
    loop {
        let reply = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(req) = reload_rx.recv() => Some(req.reply),
            () = next_hangup(&mut hangups) => None,
        };
        let Some(source) = reload.as_ref() else {
            if let Some(reply) = reply {
                let _ = reply.send(Err(vec![
                    "fluxroute was not started from a config file: nothing to reload".into(),
                ]));
            }
            continue;
        };
        let result = match config::load(&source.path, &source.env) {
            Err(e) => {
                tracing::warn!(problems = %e, "reload refused: the new configuration is invalid; the running one stays");
                Err(e.to_string().lines().map(str::to_owned).collect())
            }
            Ok(new) => {
                let restart_needed = restart_needed(&config, &new);
                let new = Arc::new(new);
                let added = new
                    .clusters
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>();
                if let Err(e) = control.add_clusters(added).await {
                    tracing::warn!(error = %e, "reading control state for new clusters");
                }
                ingest.reconfigure(authenticator(&new), route_table(&new));
                // Drains stop gracefully (in-flight writes finish, positions are committed) and
                // start again with the new clusters and routes: nothing acknowledged is lost.
                if let Some(old) = delivery.take() {
                    old.stop(config.shutdown.grace).await;
                }
                match start_delivery(&new, &queue, &control, &drain_metrics) {
                    Ok((d, views)) => {
                        delivery = Some(d);
                        admin.reconfigure(views, new.redacted_json());
                        config = new;
                        tracing::info!(
                            clusters = config.clusters.len(),
                            routes = config.routes.len(),
                            ?restart_needed,
                            "configuration reloaded"
                        );
                        Ok(serde_json::json!({
                            "reloaded": true,
                            "clusters": config.clusters.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
                            "routes": config.routes.len(),
                            "restart_needed": restart_needed,
                        }))
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "starting the reloaded clusters; restarting the previous ones");
                        match start_delivery(&config, &queue, &control, &drain_metrics) {
                            Ok((d, _)) => delivery = Some(d),
                            Err(e) => {
                                tracing::error!(error = %e, "restarting the previous clusters failed")
                            }
                        }
                        Err(vec![e.to_string()])
                    }
                }
            }
        };
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
    let grace = config.shutdown.grace;
    let deadline = tokio::time::Instant::now() + grace;
    tracing::info!(?grace, "shutting down: no new writes");
    ingest.stop_accepting();
    stop_ingest.cancel();
    match tokio::time::timeout_at(deadline, ingest_server).await {
        Ok(Ok(())) => {}
        Ok(Err(join)) => tracing::error!(error = %join, "ingest task failed"),
        Err(_) => {
            tracing::warn!("in-flight writes still pending after the grace period; abandoning them")
        }
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if let Err(e) = producer.flush(left.max(Duration::from_millis(100))).await {
        tracing::warn!(error = %e, "producer flush incomplete at shutdown");
    }
    if let Some(d) = delivery.take() {
        d.stop(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
    }
    stop_control.cancel();
    let _ = control_task.await;
    stop_admin.cancel();
    match tokio::time::timeout(Duration::from_secs(5), admin_server).await {
        Ok(Err(e)) => tracing::warn!(error = %e, "admin task failed"),
        Err(_) => tracing::warn!("admin listener did not stop in time"),
        Ok(Ok(())) => {}
    }
    tracing::info!("fluxroute stopped");
    Ok(())
}
