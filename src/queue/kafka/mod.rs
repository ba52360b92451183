//! The Kafka backend: an idempotent `acks=all` producer and consumer groups with explicit commits,
//! on rdkafka (bundled librdkafka).
//!
//! Record layout on the topic: no key (the ingest picks the partition from the series key), the
//! payload is normalized line protocol, and headers carry the meta:
//! `fluxroute-format` (`"1"`), `fluxroute-kind` (`write` | `create-database`), `db`, `rp`.
//!
//! Settings fluxroute relies on and refuses to have overridden by `[queue.kafka.properties]`:
//! `enable.idempotence=true` and `acks=all` (a 2xx means all in-sync replicas have the record),
//! and for consumers `enable.auto.commit=false` (a drain commits only what it has delivered).
//!
//! Security (SASL, TLS) is plain librdkafka configuration from `[queue.kafka.properties]`
//! (`security.protocol`, `sasl.mechanisms`, `sasl.username`, `sasl.password`, `ssl.ca.location`;
//! librdkafka is built with OpenSSL, so SCRAM-SHA-256/512 and TLS are available). The producer's
//! client context keeps the last authentication or TLS failure librdkafka reported: start-up
//! fails at once with it instead of waiting for a timeout, and [`Producer::check_health`] names
//! it while the brokers cannot be reached.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use super::{
    ConsumerGroup, DeadLetter, DeadLetterSink, Error, Event, OutgoingRecord, Producer, Queue,
    Record, RecordKind, RecordMeta, StoredDeadLetter, FORMAT_VERSION,
};

mod consumer;
mod dead_letters;
pub(crate) mod polled;
mod producer;

pub use consumer::KafkaConsumerGroup;
pub use dead_letters::{dead_letter_topic, KafkaDeadLetters};
pub use producer::KafkaProducer;

const HEADER_FORMAT: &str = "fluxroute-format";
const HEADER_KIND: &str = "fluxroute-kind";
const HEADER_DB: &str = "db";
const HEADER_RP: &str = "rp";

/// Properties fluxroute sets and a user may not change: the durability promise depends on them.
const PINNED_PRODUCER: &[(&str, &str)] = &[("enable.idempotence", "true"), ("acks", "all")];
const PINNED_CONSUMER: &[(&str, &str)] = &[("enable.auto.commit", "false")];
/// Prefetch cap per consumer-group member, in KiB: enough to keep a drain's batches full.
const CONSUMER_PREFETCH_KBYTES: u32 = 16 * 1024;
/// Longest a fetch may wait at the broker for more data, in ms.
const CONSUMER_FETCH_WAIT_MS: u32 = 50;
/// How long librdkafka postpones the next fetch of a partition once the prefetch queue is over
/// its cap, in ms. Its default (1000 ms) idles a draining consumer for a second each time one
/// fetch of lz4 records overfills the 16 MiB queue once decompressed, against Kafka as against
/// the test broker. Measured with `scripts/bench` (drain of a 19–37M-line backlog, one influxd):
/// 163k lines/s with the default, 176–181k with 10 ms; a 32 MiB queue, 4 MiB partition fetches
/// and a 10 ms `fetch.wait.max.ms` on top changed nothing.
const CONSUMER_FETCH_QUEUE_BACKOFF_MS: u32 = 10;
/// Room for headers and batch framing on top of the payload cap.
const RECORD_OVERHEAD_BYTES: usize = 64 * 1024;

/// Connection settings shared by producers and consumers.
///
/// `Debug` shows sensitive properties (see [`crate::config::is_sensitive_property`]) as `***`.
#[derive(Clone)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `host:port`.
    pub brokers: Vec<String>,
    /// The writes topic.
    pub topic: String,
    /// Partitions to create the topic with.
    pub partitions: u32,
    /// Replication factor to create the topic with.
    pub replication_factor: u32,
    /// Payload cap per record.
    pub max_record_bytes: usize,
    /// Producer linger.
    pub linger: Duration,
    /// How long librdkafka keeps trying to deliver a record.
    pub produce_timeout: Duration,
    /// Extra librdkafka properties, applied as given.
    pub properties: BTreeMap<String, String>,
    /// Where the producer's librdkafka statistics go (`None`: not collected).
    pub client_metrics: Option<crate::metrics::KafkaClientMetrics>,
}

impl std::fmt::Debug for KafkaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let properties: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| {
                let shown = if crate::config::is_sensitive_property(k) {
                    "***"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("KafkaSettings")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .field("replication_factor", &self.replication_factor)
            .field("max_record_bytes", &self.max_record_bytes)
            .field("linger", &self.linger)
            .field("produce_timeout", &self.produce_timeout)
            .field("properties", &properties)
            .field("client_metrics", &self.client_metrics)
            .finish()
    }
}

