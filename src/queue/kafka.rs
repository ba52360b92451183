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
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

use super::{
    ConsumerGroup, DeadLetter, DeadLetterSink, Error, Event, OutgoingRecord, Producer, Queue,
    Record, RecordKind, RecordMeta, StoredDeadLetter, FORMAT_VERSION,
};

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
type Producer_ = FutureProducer<StatsContext>;

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

/// The Kafka producer of the writes topic.
///
/// When the broker refuses records with an error other than a timeout or a full queue (for
/// instance an idempotent producer's sequence state lost across a broker restart, or a fatal
/// error), the librdkafka producer is replaced by a fresh one (new producer id), once per failure
/// wave; requests in flight on the old one fail and are answered 503, so nothing is acknowledged
/// that was not durable.
pub struct KafkaProducer {
    producer: std::sync::RwLock<(u64, Producer_)>,
    context: StatsContext,
    config: ClientConfig,
    produce_timeout: Duration,
    topic: String,
    partitions: u32,
    max_record_bytes: usize,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer")
            .field("topic", &self.topic)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl KafkaProducer {
    /// Creates the producer and makes sure the topic exists (creating it with the configured
    /// partitions and replication factor when missing); learns the topic's partition count.
    ///
    /// # Errors
    /// [`Error::Setup`] for refused properties or a topic that cannot be created,
    /// [`Error::Unavailable`] when the brokers cannot be reached within `setup_timeout`.
    pub async fn connect(
        settings: &KafkaSettings,
        setup_timeout: Duration,
    ) -> Result<KafkaProducer, Error> {
        let mut cfg = settings.client_config(PINNED_PRODUCER)?;
        cfg.set("linger.ms", settings.linger.as_millis().to_string());
        cfg.set(
            "message.timeout.ms",
            settings.produce_timeout.as_millis().max(1).to_string(),
        );
        cfg.set(
            "message.max.bytes",
            (settings.max_record_bytes + RECORD_OVERHEAD_BYTES).to_string(),
        );
        if !settings.properties.contains_key("compression.type") {
            cfg.set("compression.type", "lz4");
        }
        if settings.client_metrics.is_some()
            && !settings.properties.contains_key("statistics.interval.ms")
        {
            cfg.set("statistics.interval.ms", "1000");
        }
        let context = StatsContext {
            metrics: settings.client_metrics.clone(),
            errors: ClientErrors::default(),
        };
        let producer: Producer_ = cfg
            .create_with_context(context.clone())
            .map_err(|e| Error::Setup(format!("creating Kafka producer: {e}")))?;
        if settings
            .properties
            .get("enable.ssl.certificate.verification")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            tracing::warn!(
                brokers = %settings.brokers.join(","),
                "[queue.kafka] insecure_skip_verify = true: the brokers' TLS certificates and \
                 host names are NOT verified"
            );
        }
        await_brokers(&producer, &context.errors, &settings.brokers, setup_timeout).await?;
        ensure_topic(settings, &settings.topic, setup_timeout).await?;
        let partitions = topic_partitions(&producer, &settings.topic, setup_timeout).await?;
        if partitions != settings.partitions {
            tracing::warn!(
                topic = %settings.topic,
                configured = settings.partitions,
                actual = partitions,
                "topic exists with a different partition count; using the topic's"
            );
        }
        Ok(KafkaProducer {
            producer: std::sync::RwLock::new((0, producer)),
            context,
            config: cfg,
            produce_timeout: settings.produce_timeout,
            topic: settings.topic.clone(),
            partitions,
            max_record_bytes: settings.max_record_bytes,
        })
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

fn headers(meta: &RecordMeta) -> OwnedHeaders {
    let version = FORMAT_VERSION.to_string();
    OwnedHeaders::new_with_capacity(4)
        .insert(Header {
            key: HEADER_FORMAT,
            value: Some(version.as_bytes()),
        })
        .insert(Header {
            key: HEADER_KIND,
            value: Some(meta.kind.as_str().as_bytes()),
        })
        .insert(Header {
            key: HEADER_DB,
            value: Some(meta.db.as_bytes()),
        })
        .insert(Header {
            key: HEADER_RP,
            value: Some(meta.rp.as_bytes()),
        })
}

#[async_trait]
impl Producer for KafkaProducer {
    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    async fn enqueue(&self, records: Vec<OutgoingRecord>) -> Result<(), Error> {
        let (generation, producer) = self.current();
        let res = enqueue_on(&producer, &self.topic, &records, self.produce_timeout).await;
        if let Err(Error::Unavailable { .. }) = &res {
            self.replace(generation);
        }
        res
    }

    async fn check_health(&self, timeout: Duration) -> Result<(), Error> {
        let (_, p) = self.current();
        let topic = self.topic.clone();
        let res = tokio::task::spawn_blocking(move || {
            p.client().fetch_metadata(Some(&topic), timeout).map(|_| ())
        })
        .await
        .map_err(|e| Error::Setup(format!("health task failed: {e}")))?;
        match res {
            Ok(()) => {
                self.context.errors.clear();
                Ok(())
            }
            // Name the cause when it is a refusal: a timeout alone does not say what to fix.
            Err(e) => Err(match self.context.errors.refusal() {
                Some(reason) => Error::Unavailable {
                    context: "the Kafka brokers refused the connection".into(),
                    source: reason.into(),
                },
                None => Error::unavailable("fetching metadata", e),
            }),
        }
    }

    async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let (_, p) = self.current();
        tokio::task::spawn_blocking(move || p.flush(timeout).map_err(|_| Error::Timeout(timeout)))
            .await
            .map_err(|e| Error::Setup(format!("flush task failed: {e}")))?
    }
}

impl KafkaProducer {
    fn current(&self) -> (u64, Producer_) {
        match self.producer.read() {
            Ok(g) => (g.0, g.1.clone()),
            Err(poisoned) => {
                let g = poisoned.into_inner();
                (g.0, g.1.clone())
            }
        }
    }

