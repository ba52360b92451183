//! The file as written: serde types mirroring the TOML (`deny_unknown_fields`, every key
//! optional, spans kept for messages), and a tolerant deserialization that reports every
//! unknown key and wrongly typed value instead of stopping at the first.
//!
//! Defaults and value checks are not applied here; [`validate`](super::validate) does both.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::model::{ClusterApi, Fsync, LogFormat, QueueBackend, RetentionPolicy};

/// An optional scalar with its place in the file.
pub(super) type Field<T> = Option<Spanned<T>>;
/// An optional list whose items keep their own places.
pub(super) type List<T> = Option<Spanned<Vec<Spanned<T>>>>;
/// An optional table of strings keyed by strings, all with places.
pub(super) type Map<V> = Option<Spanned<BTreeMap<Spanned<String>, Spanned<V>>>>;

/// The root of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawConfig {
    pub(super) ingest: Option<Spanned<RawIngest>>,
    pub(super) queue: Option<Spanned<RawQueue>>,
    pub(super) admin: Option<Spanned<RawAdmin>>,
    pub(super) log: Option<Spanned<RawLog>>,
    pub(super) shutdown: Option<Spanned<RawShutdown>>,
    pub(super) query: Option<Spanned<RawQuery>>,
    pub(super) schema: Option<Spanned<RawSchema>>,
    pub(super) clusters: Option<Vec<Spanned<RawCluster>>>,
    pub(super) routes: Option<Vec<Spanned<RawRoute>>>,
}

/// `[ingest]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawIngest {
    pub(super) listen: Field<String>,
    pub(super) max_body_bytes: Field<u64>,
    pub(super) max_concurrent_requests: Field<u64>,
    pub(super) enqueue_timeout: Field<String>,
    pub(super) retry_after: Field<String>,
    pub(super) body_read_timeout: Field<String>,
    pub(super) header_read_timeout: Field<String>,
    pub(super) max_connections: Field<u64>,
    pub(super) max_header_bytes: Field<u64>,
    pub(super) tls: Option<Spanned<RawTls>>,
    pub(super) users: Option<Vec<Spanned<RawUser>>>,
}

/// `[ingest.tls]`, `[admin.tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawTls {
    pub(super) cert: Field<String>,
    pub(super) key: Field<String>,
    pub(super) client_ca: Field<String>,
}

/// `[[ingest.users]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawUser {
    pub(super) name: Field<String>,
    pub(super) password: Field<String>,
    pub(super) token: Field<String>,
    pub(super) databases: List<String>,
}

/// `[queue]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawQueue {
    pub(super) backend: Field<QueueBackend>,
    pub(super) embedded: Option<Spanned<RawEmbedded>>,
    pub(super) kafka: Option<Spanned<RawKafka>>,
}

/// `[queue.embedded]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawEmbedded {
    pub(super) dir: Field<String>,
    pub(super) fsync: Field<Fsync>,
    pub(super) fsync_interval: Field<String>,
    pub(super) partitions: Field<u64>,
    pub(super) max_record_bytes: Field<u64>,
    pub(super) retention: Option<Spanned<RawRetention>>,
}

/// `[queue.embedded.retention]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawRetention {
    pub(super) policy: Field<RetentionPolicy>,
    pub(super) max_bytes: Field<u64>,
    pub(super) max_age: Field<String>,
}

/// `[queue.kafka]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawKafka {
    pub(super) brokers: List<String>,
    pub(super) topic: Field<String>,
    pub(super) partitions: Field<u64>,
    pub(super) replication_factor: Field<u64>,
    pub(super) max_record_bytes: Field<u64>,
    pub(super) linger: Field<String>,
    pub(super) produce_timeout: Field<String>,
    pub(super) insecure_skip_verify: Field<bool>,
    pub(super) properties: Map<PropertyValue>,
}

/// A librdkafka property value: a string, or a number or boolean written without quotes.
#[derive(Debug, Default)]
pub(super) struct PropertyValue(pub(super) String);

