//! fluxroute — a fault-tolerant InfluxDB write router.
//!
//! Clients write line protocol to fluxroute exactly as to InfluxDB. Each accepted write is made
//! durable in a queue (Kafka across machines, an embedded log on one), and one consumer group per
//! InfluxDB cluster drains the queue into that cluster.
//!
//! ```text
//!  client (Telegraf, client libraries, influx CLI, curl)
//!    │  POST /write?db=&rp=&precision=     POST /api/v2/write?org=&bucket=&precision=
//!    ▼
//!  ingest ── auth, limits, gzip, parse + validate, timestamps fixed, split by partition,
//!    │       each record compressed once (a gzip member the drains pass on)
//!    │  produce, wait for the queue's durable ack, then answer 204 (or InfluxDB's own error)
//!    ▼
//!  queue  ── topic "writes": records of line protocol (gzip), partitioned by series key
//!    │  one consumer group per cluster: each cluster has its own committed position
//!    ▼
//!  drain[cluster] ── batch by (db, rp), write to a healthy endpoint, commit after success
//!    ▼
//!  InfluxDB clusters
//! ```
//!
//! Modules: [`config`] (TOML → validated [`config::Config`]), [`line_protocol`] (validating
//! scanner), [`ingest`] (HTTP front), [`queue`] (producer / consumer-group traits and backends),
//! [`route`] (routing rules), [`schema`] (what each cluster holds: databases, retention
//! policies), [`metrics`], [`admin`] (ops API), [`serve`] (the HTTP server under
//! both listeners: connection limits, head deadlines, [`tls`]), [`app`] (composition root),
//! [`cli`], [`loadgen`].
//!
//! Invariants: a 2xx means the lines are durable in the queue; every acknowledged line reaches
//! every cluster its route names or the dead-letter topic; delivery is at-least-once and replays
//! are harmless because the ingest fixes every line's timestamp; a drain commits an offset only
//! after every record up to it is written; memory is bounded by configuration, not backlog.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod drain;
pub mod gzip;
pub mod health;
pub mod influx;
pub mod ingest;
pub mod line_protocol;
pub mod loadgen;
pub mod metrics;
pub mod query;
pub mod queue;
pub mod route;
pub mod schema;
pub mod serve;
pub mod shutdown;
pub mod tls;
