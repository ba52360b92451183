//! The delivery side of one configuration: health probes, drains, reroutes and schema
//! refreshers of every cluster, started together and stopped together (on reload and at
//! shutdown).

use std::collections::HashMap;

use super::*;
use crate::config::ClusterConfig;

/// The delivery side of one configuration: probes, drains and reroutes of every cluster.
#[derive(Debug)]
pub(super) struct Delivery {
    stop: CancellationToken,
    tasks: NamedTasks,
}

impl Delivery {
    /// Stops every drain; in-flight writes finish (or are replayed later) within `grace`, and
    /// whatever is still running a few seconds after it (the drains commit then) is aborted, so
    /// no drain of this configuration outlives it.
    pub(super) async fn stop(self, grace: Duration) {
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
pub(super) fn start_delivery(
    config: &Config,
    queue: &Arc<dyn Queue>,
    control: &Arc<Control>,
    drain_metrics: &DrainMetrics,
    schema: &Arc<SchemaViews>,
) -> Result<(Delivery, Vec<ClusterView>), AppError> {
    let clusters: Vec<(String, bool)> = config
        .clusters
        .iter()
        .map(|c| (c.name.clone(), c.create_databases))
        .collect();
    schema.set_clusters(&clusters, schema_settings(config));
    let mut start = Starter {
        config,
        queue,
        control,
        drain_metrics,
        schema,
        stop: CancellationToken::new(),
        tasks: NamedTasks::new(),
        healths: HashMap::new(),
        clients: HashMap::new(),
        reroutes: HashMap::new(),
    };
    let mut views = Vec::new();
    for cluster in &config.clusters {
        views.push(start.cluster(cluster)?);
    }
    for cluster in &config.clusters {
        start.reroute(cluster);
    }
    Ok((
        Delivery {
            stop: start.stop,
            tasks: start.tasks,
        },
        views,
    ))
}

/// Starts the tasks of one configuration's clusters.
struct Starter<'a> {
    config: &'a Config,
    queue: &'a Arc<dyn Queue>,
    control: &'a Arc<Control>,
    drain_metrics: &'a DrainMetrics,
    schema: &'a Arc<SchemaViews>,
    stop: CancellationToken,
    tasks: NamedTasks,
    healths: HashMap<String, Arc<ClusterHealth>>,
    clients: HashMap<String, ClusterClient>,
    /// Where each cluster with a standby tells whether its reroute is active.
    reroutes: HashMap<String, watch::Sender<bool>>,
}

impl Starter<'_> {
    /// Starts a cluster's probes (one per endpoint) and its drain.
    fn cluster(&mut self, cluster: &ClusterConfig) -> Result<ClusterView, AppError> {
        let client = ClusterClient::from_config(cluster)?;
        let health = Arc::new(ClusterHealth::new(
            &cluster.name,
            cluster.endpoints.len(),
            cluster.health_rise.get(),
            cluster.health_fall.get(),
        ));
        for (i, endpoint) in cluster.endpoints.iter().enumerate() {
            let span = tracing::info_span!("probe", cluster = %cluster.name, endpoint = i);
            self.tasks.spawn(
                format!("probe {} endpoint {i}", cluster.name),
                health::probe_loop(
                    client.clone(),
                    endpoint.clone(),
                    i,
                    Arc::clone(&health),
                    cluster.health_interval,
                    self.stop.clone(),
                )
                .instrument(span),
            );
        }
        self.healths
            .insert(cluster.name.clone(), Arc::clone(&health));
        self.clients.insert(cluster.name.clone(), client.clone());
        let drain = Drain::new(
            Arc::new(cluster.clone()),
            DrainKind::Primary,
            route_table(self.config),
            Arc::clone(self.queue),
            client.clone(),
            Arc::clone(&health),
            self.drain_metrics.clone(),
        );
        if self.config.schema.enabled {
            let refresher = Refresher {
                cluster: cluster.name.clone(),
                client: client.clone(),
                endpoints: cluster.endpoints.clone(),
                health: Arc::clone(&health),
                queue: Arc::clone(self.queue),
                views: Arc::clone(self.schema),
                hint: drain.schema_hint(),
                timeout: cluster.timeout,
                settings: schema_settings(self.config),
            };
            let span = tracing::info_span!("schema", cluster = %cluster.name);
            self.tasks.spawn(
                format!("schema {}", cluster.name),
                refresher.run(self.stop.clone()).instrument(span),
            );
        }
        let drain = match self.control.subscribe(&cluster.name) {
            Some(rx) => drain.with_control(rx),
            None => drain,
        };
        let rerouting = self.config.standby_of(&cluster.name).map(|_| {
            let (tx, rx) = watch::channel(false);
            self.reroutes.insert(cluster.name.clone(), tx);
            rx
        });
        let view = ClusterView {
            name: cluster.name.clone(),
            endpoints: cluster.endpoints.iter().map(ToString::to_string).collect(),
            standby: cluster.standby.clone(),
            health,
            drain: Some(drain.status()),
            rerouting,
            client: client.clone(),
            targets: cluster.endpoints.clone(),
        };
        let span = tracing::info_span!("drain", cluster = %cluster.name);
        let (cancel, grace, name) = (
            self.stop.clone(),
            self.config.shutdown.grace,
            cluster.name.clone(),
        );
        self.tasks.spawn(
            format!("drain {}", cluster.name),
            async move {
                if let Err(e) = drain.run(cancel, grace).await {
                    tracing::error!(cluster = %name, error = %e, "drain failed to start");
                }
            }
            .instrument(span),
        );
        Ok(view)
    }

    /// Starts the reroute of a cluster with a standby (after every cluster's start).
    fn reroute(&mut self, cluster: &ClusterConfig) {
        let Some(standby) = self.config.standby_of(&cluster.name) else {
            return;
        };
        let (Some(primary_health), Some(standby_health), Some(standby_client), Some(active)) = (
            self.healths.get(&cluster.name),
            self.healths.get(&standby.name),
            self.clients.get(&standby.name),
            self.reroutes.remove(&cluster.name),
        ) else {
            return;
        };
        let Some(primary_control) = self.control.subscribe(&cluster.name) else {
            return;
        };
        let reroute = Reroute {
            primary: Arc::new(cluster.clone()),
            primary_health: Arc::clone(primary_health),
            standby: Arc::new(standby.clone()),
            standby_health: Arc::clone(standby_health),
            standby_client: standby_client.clone(),
            routes: route_table(self.config),
            queue: Arc::clone(self.queue),
            metrics: self.drain_metrics.clone(),
            standby_control: self.control.subscribe(&standby.name),
            active,
        };
        let span = tracing::info_span!("reroute", cluster = %cluster.name, standby = %standby.name);
        self.tasks.spawn(
            format!("reroute {} to {}", cluster.name, standby.name),
            reroute
                .run(
                    primary_control,
                    self.stop.clone(),
                    self.config.shutdown.grace,
                )
                .instrument(span),
        );
    }
}
