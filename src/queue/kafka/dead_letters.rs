//! Dead letters on a topic of their own, purged by a group's position.

use super::*;

/// The dead-letter topic of a writes topic.
pub fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}-dead-letters")
}

/// Dead letters on `<topic>-dead-letters`: the lines as payload, the cluster as key, and
/// headers `cluster`, `db`, `rp`, `status`, `reason`, `reason-class`, `sources` (`p:o,…`).
#[derive(Debug)]
pub struct KafkaDeadLetters {
    pub(super) producer: Arc<KafkaProducer>,
    pub(super) topic: String,
    pub(super) settings: KafkaSettings,
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
        let rec = polled::Record {
            topic,
            partition: 0,
            key: Some(letter.cluster.as_bytes()),
            payload: &letter.lines[..],
            headers: Some(headers),
        };
        let fut = producer
            .send(rec)
            .map_err(|e| Error::unavailable("producing a dead letter", e))?;
        fut.await
            .map(|_| ())
            .map_err(|e| Error::unavailable("delivering a dead letter", e))
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
