//! The read path: InfluxQL reads through fluxroute, answered by one cluster that holds the data.
//!
//! Owns: the choice of cluster (by health and freshness, see [`select`]), the attempt on each
//! candidate in turn (a connection error or a 5xx moves on; an InfluxQL error, 4xx or `error`
//! in results, is the answer), and streaming the chosen cluster's answer through unbuffered.
//! Schema changes are not answered here: they travel through the log (see [`statement::Ddl`])
//! so that every cluster applies them in order.
//!
//! The answer carries `X-Fluxroute-Cluster` (who answered) and, when that cluster is not known
//! to be caught up (down, paused, replaying, or behind by more than `max_lag`),
//! `X-Fluxroute-Stale: <lag seconds>`.

pub mod position;
pub mod select;
pub mod statement;

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::admin::report::ReadReport;
use crate::admin::ClusterView;
use crate::metrics::QueryMetrics;
use crate::route::RouteTable;

use self::position::Position;
use self::select::{Choice, Facts};
use crate::queue::Queue;

/// How often a read with `X-Fluxroute-After` looks at the drains' committed positions.
const AFTER_POLL: Duration = Duration::from_millis(50);
/// How long a query waits before `Retry-After` when no cluster answered.
const RETRY_AFTER_SECONDS: &str = "1";

/// Settings of the read path.
#[derive(Debug, Clone, Copy)]
pub struct QuerySettings {
    /// A cluster more behind than this is not "caught up".
    pub max_lag: Duration,
    /// How long a cluster may take to start answering before the next one is tried.
    pub timeout: Duration,
    /// How long a read with `X-Fluxroute-After` waits for a cluster to pass that position.
    pub after_timeout: Duration,
}

/// A read, as the client sent it.
#[derive(Debug, Clone)]
pub struct Read {
    /// The statements, as one `q`.
    pub q: String,
    /// The request's `db` (empty when absent).
    pub db: String,
    /// The other parameters passed on (`rp`, `epoch`, `chunked`, `chunk_size`, `params`, and
    /// `pretty` when given in the URL, where influxd reads it).
    pub params: Vec<(String, String)>,
    /// How many statements `q` holds (for an answer fluxroute gives itself).
    pub statements: usize,
    /// Read-your-writes: only clusters whose drain passed this position answer.
    pub after: Option<Position>,
    /// A Flux query for `/api/v2/query` (then `q` and `params` are unused).
    pub flux: Option<Flux>,
}

/// A `/api/v2/query` request, passed on as it came.
#[derive(Debug, Clone)]
pub struct Flux {
    /// The body (Flux text or its JSON form).
    pub body: bytes::Bytes,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// The client's `Accept`.
    pub accept: Option<String>,
}

/// The bucket a Flux query reads (`from(bucket: "db/rp")`), as a database name: the first one
/// named, without its retention policy. `None` when the text names none.
pub fn flux_bucket(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let at = text.find("bucket")?;
    let rest = text[at + "bucket".len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    let bucket = &rest[..end];
    let db = bucket.split_once('/').map_or(bucket, |(db, _)| db);
    (!db.is_empty()).then(|| db.to_owned())
}

/// Parameters of a read passed on to the cluster as they are.
pub const PASSED_PARAMS: &[&str] = &["rp", "epoch", "chunked", "chunk_size", "params"];

/// influxd's answer to a query (200): `{"results":[...]}` and a newline, as JSON. Each result is a
/// JSON object written in influxd's key order (`statement_id` first), which a map would sort.
pub(crate) fn results_answer(results: &[String]) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        format!("{{\"results\":[{}]}}\n", results.join(",")),
    )
        .into_response()
}

/// What `lock` holds now (also after a panic while it was held: the value is replaced whole).
fn current<T>(lock: &RwLock<Arc<T>>) -> Arc<T> {
    lock.read()
        .map_or_else(|p| Arc::clone(&p.into_inner()), |v| Arc::clone(&v))
}

/// Routes reads to clusters.
#[derive(Debug)]
pub struct QueryRouter {
    clusters: RwLock<Arc<Vec<ClusterView>>>,
    routes: RwLock<Arc<RouteTable>>,
    settings: QuerySettings,
    metrics: QueryMetrics,
    seed: AtomicUsize,
    /// When this router last enqueued a write (ms since the Unix epoch).
    last_write_ms: AtomicI64,
    /// The queue, for the drains' committed positions (read-your-writes).
    queue: Arc<dyn Queue>,
}

impl QueryRouter {
    /// A router over no clusters yet (they come with [`QueryRouter::set_clusters`]).
    pub fn new(
        settings: QuerySettings,
        metrics: QueryMetrics,
        queue: Arc<dyn Queue>,
    ) -> QueryRouter {
        QueryRouter {
            clusters: RwLock::new(Arc::new(Vec::new())),
            routes: RwLock::new(Arc::new(RouteTable::default())),
            settings,
            metrics,
            seed: AtomicUsize::new(0),
            last_write_ms: AtomicI64::new(0),
            queue,
        }
    }

