//! Consumer groups: explicit commits, pausing inside the rebalance callback, decoding records.

use super::*;

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

    async fn seek(&self, positions: &[(u32, i64)]) -> Result<(), Error> {
        let consumer = Arc::clone(&self.consumer);
        let group = self.group.clone();
        let topic = self.topic.clone();
        let positions = positions.to_vec();
        tokio::task::spawn_blocking(move || {
            for (p, offset) in positions {
                let partition = i32::try_from(p)
                    .map_err(|_| Error::Setup(format!("partition {p} out of range")))?;
                consumer
                    .seek(
                        &topic,
                        partition,
                        Offset::Offset(offset),
                        Duration::from_secs(10),
                    )
                    .map_err(|e| {
                        Error::unavailable(
                            format!("seeking group {group} partition {p} to offset {offset}"),
                            e,
                        )
                    })?;
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Setup(format!("seek task failed: {e}")))?
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
