//! The validated configuration: types that cannot hold a bad value, and the look-ups the rest of
//! the program needs (cluster by name, routing, user permissions).
//!
//! Values are built only by [`parse`](super::parse); fields are public so that other modules and
//! tests can read them directly. Building a `Config` by hand skips the cross-checks (routes name
//! existing clusters, names are unique...), so do that only in tests.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use glob::Pattern;
use serde::{Deserialize, Serialize, Serializer};

use super::endpoint::{BrokerAddr, Endpoint};
use super::secret::{is_sensitive_property, redacted, Secret};

/// The whole validated configuration.
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    /// `[ingest]`: the InfluxDB-compatible write listener.
    pub ingest: IngestConfig,
    /// `[queue]`: where accepted writes are made durable.
    pub queue: QueueConfig,
    /// `[admin]`: the ops API listener.
    pub admin: AdminConfig,
    /// `[log]`: log format and filter.
    pub log: LogConfig,
    /// `[shutdown]`: graceful shutdown bounds.
    pub shutdown: ShutdownConfig,
    /// `[query]`: reads through `/query`.
    pub query: QueryConfig,
    /// `[schema]`: what the ingest knows of the clusters' databases and retention policies.
    pub schema: SchemaConfig,
    /// `[[clusters]]`: destination InfluxDB clusters, names unique, in file order.
    pub clusters: Vec<ClusterConfig>,
    /// `[[routes]]`: which writes go to which clusters, in file order.
    pub routes: Vec<RouteConfig>,
}

/// A destination of a routed write: a cluster and the database name to write under there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination<'a> {
    /// The destination cluster.
    pub cluster: &'a ClusterConfig,
    /// The database on that cluster (the write's own, or the route's `rename`).
    pub database: &'a str,
}

impl Config {
    /// The cluster named `name`.
    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// The standby of the cluster named `name`, if it has one.
    pub fn standby_of(&self, name: &str) -> Option<&ClusterConfig> {
        self.cluster(name)?
            .standby
            .as_deref()
            .and_then(|standby| self.cluster(standby))
    }

    /// Every cluster a write to (`db`, `rp`, `measurement`) goes to: the union of the clusters
    /// of every matching route (routes replicate; they are not first-match), each cluster once,
    /// in route order. Pass `rp = ""` when the write names no retention policy.
    pub fn clusters_for<'a>(
        &'a self,
        db: &'a str,
        rp: &'a str,
        measurement: &'a str,
    ) -> impl Iterator<Item = &'a ClusterConfig> + 'a {
        self.matching_routes(db, rp, measurement)
            .flat_map(move |(i, route)| {
                route.clusters.iter().filter(move |name| {
                    !self.routes[..i]
                        .iter()
                        .any(|r| r.clusters.contains(name) && r.matches(db, rp, measurement))
                })
            })
            .filter_map(move |name| self.cluster(name))
    }

    /// Like [`Config::clusters_for`], with the database name to use on each cluster (after the
    /// routes' `rename`). A cluster appears once per distinct database name.
    pub fn destinations<'a>(
        &'a self,
        db: &'a str,
        rp: &'a str,
        measurement: &'a str,
    ) -> impl Iterator<Item = Destination<'a>> + 'a {
        self.matching_routes(db, rp, measurement)
            .flat_map(move |(i, route)| {
                route.clusters.iter().filter_map(move |name| {
                    let database = route.database_for(name, db);
                    let seen = self.routes[..i].iter().any(|r| {
                        r.clusters.contains(name)
                            && r.database_for(name, db) == database
                            && r.matches(db, rp, measurement)
                    });
                    if seen {
                        return None;
                    }
                    let cluster = self.cluster(name)?;
                    Some(Destination { cluster, database })
                })
            })
    }

    /// Whether any route's `databases` globs match `db`. When none does, a write to `db` is
    /// answered like InfluxDB's "database not found".
    pub fn covers_database(&self, db: &str) -> bool {
        self.routes.iter().any(|r| r.covers_database(db))
    }

    /// The whole configuration as JSON, every secret shown as `***` (also the Kafka properties
    /// whose key contains `password`, `secret` or `sasl`). This is what `GET /admin/v1/config`
    /// and `fluxroute check-config` show.
    pub fn redacted_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(
            |e| serde_json::json!({ "error": format!("cannot render config: {e}") }),
        )
    }

    fn matching_routes<'a>(
        &'a self,
        db: &'a str,
        rp: &'a str,
        measurement: &'a str,
    ) -> impl Iterator<Item = (usize, &'a RouteConfig)> + 'a {
        self.routes
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.matches(db, rp, measurement))
    }
}