    /// Replaces the librdkafka producer unless another request already did since `seen`.
    fn replace(&self, seen: u64) {
        let Ok(mut g) = self.producer.write() else {
            return;
        };
        if g.0 != seen {
            return;
        }
        match self
            .config
            .create_with_context::<_, Producer_>(self.context.clone())
        {
            Ok(fresh) => {
                tracing::warn!(
                    generation = seen + 1,
                    "replacing the Kafka producer after a delivery error"
                );
                *g = (seen + 1, fresh);
            }
            Err(e) => tracing::error!(error = %e, "recreating the Kafka producer"),
        }
    }
}

async fn enqueue_on(
    producer: &Producer_,
    topic: &str,
    records: &[OutgoingRecord],
    produce_timeout: Duration,
) -> Result<(), Error> {
    {
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let partition = i32::try_from(r.partition)
                .map_err(|_| Error::Setup(format!("partition {} out of range", r.partition)))?;
            let rec = FutureRecord::<(), [u8]>::to(topic)
                .partition(partition)
                .payload(&r.payload[..])
                .headers(headers(&r.meta));
            match producer.send_result(rec) {
                Ok(fut) => pending.push(fut),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    return Err(Error::Full("librdkafka producer queue is full".into()));
                }
                Err((e, _)) => return Err(Error::unavailable("producing a record", e)),
            }
        }
        for fut in pending {
            match fut.await {
                Ok(Ok(_)) => {}
                Ok(Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut), _))) => {
                    return Err(Error::Timeout(produce_timeout));
                }
                Ok(Err((e, _))) => return Err(Error::unavailable("delivering a record", e)),
                Err(_) => {
                    return Err(Error::Unavailable {
                        context: "delivering a record".into(),
                        source: "producer dropped the delivery report".into(),
                    })
                }
            }
        }
        Ok(())
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

/// The dead-letter topic of a writes topic.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}-dead-letters")
}

/// Dead letters on `<topic>-dead-letters`: the lines as payload, the cluster as key, and
/// headers `cluster`, `db`, `rp`, `status`, `reason`, `reason-class`, `sources` (`p:o,…`).
#[derive(Debug)]
pub struct KafkaDeadLetters {
    producer: Arc<KafkaProducer>,
    topic: String,
    settings: KafkaSettings,
}

/// The consumer group whose committed position on the dead-letter topic marks what was purged.
const PURGED_GROUP: &str = "fluxroute-dead-letters-purged";

impl KafkaDeadLetters {
    fn client(&self) -> Result<BaseConsumer, Error> {
        let mut cfg = self.settings.client_config(PINNED_CONSUMER)?;
        cfg.set("group.id", PURGED_GROUP)
            .set("enable.partition.eof", "false");
        cfg.create()
            .map_err(|e| Error::Setup(format!("creating the dead-letter reader: {e}")))
    }
}