impl<'de> Deserialize<'de> for PropertyValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PropertyVisitor;

        impl Visitor<'_> for PropertyVisitor {
            type Value = PropertyValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(PropertyValue(v.to_owned()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(PropertyValue(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(PropertyValue(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(PropertyValue(v.to_string()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(PropertyValue(v.to_string()))
            }
        }

        deserializer.deserialize_any(PropertyVisitor)
    }
}

/// `[admin]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawAdmin {
    pub(super) listen: Field<String>,
    pub(super) token: Field<String>,
    pub(super) tls: Option<Spanned<RawTls>>,
}

/// `[log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawLog {
    pub(super) format: Field<LogFormat>,
    pub(super) level: Field<String>,
}

/// `[shutdown]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawShutdown {
    pub(super) grace: Field<String>,
}

/// `[query]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawQuery {
    pub(super) max_lag: Field<String>,
    pub(super) timeout: Field<String>,
    pub(super) after_timeout: Field<String>,
}

/// `[schema]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawSchema {
    pub(super) enabled: Field<bool>,
    pub(super) refresh_interval: Field<String>,
    pub(super) max_databases: Field<u64>,
    pub(super) max_retention_policies: Field<u64>,
    pub(super) max_fields: Field<u64>,
}

/// `[[clusters]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawCluster {
    pub(super) name: Field<String>,
    pub(super) api: Field<ClusterApi>,
    pub(super) endpoints: List<String>,
    pub(super) username: Field<String>,
    pub(super) password: Field<String>,
    pub(super) org: Field<String>,
    pub(super) token: Field<String>,
    pub(super) standby: Field<String>,
    pub(super) reroute_after: Field<String>,
    pub(super) timeout: Field<String>,
    pub(super) batch_max_lines: Field<u64>,
    pub(super) batch_max_bytes: Field<u64>,
    pub(super) batch_linger: Field<String>,
    pub(super) max_in_flight: Field<u64>,
    pub(super) create_databases: Field<bool>,
    pub(super) catchup_rate: Field<u64>,
    pub(super) gzip: Field<bool>,
    pub(super) health_interval: Field<String>,
    pub(super) health_timeout: Field<String>,
    pub(super) health_rise: Field<u64>,
    pub(super) health_fall: Field<u64>,
    pub(super) tls_ca: Field<String>,
    pub(super) tls_cert: Field<String>,
    pub(super) tls_key: Field<String>,
}

/// `[[routes]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawRoute {
    pub(super) databases: List<String>,
    pub(super) retention_policies: List<String>,
    pub(super) measurements: List<String>,
    pub(super) clusters: List<String>,
    pub(super) rename: Map<String>,
}

/// A problem located by a byte span of the file (turned into a line later).
#[derive(Debug)]
pub(super) struct SpanProblem {
    pub(super) span: Option<Range<usize>>,
    pub(super) message: String,
}

/// Maps byte offsets of the file to 1-based line numbers.
#[derive(Debug)]
pub(super) struct LineIndex {
    /// Offset of the first byte of each line after the first.
    starts: Vec<usize>,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        Self {
            starts: text.match_indices('\n').map(|(i, _)| i + 1).collect(),
        }
    }

    /// The 1-based line of byte `offset`.
    pub(super) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset) + 1
    }
}

/// The dotted path of a key, e.g. `clusters[1].endpoints[0]`, for messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct KeyPath(Vec<Segment>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub(super) fn push_key(&mut self, key: &str) {
        self.0.push(Segment::Key(key.to_owned()));
    }

    pub(super) fn push_index(&mut self, index: usize) {
        self.0.push(Segment::Index(index));
    }

    pub(super) fn pop(&mut self) {
        self.0.pop();
    }

    /// Drops trailing array indexes, leaving the path of the table entry holding the value.
    pub(super) fn entry(&self) -> KeyPath {
        let end = self
            .0
            .iter()
            .rposition(|s| matches!(s, Segment::Key(_)))
            .map_or(0, |i| i + 1);
        KeyPath(self.0[..end].to_vec())
    }

    /// The path without its last key (the table holding the entry).
    fn parent(&self) -> KeyPath {
        let mut parent = self.entry();
        parent.0.pop();
        parent
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(index) => write!(f, "[{index}]")?,
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write_key(f, key)?;
                }
            }
        }
        Ok(())
    }
}

/// Writes a key bare when TOML allows it, quoted otherwise.
fn write_key(f: &mut impl fmt::Write, key: &str) -> fmt::Result {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        f.write_str(key)
    } else {
        write!(f, "{key:?}")
    }
}

/// `parent.key`, quoting `key` when TOML needs it (e.g. `properties."sasl.password"`).
pub(super) fn child(parent: &str, key: &str) -> String {
    let mut path = format!("{parent}.");
    // Writing to a String cannot fail.
    let _ = write_key(&mut path, key);
    path
}

