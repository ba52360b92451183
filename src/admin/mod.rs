//! The ops HTTP API on its own listener.
//!
//! Every `/admin/v1/*` endpoint needs `Authorization: Bearer <token>` when `[admin] token` is set
//! (the config refuses a non-loopback admin listener without one); `/metrics` and `/` are open.
//!
//! | method | path | what |
//! | --- | --- | --- |
//! | GET | `/` | the status page: one self-contained HTML file that polls `/admin/v1/status` every 2 s (open; it holds no data and asks for the token on a 401) |
//! | GET | `/metrics` | Prometheus text format |
//! | GET | `/admin/v1/status` | a [`report::StatusReport`]: clusters (state, endpoints, lag, rate, catch-up estimate, dead letters, drain state, history), queue, version, uptime |
//! | POST | `/admin/v1/clusters/{name}/pause` | stop the cluster's drain on every instance; the queue buffers |
//! | POST | `/admin/v1/clusters/{name}/resume` | resume it |
//! | POST | `/admin/v1/clusters/{name}/replay?since=<RFC3339>` | re-deliver the cluster's records from that time (idempotent) |
//! | POST | `/admin/v1/clusters/{name}/reroute?enabled=true\|false\|auto` | force the reroute to the standby on or off, or back to automatic |
//! | GET | `/admin/v1/dead-letters?cluster=&reason=&from=&limit=` | refused batches, oldest first, paged by id |
//! | POST | `/admin/v1/dead-letters/replay?cluster=&reason=` | re-enqueue matching letters' lines (after the cause is fixed) |
//! | POST | `/admin/v1/dead-letters/purge?before=<id>` | delete letters with a lower id (all without `before`) |
//! | GET | `/admin/v1/config` | the running configuration, secrets redacted |
//! | POST | `/admin/v1/reload` | re-read the config file (also on SIGHUP): clusters, routes and users change without dropping writes; an invalid file is refused with its problems |
//! | GET | `/admin/v1/openapi.json` | this table as an OpenAPI 3 document |
//!
//! Errors are JSON `{"error": "..."}`: 401 without a valid token, 404 for an unknown cluster,
//! 400 for a bad argument, 405 for a wrong method, 503 when the action cannot be shared with the
//! other instances.

mod openapi;
pub mod report;

use self::openapi::openapi;
pub use self::openapi::openapi_document;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use prometheus::Registry;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use self::report::{
    ClusterCondition, ClusterReport, ControlReport, EndpointReport, History, QueueReport,
    RerouteReport, StatusReport,
};

use crate::control::{Control, ControlError, ReplayRequest, RerouteMode};
use crate::drain::core::DrainStatus;
use crate::health::ClusterHealth;
use crate::metrics::DrainMetrics;
use crate::queue::{DeadLetterSink, Producer, StoredDeadLetter};

/// The answer to a reload: a summary, or the problems of the refused configuration.
pub type ReloadReply = Result<serde_json::Value, Vec<String>>;

/// A reload asked for through the admin API; whoever runs the process (`app`) answers it.
#[derive(Debug)]
pub struct ReloadRequest {
    /// Where the answer goes.
    pub reply: tokio::sync::oneshot::Sender<ReloadReply>,
}

/// How long the status page waits for the queue's health.
const QUEUE_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The status page served at `GET /`: inline CSS and JS, no external assets.
const STATUS_PAGE: &str = include_str!("page.html");

/// The page loads nothing from elsewhere and talks only to this listener.
const STATUS_PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; form-action 'none'; \
    frame-ancestors 'none'; base-uri 'none'";

/// Refreshes metrics that are read rather than counted (the embedded queue's storage), before a
/// scrape.
pub struct MetricsRefresh(pub Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for MetricsRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRefresh")
    }
}

/// What the admin API knows of one cluster.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// Name.
    pub name: String,
    /// Endpoint URLs.
    pub endpoints: Vec<String>,
    /// Standby cluster, if any.
    pub standby: Option<String>,
    /// Health.
    pub health: Arc<ClusterHealth>,
    /// Its drain's state (`None` in tests without one).
    pub drain: Option<watch::Receiver<DrainStatus>>,
    /// Whether its writes go to its standby now (`None` without a standby).
    pub rerouting: Option<watch::Receiver<bool>>,
    /// Its HTTP client (reads go through it).
    pub client: crate::influx::ClusterClient,
    /// Its endpoints.
    pub targets: Vec<crate::config::Endpoint>,
}

