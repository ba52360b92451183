//! A librdkafka producer with a polling thread that sleeps while there is nothing to do.
//!
//! rdkafka's `ThreadedProducer` (under its `FutureProducer`) polls in a loop of 100 ms `poll`
//! calls. Each call hands librdkafka its remaining time truncated to whole milliseconds, so the
//! last fraction of a millisecond of every call is polled with a zero timeout, over and over,
//! until the deadline passes: a busy wait of about 0.6 ms in every 100 ms, per producer, idle
//! or not. fluxroute has two producers (writes and control topic): measured 35 ticks in 20 s
//! (1.75 % of a core) on an idle router, most of its idle CPU, and about 0.1 core-s per million
//! lines at the Kafka drain's rate on the bench machine.
//!
//! Here each poll asks for a whole number of milliseconds plus a few microseconds: librdkafka
//! waits the whole milliseconds, wakes past the deadline (a timed wait ends at or after its
//! time), and the call returns without a zero-timeout round. (An event that ends a wait early
//! leaves a fraction of a millisecond to the next wait, so a busy producer can still spin once
//! per call, under a millisecond; an idle one does not.) Delivery reports resolve a oneshot per
//! record, as `FutureProducer`'s do.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::client::{Client, OAuthToken};
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Message as _, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use tokio::sync::oneshot;

/// How long one poll of the polling thread may wait: whole milliseconds plus a margin below a
/// timed wait's usual lateness (Linux's default timer slack alone is 50 µs), so that the call
/// ends with its first wait. Also the longest a drop waits for the thread.
const POLL: Duration = Duration::from_micros(100_020);

/// Where a produced record landed: (partition, offset).
pub(crate) type Delivered = Result<(i32, i64), KafkaError>;

/// One record to produce.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    /// Topic.
    pub(crate) topic: &'a str,
    /// Partition.
    pub(crate) partition: i32,
    /// Key, if any.
    pub(crate) key: Option<&'a [u8]>,
    /// Value.
    pub(crate) payload: &'a [u8],
    /// Headers, if any.
    pub(crate) headers: Option<OwnedHeaders>,
}

/// The client context of a [`PolledProducer`]: `C`'s, plus delivery reports to oneshots.
pub(crate) struct Delivering<C>(C);

impl<C: ClientContext> ClientContext for Delivering<C> {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = C::ENABLE_REFRESH_OAUTH_TOKEN;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.0.log(level, fac, log_message);
    }

    fn stats(&self, statistics: Statistics) {
        self.0.stats(statistics);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.0.stats_raw(statistics);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.0.error(error, reason);
    }

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.0.generate_oauth_token(oauthbearer_config)
    }
}

impl<C: ClientContext + 'static> ProducerContext for Delivering<C> {
    type DeliveryOpaque = Box<oneshot::Sender<Delivered>>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        let delivered = match result {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.clone()),
        };
        // The sender may have stopped waiting (its request was dropped): nothing to tell.
        let _ = reply.send(delivered);
    }
}

/// A librdkafka producer and the thread that polls it for delivery reports, statistics and
/// errors. Dropping it stops the thread (within [`POLL`]) and then the producer, which purges
/// what was not delivered: those records' deliveries resolve with an error.
pub(crate) struct PolledProducer<C: ClientContext + 'static> {
    producer: Arc<BaseProducer<Delivering<C>>>,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
}

impl<C: ClientContext + 'static> PolledProducer<C> {
    /// Creates the producer from `config` and starts its polling thread.
    ///
    /// # Errors
    /// librdkafka's, for a configuration it refuses; or the thread not starting.
    pub(crate) fn create(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let producer = Arc::new(BaseProducer::from_config_and_context(
            config,
            Delivering(context),
        )?);
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let producer = Arc::clone(&producer);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("kafka-producer-poll".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        producer.poll(POLL);
                    }
                })
                .map_err(|e| KafkaError::ClientCreation(format!("starting its poll thread: {e}")))?
        };
        Ok(PolledProducer {
            producer,
            stop,
            poller: Some(poller),
        })
    }

    /// Queues `record` for sending; the future it returns resolves once the broker acknowledged
    /// it or librdkafka gave up on it (`Canceled` when the producer was dropped first).
    ///
    /// # Errors
    /// librdkafka's refusal to queue it (a full queue: `QueueFull`; a record too large).
    pub(crate) fn send(
        &self,
        record: Record<'_>,
    ) -> Result<impl std::future::Future<Output = Delivered>, KafkaError> {
        let (tx, rx) = oneshot::channel();
        let rec = BaseRecord {
            topic: record.topic,
            partition: Some(record.partition),
            payload: Some(record.payload),
            key: record.key,
            timestamp: None,
            headers: record.headers,
            delivery_opaque: Box::new(tx),
        };
        self.producer.send(rec).map_err(|(e, _)| e)?;
        Ok(async move { rx.await.unwrap_or(Err(KafkaError::Canceled)) })
    }

    /// The librdkafka client (metadata, watermarks).
    pub(crate) fn client(&self) -> &Client<Delivering<C>> {
        self.producer.client()
    }

    /// Waits until every queued record is delivered or `timeout` passes.
    ///
    /// # Errors
    /// A timeout, or librdkafka's error.
    pub(crate) fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        self.producer.flush(timeout)
    }
}

impl<C: ClientContext + 'static> Drop for PolledProducer<C> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.poller.take() {
            // A poll thread that panicked has nothing left to clean up.
            let _ = t.join();
        }
    }
}

impl<C: ClientContext + 'static> std::fmt::Debug for PolledProducer<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolledProducer").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    /// The polling thread delivers reports without any produce call polling: a record for a
    /// broker that is not there times out, and its delivery says so.
    #[tokio::test]
    async fn delivery_reports_arrive_from_the_polling_thread() {
        // A loopback port with nothing listening (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", format!("127.0.0.1:{port}"))
            .set("message.timeout.ms", "200")
            .set("log_level", "0");
        let p = PolledProducer::create(&cfg, DefaultClientContext).unwrap();
        let delivery = p
            .send(Record {
                topic: "t",
                partition: 0,
                key: Some(b"k"),
                payload: b"m v=1 1\n",
                headers: None,
            })
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(30), delivery)
            .await
            .expect("a delivery report within 30 s");
        assert_eq!(
            got.err().and_then(|e| e.rdkafka_error_code()),
            Some(RDKafkaErrorCode::MessageTimedOut)
        );
        // Dropping stops the thread: this returns (the test would hang otherwise).
        drop(p);
    }
}
