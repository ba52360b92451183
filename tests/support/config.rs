//! Pieces of fluxroute configs for tests: a cluster with test-speed health checks, and an
//! ingest-only Kafka setup whose cluster nobody delivers to.

/// A `[[clusters]]` entry for a v1 cluster at `url`, probed every 300 ms and declared down after
/// two failures (so outages show within a second), plus `extra` lines.
pub fn cluster(name: &str, url: &str, extra: &str) -> String {
    cluster_with_timeout(name, url, "2s", extra)
}

/// As [`cluster`], with the write `timeout` given (`"500ms"`, `"1s"`...): for tests of slow
/// clusters.
pub fn cluster_with_timeout(name: &str, url: &str, timeout: &str, extra: &str) -> String {
    format!(
        r#"
[[clusters]]
name = "{name}"
api = "v1"
endpoints = ["{url}"]
timeout = "{timeout}"
batch_linger = "20ms"
health_interval = "300ms"
health_timeout = "250ms"
health_rise = 1
health_fall = 2
{extra}
"#
    )
}

/// `[queue.kafka.properties]` for tests: group timeouts short enough for a test. The test broker
/// holds every JoinGroup for `session.timeout.ms / 2` (README, broker differences), so
/// librdkafka's default of 45 s would make each join wait 22.5 s; 6 s is Kafka's minimum.
pub const KAFKA_TEST_PROPERTIES: &str = r#"[queue.kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
"max.poll.interval.ms" = "10000"
"#;

/// fluxroute on Kafka at `bootstrap` (topic `writes`, `partitions`) that accepts writes for
/// `databases` and routes them to a cluster on a closed port: for tests of the ingest side.
pub fn kafka_ingest_only(bootstrap: &str, partitions: u32, databases: &[&str]) -> String {
    let dbs = databases
        .iter()
        .map(|d| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
[queue]
backend = "kafka"
[queue.kafka]
brokers = ["{bootstrap}"]
topic = "writes"
partitions = {partitions}
{KAFKA_TEST_PROPERTIES}
[[clusters]]
name = "c"
api = "v1"
endpoints = ["http://127.0.0.1:9"]
[[routes]]
databases = [{dbs}]
clusters = ["c"]
"#
    )
}