/// `[ingest]`.
#[derive(Clone, Debug, Serialize)]
pub struct IngestConfig {
    /// Where clients write, as to InfluxDB.
    pub listen: SocketAddr,
    /// Cap on a request body, raw and after decompression; above it the answer is 413.
    pub max_body_bytes: NonZeroUsize,
    /// Write requests in flight; beyond it the answer is 503 before the body is read.
    pub max_concurrent_requests: NonZeroUsize,
    /// How long a write may wait for the queue's durable ack before a 503.
    #[serde(serialize_with = "ser_duration")]
    pub enqueue_timeout: Duration,
    /// `Retry-After` sent with a 503; see [`IngestConfig::retry_after_secs`].
    #[serde(serialize_with = "ser_duration")]
    pub retry_after: Duration,
    /// Longest a client may take to send a request body; a slower one gets 408 and its slot back.
    #[serde(serialize_with = "ser_duration")]
    pub body_read_timeout: Duration,
    /// Connection limits and header timeouts of the listener (keys of `[ingest]` in the file).
    #[serde(flatten)]
    pub http: HttpLimits,
    /// TLS for the listener; plain HTTP when `None`.
    pub tls: Option<TlsConfig>,
    /// Users allowed to write; when non-empty, writes need credentials.
    pub users: Vec<User>,
}

impl IngestConfig {
    /// `retry_after` in whole seconds for the `Retry-After` header: rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }

    /// Whether writes must authenticate (some user is configured).
    pub fn requires_auth(&self) -> bool {
        !self.users.is_empty()
    }

    /// The user named `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }
}

/// `[[ingest.users]]`: a client allowed to write.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    /// User name (unique, no `:`), for v1 `u`/`p`, Basic auth and `Token name:password`.
    pub name: String,
    /// Password for v1 `u`/`p`, Basic and `Token name:password`.
    pub password: Option<Secret>,
    /// Token for v2 `Authorization: Token <token>` (unique across users).
    pub token: Option<Secret>,
    /// Databases this user may write, as globs.
    #[serde(serialize_with = "ser_patterns")]
    pub databases: Vec<Pattern>,
}

impl User {
    /// Whether this user may write to `db`.
    pub fn may_write(&self, db: &str) -> bool {
        self.databases.iter().any(|p| p.matches(db))
    }
}

/// `[queue]`: the backend in use and both backends' settings (each always present, with
/// defaults, and validated even when unused).
#[derive(Clone, Debug, Serialize)]
pub struct QueueConfig {
    /// Which backend is used.
    pub backend: QueueBackend,
    /// `[queue.embedded]`.
    pub embedded: EmbeddedConfig,
    /// `[queue.kafka]`.
    pub kafka: KafkaConfig,
}

/// `[queue] backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackend {
    /// A durable local log: one router on one machine.
    Embedded,
    /// Apache Kafka (or a Kafka-protocol broker): any number of routers.
    Kafka,
}

/// `[queue.embedded]`.
#[derive(Clone, Debug, Serialize)]
pub struct EmbeddedConfig {
    /// Directory of the log (relative paths are relative to the working directory).
    pub dir: PathBuf,
    /// When the log is fsynced.
    pub fsync: Fsync,
    /// Fsync period with [`Fsync::Interval`].
    #[serde(serialize_with = "ser_duration")]
    pub fsync_interval: Duration,
    /// Number of partitions of the log.
    pub partitions: NonZeroU32,
    /// Payload cap per record (requests are split below it).
    pub max_record_bytes: NonZeroUsize,
    /// What the log keeps.
    pub retention: RetentionConfig,
}

