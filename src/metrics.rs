//! The Prometheus registry and the metric families of each component.
//!
//! Names follow `fluxroute_<area>_<what>_<unit>`, counters end in `_total`, and labels stay
//! bounded (endpoint, status, outcome) — never a database, measurement or tag value.

use crate::influx::{ReasonClass, RetryClass};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Builds a metric family and registers it; names are static, so failure is a programming error.
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: M) -> M {
    registry
        .register(Box::new(m.clone()))
        .expect("metric names are unique and valid by construction");
    m
}

/// Connection metrics of the HTTP listeners.
#[derive(Clone, Debug)]
pub struct ConnectionMetrics {
    /// Open connections by listener.
    pub open: IntGaugeVec,
    /// Connections closed by the server, by listener and reason.
    pub refused: IntCounterVec,
}

impl ConnectionMetrics {
    /// Creates and registers the connection families.
    pub fn new(registry: &Registry) -> ConnectionMetrics {
        ConnectionMetrics {
            open: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "fluxroute_http_connections",
                        "Open HTTP connections, by listener",
                    ),
                    &["listener"],
                )
                .expect("valid metric"),
            ),
            refused: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "fluxroute_http_connections_closed_total",
                        "Connections the server closed early, by listener and reason",
                    ),
                    &["listener", "reason"],
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// The ingest's metrics.
#[derive(Clone, Debug)]
pub struct IngestMetrics {
    /// Requests by endpoint and status code.
    pub requests: IntCounterVec,
    /// Lines by outcome (`accepted`, `rejected`).
    pub lines: IntCounterVec,
    /// Body bytes received (after decompression).
    pub bytes: IntCounter,
    /// Time from having a valid batch to the queue's durable ack.
    pub enqueue_seconds: HistogramVec,
    /// Whole request time of writes.
    pub request_seconds: Histogram,
    /// Write requests in flight.
    pub in_flight: IntGauge,
}

