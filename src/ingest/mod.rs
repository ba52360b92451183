//! The InfluxDB-compatible HTTP front: `/write` (v1), `/api/v2/write` (v2), `/ping`, `/health`
//! and `/query` (reads routed to a cluster by [`crate::query`]; schema changes through the log).
//!
//! Owns: authentication, request limits (concurrency shed before the body is read, raw and
//! decompressed size caps), parsing and validation through [`crate::line_protocol`], and the
//! answer. It does not deliver to clusters: it hands records to a [`Producer`] and answers 2xx
//! only once the producer says every record of the request is durable (invariant 1). On any
//! failure to enqueue it answers 503 with `Retry-After`, and the client's retry is harmless
//! because every line's timestamp was fixed here (invariant 3).
//!
//! Answers mirror InfluxDB 1.8 for v1 and 2.x for v2, including a partial write's 400 after
//! the good lines were enqueued; see [`error::ApiError`].

pub mod auth;
pub mod body;
pub mod encode;
pub mod error;
mod read;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use tokio::sync::Semaphore;

use crate::line_protocol::Precision;
use crate::metrics::IngestMetrics;
use crate::query::position::{Position, AFTER_HEADER, POSITION_HEADER};
use crate::query::statement::{self, Statement};
use crate::query::{self, QueryRouter};
use crate::queue::{OutgoingRecord, Producer, RecordMeta};
use crate::route::RouteTable;
use crate::schema::view::{AgreedFields, Decision};
use crate::schema::SchemaViews;

use self::auth::Authenticator;
use self::encode::Target;
use self::error::{ApiError, Dialect};

/// The InfluxDB version fluxroute answers as: its write API is 1.8's (with 2.x's `/api/v2/write`).
pub const INFLUXDB_COMPAT_VERSION: &str = "1.8.10";
/// How long a `/health` answer about the queue is reused.
const HEALTH_CACHE: Duration = Duration::from_secs(1);
/// How long `/health` waits for the queue.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of a `/query` body (statements are short).
const MAX_QUERY_BODY_BYTES: usize = 1024 * 1024;

/// Limits and timings of the ingest.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Raw and decompressed body cap.
    pub max_body_bytes: usize,
    /// Write requests handled at once; more are shed with 503.
    pub max_concurrent_requests: usize,
    /// How long a write waits for the queue's ack before 503.
    pub enqueue_timeout: Duration,
    /// `Retry-After` sent with 503.
    pub retry_after: Duration,
    /// Longest a request body may take to arrive.
    pub body_read_timeout: Duration,
}

/// Shared state of the ingest routes.
#[derive(Debug)]
pub struct Ingest {
    producer: Arc<dyn Producer>,
    auth: std::sync::RwLock<Arc<Authenticator>>,
    routes: std::sync::RwLock<Arc<RouteTable>>,
    settings: IngestSettings,
    permits: Arc<Semaphore>,
    metrics: IngestMetrics,
    accepting: AtomicBool,
    health: Mutex<Option<(Instant, Result<(), String>)>>,
    queries: Arc<QueryRouter>,
    schema: Arc<SchemaViews>,
}

impl Ingest {
    /// Builds the ingest over a producer.
    pub fn new(
        producer: Arc<dyn Producer>,
        auth: Authenticator,
        routes: RouteTable,
        settings: IngestSettings,
        metrics: IngestMetrics,
        queries: Arc<QueryRouter>,
        schema: Arc<SchemaViews>,
    ) -> Ingest {
        Ingest {
            producer,
            auth: std::sync::RwLock::new(Arc::new(auth)),
            routes: std::sync::RwLock::new(Arc::new(routes)),
            permits: Arc::new(Semaphore::new(settings.max_concurrent_requests.max(1))),
            settings,
            metrics,
            accepting: AtomicBool::new(true),
            health: Mutex::new(None),
            queries,
            schema,
        }
    }

    /// Swaps in new routes and users (config reload); requests in flight finish with the old.
    pub fn reconfigure(&self, auth: Authenticator, routes: RouteTable) {
        if let Ok(mut a) = self.auth.write() {
            *a = Arc::new(auth);
        }
        if let Ok(mut r) = self.routes.write() {
            *r = Arc::new(routes);
        }
    }