fn header_str(msg: &BorrowedMessage<'_>, key: &str) -> String {
    msg.headers()
        .and_then(|hs| hs.iter().find(|h| h.key == key).and_then(|h| h.value))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

#[async_trait]
impl DeadLetterSink for KafkaDeadLetters {
    async fn dead_letter(&self, letter: DeadLetter) -> Result<(), Error> {
        let (_, producer) = self.producer.current();
        let topic = &self.topic;
        let status = letter.status.to_string();
        let sources = letter
            .sources
            .iter()
            .map(|(p, o)| format!("{p}:{o}"))
            .collect::<Vec<_>>()
            .join(",");
        let headers = OwnedHeaders::new_with_capacity(8)
            .insert(Header {
                key: HEADER_FORMAT,
                value: Some(FORMAT_VERSION.to_string().as_bytes()),
            })
            .insert(Header {
                key: "cluster",
                value: Some(letter.cluster.as_bytes()),
            })
            .insert(Header {
                key: HEADER_DB,
                value: Some(letter.db.as_bytes()),
            })
            .insert(Header {
                key: HEADER_RP,
                value: Some(letter.rp.as_bytes()),
            })
            .insert(Header {
                key: "status",
                value: Some(status.as_bytes()),
            })
            .insert(Header {
                key: "reason",
                value: Some(letter.reason.as_bytes()),
            })
            .insert(Header {
                key: "reason-class",
                value: Some(letter.reason_class.as_bytes()),
            })
            .insert(Header {
                key: "sources",
                value: Some(sources.as_bytes()),
            });
        let rec = FutureRecord::<[u8], [u8]>::to(topic)
            .key(letter.cluster.as_bytes())
            .payload(&letter.lines[..])
            .headers(headers);
        let rec = rec.partition(0);
        let fut = producer
            .send_result(rec)
            .map_err(|(e, _)| Error::unavailable("producing a dead letter", e))?;
        match fut.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(Error::unavailable("delivering a dead letter", e)),
            Err(_) => Err(Error::Setup(
                "producer dropped the dead letter's delivery report".into(),
            )),
        }
    }

    async fn list(&self, from: u64, max: usize) -> Result<Vec<StoredDeadLetter>, Error> {
        let consumer = self.client()?;
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let unavailable = |e| Error::unavailable("reading dead letters", e);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(&topic, 0);
            let purged = consumer
                .committed_offsets(tpl, Duration::from_secs(10))
                .map_err(unavailable)?;
            let purged = match purged.elements().first().map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            };
            let (low, high) = consumer
                .fetch_watermarks(&topic, 0, Duration::from_secs(10))
                .map_err(unavailable)?;
            let start = i64::try_from(from).unwrap_or(i64::MAX).max(purged).max(low);
            let mut out = Vec::new();
            if start >= high || max == 0 {
                return Ok(out);
            }
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&topic, 0, Offset::Offset(start))
                .map_err(unavailable)?;
            consumer.assign(&tpl).map_err(unavailable)?;
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let mut next = start;
            while next < high && out.len() < max {
                if std::time::Instant::now() > deadline {
                    return Err(Error::Timeout(Duration::from_secs(30)));
                }
                let Some(msg) = consumer.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let msg = msg.map_err(unavailable)?;
                next = msg.offset() + 1;
                let sources = header_str(&msg, "sources")
                    .split(',')
                    .filter_map(|s| {
                        let (p, o) = s.split_once(':')?;
                        Some((p.parse().ok()?, o.parse().ok()?))
                    })
                    .collect();
                out.push(StoredDeadLetter {
                    id: u64::try_from(msg.offset()).unwrap_or(0),
                    appended_ms: msg.timestamp().to_millis().unwrap_or(0),
                    cluster: header_str(&msg, "cluster"),
                    db: header_str(&msg, HEADER_DB),
                    rp: header_str(&msg, HEADER_RP),
                    status: header_str(&msg, "status").parse().unwrap_or(0),
                    reason: header_str(&msg, "reason"),
                    reason_class: header_str(&msg, "reason-class"),
                    sources,
                    lines: Bytes::copy_from_slice(msg.payload().unwrap_or_default()),
                });
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::Setup(format!("dead-letter task failed: {e}")))?
    }

    async fn purge(&self, before: u64) -> Result<(), Error> {
        let consumer = self.client()?;
        let topic = self.topic.clone();
        detached(
            "purging dead letters".into(),
            COMMIT_TIMEOUT + Duration::from_secs(10),
            move || {
                let unavailable = |e| Error::unavailable("purging dead letters", e);
                let (_, high) = consumer
                    .fetch_watermarks(&topic, 0, Duration::from_secs(10))
                    .map_err(unavailable)?;
                let to = i64::try_from(before).unwrap_or(i64::MAX).min(high);
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&topic, 0, Offset::Offset(to))
                    .map_err(unavailable)?;
                consumer.commit(&tpl, CommitMode::Sync).map_err(unavailable)
            },
        )
        .await
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

