//! Default values of every optional setting, each with the reason for its value.
//!
//! `config/fluxroute.example.toml` shows the same values; a test keeps them in step.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use super::model::{ClusterApi, Fsync, HttpLimits, LogFormat, QueueBackend, RetentionPolicy};

const fn nz_usize(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => panic!("a NonZeroUsize default is zero"),
    }
}

const fn nz_u32(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => panic!("a NonZeroU32 default is zero"),
    }
}

const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

// [ingest]
/// InfluxDB's own port, on loopback so nothing is exposed until asked for.
pub const INGEST_LISTEN: SocketAddr = loopback(8086);
/// InfluxDB's default `max-body-size`, so clients see the same limit.
pub const MAX_BODY_BYTES: NonZeroUsize = nz_usize(25_000_000);
/// Enough for a large Telegraf fleet; bounds memory at this many bodies in flight.
pub const MAX_CONCURRENT_REQUESTS: NonZeroUsize = nz_usize(256);
/// Below common client timeouts (Telegraf: 5s+), long enough to ride out a queue hiccup.
pub const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Clients retry soon; shedding is meant to be brief.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);
/// A 25 MB body takes well under this on any working link; a slow-loris body cannot hold a
/// write slot longer.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Like common proxies' client header timeout; also how long a kept-alive connection may sit
/// idle, which must outlast a client's flush interval (Telegraf: 10 s) to be reused.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Far above what a fleet of writers keeps open; bounds the memory idle connections can take.
pub const MAX_CONNECTIONS: NonZeroUsize = nz_usize(4096);
/// Room for long tokens and many headers; real clients send well under 2 KiB.
pub const MAX_HEADER_BYTES: NonZeroUsize = nz_usize(64 * 1024);
/// The ops API's limits: a few operators and scrapers.
pub const ADMIN_HTTP: HttpLimits = HttpLimits {
    header_read_timeout: HEADER_READ_TIMEOUT,
    max_connections: nz_usize(256),
    max_header_bytes: MAX_HEADER_BYTES,
};
/// A user without `databases` may write everywhere, as in InfluxDB with an admin user.
pub const USER_DATABASES: &[&str] = &["*"];

// [queue]
/// One machine needs no Kafka; moving to Kafka is a config change.
pub const QUEUE_BACKEND: QueueBackend = QueueBackend::Embedded;
/// Relative to the working directory, beside the other runtime state.
pub const EMBEDDED_DIR: &str = "var/queue";
/// Invariant 1: no 2xx before the write is on disk.
pub const EMBEDDED_FSYNC: Fsync = Fsync::Always;
/// With `fsync = "interval"`: at most this much acknowledged data is at risk on power loss.
pub const EMBEDDED_FSYNC_INTERVAL: Duration = Duration::from_millis(100);
/// Lets two cores drain in parallel while keeping per-series order.
/// Same record cap as the Kafka default: one request splits into records of at most this.
pub const EMBEDDED_MAX_RECORD_BYTES: NonZeroUsize = nz_usize(1_000_000);
/// Never drop undelivered writes unless told to.
pub const RETENTION_POLICY: RetentionPolicy = RetentionPolicy::KeepUntilDelivered;
/// Partitions of the embedded log: enough for concurrent appends and drains on small machines.
pub const EMBEDDED_PARTITIONS: NonZeroU32 = nz_u32(4);
/// A local broker, as in Kafka's quickstart.
pub const KAFKA_BROKERS: &[&str] = &["127.0.0.1:9092"];
/// Names the product; one topic holds every write.
pub const KAFKA_TOPIC: &str = "fluxroute-writes";
/// Room for a dozen router instances to share each cluster's drain.
pub const KAFKA_PARTITIONS: NonZeroU32 = nz_u32(12);
/// Works on a single broker; production sets 3.
pub const KAFKA_REPLICATION_FACTOR: NonZeroU32 = nz_u32(1);
/// Below Kafka's default `message.max.bytes` (1048588) with room for headers.
pub const KAFKA_MAX_RECORD_BYTES: NonZeroUsize = nz_usize(1_000_000);
/// Smallest record sizes are not worth latency; 5ms is librdkafka's own default.
pub const KAFKA_LINGER: Duration = Duration::from_millis(5);
/// Longer than `enqueue_timeout`, so a produce is never abandoned before the client gives up.
pub const KAFKA_PRODUCE_TIMEOUT: Duration = Duration::from_secs(30);
/// Smallest sensible `max_record_bytes`: one record must hold a typical line.
pub const KAFKA_MIN_RECORD_BYTES: usize = 1024;