/// `[queue.embedded.retention]`.
#[derive(Clone, Debug, Serialize)]
pub struct RetentionConfig {
    /// Whether undelivered records may be dropped.
    pub policy: RetentionPolicy,
    /// Disk budget in bytes (0 = unlimited): appends beyond it get 503 (keep-until-delivered)
    /// or push out the oldest records (bounded).
    pub max_bytes: u64,
    /// With `bounded`, records older than this are dropped (zero = no age limit).
    #[serde(serialize_with = "ser_duration")]
    pub max_age: Duration,
}

/// `[queue.embedded.retention] policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RetentionPolicy {
    /// Records are deleted only once every consumer group has committed past them.
    KeepUntilDelivered,
    /// Records beyond the byte or age budget are dropped even if undelivered (counted).
    Bounded,
}

/// `[queue.embedded] fsync`: the durability policy behind a 2xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Fsync before every acknowledgement (no acknowledged write lost on power loss).
    Always,
    /// Fsync every `fsync_interval`; a power loss may lose that much acknowledged data.
    Interval,
}

/// `[queue.kafka]`.
#[derive(Clone, Debug, Serialize)]
pub struct KafkaConfig {
    /// Bootstrap brokers; see [`KafkaConfig::bootstrap_servers`].
    pub brokers: Vec<BrokerAddr>,
    /// Topic of the writes (valid Kafka topic name).
    pub topic: String,
    /// Partitions, used when creating the topic (at most `i32::MAX`).
    pub partitions: NonZeroU32,
    /// Replication factor, used when creating the topic (at most `i16::MAX`).
    pub replication_factor: NonZeroU32,
    /// Records are split to stay below this size (at least 1024).
    pub max_record_bytes: NonZeroUsize,
    /// librdkafka `linger.ms`.
    #[serde(serialize_with = "ser_duration")]
    pub linger: Duration,
    /// librdkafka `message.timeout.ms`.
    #[serde(serialize_with = "ser_duration")]
    pub produce_timeout: Duration,
    /// `insecure_skip_verify`: TLS connections to the brokers skip certificate and host name
    /// verification (the properties then carry `enable.ssl.certificate.verification = false`
    /// and `ssl.endpoint.identification.algorithm = none`). Logged as a warning at start-up.
    pub insecure_skip_verify: bool,
    /// Extra librdkafka properties, passed unchanged (plus what `insecure_skip_verify` implies).
    pub properties: KafkaProperties,
}

impl KafkaConfig {
    /// The brokers as librdkafka's `bootstrap.servers` (comma-separated).
    pub fn bootstrap_servers(&self) -> String {
        self.brokers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `[queue.kafka.properties]`: librdkafka properties passed unchanged.
///
/// `Debug` and `Serialize` redact values whose key is sensitive (see
/// [`is_sensitive_property`]); [`KafkaProperties::iter`] gives the
/// real values, for the client configuration only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaProperties(BTreeMap<String, String>);

impl KafkaProperties {
    /// Wraps a property map.
    pub fn new(properties: BTreeMap<String, String>) -> Self {
        Self(properties)
    }

    /// Every property with its real value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The real value of property `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn redacted(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter().map(|(k, v)| {
            if is_sensitive_property(k) {
                (k, redacted())
            } else {
                (k, v)
            }
        })
    }
}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.redacted()).finish()
    }
}

impl Serialize for KafkaProperties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.redacted())
    }
}

/// `[admin]`.
#[derive(Clone, Debug, Serialize)]
pub struct AdminConfig {
    /// Where the ops API listens.
    pub listen: SocketAddr,
    /// Bearer token required by the ops API; always set when `listen` is not loopback.
    pub token: Option<Secret>,
    /// TLS for the ops API; plain HTTP when `None`.
    pub tls: Option<TlsConfig>,
}

/// Limits an HTTP listener puts on its connections, against slow or idle clients and huge
/// headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct HttpLimits {
    /// Time a client has to send a request's headers, and the longest a kept-alive connection
    /// may sit idle between requests.
    #[serde(serialize_with = "ser_duration")]
    pub header_read_timeout: Duration,
    /// Open connections at most; further connections are closed at once.
    pub max_connections: NonZeroUsize,
    /// Largest request head (request line and headers); larger heads are answered 431.
    pub max_header_bytes: NonZeroUsize,
}