/// Collects rebalance events for [`KafkaConsumerGroup::poll`] to hand out in order, and keeps a
/// paused member's newly assigned partitions paused.
#[derive(Debug, Default)]
struct RebalanceLog {
    events: Mutex<VecDeque<Event>>,
    /// Set while the member is paused ([`ConsumerGroup::set_paused`]).
    paused: std::sync::atomic::AtomicBool,
}

fn partitions_of(tpl: &TopicPartitionList) -> Vec<u32> {
    tpl.elements()
        .iter()
        .filter_map(|e| u32::try_from(e.partition()).ok())
        .collect()
}

impl ClientContext for RebalanceLog {}

impl ConsumerContext for RebalanceLog {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if let Ok(mut ev) = self.events.lock() {
                ev.push_back(Event::Revoked(partitions_of(tpl)));
            }
        }
    }

    fn post_rebalance(&self, c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                // Pause here, inside the rebalance: the same `recv` that ran this callback may
                // already return a fetched record of these partitions.
                if self.paused.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Err(e) = c.pause(tpl) {
                        tracing::warn!(error = %e, "pausing newly assigned partitions");
                    }
                }
                if let Ok(mut ev) = self.events.lock() {
                    ev.push_back(Event::Assigned(partitions_of(tpl)));
                }
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "consumer group rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// One member of a Kafka consumer group reading the writes topic.
pub struct KafkaConsumerGroup {
    consumer: Arc<StreamConsumer<RebalanceLog>>,
    /// Set while an offset commit is inside librdkafka (which may wait for a coordinator that
    /// never answers): a drain never waits on it longer than [`COMMIT_TIMEOUT`] and never
    /// stacks a second blocked commit behind it.
    commit_pending: Arc<std::sync::atomic::AtomicBool>,
    group: String,
    topic: String,
}

impl std::fmt::Debug for KafkaConsumerGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaConsumerGroup")
            .field("group", &self.group)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaConsumerGroup {
    /// Joins `group` on the writes topic. A new group starts at the earliest record.
    ///
    /// # Errors
    /// [`Error::Setup`] when the consumer cannot be created or subscribed.
    pub fn join(settings: &KafkaSettings, group: &str) -> Result<KafkaConsumerGroup, Error> {
        let mut cfg = settings.client_config(PINNED_CONSUMER)?;
        cfg.set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        // Memory is bounded by configuration, not backlog: cap each member's prefetch (librdkafka
        // defaults to 64 MiB) unless the user chose a value.
        if !settings
            .properties
            .contains_key("queued.max.messages.kbytes")
        {
            cfg.set(
                "queued.max.messages.kbytes",
                CONSUMER_PREFETCH_KBYTES.to_string(),
            );
        }
        // A drain catching up wants the next fetch at once: don't let a broker park a fetch for
        // librdkafka's default 500 ms (measured on the test broker: 105k -> 133k lines/s drained;
        // a larger max.partition.fetch.bytes changed nothing there).
        if !settings.properties.contains_key("fetch.wait.max.ms") {
            cfg.set("fetch.wait.max.ms", CONSUMER_FETCH_WAIT_MS.to_string());
        }
        if !settings.properties.contains_key("fetch.queue.backoff.ms") {
            cfg.set(
                "fetch.queue.backoff.ms",
                CONSUMER_FETCH_QUEUE_BACKOFF_MS.to_string(),
            );
        }
        let consumer: StreamConsumer<RebalanceLog> = cfg
            .create_with_context(RebalanceLog::default())
            .map_err(|e| Error::Setup(format!("creating Kafka consumer for group {group}: {e}")))?;
        consumer.subscribe(&[&settings.topic]).map_err(|e| {
            Error::Setup(format!(
                "subscribing group {group} to {}: {e}",
                settings.topic
            ))
        })?;
        Ok(KafkaConsumerGroup {
            consumer: Arc::new(consumer),
            commit_pending: Arc::default(),
            group: group.to_owned(),
            topic: settings.topic.clone(),
        })
    }

    fn take_events(&self, out: &mut Vec<Event>) {
        let start = out.len();
        if let Ok(mut ev) = self.consumer.context().events.lock() {
            out.extend(ev.drain(..));
        }
        if self
            .consumer
            .context()
            .paused
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            for ev in &out[start..] {
                if let Event::Assigned(parts) = ev {
                    let mut tpl = TopicPartitionList::new();
                    for &p in parts {
                        if let Ok(p) = i32::try_from(p) {
                            tpl.add_partition(&self.topic, p);
                        }
                    }
                    if let Err(e) = self.consumer.pause(&tpl) {
                        tracing::warn!(group = %self.group, error = %e, "pausing newly assigned partitions");
                    }
                }
            }
        }
    }
}

