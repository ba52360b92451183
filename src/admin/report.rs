//! The typed status of a running fluxroute: what `GET /admin/v1/status` serves, what
//! `fluxroute ctl status` reads, and what the status page draws — one set of types on both
//! sides, so a field renamed on one side cannot go unnoticed on the other.
//!
//! A cluster's state comes from its health, its operator control, its reroute and its drain's
//! typed [`DrainStatus`] (published on a `watch` channel); the status page's small charts come
//! from [`History`], samples kept in memory for the last ~15 minutes.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::control::{ClusterControl, RerouteMode};
use crate::drain::core::DrainStatus;

/// How often a history point is taken.
pub const HISTORY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// History points kept per cluster (15 minutes at [`HISTORY_INTERVAL`]).
pub const HISTORY_POINTS: usize = 90;

/// Everything `GET /admin/v1/status` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// fluxroute's version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// The queue.
    pub queue: QueueReport,
    /// Every cluster, in configuration order.
    pub clusters: Vec<ClusterReport>,
    /// Which cluster answers reads of each routed database now.
    #[serde(default)]
    pub reads: Vec<ReadReport>,
}

/// Who answers reads of one database (a route's database name or pattern).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadReport {
    /// The database, as the routes name it.
    pub database: String,
    /// The cluster a read would go to first (`None`: no cluster holds it).
    pub cluster: Option<String>,
    /// Seconds that cluster may be behind, when it is not known to be caught up.
    pub stale_seconds: Option<f64>,
    /// The clusters tried after it, in order.
    pub then: Vec<String>,
}

/// The queue's health.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueReport {
    /// `embedded` or `kafka`.
    pub backend: String,
    /// Whether a write would be taken now.
    pub healthy: bool,
    /// Why not.
    pub error: Option<String>,
}

/// A cluster's state in one word, most telling first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterCondition {
    /// The cluster refused fluxroute's credentials: paused until fixed.
    Misconfigured,
    /// Paused by an operator.
    Paused,
    /// Down, with its writes going to its standby.
    Rerouting,
    /// Taking writes.
    Up,
    /// Not reachable; the queue buffers its writes.
    Down,
}

impl ClusterCondition {
    /// The word, as served.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterCondition::Misconfigured => "misconfigured",
            ClusterCondition::Paused => "paused",
            ClusterCondition::Rerouting => "rerouting",
            ClusterCondition::Up => "up",
            ClusterCondition::Down => "down",
        }
    }

    /// From the facts, most telling first.
    pub fn of(misconfigured: bool, paused: bool, rerouting: bool, up: bool) -> ClusterCondition {
        if misconfigured {
            ClusterCondition::Misconfigured
        } else if paused {
            ClusterCondition::Paused
        } else if rerouting {
            ClusterCondition::Rerouting
        } else if up {
            ClusterCondition::Up
        } else {
            ClusterCondition::Down
        }
    }
}

/// One cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// Its name.
    pub name: String,
    /// Its state in one word.
    pub state: ClusterCondition,
    /// Some endpoint takes writes and the credentials work.
    pub up: bool,
    /// Paused by an operator.
    pub paused: bool,
    /// Why the cluster refused fluxroute's credentials.
    pub misconfigured: Option<String>,
    /// Its standby cluster.
    pub standby: Option<String>,
    /// Its reroute.
    pub reroute: RerouteReport,
    /// Its endpoints.
    pub endpoints: Vec<EndpointReport>,
    /// Records behind the end of the queue.
    pub lag_records: i64,
    /// Seconds behind.
    pub lag_seconds: f64,
    /// Lines written per second, recently.
    pub write_rate_lines_per_second: f64,
    /// Seconds until caught up at the recent rate.
    pub catch_up_eta_seconds: Option<f64>,
    /// Batches dead-lettered since start.
    pub dead_letters: u64,
    /// The drain's own state (absent before it started).
    #[serde(default)]
    pub drain: Option<DrainStatus>,
    /// Recent history, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryPoint>,
    /// What fluxroute knows of its databases and retention policies (absent when the schema
    /// views are off).
    #[serde(default)]
    pub schema: Option<SchemaReport>,
}