    /// The clusters and routes of the running configuration (at start and after a reload).
    pub fn set_clusters(&self, clusters: Vec<ClusterView>, routes: RouteTable) {
        // Every cluster's series exist at 0 from the start, so rate() sees a first burst.
        for c in &clusters {
            let name = c.name.as_str();
            for outcome in ["ok", "client_error"] {
                self.metrics.answered.with_label_values(&[name, outcome]);
            }
            self.metrics.failovers.with_label_values(&[name]);
            self.metrics.stale.with_label_values(&[name]);
        }
        if let Ok(mut c) = self.clusters.write() {
            *c = Arc::new(clusters);
        }
        if let Ok(mut r) = self.routes.write() {
            *r = Arc::new(routes);
        }
    }

    fn routes(&self) -> Arc<RouteTable> {
        current(&self.routes)
    }

    /// Who would answer a read of each routed database now (for the status page).
    pub fn serving(&self) -> Vec<ReadReport> {
        let routes = self.routes();
        routes
            .databases()
            .into_iter()
            .map(|db| {
                let choices =
                    select::candidates(&self.facts(&routes, &db), true, self.settings.max_lag);
                let mut names = choices.iter().map(|c| c.cluster.clone());
                ReadReport {
                    cluster: names.next(),
                    stale_seconds: choices.first().and_then(|c| c.stale),
                    then: names.collect(),
                    database: db,
                }
            })
            .collect()
    }

    /// Notes that a write was enqueued now (freshness counts what was written after a reading).
    pub fn wrote(&self) {
        self.last_write_ms
            .fetch_max(crate::queue::now_ms(), Ordering::Relaxed);
    }

    fn clusters(&self) -> Arc<Vec<ClusterView>> {
        current(&self.clusters)
    }

    /// What is known now of every cluster, for a read of `db`.
    pub fn facts(&self, routes: &RouteTable, db: &str) -> Vec<Facts> {
        let (now_ms, last_write_ms) = (
            crate::queue::now_ms(),
            self.last_write_ms.load(Ordering::Relaxed),
        );
        self.clusters()
            .iter()
            .map(|c| {
                let drain = c.drain.as_ref().map(|d| d.borrow().clone());
                let drain = drain.unwrap_or_default();
                Facts {
                    name: c.name.clone(),
                    db: (!db.is_empty())
                        .then(|| routes.database_on(&c.name, db))
                        .flatten(),
                    up: c.health.current().is_up(),
                    paused: drain.operator_paused,
                    replaying: drain.replaying || drain.catching_up,
                    lag_seconds: drain.lag_bound_seconds(now_ms, last_write_ms),
                    rerouted_to: c
                        .rerouting
                        .as_ref()
                        .is_some_and(|r| *r.borrow())
                        .then(|| c.standby.clone())
                        .flatten(),
                }
            })
            .collect()
    }