    /// The read path, whose clusters come once delivery starts.
    pub fn queries(&self) -> &Arc<QueryRouter> {
        &self.queries
    }

    fn routes(&self) -> Arc<RouteTable> {
        self.routes
            .read()
            .map_or_else(|p| Arc::clone(&p.into_inner()), |r| Arc::clone(&r))
    }

    /// What the clusters' schema views say of a write of `db`/`rp` (one snapshot read), with
    /// the field types they all hold; a database no cluster has (and none creates) is
    /// influxd's 404, answered before the body is read, as influxd does.
    fn decide(
        &self,
        routes: &RouteTable,
        db: &str,
        rp: &str,
    ) -> Result<(Decision, Option<AgreedFields>), ApiError> {
        let (decision, fields) = self.schema.snapshot().decide_write(routes, db, rp);
        if decision == Decision::DatabaseNotFound {
            self.schema_answer("database_not_found");
            return Err(ApiError::DatabaseNotFound(db.to_owned()));
        }
        Ok((decision, fields))
    }

    /// The fields an accepted write brings: the clusters create them on delivery.
    fn learned(
        &self,
        req: &WriteRequest,
        fields: &[(Vec<u8>, Vec<u8>, crate::line_protocol::FieldType)],
    ) {
        if !fields.is_empty() {
            self.schema
                .learned(&self.routes(), &req.db, &req.rp, fields);
        }
    }

    fn schema_answer(&self, answer: &str) {
        self.schema
            .metrics()
            .answers
            .with_label_values(&[answer])
            .inc();
    }

    fn auth(&self) -> Arc<Authenticator> {
        self.auth
            .read()
            .map_or_else(|p| Arc::clone(&p.into_inner()), |a| Arc::clone(&a))
    }

    /// Stops accepting writes (shutdown): new writes get 503, `/health` fails.
    pub fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    fn overloaded(&self) -> ApiError {
        ApiError::Overloaded {
            retry_after: self.settings.retry_after,
        }
    }

    async fn queue_health(&self) -> Result<(), String> {
        if let Ok(guard) = self.health.lock() {
            if let Some((at, res)) = guard.as_ref() {
                if at.elapsed() < HEALTH_CACHE {
                    return res.clone();
                }
            }
        }
        let res = self
            .producer
            .check_health(HEALTH_TIMEOUT)
            .await
            .map_err(|e| e.to_string());
        if let Ok(mut guard) = self.health.lock() {
            *guard = Some((Instant::now(), res.clone()));
        }
        res
    }

    async fn enqueue(&self, records: Vec<OutgoingRecord>) -> Result<Position, ApiError> {
        if records.is_empty() {
            return Ok(Position::default());
        }
        let started = Instant::now();
        let res = tokio::time::timeout(
            self.settings.enqueue_timeout,
            self.producer.enqueue(records),
        )
        .await;
        let outcome = match &res {
            Ok(Ok(_)) => "ok",
            Ok(Err(_)) => "error",
            Err(_) => "timeout",
        };
        self.metrics
            .enqueue_seconds
            .with_label_values(&[outcome])
            .observe(started.elapsed().as_secs_f64());
        let reason = match res {
            Ok(Ok(appended)) => {
                // After the ack: a lag reading taken later sees these records.
                self.queries.wrote();
                return Ok(Position::of(&appended));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!(
                "no acknowledgement within {:?}",
                self.settings.enqueue_timeout
            ),
        };
        tracing::warn!(%reason, "write not acknowledged by the queue; answering 503");
        Err(ApiError::QueueUnavailable {
            retry_after: self.settings.retry_after,
            reason,
        })
    }
}

/// The ingest's routes.
pub fn router(ingest: Arc<Ingest>) -> Router {
    Router::new()
        .route("/write", post(write_v1).fallback(method_not_allowed))
        .route(
            "/api/v2/write",
            post(write_v2).fallback(method_not_allowed_v2),
        )
        .route("/ping", get(ping).head(ping).fallback(method_not_allowed))
        .route("/health", get(health).fallback(method_not_allowed))
        .route("/query", any(self::read::query))
        .route(
            "/api/v2/query",
            post(self::read::flux_query).fallback(method_not_allowed_v2),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&ingest),
            common_headers,
        ))
        .with_state(ingest)
}

fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/write" => "write",
        "/api/v2/write" => "api_v2_write",
        "/ping" => "ping",
        "/health" => "health",
        "/query" => "query",
        "/api/v2/query" => "api_v2_query",
        _ => "other",
    }
}

/// Adds InfluxDB's headers to every answer and counts requests.
async fn common_headers(State(ingest): State<Arc<Ingest>>, req: Request, next: Next) -> Response {
    let endpoint = endpoint_label(req.uri().path());
    let request_id = uuid::Uuid::new_v4().to_string();
    // Every log line of the request carries its id, the one the client sees in `Request-Id`.
    let span = tracing::info_span!("request", id = %request_id, endpoint);
    let mut resp = tracing::Instrument::instrument(next.run(req), span).await;
    ingest
        .metrics
        .requests
        .with_label_values(&[endpoint, resp.status().as_str()])
        .inc();
    let h = resp.headers_mut();
    h.insert("X-Influxdb-Build", HeaderValue::from_static("OSS"));
    h.insert(
        "X-Influxdb-Version",
        HeaderValue::from_static(INFLUXDB_COMPAT_VERSION),
    );
    h.insert(
        "X-Fluxroute-Version",
        HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("Request-Id", v.clone());
        h.insert("X-Request-Id", v);
    }
    resp
}

/// Query parameters, decoded leniently as InfluxDB (Go's url.ParseQuery) does; the first value
/// of a repeated key wins.
fn params(raw: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

fn receive_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
}

/// A parsed and validated write request, ready for the body.
struct WriteRequest {
    db: String,
    rp: String,
    precision: Precision,
    dialect: Dialect,
    /// The v1 `consistency` parameter is absent or a level influxd knows.
    consistency_valid: bool,
    /// What the clusters' schema views say of it.
    schema: Decision,
    /// The field types every cluster of the write holds (when all are known).
    stored: Option<AgreedFields>,
}

async fn write_v1(
    State(ingest): State<Arc<Ingest>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let p = params(q.as_deref());
    let prepared = (|| {
        ingest.auth().authenticate(
            p.get("u").map(String::as_str),
            p.get("p").map(String::as_str),
            &headers,
        )?;
        let db = p
            .get("db")
            .filter(|d| !d.is_empty())
            .ok_or(ApiError::DatabaseRequired)?;
        let precision_param = p.get("precision").map_or("", String::as_str);
        let precision = Precision::from_v1(precision_param)
            .ok_or_else(|| ApiError::InvalidPrecision(precision_param.to_owned()))?;
        let routes = ingest.routes();
        if !routes.covers_database(db) {
            return Err(ApiError::DatabaseNotFound(db.clone()));
        }
        let rp = p.get("rp").cloned().unwrap_or_default();
        let (schema, stored) = ingest.decide(&routes, db, &rp)?;
        ingest.auth().authorize(
            p.get("u").map(String::as_str),
            p.get("p").map(String::as_str),
            &headers,
            db,
        )?;
        // As influxd: any case, and checked only once the body parsed (`write_body`).
        let consistency_valid = p
            .get("consistency")
            .filter(|l| !l.is_empty())
            .is_none_or(|l| {
                matches!(
                    l.to_ascii_lowercase().as_str(),
                    "any" | "one" | "quorum" | "all"
                )
            });
        Ok(WriteRequest {
            db: db.clone(),
            rp,
            precision,
            dialect: Dialect::V1,
            consistency_valid,
            schema,
            stored,
        })
    })();
    match prepared {
        Ok(req) => handle_write(&ingest, req, &headers, body).await,
        Err(e) => e.into_response_in(Dialect::V1),
    }
}