impl IngestMetrics {
    /// Creates and registers the ingest's families.
    pub fn new(registry: &Registry) -> IngestMetrics {
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ];
        IngestMetrics {
            requests: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "fluxroute_ingest_requests_total",
                        "HTTP requests by endpoint and status",
                    ),
                    &["endpoint", "status"],
                )
                .expect("valid metric"),
            ),
            lines: register(
                registry,
                IntCounterVec::new(
                    Opts::new("fluxroute_ingest_lines_total", "Lines received, by outcome"),
                    &["outcome"],
                )
                .expect("valid metric"),
            ),
            bytes: register(
                registry,
                IntCounter::new(
                    "fluxroute_ingest_bytes_total",
                    "Line protocol bytes received, decompressed",
                )
                .expect("valid metric"),
            ),
            enqueue_seconds: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "fluxroute_ingest_enqueue_duration_seconds",
                        "Time until the queue durably acknowledged a request's records, by outcome",
                    )
                    .buckets(latency_buckets.clone()),
                    &["outcome"],
                )
                .expect("valid metric"),
            ),
            request_seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "fluxroute_ingest_request_duration_seconds",
                        "Write request handling time, body read to answer",
                    )
                    .buckets(latency_buckets),
                )
                .expect("valid metric"),
            ),
            in_flight: register(
                registry,
                IntGauge::new(
                    "fluxroute_ingest_requests_in_flight",
                    "Write requests being handled",
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// The drains' metrics, labelled by cluster (and endpoint, outcome or reason class).
#[derive(Clone, Debug)]
pub struct DrainMetrics {
    /// Lines written, by cluster.
    pub lines_written: IntCounterVec,
    /// Batches finished, by cluster and outcome (`written`, `dead_lettered`).
    pub batches: IntCounterVec,
    /// Write request latency, by cluster.
    pub write_seconds: HistogramVec,
    /// Write attempts retried, by cluster and reason class.
    pub retries: IntCounterVec,
    /// Dead-lettered batches, by cluster and reason class.
    pub dead_letters: IntCounterVec,
    /// Dead-lettered lines, by cluster and reason class.
    pub dead_letter_lines: IntCounterVec,
    /// 1 while the cluster can be written to.
    pub cluster_up: IntGaugeVec,
    /// 1 while the cluster is paused because it refused our credentials.
    pub cluster_misconfigured: IntGaugeVec,
    /// Per endpoint: 1 when Up.
    pub endpoint_up: IntGaugeVec,
    /// Records in the queue not yet committed by the cluster's group.
    pub lag_records: IntGaugeVec,
    /// Age of the oldest record not yet written to the cluster.
    pub lag_seconds: prometheus::GaugeVec,
    /// 1 while the cluster's writes are rerouted to its standby.
    pub reroute_active: IntGaugeVec,
    /// Records the cluster's group committed past (its progress through the queue).
    pub records_committed: IntCounterVec,
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

impl DrainMetrics {
    /// Creates and registers the drains' families.
    pub fn new(registry: &Registry) -> DrainMetrics {
        DrainMetrics {
            lines_written: counter_vec(
                registry,
                "fluxroute_drain_lines_written_total",
                "Lines written to a cluster",
                &["cluster"],
            ),
            batches: counter_vec(
                registry,
                "fluxroute_drain_batches_total",
                "Batches finished, by outcome",
                &["cluster", "outcome"],
            ),
            write_seconds: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "fluxroute_drain_write_duration_seconds",
                        "Write request latency to a cluster",
                    )
                    .buckets(vec![
                        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    ]),
                    &["cluster"],
                )
                .expect("valid metric"),
            ),
            retries: counter_vec(
                registry,
                "fluxroute_drain_retries_total",
                "Write attempts retried, by reason class",
                &["cluster", "reason"],
            ),
            dead_letters: counter_vec(
                registry,
                "fluxroute_drain_dead_letters_total",
                "Batches dead-lettered, by reason class",
                &["cluster", "reason"],
            ),
            dead_letter_lines: counter_vec(
                registry,
                "fluxroute_drain_dead_letter_lines_total",
                "Lines dead-lettered, by reason class",
                &["cluster", "reason"],
            ),
            cluster_up: gauge_vec(
                registry,
                "fluxroute_cluster_up",
                "1 while the cluster can be written to",
                &["cluster"],
            ),
            cluster_misconfigured: gauge_vec(
                registry,
                "fluxroute_cluster_misconfigured",
                "1 while the cluster is paused because it refused fluxroute's credentials",
                &["cluster"],
            ),
            endpoint_up: gauge_vec(
                registry,
                "fluxroute_cluster_endpoint_up",
                "1 while the endpoint is Up",
                &["cluster", "endpoint"],
            ),
            lag_records: gauge_vec(
                registry,
                "fluxroute_drain_lag_records",
                "Records not yet committed by the cluster's consumer group",
                &["cluster"],
            ),
            records_committed: counter_vec(
                registry,
                "fluxroute_drain_records_committed_total",
                "Queue records the cluster's consumer group committed past",
                &["cluster"],
            ),
            reroute_active: gauge_vec(
                registry,
                "fluxroute_cluster_reroute_active",
                "1 while the cluster's writes are rerouted to its standby",
                &["cluster"],
            ),
            lag_seconds: register(
                registry,
                prometheus::GaugeVec::new(
                    Opts::new(
                        "fluxroute_drain_lag_seconds",
                        "Age of the oldest record not yet written to the cluster",
                    ),
                    &["cluster"],
                )
                .expect("valid metric"),
            ),
        }
    }

    /// Creates `cluster`'s counter series at 0 — every reason and outcome class — so that
    /// `increase()` and `rate()` see a first event (a series that appears at 5,000 reads as
    /// no increase).
    pub fn start_cluster(&self, cluster: &str) {
        self.lines_written.with_label_values(&[cluster]);
        self.records_committed.with_label_values(&[cluster]);
        for outcome in ["written", "dead_lettered"] {
            self.batches.with_label_values(&[cluster, outcome]);
        }
        for class in ReasonClass::ALL {
            self.dead_letters
                .with_label_values(&[cluster, class.as_str()]);
            self.dead_letter_lines
                .with_label_values(&[cluster, class.as_str()]);
        }
        for class in RetryClass::ALL {
            self.retries.with_label_values(&[cluster, class.as_str()]);
        }
    }
}

/// Registers process metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// ...) and `fluxroute_build_info{version}`.
pub fn register_process(registry: &Registry) {
    #[cfg(target_os = "linux")]
    if let Err(e) = registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    )) {
        tracing::warn!(error = %e, "process metrics unavailable");
    }
    let info = register(
        registry,
        IntGaugeVec::new(
            Opts::new("fluxroute_build_info", "Always 1; the version is a label"),
            &["version"],
        )
        .expect("valid metric"),
    );
    info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
}