/// What librdkafka last reported about this client's connections: the last refusal (an
/// authentication failure — wrong SASL credentials, unknown user, unsupported mechanism — or a
/// failed TLS handshake — certificate not trusted, host name mismatch) and the last other error
/// (a broker down, a connection closed during the handshake). Cleared once the brokers answer.
#[derive(Debug, Clone, Default)]
struct ClientErrors(Arc<Mutex<LastErrors>>);

#[derive(Debug, Default)]
struct LastErrors {
    refusal: Option<String>,
    other: Option<String>,
}

impl ClientErrors {
    fn record(&self, refusal: bool, reason: String) {
        if let Ok(mut last) = self.0.lock() {
            if refusal {
                last.refusal = Some(reason);
            } else {
                last.other = Some(reason);
            }
        }
    }

    fn refusal(&self) -> Option<String> {
        self.0.lock().ok().and_then(|last| last.refusal.clone())
    }

    fn other(&self) -> Option<String> {
        self.0.lock().ok().and_then(|last| last.other.clone())
    }

    fn clear(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = LastErrors::default();
        }
    }
}

/// Whether a client error means the brokers refused us (credentials or TLS), as opposed to a
/// broker that is down or slow.
fn is_refusal(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SSL
                | RDKafkaErrorCode::SaslAuthenticationFailed
        )
    )
}

/// The producer's client context: turns librdkafka statistics into metrics and keeps the last
/// client errors for start-up errors and health.
#[derive(Debug, Clone, Default)]
pub struct StatsContext {
    metrics: Option<crate::metrics::KafkaClientMetrics>,
    errors: ClientErrors,
}

impl ClientContext for StatsContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let refusal = is_refusal(&error);
        if refusal {
            tracing::error!(error = %error, reason, "the Kafka brokers refused the connection");
        } else {
            tracing::warn!(error = %error, reason, "Kafka client error");
        }
        // "All broker connections are down" only summarizes the errors before it.
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            self.errors.record(refusal, format!("{error}: {reason}"));
        }
    }

    fn stats(&self, s: rdkafka::statistics::Statistics) {
        let Some(m) = &self.metrics else { return };
        m.producer_queue_messages
            .set(i64::try_from(s.msg_cnt).unwrap_or(i64::MAX));
        m.producer_queue_bytes
            .set(i64::try_from(s.msg_size).unwrap_or(i64::MAX));
        m.producer_queue_max_messages
            .set(i64::try_from(s.msg_max).unwrap_or(i64::MAX));
        for b in s.brokers.values() {
            if let Some(rtt) = b.rtt.as_ref().filter(|w| w.cnt > 0) {
                // librdkafka reports microseconds.
                m.broker_rtt_seconds
                    .with_label_values(&[b.nodename.as_str()])
                    .set(rtt.avg as f64 / 1e6);
            }
        }
    }
}

/// The producer type fluxroute uses.
type Producer_ = Arc<polled::PolledProducer<StatsContext>>;

impl KafkaSettings {
    pub(crate) fn client_config(&self, pinned: &[(&str, &str)]) -> Result<ClientConfig, Error> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", self.brokers.join(","));
        for (k, v) in &self.properties {
            if let Some((_, want)) = pinned.iter().find(|(p, _)| p == k) {
                if v != want {
                    return Err(Error::Setup(format!(
                        "[queue.kafka.properties] {k} = {v:?} is not allowed: fluxroute needs {k}={want}"
                    )));
                }
            }
            cfg.set(k, v);
        }
        for (k, v) in pinned {
            cfg.set(*k, *v);
        }
        Ok(cfg)
    }
}

/// The longest a drain waits for an offset commit; later commits carry the same positions.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Clears a flag when dropped.
struct ClearOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

/// Runs a blocking librdkafka call that has no timeout of its own (an offset commit waits for
/// the group coordinator, however long it takes) on a detached thread, waiting at most
/// `timeout` for it. Unlike `spawn_blocking`, a call that never returns holds neither a drain
/// nor the runtime's shutdown; callers keep at most one such call outstanding.
async fn detached<T: Send + 'static>(
    context: String,
    timeout: Duration,
    call: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("fluxroute-kafka-call".into())
        .spawn(move || {
            let _ = tx.send(call());
        })
        .map_err(|e| Error::Setup(format!("{context}: starting a thread: {e}")))?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(Error::Setup(format!(
            "{context}: the call ended without an answer"
        ))),
        Err(_) => Err(Error::Unavailable {
            context,
            source: format!("no answer within {timeout:?}").into(),
        }),
    }
}

