//! One conformance suite, both backends: every case in `tests/conformance` runs against the
//! embedded log (a fresh store per case) and against Kafka (a real Kafka-protocol broker per
//! case).
#![allow(clippy::unwrap_used)]

mod conformance;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use conformance::Ctx;
use fluxroute::queue::embedded::{EmbeddedQueue, EmbeddedSettings, FsyncPolicy, RetentionSettings};
use fluxroute::queue::kafka::{KafkaQueue, KafkaSettings};
use fluxroute::queue::Queue;
use support::broker::{Broker, Storage};

fn embedded(dir: &tempfile::TempDir) -> Arc<dyn Queue> {
    Arc::new(
        EmbeddedQueue::open(EmbeddedSettings {
            dir: dir.path().join("queue"),
            fsync: FsyncPolicy::Always,
            partitions: 4,
            max_record_bytes: 1024 * 1024,
            retention: RetentionSettings::default(),
        })
        .expect("open embedded queue"),
    )
}

async fn kafka(broker: &Broker) -> Arc<dyn Queue> {
    let settings = KafkaSettings {
        brokers: vec![broker.bootstrap()],
        topic: "conformance".into(),
        partitions: 4,
        replication_factor: 1,
        max_record_bytes: 1024 * 1024,
        linger: Duration::from_millis(1),
        produce_timeout: Duration::from_secs(10),
        // Group timeouts for tests: the broker holds each JoinGroup for session.timeout.ms / 2.
        properties: BTreeMap::from(
            [
                ("session.timeout.ms", "6000"),
                ("heartbeat.interval.ms", "1000"),
                ("max.poll.interval.ms", "10000"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        ),
        client_metrics: None,
    };
    Arc::new(
        KafkaQueue::connect(settings, Duration::from_secs(30))
            .await
            .expect("connect to the broker"),
    )
}

macro_rules! embedded_case {
    ($case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let dir = tempfile::tempdir().unwrap();
            let mut ctx = Ctx::new(embedded(&dir), stringify!($case));
            ctx.deadline = Duration::from_secs(10);
            conformance::$case(ctx).await;
        }
    };
}

macro_rules! kafka_case {
    ($case:ident $(, #[$attr:meta])*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $case() {
            let broker = Broker::start(Storage::Memory);
            let mut ctx = Ctx::new(kafka(&broker).await, stringify!($case));
            ctx.deadline = Duration::from_secs(60);
            conformance::$case(ctx).await;
        }
    };
}

mod embedded_backend {
    use super::*;
    embedded_case!(per_partition_order);
    embedded_case!(resume_from_committed);
    embedded_case!(redelivery_of_uncommitted);
    embedded_case!(independent_groups);
    embedded_case!(ddl_records);
    embedded_case!(large_records);
}

mod kafka_backend {
    use super::*;
    kafka_case!(per_partition_order);
    kafka_case!(redelivery_of_uncommitted);
    kafka_case!(ddl_records);
    kafka_case!(large_records);
    kafka_case!(resume_from_committed);
    kafka_case!(independent_groups);
}

/// The whole suite on one shared store, as on one shared Kafka topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_all_cases_on_one_store() {
    let dir = tempfile::tempdir().unwrap();
    conformance::all(embedded(&dir)).await;
}