/// Decodes a message; `Err` says why it is not a fluxroute record.
fn decode(msg: &BorrowedMessage<'_>) -> Result<Record, String> {
    let partition = u32::try_from(msg.partition()).unwrap_or(u32::MAX);
    let offset = msg.offset();
    let bad = |reason: String| reason;
    let mut format = None;
    let mut kind = None;
    let mut db = None;
    let mut rp = None;
    if let Some(hs) = msg.headers() {
        for h in hs.iter() {
            let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
            match h.key {
                HEADER_FORMAT => format = value,
                HEADER_KIND => kind = value,
                HEADER_DB => db = value,
                HEADER_RP => rp = value,
                _ => {}
            }
        }
    }
    let format = format.ok_or_else(|| bad("missing fluxroute-format header".into()))?;
    if format != FORMAT_VERSION.to_string() {
        return Err(bad(format!("unknown record format {format:?}")));
    }
    let kind = kind.ok_or_else(|| bad("missing fluxroute-kind header".into()))?;
    let kind =
        RecordKind::parse(&kind).ok_or_else(|| bad(format!("unknown record kind {kind:?}")))?;
    let db = db.ok_or_else(|| bad("missing db header".into()))?;
    Ok(Record {
        partition,
        offset,
        timestamp_ms: msg.timestamp().to_millis().unwrap_or(0),
        meta: RecordMeta {
            kind,
            db,
            rp: rp.unwrap_or_default(),
        },
        payload: Bytes::copy_from_slice(msg.payload().unwrap_or_default()),
    })
}

#[async_trait]
impl ConsumerGroup for KafkaConsumerGroup {
    fn group(&self) -> &str {
        &self.group
    }