/// How long one metadata request of [`await_brokers`] may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Waits until the brokers answer a metadata request, within `timeout`. Fails at once, naming
/// the brokers and librdkafka's reason, when they refuse our credentials or TLS handshake: such
/// a failure does not heal by waiting.
async fn await_brokers(
    producer: &Producer_,
    errors: &ClientErrors,
    brokers: &[String],
    timeout: Duration,
) -> Result<(), Error> {
    let brokers = brokers.join(",");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let p = producer.clone();
        let res = tokio::task::spawn_blocking(move || {
            p.client().fetch_metadata(None, PROBE_TIMEOUT).map(|_| ())
        })
        .await
        .map_err(|e| Error::Setup(format!("metadata task failed: {e}")))?;
        let Err(e) = res else {
            errors.clear();
            return Ok(());
        };
        if let Some(reason) = errors.refusal() {
            return Err(Error::Setup(format!(
                "the Kafka brokers {brokers} refused fluxroute (check the SASL credentials and \
                 TLS settings in [queue.kafka.properties]): {reason}"
            )));
        }
        if tokio::time::Instant::now() >= deadline {
            let context = match errors.other() {
                Some(last) => format!(
                    "reaching the Kafka brokers {brokers} within {timeout:?} (last client \
                     error: {last}; a broker that drops connections or stalls in the \
                     handshake may want SASL or TLS: check security.protocol in \
                     [queue.kafka.properties])"
                ),
                None => format!("reaching the Kafka brokers {brokers} within {timeout:?}"),
            };
            return Err(Error::unavailable(context, e));
        }
    }
}

pub(crate) async fn ensure_topic(
    settings: &KafkaSettings,
    name: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let partitions = i32::try_from(settings.partitions)
        .map_err(|_| Error::Setup("partitions too large".into()))?;
    ensure_topic_with(settings, name, partitions, &[], timeout).await
}

/// Creates topic `name` with `partitions` and topic `configs` unless it exists.
pub(crate) async fn ensure_topic_with(
    settings: &KafkaSettings,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), Error> {
    let cfg = settings.client_config(&[])?;
    let admin: AdminClient<DefaultClientContext> = cfg
        .create()
        .map_err(|e| Error::Setup(format!("creating Kafka admin client: {e}")))?;
    let replication = i32::try_from(settings.replication_factor)
        .map_err(|_| Error::Setup("replication_factor too large".into()))?;
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    for &(k, v) in configs {
        topic = topic.set(k, v);
    }
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let results = tokio::time::timeout(timeout, admin.create_topics([&topic], &opts))
        .await
        .map_err(|_| Error::Timeout(timeout))?
        .map_err(|e| Error::unavailable(format!("creating topic {name}"), e))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(Error::Setup(format!("creating topic {name}: {code}")));
            }
        }
    }
    Ok(())
}

async fn topic_partitions(
    producer: &Producer_,
    topic: &str,
    timeout: Duration,
) -> Result<u32, Error> {
    let producer = producer.clone();
    let topic = topic.to_owned();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let p = producer.clone();
        let t = topic.clone();
        let count = tokio::task::spawn_blocking(move || -> Result<usize, KafkaError> {
            let md = p
                .client()
                .fetch_metadata(Some(&t), Duration::from_secs(2))?;
            Ok(md
                .topics()
                .iter()
                .find(|mt| mt.name() == t)
                .map_or(0, |mt| mt.partitions().len()))
        })
        .await
        .map_err(|e| Error::Setup(format!("metadata task failed: {e}")))?;
        match count {
            Ok(n) if n > 0 => {
                return u32::try_from(n).map_err(|_| Error::Setup("too many partitions".into()));
            }
            // A freshly created topic may take a moment to show its partitions.
            Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => return Err(Error::Setup(format!("topic {topic} has no partitions"))),
            Err(e) => {
                return Err(Error::unavailable(
                    format!("reading metadata of topic {topic}"),
                    e,
                ))
            }
        }
    }
}

/// The Kafka backend as a [`Queue`].
#[derive(Debug)]
pub struct KafkaQueue {
    settings: KafkaSettings,
    producer: Arc<KafkaProducer>,
    dead_letters: Arc<KafkaDeadLetters>,
}