impl Serialize for ClusterTls {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        if let Some(ca) = &self.ca {
            map.serialize_entry("tls_ca", ca)?;
        }
        if let Some((cert, key)) = &self.client_cert {
            map.serialize_entry("tls_cert", cert)?;
            map.serialize_entry("tls_key", key)?;
        }
        map.end()
    }
}

/// `[ingest.tls]`, `[admin.tls]`: a listener's certificate and key, and optionally the CA that
/// client certificates must be signed by (mutual TLS: clients without one are refused).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM file with the CA certificates that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
}

/// TLS to a cluster's `https://` endpoints. Serialized as the file writes it: `tls_ca`,
/// `tls_cert`, `tls_key`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterTls {
    /// PEM file with the CA certificates trusted for this cluster instead of the built-in web
    /// roots; `None` trusts the built-in roots. Certificates are always verified.
    pub ca: Option<PathBuf>,
    /// PEM files with a client certificate and key presented to the cluster (mutual TLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// `[log]`.
#[derive(Clone, Debug, Serialize)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `tracing` `EnvFilter` directives, e.g. `info,fluxroute::drain=debug`.
    pub level: String,
}

/// `[log] format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[shutdown]`.
#[derive(Clone, Debug, Serialize)]
pub struct ShutdownConfig {
    /// Time allowed for an orderly shutdown before remaining work is aborted.
    #[serde(serialize_with = "ser_duration")]
    pub grace: Duration,
}

/// `[query]`.
#[derive(Clone, Debug, Serialize)]
pub struct QueryConfig {
    /// A cluster whose drain is further behind than this is not "caught up": reads go to a
    /// caught-up cluster first, and an answer from one behind says so (`X-Fluxroute-Stale`).
    #[serde(serialize_with = "ser_duration")]
    pub max_lag: Duration,
    /// How long a cluster may take to start answering a read before the next one is tried.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// How long a read with `X-Fluxroute-After` waits for a cluster to have that write.
    #[serde(serialize_with = "ser_duration")]
    pub after_timeout: Duration,
}

/// `[schema]`.
#[derive(Clone, Debug, Serialize)]
pub struct SchemaConfig {
    /// Whether the ingest answers from the clusters' schema (database and retention policy
    /// missing, points beyond retention) as influxd would; off: every write is taken and a
    /// cluster's refusal is a dead letter.
    pub enabled: bool,
    /// Time between two refreshes of a cluster's databases and retention policies.
    #[serde(serialize_with = "ser_duration")]
    pub refresh_interval: Duration,
    /// Databases held per cluster; beyond, the view cannot tell a database is missing.
    pub max_databases: NonZeroUsize,
    /// Retention policies held per cluster (over all its databases); beyond, the databases
    /// left out have no known policies.
    pub max_retention_policies: NonZeroUsize,
    /// Field types held per cluster (over all its databases and measurements); beyond, the
    /// databases left out have no known field types.
    pub max_fields: NonZeroUsize,
}

/// `[[clusters]] api`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterApi {
    /// InfluxDB 1.x: `/write?db=&rp=`, optional `u`/`p`.
    V1,
    /// InfluxDB 2.x / 3.x: `/api/v2/write?org=&bucket=`, `Authorization: Token`.
    V2,
}

/// How fluxroute authenticates to a cluster; the variant is the cluster's API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "api", rename_all = "lowercase")]
pub enum ClusterAuth {
    /// v1 API, with or without a user.
    V1 {
        /// `username` and `password`, when set.
        #[serde(flatten)]
        credentials: Option<BasicAuth>,
    },
    /// v2 API: organization and token are required.
    V2 {
        /// Organization written to.
        org: String,
        /// API token.
        token: Secret,
    },
}

impl ClusterAuth {
    /// The API this authentication belongs to.
    pub fn api(&self) -> ClusterApi {
        match self {
            ClusterAuth::V1 { .. } => ClusterApi::V1,
            ClusterAuth::V2 { .. } => ClusterApi::V2,
        }
    }
}

