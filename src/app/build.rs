//! Wiring only: every component built from a validated configuration, nothing started. One
//! factory per queue backend opens the queue together with its control store (a compacted
//! topic beside a Kafka queue, a file beside the embedded log).

use super::*;

/// Kafka settings from the validated config.
pub(super) fn kafka_settings(config: &Config) -> KafkaSettings {
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

/// Embedded queue settings from the validated config.
pub(super) fn embedded_settings(config: &Config) -> EmbeddedSettings {
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

pub(super) fn route_table(config: &Config) -> RouteTable {
    RouteTable::new(config.routes.clone())
}

pub(super) fn schema_settings(config: &Config) -> SchemaSettings {
    let s = &config.schema;
    SchemaSettings {
        enabled: s.enabled,
        refresh_interval: s.refresh_interval,
        max_databases: s.max_databases.get(),
        max_retention_policies: s.max_retention_policies.get(),
        max_fields: s.max_fields.get(),
    }
}

pub(super) fn authenticator(config: &Config) -> Authenticator {
    Authenticator::new(config.ingest.users.clone())
}

/// What a queue backend opens.
pub(super) struct Backend {
    pub(super) queue: Arc<dyn Queue>,
    /// Operator control shared by the instances; read before the drains start.
    pub(super) control_store: Arc<dyn ControlStore>,
    /// Refreshes the embedded log's storage metrics before each scrape.
    pub(super) metrics_refresh: Option<admin::MetricsRefresh>,
}

impl Backend {
    /// Opens the configured backend.
    pub(super) async fn open(
        config: &Config,
        registry: &prometheus::Registry,
    ) -> Result<Backend, AppError> {
        match config.queue.backend {
            QueueBackend::Kafka => Backend::kafka(config, registry).await,
            QueueBackend::Embedded => Backend::embedded(config, registry).await,
        }
    }

    /// A Kafka topic, and the control topic beside it.
    async fn kafka(config: &Config, registry: &prometheus::Registry) -> Result<Backend, AppError> {
        let mut settings = kafka_settings(config);
        settings.client_metrics = Some(KafkaClientMetrics::new(registry));
        let queue = KafkaQueue::connect(settings, QUEUE_SETUP_TIMEOUT).await?;
        let control_store =
            KafkaControlStore::connect(&kafka_settings(config), QUEUE_SETUP_TIMEOUT).await?;
        Ok(Backend {
            queue: Arc::new(queue),
            control_store: Arc::new(control_store),
            metrics_refresh: None,
        })
    }

    /// The embedded log, the control file beside its directory (not in it: the storage engine
    /// owns that directory), and its storage metrics.
    async fn embedded(
        config: &Config,
        registry: &prometheus::Registry,
    ) -> Result<Backend, AppError> {
        let settings = embedded_settings(config);
        let budget = settings.retention.max_bytes.unwrap_or(0);
        let dir = settings.dir.clone();
        // Opening replays the journal: blocking work off the runtime's threads.
        let q = tokio::task::spawn_blocking(move || EmbeddedQueue::open(settings))
            .await
            .map_err(|e| queue::Error::Setup(format!("opening the embedded queue: {e}")))??;
        let q = Arc::new(q);
        let name = dir
            .file_name()
            .map_or_else(|| "queue".into(), |n| n.to_string_lossy().into_owned());
        let control_store =
            FileControlStore::new(dir.with_file_name(format!("{name}-control.json")));
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
        Ok(Backend {
            queue: q,
            control_store: Arc::new(control_store),
            metrics_refresh: Some(refresh),
        })
    }
}

/// Everything fluxroute runs, built and not yet started.
pub(super) struct App {
    pub(super) config: Arc<Config>,
    pub(super) queue: Arc<dyn Queue>,
    pub(super) producer: Arc<dyn queue::Producer>,
    pub(super) control: Arc<Control>,
    pub(super) control_store: Arc<dyn ControlStore>,
    pub(super) drain_metrics: DrainMetrics,
    pub(super) connection_metrics: ConnectionMetrics,
    pub(super) ingest: Arc<Ingest>,
    pub(super) admin: Arc<Admin>,
    pub(super) schema: Arc<SchemaViews>,
    pub(super) ingest_tls: Option<Arc<rustls::ServerConfig>>,
    pub(super) admin_tls: Option<Arc<rustls::ServerConfig>>,
    pub(super) reloads: tokio::sync::mpsc::Receiver<ReloadRequest>,
}

impl App {
    /// Builds every component of `config`: TLS, metrics, the queue and its control store, the
    /// ingest and the admin API (its clusters are filled in once delivery starts).
    pub(super) async fn build(config: Arc<Config>) -> Result<App, AppError> {
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
        let backend = Backend::open(&config, &registry).await?;
        let producer = backend.queue.producer();
        let drain_metrics = DrainMetrics::new(&registry);
        let initial = backend.control_store.load().await?;
        let control = Arc::new(Control::new(
            config.clusters.iter().map(|c| c.name.clone()),
            &initial,
            Arc::clone(&backend.control_store),
        ));
        let queries = Arc::new(QueryRouter::new(
            QuerySettings {
                max_lag: config.query.max_lag,
                timeout: config.query.timeout,
                after_timeout: config.query.after_timeout,
            },
            QueryMetrics::new(&registry),
            Arc::clone(&backend.queue),
        ));
        let schema = Arc::new(SchemaViews::new(
            schema_settings(&config),
            SchemaMetrics::new(&registry),
        ));
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
            Arc::clone(&queries),
            Arc::clone(&schema),
        ));
        let (reload_tx, reloads) = tokio::sync::mpsc::channel::<ReloadRequest>(4);
        let admin = Arc::new(Admin::new(AdminParts {
            registry,
            token: config.admin.token.as_ref().map(|t| t.expose().to_owned()),
            config_view: config.redacted_json(),
            control: Arc::clone(&control),
            clusters: Vec::new(),
            drain_metrics: drain_metrics.clone(),
            producer: Arc::clone(&producer),
            dead_letters: backend.queue.dead_letters(),
            backend: config.queue.backend.as_str(),
            reload: reload_tx,
            metrics_refresh: backend.metrics_refresh,
            queries: Some(queries),
            schema: Some(Arc::clone(&schema)),
        }));
        Ok(App {
            config,
            queue: backend.queue,
            producer,
            control,
            control_store: backend.control_store,
            drain_metrics,
            connection_metrics,
            ingest,
            admin,
            schema,
            ingest_tls,
            admin_tls,
            reloads,
        })
    }
}
