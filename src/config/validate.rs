//! One validation pass from [`RawConfig`] to [`Config`]: applies defaults, checks every value and
//! every cross-reference, and reports every problem with the span of the value at fault.
//!
//! A bad value is reported and replaced by its default so that the pass can go on; the caller
//! returns an error whenever any problem was reported, so such a `Config` never escapes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use glob::Pattern;
use toml::Spanned;

use super::defaults as d;
use super::endpoint::{BrokerAddr, Endpoint, Scheme};
use super::model::{
    AdminConfig, BasicAuth, ClusterApi, ClusterAuth, ClusterConfig, ClusterTls, Config,
    EmbeddedConfig, HttpLimits, IngestConfig, KafkaConfig, KafkaProperties, LogConfig, QueueConfig,
    RetentionConfig, RouteConfig, ShutdownConfig, TlsConfig, User,
};
use super::raw::{
    at, child, Field, LineIndex, List, RawAdmin, RawCluster, RawConfig, RawEmbedded, RawIngest,
    RawKafka, RawLog, RawQueue, RawRetention, RawRoute, RawShutdown, RawTls, RawUser, SpanProblem,
};
use super::secret::Secret;

/// librdkafka properties that fluxroute sets itself, with the reason.
const RESERVED_KAFKA_PROPERTIES: &[(&str, &str)] = &[
    ("bootstrap.servers", "use `brokers`"),
    ("metadata.broker.list", "use `brokers`"),
    (
        "enable.idempotence",
        "always true: the queue's durability relies on it",
    ),
    (
        "acks",
        "always \"all\": a 2xx promises the write is durable",
    ),
    (
        "request.required.acks",
        "always \"all\": a 2xx promises the write is durable",
    ),
    ("message.timeout.ms", "use `produce_timeout`"),
    ("linger.ms", "use `linger`"),
    ("queue.buffering.max.ms", "use `linger`"),
    ("group.id", "fluxroute sets one consumer group per cluster"),
    (
        "enable.auto.commit",
        "fluxroute commits offsets only after delivery",
    ),
    (
        "enable.auto.offset.store",
        "fluxroute commits offsets only after delivery",
    ),
];

/// What `[queue.kafka] insecure_skip_verify = true` passes to librdkafka: no certificate chain
/// verification, no host name check.
const INSECURE_TLS_PROPERTIES: &[(&str, &str)] = &[
    ("enable.ssl.certificate.verification", "false"),
    ("ssl.endpoint.identification.algorithm", "none"),
];

/// Why librdkafka property `key = value` may not be given in `[queue.kafka.properties]`: it
/// would turn TLS verification off without saying so. Their secure values (librdkafka's
/// defaults) are accepted; turning verification off takes `insecure_skip_verify`.
fn weakens_tls_verification(key: &str, value: &str) -> Option<String> {
    let secure = match key {
        // librdkafka reads a boolean as true for "true", "t" or "1".
        "enable.ssl.certificate.verification" => ["true", "t", "1"]
            .iter()
            .any(|t| value.eq_ignore_ascii_case(t)),
        "ssl.endpoint.identification.algorithm" => value.eq_ignore_ascii_case("https"),
        _ => return None,
    };
    (!secure).then(|| {
        format!(
            "{value:?} would turn off TLS verification of the brokers: remove it, or (for tests \
             only) set [queue.kafka] insecure_skip_verify = true"
        )
    })
}

/// Validates `raw`; `rejected` holds the paths of entries that deserialization already reported.
pub(super) fn validate(
    raw: RawConfig,
    rejected: &HashSet<String>,
    lines: &LineIndex,
) -> (Config, Vec<SpanProblem>) {
    let mut ctx = Ctx {
        problems: Vec::new(),
        rejected,
        lines,
    };
    let ingest = ctx.ingest(raw.ingest);
    let queue = ctx.queue(raw.queue);
    let admin = ctx.admin(raw.admin);
    let log = ctx.log(raw.log);
    let shutdown = ctx.shutdown(raw.shutdown);
    let clusters = ctx.clusters(raw.clusters.unwrap_or_default());
    let routes = ctx.routes(raw.routes.unwrap_or_default(), &clusters);
    let config = Config {
        ingest,
        queue,
        admin,
        log,
        shutdown,
        clusters: clusters.clusters,
        routes,
    };
    (config, ctx.problems)
}

/// Splits an optional section into its span and its contents (default when absent).
fn section<T: Default>(section: Option<Spanned<T>>) -> (Option<Range<usize>>, T) {
    match section {
        Some(s) => (Some(s.span()), s.into_inner()),
        None => (None, T::default()),
    }
}