    /// Answers `read` from the best cluster that answers, streaming its answer.
    pub async fn read(&self, read: &Read) -> Response {
        let mut choices = select::candidates(
            &self.facts(&self.routes(), &read.db),
            !read.db.is_empty(),
            self.settings.max_lag,
        );
        if let (Some(after), false) = (&read.after, choices.is_empty()) {
            match self.passed(choices, after).await {
                Ok(passed) => choices = passed,
                Err(resp) => return resp,
            }
        }
        if choices.is_empty() && read.flux.is_some() {
            // As InfluxDB 2.x answers a query of a bucket it does not have.
            let body = serde_json::json!({
                "code": "not found",
                "message": format!("bucket {:?} not found", read.db),
            });
            return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
        }
        if choices.is_empty() {
            // As influxd answers a read of a database it does not have.
            let error = serde_json::Value::from(format!("database not found: {}", read.db));
            let results: Vec<String> = (0..read.statements)
                .map(|i| format!(r#"{{"statement_id":{i},"error":{error}}}"#))
                .collect();
            return results_answer(&results);
        }
        let clusters = self.clusters();
        let mut failures = Vec::new();
        for choice in &choices {
            let Some(cluster) = clusters.iter().find(|c| c.name == choice.cluster) else {
                continue;
            };
            match self.attempt(cluster, choice, read).await {
                Ok(resp) => return resp,
                Err(e) => {
                    tracing::warn!(cluster = %choice.cluster, error = %e, "read failed; trying the next cluster");
                    self.metrics
                        .failovers
                        .with_label_values(&[choice.cluster.as_str()])
                        .inc();
                    failures.push(format!("{}: {e}", choice.cluster));
                }
            }
        }
        self.unavailable(format!(
            "no cluster could answer the query: {}",
            failures.join("; ")
        ))
    }

    /// 503 with `Retry-After`: no cluster answered.
    fn unavailable(&self, error: String) -> Response {
        self.metrics.unanswered.inc();
        let mut resp = (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response();
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
        resp
    }

    /// The choices whose drain has passed `after` (in their order), waiting up to
    /// `after_timeout` for one; a standby standing in for a rerouted cluster is judged by the
    /// reroute's group.
    async fn passed(
        &self,
        choices: Vec<Choice>,
        after: &Position,
    ) -> Result<Vec<Choice>, Response> {
        let deadline = Instant::now() + self.settings.after_timeout;
        loop {
            let mut passed = Vec::new();
            for c in &choices {
                let group = match &c.via {
                    Some(primary) => crate::drain::reroute_group_name(primary),
                    None => crate::drain::group_name(&c.cluster),
                };
                match self.queue.group_positions(&group).await {
                    Ok(committed) if after.passed_by(&committed) => passed.push(c.clone()),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(cluster = %c.cluster, error = %e, "reading committed positions");
                    }
                }
            }
            if !passed.is_empty() {
                return Ok(passed);
            }
            if Instant::now() >= deadline {
                return Err(self.unavailable(format!(
                    "no cluster has applied the writes up to {} within {:?}",
                    after, self.settings.after_timeout
                )));
            }
            tokio::time::sleep(AFTER_POLL).await;
        }
    }

    /// Tries `cluster`'s endpoints (up ones first); the first answer that is not a 5xx is the
    /// read's answer.
    async fn attempt(
        &self,
        cluster: &ClusterView,
        choice: &Choice,
        read: &Read,
    ) -> Result<Response, String> {
        let mut params: Vec<(&str, &str)> = Vec::new();
        if !choice.db.is_empty() {
            params.push(("db", choice.db.as_str()));
        }
        params.extend(read.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let state = cluster.health.current();
        let seed = self.seed.fetch_add(1, Ordering::Relaxed);
        let n = cluster.targets.len();
        let mut order: Vec<usize> = (0..n).map(|i| (seed + i) % n.max(1)).collect();
        order.sort_by_key(|&i| !state.endpoints_up.get(i).copied().unwrap_or(false));
        let mut errors = Vec::new();
        for i in order {
            let endpoint = &cluster.targets[i];
            let started = Instant::now();
            let send = async {
                match &read.flux {
                    Some(f) => {
                        cluster
                            .client
                            .flux(
                                endpoint,
                                f.body.clone(),
                                f.content_type.as_deref(),
                                f.accept.as_deref(),
                            )
                            .await
                    }
                    None => cluster.client.query(endpoint, &read.q, &params).await,
                }
            };
            let answer = tokio::time::timeout(self.settings.timeout, send)
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "querying {endpoint}: no answer within {:?}",
                        self.settings.timeout
                    ))
                });
            let resp = match answer {
                Ok(resp) if resp.status().is_server_error() => {
                    errors.push(format!("{endpoint}: status {}", resp.status()));
                    continue;
                }
                Ok(resp) => resp,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            self.metrics
                .seconds
                .observe(started.elapsed().as_secs_f64());
            return Ok(self.pass_on(resp, choice));
        }
        Err(errors.join("; "))
    }

    /// The cluster's answer, streamed through, with fluxroute's headers.
    fn pass_on(&self, resp: reqwest::Response, choice: &Choice) -> Response {
        let status =
            StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let outcome = if status.is_success() {
            "ok"
        } else {
            "client_error"
        };
        let cluster = choice.cluster.as_str();
        self.metrics
            .answered
            .with_label_values(&[cluster, outcome])
            .inc();
        let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
        let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
        *out.status_mut() = status;
        let h = out.headers_mut();
        if let Some(ct) = content_type {
            h.insert(header::CONTENT_TYPE, ct);
        }
        if let Ok(v) = HeaderValue::from_str(cluster) {
            h.insert("X-Fluxroute-Cluster", v);
        }
        if let Some(lag) = choice.stale {
            self.metrics.stale.with_label_values(&[cluster]).inc();
            if let Ok(v) = HeaderValue::from_str(&format!("{lag:.3}")) {
                h.insert("X-Fluxroute-Stale", v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_of_a_flux_query_names_its_database() {
        let q = br#"from(bucket: "telegraf/autogen") |> range(start: -1h)"#;
        assert_eq!(flux_bucket(q), Some("telegraf".into()));
        assert_eq!(flux_bucket(br#"from(bucket:"db")"#), Some("db".into()));
        assert_eq!(flux_bucket(b"buckets()"), None);
        assert_eq!(flux_bucket(br#"from(bucket: "")"#), None);
        assert_eq!(flux_bucket(b"\xff"), None);
    }
}
