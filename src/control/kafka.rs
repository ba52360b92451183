//! Control state on a compacted Kafka topic `<topic>-control` (one partition; key = cluster,
//! value = the cluster's [`ClusterControl`] as JSON). Every instance reads it from the start
//! and follows it, so an action given to any instance reaches all of them, and the latest state
//! per cluster survives restarts (compaction keeps the last value of each key).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::{ClusterControl, Control, ControlStore};
use crate::queue::kafka::polled::{PolledProducer, Record};
use crate::queue::kafka::{ensure_topic_with, KafkaSettings};
use crate::queue::Error;

/// The control topic of a writes topic.
pub fn control_topic(topic: &str) -> String {
    format!("{topic}-control")
}

/// The control topic as a [`ControlStore`].
pub struct KafkaControlStore {
    settings: KafkaSettings,
    topic: String,
    producer: PolledProducer<rdkafka::client::DefaultClientContext>,
}

impl std::fmt::Debug for KafkaControlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaControlStore")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaControlStore {
    /// Creates the compacted control topic when missing.
    ///
    /// # Errors
    /// When the topic cannot be created or the producer cannot be built.
    pub async fn connect(
        settings: &KafkaSettings,
        timeout: Duration,
    ) -> Result<KafkaControlStore, Error> {
        let topic = control_topic(&settings.topic);
        ensure_topic_with(
            settings,
            &topic,
            1,
            &[("cleanup.policy", "compact")],
            timeout,
        )
        .await?;
        let mut cfg = settings.client_config(&[("enable.idempotence", "true"), ("acks", "all")])?;
        cfg.set("linger.ms", "0");
        let producer = PolledProducer::create(&cfg, rdkafka::client::DefaultClientContext)
            .map_err(|e| Error::Setup(format!("creating the control producer: {e}")))?;
        Ok(KafkaControlStore {
            settings: settings.clone(),
            topic,
            producer,
        })
    }

    /// A consumer of the control topic's only partition from `offset`, in no group.
    fn reader(&self, offset: Offset) -> Result<BaseConsumer, Error> {
        let mut cfg = self
            .settings
            .client_config(&[("enable.auto.commit", "false")])?;
        cfg.set(
            "group.id",
            format!("fluxroute-control-reader-{}", uuid::Uuid::new_v4()),
        )
        .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = cfg
            .create()
            .map_err(|e| Error::Setup(format!("creating the control reader: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, 0, offset)
            .map_err(|e| Error::unavailable("building the control assignment", e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| Error::unavailable("assigning the control topic", e))?;
        Ok(consumer)
    }
}

fn decode(msg: &rdkafka::message::BorrowedMessage<'_>) -> Option<(String, ClusterControl)> {
    let key = String::from_utf8(msg.key()?.to_vec()).ok()?;
    let state = serde_json::from_slice(msg.payload()?).ok()?;
    Some((key, state))
}

#[async_trait]
impl ControlStore for KafkaControlStore {
    async fn publish(&self, cluster: &str, state: &ClusterControl) -> Result<(), Error> {
        let value = serde_json::to_vec(state)
            .map_err(|e| Error::Setup(format!("encoding control state: {e}")))?;
        let rec = Record {
            topic: &self.topic,
            partition: 0,
            key: Some(cluster.as_bytes()),
            payload: &value,
            headers: None,
        };
        let delivery = self
            .producer
            .send(rec)
            .map_err(|e| Error::unavailable("publishing control state", e))?;
        delivery
            .await
            .map(|_| ())
            .map_err(|e| Error::unavailable("publishing control state", e))
    }

    async fn load(&self) -> Result<BTreeMap<String, ClusterControl>, Error> {
        let consumer = self.reader(Offset::Beginning)?;
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let (_, high) = consumer
                .fetch_watermarks(&topic, 0, Duration::from_secs(10))
                .map_err(|e| Error::unavailable("reading the control topic's end", e))?;
            let mut out = BTreeMap::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let mut next = 0;
            while next < high {
                if std::time::Instant::now() > deadline {
                    return Err(Error::Timeout(Duration::from_secs(30)));
                }
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(msg)) => {
                        next = msg.offset() + 1;
                        if let Some((k, v)) = decode(&msg) {
                            out.insert(k, v);
                        }
                    }
                    Some(Err(e)) => return Err(Error::unavailable("reading the control topic", e)),
                    None => {}
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::Setup(format!("control load task failed: {e}")))?
    }

    async fn follow(&self, control: Arc<Control>, cancel: CancellationToken) {
        let consumer = match self.reader(Offset::Beginning) {
            Ok(c) => Arc::new(c),
            Err(e) => {
                tracing::error!(error = %e, "cannot follow the control topic; actions from other instances will not apply here");
                return;
            }
        };
        while !cancel.is_cancelled() {
            let c = Arc::clone(&consumer);
            let got = tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                if let Some(Ok(msg)) = c.poll(Duration::from_millis(200)) {
                    out.extend(decode(&msg));
                }
                out
            })
            .await
            .unwrap_or_default();
            for (cluster, state) in got {
                control.apply(&cluster, state);
            }
        }
    }
}