/// Prefixes `message` with `path`, unless `path` is the root.
pub(super) fn at(path: &impl fmt::Display, message: impl fmt::Display) -> String {
    let path = path.to_string();
    if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    }
}

/// The result of [`deserialize`].
#[derive(Debug)]
pub(super) struct Deserialized {
    /// The raw config without the rejected entries, or `None` when deserialization could not
    /// recover (then only `problems` are meaningful).
    pub(super) raw: Option<RawConfig>,
    /// Unknown keys and wrongly typed values.
    pub(super) problems: Vec<SpanProblem>,
    /// Paths (as displayed) of the entries removed because their value was rejected, so that
    /// validation does not also report them as missing.
    pub(super) rejected: HashSet<String>,
}

/// Upper bound on recovery rounds; each removes one entry, so this only guards against a bug.
const MAX_ROUNDS: usize = 1000;

/// Removes the table entry holding the value at `path` from `doc`, and returns the entry's path
/// as displayed (for [`Deserialized::rejected`]).
pub(super) fn reject(doc: &mut DeTable<'_>, path: &KeyPath) -> String {
    let entry = path.entry();
    remove_entry(doc, &entry.0);
    entry.to_string()
}

/// Deserializes the document into [`RawConfig`], reporting every serde error. `rejected` holds
/// the entries already removed for earlier problems.
///
/// Serde stops at the first error, so on each error the offending entry (located through the
/// error's span) is recorded and removed from the document, and deserialization runs again, until
/// it succeeds.
pub(super) fn deserialize(
    mut doc: Spanned<DeTable<'_>>,
    mut rejected: HashSet<String>,
) -> Deserialized {
    let mut problems = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let error = match RawConfig::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(raw) => {
                return Deserialized {
                    raw: Some(raw),
                    problems,
                    rejected,
                }
            }
            Err(error) => error,
        };
        let span = error.span();
        let mut path = KeyPath::default();
        let found = span
            .as_ref()
            .is_some_and(|span| locate_in_table(doc.get_ref(), span, &mut path));
        let message = error.message().trim_end().to_owned();
        if !found {
            problems.push(SpanProblem { span, message });
            break;
        }
        let entry = path.entry();
        let message = match message.strip_prefix("unknown field") {
            Some(rest) => at(&path.parent(), format!("unknown key{rest}")),
            None => {
                rejected.insert(entry.to_string());
                at(&path, message)
            }
        };
        problems.push(SpanProblem { span, message });
        if !remove_entry(doc.get_mut(), &entry.0) {
            break;
        }
    }
    Deserialized {
        raw: None,
        problems,
        rejected,
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Finds the deepest entry or array item whose key or value span contains `target`.
fn locate_in_table(table: &DeTable<'_>, target: &Range<usize>, path: &mut KeyPath) -> bool {
    for (key, value) in table.iter() {
        path.push_key(key.get_ref());
        if locate_in_value(value, target, path)
            || contains(&key.span(), target)
            || contains(&value.span(), target)
        {
            return true;
        }
        path.pop();
    }
    false
}

fn locate_in_value(
    value: &Spanned<DeValue<'_>>,
    target: &Range<usize>,
    path: &mut KeyPath,
) -> bool {
    match value.get_ref() {
        DeValue::Table(table) => locate_in_table(table, target, path),
        DeValue::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push_index(index);
                if locate_in_value(item, target, path) || contains(&item.span(), target) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

/// Removes the entry at `path` (which ends with a key); false if there is none.
fn remove_entry(table: &mut DeTable<'_>, path: &[Segment]) -> bool {
    match path {
        [Segment::Key(key)] => table.remove(key.as_str()).is_some(),
        [Segment::Key(key), rest @ ..] => match table.get_mut(key.as_str()) {
            Some(value) => remove_in_value(value.get_mut(), rest),
            None => false,
        },
        _ => false,
    }
}

fn remove_in_value(value: &mut DeValue<'_>, path: &[Segment]) -> bool {
    match (value, path) {
        (DeValue::Table(table), _) => remove_entry(table, path),
        (DeValue::Array(items), [Segment::Index(index), rest @ ..]) => items
            .get_mut(*index)
            .is_some_and(|item| remove_in_value(item.get_mut(), rest)),
        _ => false,
    }
}