/// Shared state of the admin routes.
#[derive(Debug)]
pub struct Admin {
    registry: Registry,
    token: Option<String>,
    config_view: std::sync::RwLock<Value>,
    control: Arc<Control>,
    clusters: std::sync::RwLock<Vec<ClusterView>>,
    reload: tokio::sync::mpsc::Sender<ReloadRequest>,
    drain_metrics: DrainMetrics,
    producer: Arc<dyn Producer>,
    dead_letters: Arc<dyn DeadLetterSink>,
    backend: &'static str,
    started: Instant,
    rates: Mutex<HashMap<String, RateSample>>,
    history: Mutex<History>,
    metrics_refresh: Option<MetricsRefresh>,
    queries: Option<Arc<crate::query::QueryRouter>>,
    schema: Option<Arc<crate::schema::SchemaViews>>,
}

#[derive(Debug, Clone, Copy)]
struct RateSample {
    at: Instant,
    lines: u64,
    records: u64,
    lines_per_s: f64,
    records_per_s: f64,
}

/// Everything [`Admin`] is built from.
#[derive(Debug)]
pub struct AdminParts {
    /// The metrics registry.
    pub registry: Registry,
    /// Bearer token, when configured.
    pub token: Option<String>,
    /// The redacted configuration.
    pub config_view: Value,
    /// Operator control.
    pub control: Arc<Control>,
    /// The clusters.
    pub clusters: Vec<ClusterView>,
    /// Drain metrics (lag, rates).
    pub drain_metrics: DrainMetrics,
    /// The queue's producer (for its health, and to replay dead letters).
    pub producer: Arc<dyn Producer>,
    /// The dead-letter store.
    pub dead_letters: Arc<dyn DeadLetterSink>,
    /// Queue backend name.
    pub backend: &'static str,
    /// Where reload requests go.
    pub reload: tokio::sync::mpsc::Sender<ReloadRequest>,
    /// Called before each scrape.
    pub metrics_refresh: Option<MetricsRefresh>,
    /// The read path, for which cluster serves reads (`None` in tests without one).
    pub queries: Option<Arc<crate::query::QueryRouter>>,
    /// The clusters' schema views (`None` in tests without them).
    pub schema: Option<Arc<crate::schema::SchemaViews>>,
}

impl Admin {
    /// Builds the admin API state.
    pub fn new(parts: AdminParts) -> Admin {
        Admin {
            registry: parts.registry,
            token: parts.token,
            config_view: std::sync::RwLock::new(parts.config_view),
            control: parts.control,
            clusters: std::sync::RwLock::new(parts.clusters),
            reload: parts.reload,
            metrics_refresh: parts.metrics_refresh,
            queries: parts.queries,
            schema: parts.schema,
            drain_metrics: parts.drain_metrics,
            producer: parts.producer,
            dead_letters: parts.dead_letters,
            backend: parts.backend,
            started: Instant::now(),
            rates: Mutex::new(HashMap::new()),
            history: Mutex::new(History::default()),
        }
    }

    /// After a reload: the new clusters and the new configuration view.
    pub fn reconfigure(&self, clusters: Vec<ClusterView>, config_view: Value) {
        if let Ok(mut c) = self.clusters.write() {
            *c = clusters;
        }
        if let Ok(mut v) = self.config_view.write() {
            *v = config_view;
        }
    }

    fn clusters(&self) -> Vec<ClusterView> {
        self.clusters.read().map(|c| c.clone()).unwrap_or_default()
    }