async fn write_v2(
    State(ingest): State<Arc<Ingest>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let p = params(q.as_deref());
    let prepared = (|| {
        ingest.auth().authenticate(None, None, &headers)?;
        let bucket = p
            .get("bucket")
            .filter(|b| !b.is_empty())
            .ok_or(ApiError::BucketRequired)?;
        let (db, rp) = match bucket.split_once('/') {
            Some((db, rp)) => (db.to_owned(), rp.to_owned()),
            None => (bucket.clone(), String::new()),
        };
        let precision_param = p.get("precision").map_or("", String::as_str);
        let precision = Precision::from_v2(precision_param)
            .ok_or_else(|| ApiError::InvalidPrecision(precision_param.to_owned()))?;
        if db.is_empty() {
            return Err(ApiError::BucketRequired);
        }
        let routes = ingest.routes();
        if !routes.covers_database(&db) {
            return Err(ApiError::DatabaseNotFound(db));
        }
        let (schema, stored) = ingest.decide(&routes, &db, &rp)?;
        ingest.auth().authorize(None, None, &headers, &db)?;
        Ok(WriteRequest {
            db,
            rp,
            precision,
            dialect: Dialect::V2,
            consistency_valid: true,
            schema,
            stored,
        })
    })();
    match prepared {
        Ok(req) => handle_write(&ingest, req, &headers, body).await,
        Err(e) => e.into_response_in(Dialect::V2),
    }
}

async fn handle_write(
    ingest: &Ingest,
    req: WriteRequest,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let dialect = req.dialect;
    if !ingest.accepting.load(Ordering::SeqCst) {
        return ingest.overloaded().into_response_in(dialect);
    }
    // Shed before reading the body: an overloaded router must not buffer more bodies.
    let Ok(_permit) = Arc::clone(&ingest.permits).try_acquire_owned() else {
        return ingest.overloaded().into_response_in(dialect);
    };
    ingest.metrics.in_flight.inc();
    let started = Instant::now();
    let mut written = Position::default();
    let res = write_body(ingest, &req, headers, body, &mut written).await;
    ingest.metrics.in_flight.dec();
    ingest
        .metrics
        .request_seconds
        .observe(started.elapsed().as_secs_f64());
    let mut resp = match res {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response_in(dialect),
    };
    with_position(&mut resp, &written);
    resp
}

/// Adds `X-Fluxroute-Position` when the request wrote something (also to a partial write's 400).
fn with_position(resp: &mut Response, written: &Position) {
    if written.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&written.to_string()) {
        resp.headers_mut().insert(POSITION_HEADER, v);
    }
}