/// The queue's own metrics (the embedded log's storage; Kafka's are librdkafka's).
#[derive(Clone, Debug)]
pub struct QueueMetrics {
    /// Bytes of records held (embedded: keys plus values).
    pub stored_bytes: IntGauge,
    /// Records held.
    pub records: IntGauge,
    /// Age of the oldest record held.
    pub oldest_record_age_seconds: prometheus::Gauge,
    /// Records dropped by `bounded` retention before delivery.
    pub dropped_records: IntCounter,
    /// The disk budget (`max_bytes`; 0 = unlimited).
    pub budget_bytes: IntGauge,
}

impl QueueMetrics {
    /// Creates and registers the queue's families.
    pub fn new(registry: &Registry) -> QueueMetrics {
        QueueMetrics {
            stored_bytes: register(
                registry,
                IntGauge::new(
                    "fluxroute_queue_stored_bytes",
                    "Bytes of records the embedded queue holds",
                )
                .expect("valid metric"),
            ),
            records: register(
                registry,
                IntGauge::new(
                    "fluxroute_queue_records",
                    "Records the embedded queue holds",
                )
                .expect("valid metric"),
            ),
            oldest_record_age_seconds: register(
                registry,
                prometheus::Gauge::new(
                    "fluxroute_queue_oldest_record_age_seconds",
                    "Age of the oldest record the embedded queue holds",
                )
                .expect("valid metric"),
            ),
            dropped_records: register(
                registry,
                IntCounter::new(
                    "fluxroute_queue_retention_dropped_records_total",
                    "Records the embedded queue dropped undelivered under bounded retention",
                )
                .expect("valid metric"),
            ),
            budget_bytes: register(
                registry,
                IntGauge::new(
                    "fluxroute_queue_budget_bytes",
                    "The embedded queue's disk budget (0 = unlimited)",
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// What librdkafka's statistics say about the Kafka producer (refreshed every second).
#[derive(Clone, Debug)]
pub struct KafkaClientMetrics {
    /// Records waiting in the producer's queue (not yet acknowledged by the brokers).
    pub producer_queue_messages: IntGauge,
    /// Bytes of those records.
    pub producer_queue_bytes: IntGauge,
    /// The queue's capacity in records.
    pub producer_queue_max_messages: IntGauge,
    /// Average round trip to each broker over the last window.
    pub broker_rtt_seconds: prometheus::GaugeVec,
}

impl KafkaClientMetrics {
    /// Creates and registers the families.
    pub fn new(registry: &Registry) -> KafkaClientMetrics {
        KafkaClientMetrics {
            producer_queue_messages: register(
                registry,
                IntGauge::new(
                    "fluxroute_kafka_producer_queue_messages",
                    "Records in the Kafka producer's queue, not yet acknowledged (librdkafka msg_cnt)",
                )
                .expect("valid metric"),
            ),
            producer_queue_bytes: register(
                registry,
                IntGauge::new(
                    "fluxroute_kafka_producer_queue_bytes",
                    "Bytes of records in the Kafka producer's queue (librdkafka msg_size)",
                )
                .expect("valid metric"),
            ),
            producer_queue_max_messages: register(
                registry,
                IntGauge::new(
                    "fluxroute_kafka_producer_queue_max_messages",
                    "Capacity of the Kafka producer's queue in records (librdkafka msg_max)",
                )
                .expect("valid metric"),
            ),
            broker_rtt_seconds: register(
                registry,
                prometheus::GaugeVec::new(
                    Opts::new(
                        "fluxroute_kafka_broker_rtt_seconds",
                        "Average request round trip to each broker over librdkafka's last statistics window",
                    ),
                    &["broker"],
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// Renders every registered family in Prometheus' text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buf) {
        tracing::warn!(error = %e, "encoding metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_render_with_their_names() {
        let r = Registry::new();
        let m = IngestMetrics::new(&r);
        m.requests.with_label_values(&["write", "204"]).inc();
        m.lines.with_label_values(&["accepted"]).inc_by(5);
        let text = render(&r);
        assert!(
            text.contains("fluxroute_ingest_requests_total{endpoint=\"write\",status=\"204\"} 1")
        );
        assert!(text.contains("fluxroute_ingest_lines_total{outcome=\"accepted\"} 5"));
    }
}

/// The read path's metrics (`/query` reads routed to clusters), labelled by cluster.
#[derive(Clone, Debug)]
pub struct QueryMetrics {
    /// Reads answered, by cluster and outcome (`ok`, `client_error`; a failed attempt counts
    /// in `failovers`).
    pub answered: IntCounterVec,
    /// Attempts that failed (no answer or 5xx) and moved the read on, by the cluster that failed.
    pub failovers: IntCounterVec,
    /// Reads answered by a cluster not known to be caught up, by cluster.
    pub stale: IntCounterVec,
    /// Reads no cluster could answer.
    pub unanswered: IntCounter,
    /// Time until the answering cluster's head arrived.
    pub seconds: Histogram,
}

impl QueryMetrics {
    /// Creates and registers the read path's families.
    pub fn new(registry: &Registry) -> QueryMetrics {
        QueryMetrics {
            answered: counter_vec(
                registry,
                "fluxroute_queries_total",
                "Reads answered by a cluster, by cluster and outcome",
                &["cluster", "outcome"],
            ),
            failovers: counter_vec(
                registry,
                "fluxroute_query_failovers_total",
                "Read attempts that failed over to the next cluster, by the cluster that failed",
                &["cluster"],
            ),
            stale: counter_vec(
                registry,
                "fluxroute_query_stale_total",
                "Reads answered by a cluster not known to be caught up, by cluster",
                &["cluster"],
            ),
            unanswered: register(
                registry,
                IntCounter::new(
                    "fluxroute_query_unanswered_total",
                    "Reads no cluster could answer",
                )
                .expect("valid metric"),
            ),
            seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "fluxroute_query_duration_seconds",
                        "Time until the answering cluster's response head arrived",
                    )
                    .buckets(vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0,
                    ]),
                )
                .expect("valid metric"),
            ),
        }
    }
}

/// The schema views' metrics (what fluxroute knows of each cluster's databases and retention
/// policies, and the answers it gives from them).
#[derive(Clone, Debug)]
pub struct SchemaMetrics {
    /// Databases held in a cluster's view, by cluster.
    pub databases: IntGaugeVec,
    /// Retention policies held in a cluster's view, by cluster.
    pub retention_policies: IntGaugeVec,
    /// Field types held in a cluster's view after its last refresh, by cluster.
    pub fields: IntGaugeVec,
    /// Databases, retention policies and field types a refresh found beyond the caps and did
    /// not hold, by cluster and kind (`database`, `retention_policy`, `field`).
    pub dropped: IntCounterVec,
    /// Refreshes of a cluster's view, by cluster and outcome (`ok`, `error`).
    pub refreshes: IntCounterVec,
    /// Writes answered from the views, by answer (`database_not_found`,
    /// `retention_policy_not_found`, `beyond_retention`, `field_type_conflict`: a field type
    /// conflict decided with the clusters' stored field types known).
    pub answers: IntCounterVec,
}

impl SchemaMetrics {
    /// Every answer label, for series that exist at 0 from start-up.
    pub const ANSWERS: [&'static str; 4] = [
        "database_not_found",
        "retention_policy_not_found",
        "beyond_retention",
        "field_type_conflict",
    ];

    /// Creates and registers the schema families.
    pub fn new(registry: &Registry) -> SchemaMetrics {
        let m = SchemaMetrics {
            databases: gauge_vec(
                registry,
                "fluxroute_schema_databases",
                "Databases held in a cluster's schema view",
                &["cluster"],
            ),
            retention_policies: gauge_vec(
                registry,
                "fluxroute_schema_retention_policies",
                "Retention policies held in a cluster's schema view",
                &["cluster"],
            ),
            fields: gauge_vec(
                registry,
                "fluxroute_schema_fields",
                "Field types held in a cluster's schema view after its last refresh",
                &["cluster"],
            ),
            dropped: counter_vec(
                registry,
                "fluxroute_schema_dropped_total",
                "Databases, retention policies and field types beyond the caps, not held in the view",
                &["cluster", "kind"],
            ),
            refreshes: counter_vec(
                registry,
                "fluxroute_schema_refreshes_total",
                "Refreshes of a cluster's schema view, by outcome",
                &["cluster", "outcome"],
            ),
            answers: counter_vec(
                registry,
                "fluxroute_schema_answers_total",
                "Writes answered from the schema views, by answer",
                &["answer"],
            ),
        };
        for a in SchemaMetrics::ANSWERS {
            m.answers.with_label_values(&[a]);
        }
        m
    }

    /// Makes a cluster's series exist at 0.
    pub fn start_cluster(&self, cluster: &str) {
        self.databases.with_label_values(&[cluster]);
        self.retention_policies.with_label_values(&[cluster]);
        self.fields.with_label_values(&[cluster]);
        for kind in ["database", "retention_policy", "field"] {
            self.dropped.with_label_values(&[cluster, kind]);
        }
        for outcome in ["ok", "error"] {
            self.refreshes.with_label_values(&[cluster, outcome]);
        }
    }
}