    fn is_authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
    }

    /// Lines/s and records/s written to `cluster`, from the counters since the last look.
    fn rates(&self, cluster: &str) -> (f64, f64) {
        let lines = self
            .drain_metrics
            .lines_written
            .with_label_values(&[cluster])
            .get();
        let records = self
            .drain_metrics
            .records_committed
            .with_label_values(&[cluster])
            .get();
        let now = Instant::now();
        let Ok(mut rates) = self.rates.lock() else {
            return (0.0, 0.0);
        };
        let prev = rates.get(cluster).copied();
        let sample = match prev {
            Some(p) if now.duration_since(p.at) < Duration::from_secs(1) => p,
            Some(p) => {
                let dt = now.duration_since(p.at).as_secs_f64();
                RateSample {
                    at: now,
                    lines,
                    records,
                    lines_per_s: lines.saturating_sub(p.lines) as f64 / dt,
                    records_per_s: records.saturating_sub(p.records) as f64 / dt,
                }
            }
            None => RateSample {
                at: now,
                lines,
                records,
                lines_per_s: 0.0,
                records_per_s: 0.0,
            },
        };
        rates.insert(cluster.to_owned(), sample);
        (sample.lines_per_s, sample.records_per_s)
    }

    /// Lag of `c` from its drain's status: (records, seconds).
    fn lag(c: &ClusterView) -> (i64, f64) {
        c.drain.as_ref().map_or((0, 0.0), |d| {
            let d = d.borrow();
            (d.lag_records.unwrap_or(0), d.lag_seconds)
        })
    }

    /// Takes a history point of every cluster.
    fn sample_history(&self) {
        let clusters = self.clusters();
        let at_ms = crate::queue::now_ms();
        let Ok(mut history) = self.history.lock() else {
            return;
        };
        history.retain(|name| clusters.iter().any(|c| c.name == name));
        for c in &clusters {
            let lines = self
                .drain_metrics
                .lines_written
                .with_label_values(&[&c.name])
                .get();
            history.sample(&c.name, at_ms, lines, Admin::lag(c));
        }
    }

    /// Keeps the clusters' history (for the status page's charts) until `cancel`.
    pub async fn keep_history(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(report::HISTORY_INTERVAL);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => self.sample_history(),
            }
        }
    }

    /// The status of everything, as served and as `ctl` reads it.
    pub async fn status(&self) -> StatusReport {
        let queue = self.producer.check_health(QUEUE_HEALTH_TIMEOUT).await;
        let mut clusters = Vec::new();
        for c in &self.clusters() {
            let health = c.health.current();
            let control = self.control.get(&c.name).unwrap_or_default();
            let rerouting = c.rerouting.as_ref().is_some_and(|r| *r.borrow());
            let (lag_records, lag_seconds) = Admin::lag(c);
            let dead_letters: u64 = crate::influx::ReasonClass::ALL
                .iter()
                .map(|r| {
                    self.drain_metrics
                        .dead_letters
                        .with_label_values(&[c.name.as_str(), r.as_str()])
                        .get()
                })
                .sum();
            let (lines_per_s, records_per_s) = self.rates(&c.name);
            let eta = (lag_records > 0 && records_per_s > 0.0)
                .then(|| lag_records as f64 / records_per_s);
            let errors = c.health.last_errors();
            let endpoints = c
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, url)| EndpointReport {
                    url: url.clone(),
                    up: health.endpoints_up.get(i).copied().unwrap_or(false),
                    last_error: errors.get(i).cloned().flatten(),
                })
                .collect();
            let history = self
                .history
                .lock()
                .map(|h| h.points(&c.name))
                .unwrap_or_default();
            clusters.push(ClusterReport {
                name: c.name.clone(),
                state: ClusterCondition::of(
                    health.misconfigured.is_some(),
                    control.paused,
                    rerouting,
                    health.is_up(),
                ),
                up: health.is_up(),
                paused: control.paused,
                misconfigured: health.misconfigured.clone(),
                standby: c.standby.clone(),
                reroute: RerouteReport {
                    mode: control.reroute,
                    active: rerouting,
                },
                endpoints,
                lag_records,
                lag_seconds,
                write_rate_lines_per_second: lines_per_s,
                catch_up_eta_seconds: eta,
                dead_letters,
                drain: c.drain.as_ref().map(|d| d.borrow().clone()),
                history,
                schema: self.schema.as_ref().and_then(|s| s.report(&c.name)),
            });
        }
        StatusReport {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_seconds: self.started.elapsed().as_secs(),
            queue: QueueReport {
                backend: self.backend.to_owned(),
                healthy: queue.is_ok(),
                error: queue.err().map(|e| e.to_string()),
            },
            clusters,
            reads: self
                .queries
                .as_ref()
                .map(|q| q.serving())
                .unwrap_or_default(),
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

/// The admin API's routes.
pub fn router(admin: Arc<Admin>) -> Router {
    let api = Router::new()
        .route("/admin/v1/status", get(status).fallback(method_not_allowed))
        .route("/admin/v1/config", get(config).fallback(method_not_allowed))
        .route(
            "/admin/v1/openapi.json",
            get(openapi).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clusters/{name}/pause",
            post(pause).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clusters/{name}/resume",
            post(resume).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clusters/{name}/replay",
            post(replay).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/clusters/{name}/reroute",
            post(reroute).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/reload",
            post(reload).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/dead-letters",
            get(list_dead_letters).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/dead-letters/replay",
            post(replay_dead_letters).fallback(method_not_allowed),
        )
        .route(
            "/admin/v1/dead-letters/purge",
            post(purge_dead_letters).fallback(method_not_allowed),
        )
        .layer(middleware::from_fn_with_state(
            Arc::clone(&admin),
            require_token,
        ));
    Router::new()
        .route("/", get(page).fallback(method_not_allowed))
        .route("/metrics", get(metrics))
        .merge(api)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such admin endpoint") })
        .with_state(admin)
}

async fn require_token(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Response {
    if admin.is_authorized(req.headers()) {
        next.run(req).await
    } else {
        let mut r = error(StatusCode::UNAUTHORIZED, "missing or invalid bearer token");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        r
    }
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, STATUS_PAGE_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // The page may carry ?token= in its URL until its script removes it.
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        STATUS_PAGE,
    )
        .into_response()
}

async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    if let Some(refresh) = &admin.metrics_refresh {
        (refresh.0)();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&admin.registry),
    )
        .into_response()
}

