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
    EmbeddedConfig, HttpLimits, IngestConfig, KafkaConfig, KafkaProperties, LogConfig, QueryConfig,
    QueueConfig, RetentionConfig, RouteConfig, SchemaConfig, ShutdownConfig, TlsConfig, User,
};
use super::raw::{
    at, child, Field, LineIndex, List, RawAdmin, RawCluster, RawConfig, RawEmbedded, RawIngest,
    RawKafka, RawLog, RawQuery, RawQueue, RawRetention, RawRoute, RawSchema, RawShutdown, RawTls,
    RawUser, SpanProblem,
};
use super::secret::Secret;

mod clusters;
mod sections;

use self::clusters::check_topic;

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
    let query = ctx.query(raw.query);
    let schema = ctx.schema(raw.schema);
    let clusters = ctx.clusters(raw.clusters.unwrap_or_default());
    let routes = ctx.routes(raw.routes.unwrap_or_default(), &clusters);
    let config = Config {
        ingest,
        queue,
        admin,
        log,
        shutdown,
        query,
        schema,
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
pub(super) struct Clusters {
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
}