    async fn poll(&self, max: usize, timeout: Duration) -> Result<Vec<Event>, Error> {
        let mut out = Vec::new();
        self.take_events(&mut out);
        let deadline = tokio::time::Instant::now() + timeout;
        while out.len() < max {
            // After the first event, only take what is already there.
            let wait_until = if out.is_empty() {
                deadline
            } else {
                tokio::time::Instant::now()
            };
            let msg = match tokio::time::timeout_at(wait_until, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    self.take_events(&mut out);
                    if out.is_empty() {
                        return Err(Error::unavailable(
                            format!("consuming for group {}", self.group),
                            e,
                        ));
                    }
                    break;
                }
                Ok(Ok(msg)) => msg,
            };
            // Rebalance callbacks that ran inside this recv precede its message.
            self.take_events(&mut out);
            out.push(match decode(&msg) {
                Ok(r) => Event::Record(r),
                Err(reason) => Event::Undecodable {
                    partition: u32::try_from(msg.partition()).unwrap_or(u32::MAX),
                    offset: msg.offset(),
                    reason,
                    payload: Bytes::copy_from_slice(msg.payload().unwrap_or_default()),
                },
            });
        }
        self.take_events(&mut out);
        Ok(out)
    }

    async fn commit(&self, positions: &[(u32, i64)]) -> Result<(), Error> {
        let mut tpl = TopicPartitionList::new();
        for &(p, next) in positions {
            let p = i32::try_from(p)
                .map_err(|_| Error::Setup(format!("partition {p} out of range")))?;
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(next))
                .map_err(|e| Error::unavailable("building commit list", e))?;
        }
        let consumer = Arc::clone(&self.consumer);
        let group = self.group.clone();
        let pending = Arc::clone(&self.commit_pending);
        if pending.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Err(Error::Unavailable {
                context: format!("committing offsets of group {group}"),
                source:
                    "the previous commit has not returned yet (group coordinator not answering)"
                        .into(),
            });
        }
        // Cleared when the call returns, or when it never starts (the closure is dropped).
        let pending = ClearOnDrop(pending);
        let context = format!("committing offsets of group {group}");
        detached(context.clone(), COMMIT_TIMEOUT, move || {
            let _pending = pending;
            consumer
                .commit(&tpl, CommitMode::Sync)
                .map_err(|e| Error::unavailable(context, e))
        })
        .await
    }

    async fn set_paused(&self, paused: bool) -> Result<(), Error> {
        self.consumer
            .context()
            .paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
        let assignment = self.consumer.assignment().map_err(|e| {
            Error::unavailable(format!("reading the assignment of group {}", self.group), e)
        })?;
        if assignment.count() == 0 {
            return Ok(());
        }
        let r = if paused {
            self.consumer.pause(&assignment)
        } else {
            self.consumer.resume(&assignment)
        };
        r.map_err(|e| Error::unavailable(format!("pausing/resuming group {}", self.group), e))
    }

    async fn seek_to_time(&self, since_ms: i64) -> Result<Vec<(u32, i64)>, Error> {
        let consumer = Arc::clone(&self.consumer);
        let group = self.group.clone();
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let unavailable =
                |e| Error::unavailable(format!("seeking group {group} to {since_ms} ms"), e);
            let assignment = consumer.assignment().map_err(unavailable)?;
            let mut query = TopicPartitionList::new();
            for e in assignment.elements() {
                query
                    .add_partition_offset(&topic, e.partition(), Offset::Offset(since_ms))
                    .map_err(unavailable)?;
            }
            let found = consumer
                .offsets_for_times(query, Duration::from_secs(10))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for e in found.elements() {
                let target = match e.offset() {
                    Offset::Offset(o) => o,
                    // No record at or after the time: the end of the partition.
                    _ => {
                        consumer
                            .fetch_watermarks(&topic, e.partition(), Duration::from_secs(5))
                            .map_err(unavailable)?
                            .1
                    }
                };
                consumer
                    .seek(
                        &topic,
                        e.partition(),
                        Offset::Offset(target),
                        Duration::from_secs(10),
                    )
                    .map_err(unavailable)?;
                if let Ok(p) = u32::try_from(e.partition()) {
                    out.push((p, target));
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::Setup(format!("seek task failed: {e}")))?
    }

    async fn lag(&self) -> Result<Vec<(u32, i64)>, Error> {
        let consumer = Arc::clone(&self.consumer);
        let group = self.group.clone();
        tokio::task::spawn_blocking(move || {
            let unavailable =
                |e| Error::unavailable(format!("reading the lag of group {group}"), e);
            let assignment = consumer.assignment().map_err(unavailable)?;
            let committed = consumer
                .committed_offsets(assignment.clone(), Duration::from_secs(5))
                .map_err(unavailable)?;
            let mut out = Vec::new();
            for e in committed.elements() {
                let (_, high) = consumer
                    .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5))
                    .map_err(unavailable)?;
                let low_or_committed = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => {
                        consumer
                            .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(5))
                            .map_err(unavailable)?
                            .0
                    }
                };
                if let Ok(p) = u32::try_from(e.partition()) {
                    out.push((p, (high - low_or_committed).max(0)));
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::Setup(format!("lag task failed: {e}")))?
    }

    async fn committed(&self, partitions: &[u32]) -> Result<Vec<(u32, Option<i64>)>, Error> {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            let p = i32::try_from(p)
                .map_err(|_| Error::Setup(format!("partition {p} out of range")))?;
            tpl.add_partition(&self.topic, p);
        }
        let consumer = Arc::clone(&self.consumer);
        let group = self.group.clone();
        let tpl = tokio::task::spawn_blocking(move || {
            consumer
                .committed_offsets(tpl, Duration::from_secs(10))
                .map_err(|e| {
                    Error::unavailable(format!("reading committed offsets of group {group}"), e)
                })
        })
        .await
        .map_err(|e| Error::Setup(format!("committed task failed: {e}")))??;
        Ok(tpl
            .elements()
            .iter()
            .filter_map(|e| {
                let p = u32::try_from(e.partition()).ok()?;
                let off = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                Some((p, off))
            })
            .collect())
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