async fn status(State(admin): State<Arc<Admin>>) -> Response {
    axum::Json(admin.status().await).into_response()
}

async fn config(State(admin): State<Arc<Admin>>) -> Response {
    let view = admin
        .config_view
        .read()
        .map(|v| v.clone())
        .unwrap_or_default();
    axum::Json(view).into_response()
}

fn query(raw: Option<&str>, key: &str) -> Option<String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn act(
    admin: &Admin,
    cluster: &str,
    f: impl FnOnce(&mut crate::control::ClusterControl),
) -> Response {
    match admin.control.update(cluster, f).await {
        Ok(control) => axum::Json(ControlReport {
            cluster: cluster.to_owned(),
            control,
        })
        .into_response(),
        Err(ControlError::UnknownCluster(c)) => {
            error(StatusCode::NOT_FOUND, format!("unknown cluster {c:?}"))
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn pause(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    act(&admin, &name, |c| c.paused = true).await
}

async fn resume(State(admin): State<Arc<Admin>>, Path(name): Path<String>) -> Response {
    act(&admin, &name, |c| c.paused = false).await
}

async fn replay(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(since) = query(q.as_deref(), "since") else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing parameter since=<RFC3339 time>",
        );
    };
    let since_ms = match humantime::parse_rfc3339_weak(&since) {
        Ok(t) => t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("since={since:?} is not an RFC 3339 time: {e}"),
            )
        }
    };
    let id = crate::queue::now_ms();
    act(&admin, &name, |c| {
        c.replay = Some(ReplayRequest { id, since_ms })
    })
    .await
}

async fn reroute(
    State(admin): State<Arc<Admin>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(mode) = query(q.as_deref(), "enabled")
        .as_deref()
        .and_then(RerouteMode::parse)
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "parameter enabled must be true, false or auto",
        );
    };
    if let Some(c) = admin.clusters().iter().find(|c| c.name == name) {
        if c.standby.is_none() && mode == RerouteMode::On {
            return error(
                StatusCode::BAD_REQUEST,
                format!("cluster {name:?} has no standby to reroute to"),
            );
        }
    }
    act(&admin, &name, |c| c.reroute = mode).await
}

async fn reload(State(admin): State<Arc<Admin>>) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel();
    if admin.reload.send(ReloadRequest { reply }).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    match answer.await {
        Ok(Ok(summary)) => axum::Json(summary).into_response(),
        Ok(Err(problems)) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({
                "error": "the new configuration is invalid; the running one stays",
                "problems": problems,
            })),
        )
            .into_response(),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    }
}

/// Most letters listed per page.
const MAX_PAGE: usize = 1000;
/// Letters read per step while replaying.
const REPLAY_STEP: usize = 200;

struct LetterFilter {
    cluster: Option<String>,
    reason: Option<String>,
}

impl LetterFilter {
    fn from_query(q: Option<&str>) -> LetterFilter {
        LetterFilter {
            cluster: query(q, "cluster"),
            reason: query(q, "reason"),
        }
    }

