//! Reloading the configuration while running: on `POST /admin/v1/reload` or SIGHUP, clusters,
//! routes and users change; listeners, queue and limits need a restart.

use super::*;

/// Where a reload reads the configuration from.
#[derive(Debug, Clone)]
pub struct ReloadSource {
    /// The config file.
    pub path: std::path::PathBuf,
    /// Variables for `${VAR}`.
    pub env: std::collections::HashMap<String, String>,
}

/// Settings a reload cannot change while running.
pub(super) fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
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
    if old.redacted_json()["query"] != new.redacted_json()["query"] {
        out.push("query");
    }
    out
}

#[cfg(unix)]
pub(super) type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub(super) type Hangups = Option<()>;

/// SIGHUP, when reloading is possible.
pub(super) fn hangup_signals(enabled: bool) -> Hangups {
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

pub(super) async fn next_hangup(h: &mut Hangups) {
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

impl App {
    /// Reads the configuration again from `source` and applies what can change while running:
    /// users and routes at once, clusters by restarting delivery (drains stop gracefully:
    /// in-flight writes finish, positions are committed, nothing acknowledged is lost). An
    /// invalid configuration, or clusters that cannot start, leave the running one in place.
    pub(super) async fn reload(
        &mut self,
        source: &ReloadSource,
        delivery: &mut Option<Delivery>,
    ) -> Result<serde_json::Value, Vec<String>> {
        let new = match config::load(&source.path, &source.env) {
            Ok(new) => Arc::new(new),
            Err(e) => {
                tracing::warn!(problems = %e, "reload refused: the new configuration is invalid; the running one stays");
                return Err(e.to_string().lines().map(str::to_owned).collect());
            }
        };
        let restart_needed = restart_needed(&self.config, &new);
        let added: Vec<String> = new.clusters.iter().map(|c| c.name.clone()).collect();
        if let Err(e) = self.control.add_clusters(added).await {
            tracing::warn!(error = %e, "reading control state for new clusters");
        }
        self.ingest
            .reconfigure(authenticator(&new), route_table(&new));
        if let Some(old) = delivery.take() {
            old.stop(self.config.shutdown.grace).await;
        }
        match start_delivery(
            &new,
            &self.queue,
            &self.control,
            &self.drain_metrics,
            &self.schema,
        ) {
            Ok((d, views)) => {
                *delivery = Some(d);
                self.ingest
                    .queries()
                    .set_clusters(views.clone(), route_table(&new));
                self.admin.reconfigure(views, new.redacted_json());
                self.config = new;
                let config = &self.config;
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
                match start_delivery(
                    &self.config,
                    &self.queue,
                    &self.control,
                    &self.drain_metrics,
                    &self.schema,
                ) {
                    Ok((d, views)) => {
                        *delivery = Some(d);
                        self.ingest
                            .queries()
                            .set_clusters(views.clone(), route_table(&self.config));
                        self.admin.reconfigure(views, self.config.redacted_json());
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "restarting the previous clusters failed")
                    }
                }
                Err(vec![e.to_string()])
            }
        }
    }
}