async fn write_body(
    ingest: &Ingest,
    req: &WriteRequest,
    headers: &HeaderMap,
    body: Body,
    written: &mut Position,
) -> Result<(), ApiError> {
    let max = ingest.settings.max_body_bytes;
    let raw = tokio::time::timeout(
        ingest.settings.body_read_timeout,
        body::read_raw(body, content_length(headers), max),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout)??;
    let data = if is_gzip(headers) {
        body::gunzip(&raw, max)?
    } else {
        raw
    };
    ingest.metrics.bytes.inc_by(data.len() as u64);
    let now = receive_nanos();
    let keep = match req.schema {
        Decision::Accept { keep } => keep,
        Decision::DatabaseNotFound | Decision::RetentionPolicyNotFound => None,
    };
    let target = Target {
        db: &req.db,
        rp: &req.rp,
        partitions: ingest.producer.partitions(),
        max_record_bytes: ingest.producer.max_record_bytes(),
        // influxd drops points older than the policy's duration before its receive time.
        min_time: keep.map(|k| now.saturating_sub(i64::try_from(k.as_nanos()).unwrap_or(i64::MAX))),
        stored: req
            .stored
            .as_ref()
            .map(|s| s as &dyn crate::line_protocol::StoredFields),
    };
    let mut encoded = encode::encode(&data, req.precision, now, target);
    let lines = &ingest.metrics.lines;
    lines
        .with_label_values(&["rejected"])
        .inc_by(encoded.rejected as u64);
    if !req.consistency_valid {
        // influxd's order: a body without a valid line answers its parse error; otherwise the
        // level is refused and nothing is written.
        if let Some(message) = encoded.error.filter(|_| encoded.points == 0) {
            return Err(ApiError::Parse(message));
        }
        lines
            .with_label_values(&["rejected"])
            .inc_by(encoded.accepted as u64);
        return Err(ApiError::InvalidConsistency);
    }
    if req.schema == Decision::RetentionPolicyNotFound {
        // As influxd: a body without a valid line answers its parse error; otherwise nothing is
        // written (even from an empty body) and the policy is missing.
        if let Some(message) = encoded.error.filter(|_| encoded.points == 0) {
            return Err(ApiError::Parse(message));
        }
        lines
            .with_label_values(&["rejected"])
            .inc_by(encoded.accepted as u64);
        ingest.schema_answer("retention_policy_not_found");
        return Err(ApiError::RetentionPolicyNotFound(req.rp.clone()));
    }
    if encoded.beyond_retention > 0 {
        ingest.schema_answer("beyond_retention");
    }
    if encoded.stored_conflict {
        ingest.schema_answer("field_type_conflict");
    }
    let fresh = std::mem::take(&mut encoded.fresh_fields);
    encoded.compress_records();
    let Some(message) = encoded.error else {
        *written = ingest.enqueue(encoded.records).await?;
        ingest.learned(req, &fresh);
        lines
            .with_label_values(&["accepted"])
            .inc_by(encoded.accepted as u64);
        return Ok(());
    };
    if req.dialect == Dialect::V2 && encoded.rejected > encoded.beyond_retention {
        // v2 rejects the whole batch on any bad line (points beyond retention are not bad
        // lines: they are dropped and the others kept, as influxd does).
        lines
            .with_label_values(&["rejected"])
            .inc_by(encoded.accepted as u64);
        return Err(ApiError::Parse(encoded.line_errors));
    }
    // Only parse errors: influxd's plain answer. Points that all fell to influxd's storage rules
    // (a `time` tag, a field type conflict, beyond retention) get its answer too, with
    // fluxroute's dropped count.
    if encoded.points == 0 {
        return Err(ApiError::Parse(message));
    }
    *written = ingest.enqueue(encoded.records).await?;
    ingest.learned(req, &fresh);
    lines
        .with_label_values(&["accepted"])
        .inc_by(encoded.accepted as u64);
    tracing::debug!(db = %req.db, rejected = encoded.rejected, "partial write");
    Err(ApiError::PartialWrite {
        message,
        dropped: encoded.rejected,
    })
}

async fn ping(RawQuery(q): RawQuery) -> Response {
    let verbose = params(q.as_deref())
        .get("verbose")
        .is_some_and(|v| matches!(v.as_str(), "true" | "1" | "t" | "T" | "TRUE" | "True"));
    if verbose {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "version": INFLUXDB_COMPAT_VERSION })),
        )
            .into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

async fn health(State(ingest): State<Arc<Ingest>>) -> Response {
    let queue = if ingest.accepting.load(Ordering::SeqCst) {
        ingest.queue_health().await
    } else {
        Err("shutting down".to_owned())
    };
    let (status, state, message) = match &queue {
        Ok(()) => (
            StatusCode::OK,
            "pass",
            Cow::Borrowed("ready for queries and writes"),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "fail",
            Cow::Owned(e.to_string()),
        ),
    };
    let body = serde_json::json!({
        "name": "fluxroute",
        "message": message,
        "status": state,
        "checks": [],
        "version": INFLUXDB_COMPAT_VERSION,
    });
    (status, axum::Json(body)).into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::MethodNotAllowed.into_response_in(Dialect::V1)
}

async fn method_not_allowed_v2() -> Response {
    ApiError::MethodNotAllowed.into_response_in(Dialect::V2)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_take_the_first_value_and_decode() {
        let p = params(Some("db=a%20b&db=c&precision=%C2%B5"));
        assert_eq!(p["db"], "a b");
        assert_eq!(p["precision"], "µ");
    }
}