/// The clusters, with what routes need to check their references.
struct Clusters {
    clusters: Vec<ClusterConfig>,
    /// Every cluster name written in the file (valid or not).
    names: HashSet<String>,
    /// False when some cluster's name is missing, so unknown names are not reported twice.
    complete: bool,
}

struct Ctx<'r> {
    problems: Vec<SpanProblem>,
    rejected: &'r HashSet<String>,
    lines: &'r LineIndex,
}

impl Ctx<'_> {
    fn report(&mut self, span: Option<Range<usize>>, path: &str, message: impl std::fmt::Display) {
        self.problems.push(SpanProblem {
            span,
            message: at(&path, message),
        });
    }

    /// Reports a missing required key, unless its value was already rejected as mistyped.
    fn missing(&mut self, span: Option<Range<usize>>, table: &str, key: &str) {
        if !self.rejected.contains(&format!("{table}.{key}")) {
            self.report(span, table, format!("missing required key `{key}`"));
        }
    }

    fn duration(
        &mut self,
        path: &str,
        field: &Field<String>,
        default: Duration,
        allow_zero: bool,
    ) -> Duration {
        let Some(field) = field else { return default };
        match humantime::parse_duration(field.get_ref()) {
            Ok(value) if value.is_zero() && !allow_zero => {
                self.report(Some(field.span()), path, "must be greater than 0");
                default
            }
            Ok(value) => value,
            Err(e) => {
                self.report(
                    Some(field.span()),
                    path,
                    format!(
                        "invalid duration {:?}: {e} (write e.g. \"500ms\", \"30s\", \"5m\")",
                        field.get_ref()
                    ),
                );
                default
            }
        }
    }

    fn nonzero(&mut self, path: &str, field: &Field<u64>, max: u64) -> Option<NonZeroU64> {
        let field = field.as_ref()?;
        let value = *field.get_ref();
        if value == 0 {
            self.report(Some(field.span()), path, "must be greater than 0");
            None
        } else if value > max {
            self.report(Some(field.span()), path, format!("must be at most {max}"));
            None
        } else {
            NonZeroU64::new(value)
        }
    }

    fn nonzero_usize(
        &mut self,
        path: &str,
        field: &Field<u64>,
        default: NonZeroUsize,
    ) -> NonZeroUsize {
        let max = u64::try_from(usize::MAX).unwrap_or(u64::MAX);
        self.nonzero(path, field, max)
            .and_then(|v| usize::try_from(v.get()).ok())
            .and_then(NonZeroUsize::new)
            .unwrap_or(default)
    }

    fn nonzero_u32(
        &mut self,
        path: &str,
        field: &Field<u64>,
        default: NonZeroU32,
        max: u32,
    ) -> NonZeroU32 {
        self.nonzero(path, field, u64::from(max))
            .and_then(|v| u32::try_from(v.get()).ok())
            .and_then(NonZeroU32::new)
            .unwrap_or(default)
    }

    fn socket_addr(
        &mut self,
        path: &str,
        field: &Field<String>,
        default: SocketAddr,
    ) -> SocketAddr {
        let Some(field) = field else { return default };
        match field.get_ref().parse() {
            Ok(addr) => addr,
            Err(_) => {
                self.report(
                    Some(field.span()),
                    path,
                    format!(
                        "invalid listen address {:?} (write ip:port, e.g. \"127.0.0.1:8086\" or \"[::]:8086\")",
                        field.get_ref()
                    ),
                );
                default
            }
        }
    }

    /// A string that must not be empty; `None` when absent or empty (then reported).
    fn non_empty(&mut self, path: &str, field: Field<String>) -> Option<Spanned<String>> {
        let field = field?;
        if field.get_ref().trim().is_empty() {
            self.report(Some(field.span()), path, "must not be empty");
            None
        } else {
            Some(field)
        }
    }

    fn secret(&mut self, path: &str, field: Field<String>) -> Option<Secret> {
        let field = field?;
        if field.get_ref().is_empty() {
            self.report(Some(field.span()), path, "must not be empty");
            None
        } else {
            Some(Secret::new(field.into_inner()))
        }
    }

    /// A list that must not be empty when present; items with their spans.
    fn list(&mut self, path: &str, list: List<String>, hint: &str) -> Option<Vec<Spanned<String>>> {
        let list = list?;
        if list.get_ref().is_empty() {
            self.report(Some(list.span()), path, format!("must not be empty{hint}"));
            return None;
        }
        Some(list.into_inner())
    }

    /// Glob patterns; `default` when absent (`None` = required).
    fn globs(
        &mut self,
        table_span: Option<Range<usize>>,
        table: &str,
        key: &str,
        list: List<String>,
        default: Option<&[&str]>,
    ) -> Vec<Pattern> {
        let path = format!("{table}.{key}");
        let was_present = list.is_some();
        let hint = if default.is_some() {
            format!("; leave `{key}` out to match everything")
        } else {
            String::new()
        };
        let items = match self.list(&path, list, &hint) {
            Some(items) => items,
            None => {
                if !was_present {
                    match default {
                        None => self.missing(table_span, table, key),
                        Some(default) => {
                            return default
                                .iter()
                                .filter_map(|p| Pattern::new(p).ok())
                                .collect()
                        }
                    }
                }
                return Vec::new();
            }
        };
        let mut patterns = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            match Pattern::new(item.get_ref()) {
                Ok(p) => patterns.push(p),
                Err(e) => self.report(
                    Some(item.span()),
                    &format!("{path}[{i}]"),
                    format!("invalid glob {:?}: {}", item.get_ref(), e.msg),
                ),
            }
        }
        patterns
    }

    fn ingest(&mut self, raw: Option<Spanned<RawIngest>>) -> IngestConfig {
        let (_, raw) = section(raw);
        let users = self.users(raw.users.unwrap_or_default());
        IngestConfig {
            listen: self.socket_addr("ingest.listen", &raw.listen, d::INGEST_LISTEN),
            max_body_bytes: self.nonzero_usize(
                "ingest.max_body_bytes",
                &raw.max_body_bytes,
                d::MAX_BODY_BYTES,
            ),
            max_concurrent_requests: self.nonzero_usize(
                "ingest.max_concurrent_requests",
                &raw.max_concurrent_requests,
                d::MAX_CONCURRENT_REQUESTS,
            ),
            enqueue_timeout: self.duration(
                "ingest.enqueue_timeout",
                &raw.enqueue_timeout,
                d::ENQUEUE_TIMEOUT,
                false,
            ),
            retry_after: self.duration(
                "ingest.retry_after",
                &raw.retry_after,
                d::RETRY_AFTER,
                false,
            ),
            body_read_timeout: self.duration(
                "ingest.body_read_timeout",
                &raw.body_read_timeout,
                d::BODY_READ_TIMEOUT,
                false,
            ),
            http: HttpLimits {
                header_read_timeout: self.duration(
                    "ingest.header_read_timeout",
                    &raw.header_read_timeout,
                    d::HEADER_READ_TIMEOUT,
                    false,
                ),
                max_connections: self.nonzero_usize(
                    "ingest.max_connections",
                    &raw.max_connections,
                    d::MAX_CONNECTIONS,
                ),
                max_header_bytes: self.header_bytes(&raw.max_header_bytes),
            },
            tls: self.tls("ingest.tls", raw.tls),
            users,
        }
    }

    /// `ingest.max_header_bytes`: at least 8 KiB, the smallest head buffer the HTTP server takes.
    fn header_bytes(&mut self, field: &Field<u64>) -> NonZeroUsize {
        const MIN: u64 = 8 * 1024;
        if let Some(f) = field {
            if *f.get_ref() < MIN {
                self.report(
                    Some(f.span()),
                    "ingest.max_header_bytes",
                    format!("must be at least {MIN}"),
                );
                return d::MAX_HEADER_BYTES;
            }
        }
        self.nonzero_usize("ingest.max_header_bytes", field, d::MAX_HEADER_BYTES)
    }

    /// A listener's `[*.tls]` table: `cert` and `key` required, `client_ca` optional.
    fn tls(&mut self, table: &str, raw: Option<Spanned<RawTls>>) -> Option<TlsConfig> {
        let raw = raw?;
        let span = raw.span();
        let raw = raw.into_inner();
        let cert = self.non_empty(&format!("{table}.cert"), raw.cert);
        let key = self.non_empty(&format!("{table}.key"), raw.key);
        let client_ca = self.non_empty(&format!("{table}.client_ca"), raw.client_ca);
        if cert.is_none() {
            self.missing(Some(span.clone()), table, "cert");
        }
        if key.is_none() {
            self.missing(Some(span), table, "key");
        }
        Some(TlsConfig {
            cert: PathBuf::from(cert?.into_inner()),
            key: PathBuf::from(key?.into_inner()),
            client_ca: client_ca.map(|c| PathBuf::from(c.into_inner())),
        })
    }

    /// A cluster's `tls_ca`, `tls_cert` and `tls_key`; they need an `https://` endpoint.
    fn cluster_tls(
        &mut self,
        table: &str,
        span: Range<usize>,
        raw: &RawCluster,
        endpoints: &[Endpoint],
    ) -> ClusterTls {
        let ca = self.non_empty(&format!("{table}.tls_ca"), raw.tls_ca.clone());
        let cert = self.non_empty(&format!("{table}.tls_cert"), raw.tls_cert.clone());
        let key = self.non_empty(&format!("{table}.tls_key"), raw.tls_key.clone());
        let given = [&ca, &cert, &key]
            .into_iter()
            .flatten()
            .map(Spanned::span)
            .next();
        if let Some(given) = given {
            if !endpoints.is_empty() && !endpoints.iter().any(|e| e.scheme() == Scheme::Https) {
                self.report(
                    Some(given),
                    table,
                    "tls_ca, tls_cert and tls_key apply to https:// endpoints, and this cluster has none",
                );
            }
        }
        let client_cert = match (cert, key) {
            (Some(cert), Some(key)) => Some((
                PathBuf::from(cert.into_inner()),
                PathBuf::from(key.into_inner()),
            )),
            (Some(_), None) => {
                self.missing(Some(span), table, "tls_key");
                None
            }
            (None, Some(_)) => {
                self.missing(Some(span), table, "tls_cert");
                None
            }
            (None, None) => None,
        };
        ClusterTls {
            ca: ca.map(|c| PathBuf::from(c.into_inner())),
            client_cert,
        }
    }

    fn users(&mut self, raw: Vec<Spanned<RawUser>>) -> Vec<User> {
        let mut names: HashMap<String, Range<usize>> = HashMap::new();
        let mut tokens: Vec<(String, String, Range<usize>)> = Vec::new();
        let mut users = Vec::with_capacity(raw.len());
        for (i, user) in raw.into_iter().enumerate() {
            let table = format!("ingest.users[{i}]");
            let span = user.span();
            let user: RawUser = user.into_inner();
            let name_path = format!("{table}.name");
            let name = match self.non_empty(&name_path, user.name.clone()) {
                Some(name) => {
                    if name.get_ref().contains(':') {
                        self.report(Some(name.span()), &name_path, "must not contain `:`");
                    }
                    if let Some(first) = names.get(name.get_ref()) {
                        self.report(
                            Some(name.span()),
                            &name_path,
                            format!(
                                "duplicate user name {:?} (first on line {})",
                                name.get_ref(),
                                self.lines.line(first.start)
                            ),
                        );
                    } else {
                        names.insert(name.get_ref().clone(), name.span());
                    }
                    name.into_inner()
                }
                None => {
                    if user.name.is_none() {
                        self.missing(Some(span.clone()), &table, "name");
                    }
                    String::new()
                }
            };
            let has_credential = user.password.is_some() || user.token.is_some();
            let rejected_credential = self.rejected.contains(&format!("{table}.password"))
                || self.rejected.contains(&format!("{table}.token"));
            if !has_credential && !rejected_credential {
                self.report(
                    Some(span.clone()),
                    &table,
                    "needs a `password` or a `token` (or both)",
                );
            }
            let password = self.secret(&format!("{table}.password"), user.password);
            let token_span = user.token.as_ref().map(Spanned::span);
            let token = self.secret(&format!("{table}.token"), user.token);
            if let (Some(token), Some(token_span)) = (&token, token_span) {
                if let Some((other, _, _)) = tokens.iter().find(|(_, t, _)| t == token.expose()) {
                    self.report(
                        Some(token_span),
                        &format!("{table}.token"),
                        format!("the same token as user {other:?}; tokens identify users and must be unique"),
                    );
                } else {
                    tokens.push((name.clone(), token.expose().to_owned(), token_span));
                }
            }
            let databases = self.globs(
                Some(span),
                &table,
                "databases",
                user.databases,
                Some(d::USER_DATABASES),
            );
            users.push(User {
                name,
                password,
                token,
                databases,
            });
        }
        users
    }

    fn queue(&mut self, raw: Option<Spanned<RawQueue>>) -> QueueConfig {
        let (_, raw) = section(raw);
        QueueConfig {
            backend: raw.backend.map_or(d::QUEUE_BACKEND, Spanned::into_inner),
            embedded: self.embedded(raw.embedded),
            kafka: self.kafka(raw.kafka),
        }
    }

    fn embedded(&mut self, raw: Option<Spanned<RawEmbedded>>) -> EmbeddedConfig {
        let (_, raw) = section(raw);
        let dir = self.non_empty("queue.embedded.dir", raw.dir).map_or_else(
            || PathBuf::from(d::EMBEDDED_DIR),
            |dir| PathBuf::from(dir.into_inner()),
        );
        EmbeddedConfig {
            dir,
            fsync: raw.fsync.map_or(d::EMBEDDED_FSYNC, Spanned::into_inner),
            fsync_interval: self.duration(
                "queue.embedded.fsync_interval",
                &raw.fsync_interval,
                d::EMBEDDED_FSYNC_INTERVAL,
                false,
            ),
            partitions: self.nonzero_u32(
                "queue.embedded.partitions",
                &raw.partitions,
                d::EMBEDDED_PARTITIONS,
                u32::MAX,
            ),
            max_record_bytes: self.nonzero_usize(
                "queue.embedded.max_record_bytes",
                &raw.max_record_bytes,
                d::EMBEDDED_MAX_RECORD_BYTES,
            ),
            retention: self.retention(raw.retention),
        }
    }

    fn retention(&mut self, raw: Option<Spanned<RawRetention>>) -> RetentionConfig {
        let (_, raw) = section(raw);
        RetentionConfig {
            policy: raw.policy.map_or(d::RETENTION_POLICY, Spanned::into_inner),
            max_bytes: raw.max_bytes.map_or(0, Spanned::into_inner),
            max_age: self.duration(
                "queue.embedded.retention.max_age",
                &raw.max_age,
                Duration::ZERO,
                true,
            ),
        }
    }

    fn kafka(&mut self, raw: Option<Spanned<RawKafka>>) -> KafkaConfig {
        let (_, raw) = section(raw);
        let brokers = match self.list("queue.kafka.brokers", raw.brokers, "") {
            Some(items) => items
                .into_iter()
                .enumerate()
                .filter_map(|(i, item)| match BrokerAddr::try_new(item.get_ref()) {
                    Ok(addr) => Some(addr),
                    Err(e) => {
                        self.report(Some(item.span()), &format!("queue.kafka.brokers[{i}]"), e);
                        None
                    }
                })
                .collect(),
            None => d::KAFKA_BROKERS
                .iter()
                .filter_map(|b| BrokerAddr::try_new(b).ok())
                .collect(),
        };
        let topic = match raw.topic {
            Some(topic) => match check_topic(topic.get_ref()) {
                Ok(()) => topic.into_inner(),
                Err(e) => {
                    self.report(Some(topic.span()), "queue.kafka.topic", e);
                    d::KAFKA_TOPIC.to_owned()
                }
            },
            None => d::KAFKA_TOPIC.to_owned(),
        };
        let max_record_bytes = self.nonzero_usize(
            "queue.kafka.max_record_bytes",
            &raw.max_record_bytes,
            d::KAFKA_MAX_RECORD_BYTES,
        );
        let max_record_bytes = match &raw.max_record_bytes {
            Some(field) if max_record_bytes.get() < d::KAFKA_MIN_RECORD_BYTES => {
                self.report(
                    Some(field.span()),
                    "queue.kafka.max_record_bytes",
                    format!("must be at least {}", d::KAFKA_MIN_RECORD_BYTES),
                );
                d::KAFKA_MAX_RECORD_BYTES
            }
            _ => max_record_bytes,
        };
        let mut properties = BTreeMap::new();
        if let Some(raw_properties) = raw.properties {
            for (key, value) in raw_properties.into_inner() {
                let path = child("queue.kafka.properties", key.get_ref());
                if let Some((_, why)) = RESERVED_KAFKA_PROPERTIES
                    .iter()
                    .find(|(k, _)| *k == key.get_ref())
                {
                    self.report(
                        Some(key.span()),
                        &path,
                        format!("cannot be set here: {why}"),
                    );
                    continue;
                }
                if let Some(problem) = weakens_tls_verification(key.get_ref(), &value.get_ref().0) {
                    self.report(Some(value.span()), &path, problem);
                    continue;
                }
                properties.insert(key.into_inner(), value.into_inner().0);
            }
        }
        let insecure_skip_verify = match raw.insecure_skip_verify {
            Some(flag) if *flag.get_ref() => {
                let tls = properties.get("security.protocol").is_some_and(|p| {
                    p.eq_ignore_ascii_case("ssl") || p.eq_ignore_ascii_case("sasl_ssl")
                });
                if !tls {
                    self.report(
                        Some(flag.span()),
                        "queue.kafka.insecure_skip_verify",
                        "only applies to TLS connections: set [queue.kafka.properties] \
                         security.protocol = \"SSL\" or \"SASL_SSL\"",
                    );
                }
                for (k, v) in INSECURE_TLS_PROPERTIES {
                    properties.insert((*k).to_owned(), (*v).to_owned());
                }
                true
            }
            _ => false,
        };
        KafkaConfig {
            brokers,
            topic,
            partitions: self.nonzero_u32(
                "queue.kafka.partitions",
                &raw.partitions,
                d::KAFKA_PARTITIONS,
                i32::MAX.unsigned_abs(),
            ),
            replication_factor: self.nonzero_u32(
                "queue.kafka.replication_factor",
                &raw.replication_factor,
                d::KAFKA_REPLICATION_FACTOR,
                u32::from(i16::MAX.unsigned_abs()),
            ),
            max_record_bytes,
            linger: self.duration("queue.kafka.linger", &raw.linger, d::KAFKA_LINGER, true),
            produce_timeout: self.duration(
                "queue.kafka.produce_timeout",
                &raw.produce_timeout,
                d::KAFKA_PRODUCE_TIMEOUT,
                false,
            ),
            insecure_skip_verify,
            properties: KafkaProperties::new(properties),
        }
    }

    fn admin(&mut self, raw: Option<Spanned<RawAdmin>>) -> AdminConfig {
        let (span, raw) = section(raw);
        let listen_span = raw.listen.as_ref().map(Spanned::span).or(span);
        let listen = self.socket_addr("admin.listen", &raw.listen, d::ADMIN_LISTEN);
        let token_given = raw.token.is_some() || self.rejected.contains("admin.token");
        let token = self.secret("admin.token", raw.token);
        if !token_given && !listen.ip().is_loopback() {
            self.report(
                listen_span,
                "admin.listen",
                format!("{listen} is not a loopback address, so `admin.token` is required"),
            );
        }
        let tls = self.tls("admin.tls", raw.tls);
        AdminConfig { listen, token, tls }
    }

    fn log(&mut self, raw: Option<Spanned<RawLog>>) -> LogConfig {
        let (_, raw) = section(raw);
        LogConfig {
            format: raw.format.map_or(d::LOG_FORMAT, Spanned::into_inner),
            level: self
                .non_empty("log.level", raw.level)
                .map_or_else(|| d::LOG_LEVEL.to_owned(), Spanned::into_inner),
        }
    }

    fn shutdown(&mut self, raw: Option<Spanned<RawShutdown>>) -> ShutdownConfig {
        let (_, raw) = section(raw);
        ShutdownConfig {
            grace: self.duration("shutdown.grace", &raw.grace, d::SHUTDOWN_GRACE, false),
        }
    }

    fn clusters(&mut self, raw: Vec<Spanned<RawCluster>>) -> Clusters {
        let mut first_by_name: HashMap<String, Range<usize>> = HashMap::new();
        let mut complete = !self.rejected.contains("clusters");
        let mut standbys = Vec::new();
        let mut clusters = Vec::with_capacity(raw.len());
        for (i, cluster) in raw.into_iter().enumerate() {
            let table = format!("clusters[{i}]");
            let span = cluster.span();
            let raw: RawCluster = cluster.into_inner();
            let name_path = format!("{table}.name");
            let name = match &raw.name {
                Some(name) => {
                    if let Err(e) = check_cluster_name(name.get_ref()) {
                        self.report(Some(name.span()), &name_path, e);
                    }
                    if let Some(first) = first_by_name.get(name.get_ref()) {
                        self.report(
                            Some(name.span()),
                            &name_path,
                            format!(
                                "duplicate cluster name {:?} (first on line {})",
                                name.get_ref(),
                                self.lines.line(first.start)
                            ),
                        );
                    } else {
                        first_by_name.insert(name.get_ref().clone(), name.span());
                    }
                    name.get_ref().clone()
                }
                None => {
                    complete = false;
                    self.missing(Some(span.clone()), &table, "name");
                    String::new()
                }
            };
            if let Some(standby) = &raw.standby {
                standbys.push((format!("{table}.standby"), name.clone(), standby.clone()));
            }
            let auth = self.cluster_auth(&table, span.clone(), &raw);
            let endpoints = self.endpoints(&table, span.clone(), raw.endpoints.clone());
            let tls = self.cluster_tls(&table, span, &raw, &endpoints);
            let health_interval = self.duration(
                &format!("{table}.health_interval"),
                &raw.health_interval,
                d::HEALTH_INTERVAL,
                false,
            );
            let health_timeout = self.duration(
                &format!("{table}.health_timeout"),
                &raw.health_timeout,
                d::HEALTH_TIMEOUT,
                false,
            );
            if health_timeout > health_interval {
                let span = raw
                    .health_timeout
                    .as_ref()
                    .or(raw.health_interval.as_ref())
                    .map(Spanned::span);
                self.report(
                    span,
                    &format!("{table}.health_timeout"),
                    format!(
                        "{} is longer than health_interval ({})",
                        humantime::format_duration(health_timeout),
                        humantime::format_duration(health_interval)
                    ),
                );
            }
            clusters.push(ClusterConfig {
                name,
                auth,
                endpoints,
                standby: raw.standby.map(Spanned::into_inner),
                reroute_after: self.duration(
                    &format!("{table}.reroute_after"),
                    &raw.reroute_after,
                    d::REROUTE_AFTER,
                    false,
                ),
                timeout: self.duration(
                    &format!("{table}.timeout"),
                    &raw.timeout,
                    d::CLUSTER_TIMEOUT,
                    false,
                ),
                batch_max_lines: self.nonzero_usize(
                    &format!("{table}.batch_max_lines"),
                    &raw.batch_max_lines,
                    d::BATCH_MAX_LINES,
                ),
                batch_max_bytes: self.nonzero_usize(
                    &format!("{table}.batch_max_bytes"),
                    &raw.batch_max_bytes,
                    d::BATCH_MAX_BYTES,
                ),
                batch_linger: self.duration(
                    &format!("{table}.batch_linger"),
                    &raw.batch_linger,
                    d::BATCH_LINGER,
                    true,
                ),
                max_in_flight: self.nonzero_usize(
                    &format!("{table}.max_in_flight"),
                    &raw.max_in_flight,
                    d::MAX_IN_FLIGHT,
                ),
                create_databases: raw
                    .create_databases
                    .map_or(d::CREATE_DATABASES, Spanned::into_inner),
                catchup_rate: NonZeroU64::new(
                    raw.catchup_rate
                        .map_or(d::CATCHUP_RATE, Spanned::into_inner),
                ),
                gzip: raw.gzip.map_or(d::GZIP, Spanned::into_inner),
                health_interval,
                health_timeout,
                health_rise: self.nonzero_u32(
                    &format!("{table}.health_rise"),
                    &raw.health_rise,
                    d::HEALTH_RISE,
                    u32::MAX,
                ),
                health_fall: self.nonzero_u32(
                    &format!("{table}.health_fall"),
                    &raw.health_fall,
                    d::HEALTH_FALL,
                    u32::MAX,
                ),
                tls,
            });
        }
        let names: HashSet<String> = first_by_name.into_keys().collect();
        for (path, name, standby) in standbys {
            if standby.get_ref() == &name {
                self.report(
                    Some(standby.span()),
                    &path,
                    "a cluster cannot be its own standby",
                );
            } else if complete && !names.contains(standby.get_ref()) {
                self.report(
                    Some(standby.span()),
                    &path,
                    format!("unknown cluster {:?}{}", standby.get_ref(), known(&names)),
                );
            }
        }
        Clusters {
            clusters,
            names,
            complete,
        }
    }

    fn cluster_auth(&mut self, table: &str, span: Range<usize>, raw: &RawCluster) -> ClusterAuth {
        let api = raw.api.as_ref().map_or(d::CLUSTER_API, |a| *a.get_ref());
        let (foreign, other): (&[(&str, &Field<String>)], &str) = match api {
            ClusterApi::V1 => (&[("org", &raw.org), ("token", &raw.token)], "v2"),
            ClusterApi::V2 => (
                &[("username", &raw.username), ("password", &raw.password)],
                "v1",
            ),
        };
        for (key, field) in foreign {
            if let Some(field) = field {
                self.report(
                    Some(field.span()),
                    &format!("{table}.{key}"),
                    format!("only for api = \"{other}\" clusters (this one is api = \"{api}\")"),
                );
            }
        }
        match api {
            ClusterApi::V1 => {
                let username = self.non_empty(&format!("{table}.username"), raw.username.clone());
                let password = self.secret(&format!("{table}.password"), raw.password.clone());
                let credentials = match (username, password) {
                    (Some(username), Some(password)) => Some(BasicAuth {
                        username: username.into_inner(),
                        password,
                    }),
                    (None, None) => None,
                    (Some(_), None) if raw.password.is_none() => {
                        self.missing(Some(span), table, "password");
                        None
                    }
                    (None, Some(_)) if raw.username.is_none() => {
                        self.missing(Some(span), table, "username");
                        None
                    }
                    _ => None,
                };
                ClusterAuth::V1 { credentials }
            }
            ClusterApi::V2 => {
                let org = self.non_empty(&format!("{table}.org"), raw.org.clone());
                let token = self.secret(&format!("{table}.token"), raw.token.clone());
                if raw.org.is_none() {
                    self.missing(Some(span.clone()), table, "org");
                }
                if raw.token.is_none() {
                    self.missing(Some(span), table, "token");
                }
                ClusterAuth::V2 {
                    org: org.map(Spanned::into_inner).unwrap_or_default(),
                    token: token.unwrap_or_default(),
                }
            }
        }
    }

    fn endpoints(&mut self, table: &str, span: Range<usize>, raw: List<String>) -> Vec<Endpoint> {
        let path = format!("{table}.endpoints");
        let was_present = raw.is_some();
        let Some(items) = self.list(&path, raw, "") else {
            if !was_present {
                self.missing(Some(span), table, "endpoints");
            }
            return Vec::new();
        };
        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match Endpoint::try_new(item.get_ref()) {
                Ok(endpoint) if endpoints.contains(&endpoint) => {
                    self.report(
                        Some(item.span()),
                        &item_path,
                        format!("duplicate endpoint {endpoint}"),
                    );
                }
                Ok(endpoint) => endpoints.push(endpoint),
                Err(e) => self.report(Some(item.span()), &item_path, e),
            }
        }
        endpoints
    }

    fn routes(&mut self, raw: Vec<Spanned<RawRoute>>, clusters: &Clusters) -> Vec<RouteConfig> {
        let check_names = clusters.complete && !self.rejected.contains("clusters");
        let mut routes = Vec::with_capacity(raw.len());
        for (i, route) in raw.into_iter().enumerate() {
            let table = format!("routes[{i}]");
            let span = route.span();
            let raw: RawRoute = route.into_inner();
            let databases =
                self.globs(Some(span.clone()), &table, "databases", raw.databases, None);
            let retention_policies = self.globs(
                Some(span.clone()),
                &table,
                "retention_policies",
                raw.retention_policies,
                Some(d::ROUTE_RETENTION_POLICIES),
            );
            let measurements = self.globs(
                Some(span.clone()),
                &table,
                "measurements",
                raw.measurements,
                Some(d::ROUTE_MEASUREMENTS),
            );
            let path = format!("{table}.clusters");
            let was_present = raw.clusters.is_some();
            let mut names: Vec<String> = Vec::new();
            match self.list(&path, raw.clusters, "") {
                Some(items) => {
                    for (j, item) in items.into_iter().enumerate() {
                        let item_path = format!("{path}[{j}]");
                        if names.contains(item.get_ref()) {
                            self.report(
                                Some(item.span()),
                                &item_path,
                                format!("cluster {:?} is listed twice", item.get_ref()),
                            );
                        } else if check_names && !clusters.names.contains(item.get_ref()) {
                            self.report(
                                Some(item.span()),
                                &item_path,
                                format!(
                                    "unknown cluster {:?}{}",
                                    item.get_ref(),
                                    known(&clusters.names)
                                ),
                            );
                        } else {
                            names.push(item.into_inner());
                        }
                    }
                }
                None if !was_present => self.missing(Some(span), &table, "clusters"),
                None => {}
            }
            let mut rename = BTreeMap::new();
            for (cluster, database) in raw.rename.map(Spanned::into_inner).unwrap_or_default() {
                let entry_path = child(&format!("{table}.rename"), cluster.get_ref());
                let listed = names.contains(cluster.get_ref())
                    || !check_names
                    || self.rejected.contains(&path);
                if !listed {
                    self.report(
                        Some(cluster.span()),
                        &entry_path,
                        format!(
                            "{:?} is not one of this route's clusters",
                            cluster.get_ref()
                        ),
                    );
                    continue;
                }
                if database.get_ref().is_empty() {
                    self.report(
                        Some(database.span()),
                        &entry_path,
                        "database name must not be empty",
                    );
                    continue;
                }
                rename.insert(cluster.into_inner(), database.into_inner());
            }
            routes.push(RouteConfig {
                databases,
                retention_policies,
                measurements,
                clusters: names,
                rename,
            });
        }
        routes
    }
}

/// ", known clusters: a, b" (sorted), or ", no clusters are defined".
fn known(names: &HashSet<String>) -> String {
    if names.is_empty() {
        return " (no clusters are defined)".to_owned();
    }
    let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.sort_unstable();
    format!(" (known clusters: {})", names.join(", "))
}

fn check_cluster_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "{name:?} may contain only letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// Kafka's topic name rules.
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > 249 {
        return Err(format!("{topic:?} must be 1 to 249 characters long"));
    }
    if topic == "." || topic == ".." {
        return Err(format!("{topic:?} is not a valid topic name"));
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "{topic:?} may contain only ASCII letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}
