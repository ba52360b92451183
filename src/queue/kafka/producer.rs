//! The producer: idempotent, `acks=all`, a client per queue.

use super::*;
use crate::queue::Appended;

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
        // Write payloads are gzip members already (compressed once at ingest): lz4 on top
        // would cost CPU at both ends for nothing.
        if !settings.properties.contains_key("compression.type") {
            cfg.set("compression.type", "none");
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
        let producer: Producer_ = polled::PolledProducer::create(&cfg, context.clone())
            .map(Arc::new)
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

    async fn enqueue(&self, records: Vec<OutgoingRecord>) -> Result<Appended, Error> {
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
    pub(super) fn current(&self) -> (u64, Producer_) {
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
        match polled::PolledProducer::create(&self.config, self.context.clone()) {
            Ok(fresh) => {
                tracing::warn!(
                    generation = seen + 1,
                    "replacing the Kafka producer after a delivery error"
                );
                *g = (seen + 1, Arc::new(fresh));
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
) -> Result<Appended, Error> {
    {
        let mut pending = Vec::with_capacity(records.len());
        for r in records {
            let partition = i32::try_from(r.partition)
                .map_err(|_| Error::Setup(format!("partition {} out of range", r.partition)))?;
            let rec = polled::Record {
                topic,
                partition,
                key: None,
                payload: &r.payload[..],
                headers: Some(headers(&r.meta)),
            };
            match producer.send(rec) {
                Ok(fut) => pending.push(fut),
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => {
                    return Err(Error::Full("librdkafka producer queue is full".into()));
                }
                Err(e) => return Err(Error::unavailable("producing a record", e)),
            }
        }
        let mut at = Vec::with_capacity(pending.len());
        for fut in pending {
            match fut.await {
                Ok((partition, offset)) => {
                    at.push((u32::try_from(partition).unwrap_or(0), offset));
                }
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)) => {
                    return Err(Error::Timeout(produce_timeout));
                }
                Err(e) => return Err(Error::unavailable("delivering a record", e)),
            }
        }
        Ok(at)
    }
}