impl KafkaQueue {
    /// Connects the producer (creating the topic when missing).
    ///
    /// # Errors
    /// As [`KafkaProducer::connect`].
    pub async fn connect(
        settings: KafkaSettings,
        setup_timeout: Duration,
    ) -> Result<KafkaQueue, Error> {
        let producer = Arc::new(KafkaProducer::connect(&settings, setup_timeout).await?);
        let topic = dead_letter_topic(&settings.topic);
        // One partition: a letter's offset is its id, and a purge is one committed position.
        ensure_topic_with(&settings, &topic, 1, &[], setup_timeout).await?;
        let dead_letters = Arc::new(KafkaDeadLetters {
            producer: Arc::clone(&producer),
            topic,
            settings: settings.clone(),
        });
        Ok(KafkaQueue {
            settings,
            producer,
            dead_letters,
        })
    }
}

impl KafkaQueue {
    /// A consumer of `group` that never subscribes: reads and commits group offsets only.
    fn group_client(&self, group: &str) -> Result<BaseConsumer, Error> {
        let mut cfg = self.settings.client_config(PINNED_CONSUMER)?;
        cfg.set("group.id", group);
        cfg.create()
            .map_err(|e| Error::Setup(format!("creating a Kafka client for group {group}: {e}")))
    }
}

#[async_trait]
impl Queue for KafkaQueue {
    fn producer(&self) -> Arc<dyn Producer> {
        Arc::clone(&self.producer) as Arc<dyn Producer>
    }

    fn dead_letters(&self) -> Arc<dyn DeadLetterSink> {
        Arc::clone(&self.dead_letters) as Arc<dyn DeadLetterSink>
    }

    async fn join(&self, group: &str) -> Result<Box<dyn ConsumerGroup>, Error> {
        Ok(Box::new(KafkaConsumerGroup::join(&self.settings, group)?))
    }

    async fn group_positions(&self, group: &str) -> Result<Vec<(u32, Option<i64>)>, Error> {
        let consumer = self.group_client(group)?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.producer.partitions() {
            tpl.add_partition(&self.settings.topic, i32::try_from(p).unwrap_or(i32::MAX));
        }
        let group = group.to_owned();
        let tpl = tokio::task::spawn_blocking(move || {
            consumer
                .committed_offsets(tpl, Duration::from_secs(10))
                .map_err(|e| {
                    Error::unavailable(format!("reading the positions of group {group}"), e)
                })
        })
        .await
        .map_err(|e| Error::Setup(format!("positions task failed: {e}")))??;
        Ok(tpl
            .elements()
            .iter()
            .filter_map(|e| {
                let p = u32::try_from(e.partition()).ok()?;
                Some((
                    p,
                    if let Offset::Offset(o) = e.offset() {
                        Some(o)
                    } else {
                        None
                    },
                ))
            })
            .collect())
    }

    async fn seed_group(&self, group: &str, positions: &[(u32, i64)]) -> Result<(), Error> {
        let consumer = self.group_client(group)?;
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in positions {
            tpl.add_partition_offset(
                &self.settings.topic,
                i32::try_from(p).unwrap_or(i32::MAX),
                Offset::Offset(o),
            )
            .map_err(|e| Error::unavailable("building the seed list", e))?;
        }
        let context = format!("seeding group {group}");
        detached(context.clone(), COMMIT_TIMEOUT, move || {
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| Error::unavailable(context, e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_debug_hides_secret_properties() {
        let properties = [
            ("sasl.password", "pw-1"),
            ("ssl.key.password", "pw-2"),
            ("ssl.key.pem", "-----BEGIN PRIVATE KEY-----"),
            ("sasl.oauthbearer.client.secret", "pw-3"),
            ("security.protocol", "SASL_SSL"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let settings = KafkaSettings {
            brokers: vec!["127.0.0.1:9092".into()],
            topic: "t".into(),
            partitions: 1,
            replication_factor: 1,
            max_record_bytes: 1024,
            linger: Duration::ZERO,
            produce_timeout: Duration::from_secs(1),
            properties,
            client_metrics: None,
        };
        let shown = format!("{settings:?}");
        for secret in ["pw-1", "pw-2", "pw-3", "PRIVATE KEY"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("SASL_SSL"), "{shown}");
    }

    #[test]
    fn refusals_are_authentication_and_tls_failures_only() {
        for code in [
            RDKafkaErrorCode::Authentication,
            RDKafkaErrorCode::SSL,
            RDKafkaErrorCode::SaslAuthenticationFailed,
        ] {
            assert!(is_refusal(&KafkaError::Global(code)), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::OperationTimedOut,
        ] {
            assert!(!is_refusal(&KafkaError::Global(code)), "{code:?}");
        }
    }
}