    fn matches(&self, l: &StoredDeadLetter) -> bool {
        self.cluster.as_ref().is_none_or(|c| *c == l.cluster)
            && self.reason.as_ref().is_none_or(|r| *r == l.reason_class)
    }
}

/// A numeric query parameter; `Err` is the message of a 400.
fn number<T: std::str::FromStr>(q: Option<&str>, key: &str, default: T) -> Result<T, String> {
    match query(q, key) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{key}={v:?} is not a number")),
    }
}

async fn list_dead_letters(State(admin): State<Arc<Admin>>, RawQuery(q): RawQuery) -> Response {
    let q = q.as_deref();
    let filter = LetterFilter::from_query(q);
    let (from, limit) = match (number(q, "from", 0u64), number(q, "limit", 100usize)) {
        (Ok(f), Ok(l)) => (f, l.clamp(1, MAX_PAGE)),
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, m),
    };
    // Read forward until a page of matching letters (or the end) is found.
    let mut out = Vec::new();
    let mut cursor = from;
    loop {
        let page = match admin.dead_letters.list(cursor, limit).await {
            Ok(p) => p,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let Some(last) = page.last().map(|l| l.id) else {
            break;
        };
        cursor = last + 1;
        out.extend(page.into_iter().filter(|l| filter.matches(l)));
        if out.len() >= limit {
            out.truncate(limit);
            cursor = out.last().map_or(cursor, |l| l.id + 1);
            break;
        }
    }
    let next = (out.len() == limit).then_some(cursor);
    axum::Json(json!({ "dead_letters": out, "next": next })).into_response()
}

async fn replay_dead_letters(State(admin): State<Arc<Admin>>, RawQuery(q): RawQuery) -> Response {
    let filter = LetterFilter::from_query(q.as_deref());
    let (mut cursor, mut letters, mut lines, mut last_id) = (0u64, 0u64, 0u64, None);
    loop {
        let page = match admin.dead_letters.list(cursor, REPLAY_STEP).await {
            Ok(p) => p,
            Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        };
        let Some(last) = page.last().map(|l| l.id) else {
            break;
        };
        cursor = last + 1;
        for l in page.into_iter().filter(|l| filter.matches(l)) {
            let target = crate::ingest::encode::Target {
                db: &l.db,
                rp: &l.rp,
                partitions: admin.producer.partitions(),
                max_record_bytes: admin.producer.max_record_bytes(),
                // A replay is the operator's choice: nothing dropped by age or stored type here.
                min_time: None,
                stored: None,
            };
            // Stored lines are normalized: nanosecond timestamps, no receive time needed.
            let encoded = crate::ingest::encode::encode(
                &l.lines,
                crate::line_protocol::Precision::Nanosecond,
                0,
                target,
            );
            if let Err(e) = admin.producer.enqueue(encoded.records).await {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "replaying dead letter {}: {e} ({letters} letters replayed before it)",
                        l.id
                    ),
                );
            }
            letters += 1;
            lines += encoded.accepted as u64;
            last_id = Some(l.id);
        }
    }
    tracing::info!(letters, lines, "dead letters replayed");
    axum::Json(json!({ "replayed_letters": letters, "replayed_lines": lines, "last_id": last_id }))
        .into_response()
}

async fn purge_dead_letters(State(admin): State<Arc<Admin>>, RawQuery(q): RawQuery) -> Response {
    let before = match number(q.as_deref(), "before", u64::MAX) {
        Ok(b) => b,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    match admin.dead_letters.purge(before).await {
        Ok(()) => {
            tracing::info!(before, "dead letters purged");
            axum::Json(json!({ "purged_before": before })).into_response()
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_lists_every_admin_route() {
        let doc = openapi_document();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/",
            "/metrics",
            "/admin/v1/status",
            "/admin/v1/config",
            "/admin/v1/openapi.json",
            "/admin/v1/clusters/{name}/pause",
            "/admin/v1/clusters/{name}/resume",
            "/admin/v1/clusters/{name}/replay",
            "/admin/v1/clusters/{name}/reroute",
            "/admin/v1/dead-letters",
            "/admin/v1/reload",
            "/admin/v1/dead-letters/replay",
            "/admin/v1/dead-letters/purge",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
    }
}
