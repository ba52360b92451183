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
    (contract $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let dir = tempfile::tempdir().unwrap();
            let mut ctx = Ctx::new(embedded(&dir), stringify!($case));
            ctx.deadline = Duration::from_secs(10);
            conformance::contract::$case(ctx).await;
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
    (contract $case:ident $(, #[$attr:meta])*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $case() {
            let broker = Broker::start(Storage::Memory);
            let mut ctx = Ctx::new(kafka(&broker).await, stringify!($case));
            ctx.deadline = Duration::from_secs(60);
            conformance::contract::$case(ctx).await;
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
    embedded_case!(contract seek_to_time);
    embedded_case!(contract seek_past_the_end);
    embedded_case!(seek_before_assignment);
    embedded_case!(paused_from_the_start);
    embedded_case!(pause_only_rebalance_events);
    embedded_case!(dead_letter_paging);
    embedded_case!(contract pause_resume);
    embedded_case!(contract lag_and_positions);
    embedded_case!(contract seeding);
    embedded_case!(contract resume_mid_batch);
    embedded_case!(contract flush_and_health);
    embedded_case!(contract dead_letters);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn control_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut ctx = Ctx::new(embedded(&dir), "control_store");
        ctx.deadline = Duration::from_secs(10);
        let backend = file_control(&dir);
        conformance::contract::control_store(ctx, backend).await;
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
    kafka_case!(contract seek_to_time);
    // nisshi 0.6.0 answers a ListOffsets by timestamp after every record with offset 0 where
    // Kafka answers -1 (the end): README, broker differences. Passes against Kafka semantics
    // only; the broker needs a patch before this case can run here.
    kafka_case!(contract seek_past_the_end, #[ignore = "nisshi 0.6.0 answers offset 0, not the end, for a time after every record"]);
    kafka_case!(seek_before_assignment);
    kafka_case!(paused_from_the_start);
    kafka_case!(pause_only_rebalance_events);
    kafka_case!(dead_letter_paging);
    kafka_case!(contract pause_resume);
    kafka_case!(contract lag_and_positions);
    kafka_case!(contract seeding);
    kafka_case!(contract resume_mid_batch);
    kafka_case!(contract flush_and_health);
    kafka_case!(contract dead_letters);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn control_store() {
        let broker = Broker::start(Storage::Memory);
        let mut ctx = Ctx::new(kafka(&broker).await, "control_store");
        ctx.deadline = Duration::from_secs(60);
        let backend = ControlBackend::Kafka(kafka_settings(&broker));
        conformance::contract::control_store(ctx, backend).await;
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
