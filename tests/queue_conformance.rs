//! One conformance suite, both backends: every case in `tests/conformance` runs against the
//! embedded log (a fresh store per case) and against Kafka (a real Kafka-protocol broker per
//! case).
#![allow(clippy::unwrap_used)]

mod conformance;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use conformance::contract::ControlBackend;
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

fn kafka_settings(broker: &Broker) -> KafkaSettings {
    KafkaSettings {
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
    }
}

/// The embedded backend's control store where `fluxroute serve` keeps it: beside the queue's
/// directory, named after it (`app.rs`, `open_control`).
fn file_control(dir: &tempfile::TempDir) -> ControlBackend {
    ControlBackend::File(dir.path().join("queue-control.json"))
}

async fn kafka(broker: &Broker) -> Arc<dyn Queue> {
    Arc::new(
        KafkaQueue::connect(kafka_settings(broker), Duration::from_secs(30))
            .await
            .expect("connect to the broker"),
    )
}

/// A fresh embedded store per case (the directory lives as long as the case).
async fn open_embedded() -> (Arc<dyn Queue>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (embedded(&dir), dir)
}

/// A fresh broker per case (it stops when the case ends).
async fn open_kafka() -> (Arc<dyn Queue>, Broker) {
    let broker = Broker::start(Storage::Memory);
    (kafka(&broker).await, broker)
}

/// One test per case and backend: `case!(opener, deadline; name)` runs `conformance::name` on a
/// queue of its own.
macro_rules! case {
    ($open:ident, $deadline:expr; $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let (queue, _keep) = $open().await;
            let mut ctx = Ctx::new(queue, stringify!($case));
            ctx.deadline = $deadline;
            conformance::$case(ctx).await;
        }
    };
}

macro_rules! embedded_case {
    ($case:ident) => {
        case!(open_embedded, Duration::from_secs(10); $case);
    };
}

/// Kafka rebalances take seconds (the broker holds each JoinGroup for session.timeout.ms / 2).
macro_rules! kafka_case {
    ($case:ident) => {
        case!(open_kafka, Duration::from_secs(60); $case);
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
    embedded_case!(seek_to_time);
    embedded_case!(seek_past_the_end);
    embedded_case!(seek_before_assignment);
    embedded_case!(paused_from_the_start);
    embedded_case!(pause_only_rebalance_events);
    embedded_case!(dead_letter_paging);
    embedded_case!(pause_resume);
    embedded_case!(lag_and_positions);
    embedded_case!(seeding);
    embedded_case!(resume_mid_batch);
    embedded_case!(flush_and_health);
    embedded_case!(dead_letters);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn control_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = Ctx::new(embedded(&dir), "control_store");
        ctx.deadline = Duration::from_secs(10);
        let backend = file_control(&dir);
        conformance::contract::control_store(ctx, backend).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_producers() {
        let dir = tempfile::tempdir().unwrap();
        let queue = embedded(&dir);
        let mut ctx = Ctx::new(Arc::clone(&queue), "concurrent_producers");
        ctx.deadline = Duration::from_secs(30);
        let producers = vec![Arc::clone(&queue), Arc::clone(&queue), queue];
        conformance::contract::concurrent_producers(ctx, producers).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn control_updates() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = Ctx::new(embedded(&dir), "control_updates");
        ctx.deadline = Duration::from_secs(10);
        conformance::control_updates(ctx, file_control(&dir)).await;
    }
}

mod kafka_backend {
    use super::*;
    kafka_case!(per_partition_order);
    kafka_case!(redelivery_of_uncommitted);
    kafka_case!(ddl_records);
    kafka_case!(large_records);
    kafka_case!(resume_from_committed);
    kafka_case!(independent_groups);
    kafka_case!(seek_to_time);
    kafka_case!(seek_past_the_end);
    kafka_case!(seek_before_assignment);
    kafka_case!(paused_from_the_start);
    kafka_case!(pause_only_rebalance_events);
    kafka_case!(dead_letter_paging);
    kafka_case!(pause_resume);
    kafka_case!(lag_and_positions);
    kafka_case!(seeding);
    kafka_case!(resume_mid_batch);
    kafka_case!(flush_and_health);
    kafka_case!(dead_letters);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn control_store() {
        let broker = Broker::start(Storage::Memory);
        let mut ctx = Ctx::new(kafka(&broker).await, "control_store");
        ctx.deadline = Duration::from_secs(60);
        let backend = ControlBackend::Kafka(kafka_settings(&broker));
        conformance::contract::control_store(ctx, backend).await;
    }

    /// Three producers, as three routers: each its own client and connections.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_producers() {
        let broker = Broker::start(Storage::Memory);
        let queue = kafka(&broker).await;
        let mut ctx = Ctx::new(Arc::clone(&queue), "concurrent_producers");
        ctx.deadline = Duration::from_secs(60);
        let producers = vec![queue, kafka(&broker).await, kafka(&broker).await];
        conformance::contract::concurrent_producers(ctx, producers).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn control_updates() {
        let broker = Broker::start(Storage::Memory);
        let mut ctx = Ctx::new(kafka(&broker).await, "control_updates");
        ctx.deadline = Duration::from_secs(60);
        let backend = ControlBackend::Kafka(kafka_settings(&broker));
        conformance::control_updates(ctx, backend).await;
    }
}

/// The whole suite on one shared store, as on one shared Kafka topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_all_cases_on_one_store() {
    let dir = tempfile::tempdir().unwrap();
    conformance::all(embedded(&dir)).await;
}