// [admin]
/// Next to the ingest port, on loopback so it needs no token by default.
pub const ADMIN_LISTEN: SocketAddr = loopback(8087);

// [log]
/// Readable on a terminal; use "json" under a log shipper.
pub const LOG_FORMAT: LogFormat = LogFormat::Text;
/// Startup, config and state changes, without per-request noise.
pub const LOG_LEVEL: &str = "info";

// [shutdown]
/// Time to flush in-flight writes and commit drain positions; below Kubernetes' default 30s+.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

// [query]
/// A dashboard refreshing every 10 s does not notice; a cluster catching up an outage does.
pub const QUERY_MAX_LAG: Duration = Duration::from_secs(10);
/// Time to the answer's first byte; InfluxDB's own query timeout is off by default.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// A healthy drain delivers within a batch linger and a write; an outage is not waited out.
pub const QUERY_AFTER_TIMEOUT: Duration = Duration::from_secs(5);

// [schema]
/// Answers a client as influxd would; a missing database or policy is rare and mistaken.
pub const SCHEMA_ENABLED: bool = true;
/// A new database made directly on a cluster is known within this; drains hint sooner.
pub const SCHEMA_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Far above a usual cluster's databases, a few MB of memory at most.
pub const SCHEMA_MAX_DATABASES: NonZeroUsize = NonZeroUsize::new(10_000).expect("non-zero");
/// A few policies for each of the databases held.
pub const SCHEMA_MAX_RETENTION_POLICIES: NonZeroUsize =
    NonZeroUsize::new(50_000).expect("non-zero");
/// Field types held per cluster: a few hundred bytes each, some tens of MB at most.
pub const SCHEMA_MAX_FIELDS: NonZeroUsize = NonZeroUsize::new(200_000).expect("non-zero");

// [[clusters]]
/// InfluxDB 1.x is the common deployment and the test target.
pub const CLUSTER_API: ClusterApi = ClusterApi::V1;
/// Rides out a restart of `influxd` without moving writes to the standby.
pub const REROUTE_AFTER: Duration = Duration::from_secs(30);
/// InfluxDB's own write timeout is 10s.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);
/// InfluxDB's recommended batch size.
pub const BATCH_MAX_LINES: NonZeroUsize = nz_usize(5000);
/// Well below `max_body_bytes` on the cluster.
pub const BATCH_MAX_BYTES: NonZeroUsize = nz_usize(4_000_000);
/// Small enough for near-real-time dashboards, large enough to fill batches under load.
pub const BATCH_LINGER: Duration = Duration::from_millis(200);
/// Keeps a cluster busy without overloading it; bounds drain memory.
pub const MAX_IN_FLIGHT: NonZeroUsize = nz_usize(8);
/// Telegraf expects its database to exist; creating it avoids dead-lettering the stream.
pub const CREATE_DATABASES: bool = true;
/// 0 = unlimited: replay as fast as the cluster accepts.
pub const CATCHUP_RATE: u64 = 0;
/// Saves network on the usual case; turn off on a fast local link to save CPU.
pub const GZIP: bool = true;
/// Notices an outage within seconds at negligible load.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(5);
/// A healthy `/ping` answers in milliseconds.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Two good probes before trusting a recovered endpoint.
pub const HEALTH_RISE: NonZeroU32 = nz_u32(2);
/// Three failures before declaring an endpoint down, so one blip is not an outage.
pub const HEALTH_FALL: NonZeroU32 = nz_u32(3);

// [[routes]]
/// A route without `retention_policies` matches every retention policy.
pub const ROUTE_RETENTION_POLICIES: &[&str] = &["*"];
/// A route without `measurements` matches every measurement.
pub const ROUTE_MEASUREMENTS: &[&str] = &["*"];