/// A v1 user and password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// `[[clusters]]`: one destination InfluxDB cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ClusterConfig {
    /// Unique name, `[a-zA-Z0-9_-]+`.
    pub name: String,
    /// API and credentials.
    #[serde(flatten)]
    pub auth: ClusterAuth,
    /// Nodes of the cluster; it is up when any one is.
    pub endpoints: Vec<Endpoint>,
    /// Name of the cluster that receives this one's writes while it is down.
    pub standby: Option<String>,
    /// How long the cluster must be down before its writes also go to the standby.
    #[serde(serialize_with = "ser_duration")]
    pub reroute_after: Duration,
    /// Timeout of one write request.
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    /// Most lines in one write.
    pub batch_max_lines: NonZeroUsize,
    /// Most bytes in one write (before compression).
    pub batch_max_bytes: NonZeroUsize,
    /// How long a batch may wait to fill up (zero: send at once).
    #[serde(serialize_with = "ser_duration")]
    pub batch_linger: Duration,
    /// Writes in flight to this cluster.
    pub max_in_flight: NonZeroUsize,
    /// Create a database when a write is answered "database not found".
    pub create_databases: bool,
    /// Lines per second while replaying a backlog; `None` = unlimited.
    pub catchup_rate: Option<NonZeroU64>,
    /// Gzip the writes to this cluster.
    pub gzip: bool,
    /// Period of the active health probe.
    #[serde(serialize_with = "ser_duration")]
    pub health_interval: Duration,
    /// Timeout of one probe (at most `health_interval`).
    #[serde(serialize_with = "ser_duration")]
    pub health_timeout: Duration,
    /// Consecutive successes that bring an endpoint up.
    pub health_rise: NonZeroU32,
    /// Consecutive failures that bring an endpoint down.
    pub health_fall: NonZeroU32,
    /// TLS settings for `https://` endpoints (`tls_ca`, `tls_cert`, `tls_key` in the file).
    #[serde(flatten)]
    pub tls: ClusterTls,
}

impl ClusterConfig {
    /// The cluster's API.
    pub fn api(&self) -> ClusterApi {
        self.auth.api()
    }
}

/// `[[routes]]`: writes matching all three glob lists go to every cluster in `clusters`.
///
/// Routes do not stop at the first match: every matching route adds its clusters.
#[derive(Clone, Debug, Serialize)]
pub struct RouteConfig {
    /// Database globs (any may match).
    #[serde(serialize_with = "ser_patterns")]
    pub databases: Vec<Pattern>,
    /// Retention policy globs; a write without one has rp `""`, which `*` matches.
    #[serde(serialize_with = "ser_patterns")]
    pub retention_policies: Vec<Pattern>,
    /// Measurement globs.
    #[serde(serialize_with = "ser_patterns")]
    pub measurements: Vec<Pattern>,
    /// Destination cluster names, each an existing cluster, no duplicates.
    pub clusters: Vec<String>,
    /// Per destination cluster, the database name to write under instead of the write's own.
    pub rename: BTreeMap<String, String>,
}

impl RouteConfig {
    /// Whether a write to (`db`, `rp`, `measurement`) matches this route. Pass `rp = ""` when the
    /// write names no retention policy.
    pub fn matches(&self, db: &str, rp: &str, measurement: &str) -> bool {
        self.covers_database(db)
            && any_match(&self.retention_policies, rp)
            && any_match(&self.measurements, measurement)
    }

    /// Whether this route's `databases` globs match `db`.
    pub fn covers_database(&self, db: &str) -> bool {
        any_match(&self.databases, db)
    }

    /// The database name to use on `cluster` for a write to `db`.
    pub fn database_for<'a>(&'a self, cluster: &str, db: &'a str) -> &'a str {
        self.rename.get(cluster).map_or(db, String::as_str)
    }
}

/// `as_str` (the value as written in the file) and `Display` for the choice enums.
macro_rules! choice_names {
    ($($ty:ident { $($variant:ident => $name:literal),+ $(,)? })+) => {$(
        impl $ty {
            /// The value as written in the config file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

choice_names! {
    QueueBackend { Embedded => "embedded", Kafka => "kafka" }
    Fsync { Always => "always", Interval => "interval" }
    LogFormat { Text => "text", Json => "json" }
    ClusterApi { V1 => "v1", V2 => "v2" }
}

fn any_match(patterns: &[Pattern], value: &str) -> bool {
    patterns.iter().any(|p| p.matches(value))
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

fn ser_patterns<S: Serializer>(patterns: &[Pattern], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(patterns.iter().map(Pattern::as_str))
}
