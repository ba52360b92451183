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

/// A fluxroute configuration for a test, built by type and rendered to TOML, so the real
/// parser and validation still run on it:
///
/// ```ignore
/// let toml = Setup::kafka(&broker.bootstrap())
///     .cluster("a", &a.url())
///     .route(&["*"], &["a"])
///     .toml();
/// ```
///
/// Defaults: topic `writes`, 2 partitions, `linger = "1ms"`, the test group timeouts
/// ([`KAFKA_TEST_PROPERTIES`]), `[shutdown] grace = "5s"`, clusters as [`cluster`] makes them.
#[derive(Debug, Clone)]
pub struct Setup {
    queue: QueueSetup,
    partitions: u32,
    /// Whole tables before `[queue]` (`[ingest]`, `[admin]`…).
    sections: Vec<String>,
    /// Lines added to `[queue.kafka]` or `[queue.embedded]`.
    queue_lines: Vec<String>,
    /// Lines added to `[queue.kafka.properties]`.
    properties: Vec<String>,
    grace: Option<String>,
    clusters: Vec<String>,
    routes: Vec<String>,
}

#[derive(Debug, Clone)]
enum QueueSetup {
    Kafka { bootstrap: String, topic: String },
    Embedded { dir: std::path::PathBuf },
}

impl Setup {
    /// On Kafka at `bootstrap`.
    pub fn kafka(bootstrap: &str) -> Setup {
        Setup::new(QueueSetup::Kafka {
            bootstrap: bootstrap.to_owned(),
            topic: "writes".to_owned(),
        })
        .queue_line("linger = \"1ms\"")
    }

    /// On the embedded queue in `dir`.
    pub fn embedded(dir: &std::path::Path) -> Setup {
        Setup::new(QueueSetup::Embedded {
            dir: dir.to_owned(),
        })
    }

    fn new(queue: QueueSetup) -> Setup {
        Setup {
            queue,
            partitions: 2,
            sections: Vec::new(),
            queue_lines: Vec::new(),
            properties: Vec::new(),
            grace: Some("5s".to_owned()),
            clusters: Vec::new(),
            routes: Vec::new(),
        }
    }

    /// The Kafka topic.
    pub fn topic(mut self, name: &str) -> Setup {
        if let QueueSetup::Kafka { topic, .. } = &mut self.queue {
            *topic = name.to_owned();
        }
        self
    }

    /// Partitions of the queue.
    pub fn partitions(mut self, n: u32) -> Setup {
        self.partitions = n;
        self
    }

    /// A line of `[queue.kafka]` / `[queue.embedded]` (`produce_timeout = "2s"`).
    pub fn queue_line(mut self, line: &str) -> Setup {
        self.queue_lines.push(line.to_owned());
        self
    }

    /// A line of `[queue.kafka.properties]` (`"reconnect.backoff.max.ms" = "1000"`).
    pub fn property(mut self, line: &str) -> Setup {
        self.properties.push(line.to_owned());
        self
    }

    /// A whole table, rendered before `[queue]` (`"[ingest]\nenqueue_timeout = \"5s\""`).
    pub fn section(mut self, toml: &str) -> Setup {
        self.sections.push(toml.to_owned());
        self
    }

    /// `[shutdown] grace`; `None` leaves the default.
    pub fn grace(mut self, grace: Option<&str>) -> Setup {
        self.grace = grace.map(str::to_owned);
        self
    }

    /// A v1 cluster at `url` with test-speed health checks ([`cluster`]).
    pub fn cluster(self, name: &str, url: &str) -> Setup {
        self.cluster_with(name, url, "")
    }

    /// As [`Setup::cluster`], with `extra` lines (`standby = "b"`).
    pub fn cluster_with(mut self, name: &str, url: &str, extra: &str) -> Setup {
        self.clusters.push(cluster(name, url, extra));
        self
    }

    /// A `[[clusters]]` entry as written.
    pub fn cluster_toml(mut self, toml: &str) -> Setup {
        self.clusters.push(toml.to_owned());
        self
    }

    /// A route of `databases` to `clusters`.
    pub fn route(mut self, databases: &[&str], clusters: &[&str]) -> Setup {
        let list = |xs: &[&str]| {
            xs.iter()
                .map(|x| format!("{x:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.routes.push(format!(
            "[[routes]]\ndatabases = [{}]\nclusters = [{}]\n",
            list(databases),
            list(clusters)
        ));
        self
    }

    /// The configuration as TOML.
    pub fn toml(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            out.push_str(s.trim_end());
            out.push('\n');
        }
        let lines = self.queue_lines.join("\n");
        match &self.queue {
            QueueSetup::Kafka { bootstrap, topic } => {
                out.push_str(&format!(
                    "[queue]\nbackend = \"kafka\"\n[queue.kafka]\nbrokers = [\"{bootstrap}\"]\n\
                     topic = \"{topic}\"\npartitions = {}\n{lines}\n{KAFKA_TEST_PROPERTIES}{}\n",
                    self.partitions,
                    self.properties.join("\n")
                ));
            }
            QueueSetup::Embedded { dir } => {
                out.push_str(&format!(
                    "[queue]\nbackend = \"embedded\"\n[queue.embedded]\ndir = \"{}\"\n\
                     partitions = {}\n{lines}\n",
                    dir.display(),
                    self.partitions
                ));
            }
        }
        if let Some(grace) = &self.grace {
            out.push_str(&format!("[shutdown]\ngrace = \"{grace}\"\n"));
        }
        for c in &self.clusters {
            out.push_str(c);
        }
        for r in &self.routes {
            out.push_str(r);
        }
        out
    }
}