/// A cluster's schema view, in short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaReport {
    /// Whether the view is known (the ingest answers from it) or unknown (writes are taken as
    /// they come; a cluster refusal is a dead letter).
    pub known: bool,
    /// Databases held.
    pub databases: usize,
    /// Retention policies held.
    pub retention_policies: usize,
    /// Measurements whose field types are held.
    #[serde(default)]
    pub measurements: usize,
    /// Field types held.
    #[serde(default)]
    pub fields: usize,
    /// Whether every database of the cluster is held (false when the cap cut some off).
    pub complete: bool,
    /// Seconds since the last successful refresh.
    pub age_seconds: Option<f64>,
    /// Schema changes accepted but not yet seen applied on the cluster.
    pub pending_changes: usize,
    /// Why the view is unknown, when it is.
    pub error: Option<String>,
}

/// A cluster's reroute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RerouteReport {
    /// The operator's mode.
    pub mode: RerouteMode,
    /// Writes go to the standby now.
    pub active: bool,
}

/// One endpoint of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointReport {
    /// Its URL.
    pub url: String,
    /// Up by the health checks.
    pub up: bool,
    /// The last failure seen.
    pub last_error: Option<String>,
}

/// One sample of a cluster's history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// When, in ms since the epoch.
    pub at_ms: i64,
    /// Records behind.
    pub lag_records: i64,
    /// Seconds behind.
    pub lag_seconds: f64,
    /// Lines written per second since the sample before.
    pub lines_per_second: f64,
}

/// What an operator action on a cluster (pause, resume, replay, reroute) answers: the cluster's
/// control as it now is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlReport {
    /// The cluster.
    pub cluster: String,
    /// Its operator control.
    pub control: ClusterControl,
}

/// Recent history of every cluster, kept in memory.
#[derive(Debug, Default)]
pub struct History {
    clusters: HashMap<String, Track>,
}

#[derive(Debug, Default)]
struct Track {
    points: VecDeque<HistoryPoint>,
    /// Lines written (counter) at the last sample.
    lines: Option<u64>,
}

impl History {
    /// Adds a sample for `cluster` at `at_ms` with the lines-written counter at `lines`; the
    /// rate is taken against the previous sample.
    pub fn sample(&mut self, cluster: &str, at_ms: i64, lines: u64, lag: (i64, f64)) {
        let track = self.clusters.entry(cluster.to_owned()).or_default();
        let rate = match (track.lines, track.points.back()) {
            (Some(before), Some(last)) if at_ms > last.at_ms => {
                lines.saturating_sub(before) as f64 * 1000.0 / (at_ms - last.at_ms) as f64
            }
            _ => 0.0,
        };
        track.lines = Some(lines);
        if track.points.len() == HISTORY_POINTS {
            track.points.pop_front();
        }
        track.points.push_back(HistoryPoint {
            at_ms,
            lag_records: lag.0,
            lag_seconds: lag.1,
            lines_per_second: rate,
        });
    }

    /// Forgets clusters no longer configured.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.clusters.retain(|name, _| keep(name));
    }

    /// `cluster`'s points, oldest first.
    pub fn points(&self, cluster: &str) -> Vec<HistoryPoint> {
        self.clusters
            .get(cluster)
            .map(|t| t.points.iter().copied().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_the_last_points_with_rates_between_them() {
        let mut h = History::default();
        h.sample("a", 0, 100, (5, 1.0));
        h.sample("a", 10_000, 1_100, (0, 0.0));
        let p = h.points("a");
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].lines_per_second, 0.0,
            "no rate without a sample before"
        );
        assert!((p[1].lines_per_second - 100.0).abs() < 1e-9);
        for i in 2..200 {
            h.sample("a", i * 10_000, 1_100, (0, 0.0));
        }
        let p = h.points("a");
        assert_eq!(p.len(), HISTORY_POINTS);
        assert_eq!(p[0].at_ms, (200 - HISTORY_POINTS as i64) * 10_000);
        h.retain(|c| c != "a");
        assert!(h.points("a").is_empty());
    }

    #[test]
    fn the_condition_names_the_most_telling_state() {
        assert_eq!(
            ClusterCondition::of(true, true, true, true),
            ClusterCondition::Misconfigured
        );
        assert_eq!(
            ClusterCondition::of(false, false, true, false),
            ClusterCondition::Rerouting
        );
        assert_eq!(
            ClusterCondition::of(false, false, false, false),
            ClusterCondition::Down
        );
        let json = serde_json::to_string(&ClusterCondition::Up).expect("serializes");
        assert_eq!(json, "\"up\"");
    }
}
