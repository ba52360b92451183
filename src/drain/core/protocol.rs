//! What the drain's core and its driver say to each other: the inputs it takes, the commands it
//! answers, how to read next, and the status it shows.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::batch::Batch;
use crate::control::ClusterControl;
use crate::queue::{DeadLetter, Event};

/// Names one task the driver runs beside the loop (a delivery, a DDL, a dead letter).
pub type TaskId = u64;

/// What happened, as the driver tells the core.
#[derive(Debug)]
pub enum Input {
    /// The target cluster's health (Up: some endpoint takes writes, not misconfigured).
    Health {
        /// Whether it is Up.
        up: bool,
    },
    /// The operator's control of the cluster changed.
    Control(ClusterControl),
    /// An event read from the queue.
    Event(Event),
    /// A task finished: `done` when its records are written or dead-lettered, `false` when it
    /// was cancelled or failed (its records stay unfinished and are read again later).
    Finished {
        /// Which task.
        task: TaskId,
        /// Whether its records are finished.
        done: bool,
    },
    /// The answer to [`Command::Commit`].
    Committed {
        /// The positions that were sent.
        positions: Vec<(u32, i64)>,
        /// Whether the queue took them.
        ok: bool,
    },
    /// The answer to [`Command::SetPaused`].
    PauseSet {
        /// The state that was asked for.
        paused: bool,
        /// Whether it took effect.
        ok: bool,
    },
    /// The answer to [`Command::Seek`], or `None` when seeking failed.
    Sought(Option<SeekAnswer>),
    /// The answer to [`Command::SeekTo`]: whether it took effect.
    SoughtTo(bool),
    /// The answer to [`Command::QueryLag`]: records behind per partition (`None`: failed), and
    /// the wall-clock time in ms.
    Lag {
        /// Records behind per partition.
        lag: Option<Vec<(u32, i64)>>,
        /// Now, in ms since the epoch (append times of records are on the same clock).
        wall_ms: i64,
    },
    /// Time passed.
    Tick,
    /// Shutdown begins: close open batches and deliver what waits (when the cluster is up).
    Stop,
    /// Shutdown ends: commit what finished.
    Final,
}

/// What the driver is to do.
#[derive(Debug)]
pub enum Command {
    /// Write a batch (task).
    Deliver {
        /// The task.
        task: TaskId,
        /// Its batch.
        batch: Batch,
    },
    /// Apply a schema change (task).
    Ddl {
        /// The task.
        task: TaskId,
        /// The statement, naming the database as the target cluster does.
        statement: String,
        /// Database on the target cluster (the `db` of the request).
        db: String,
        /// The record it comes from.
        source: (u32, i64),
    },
    /// Dead-letter an undecodable record (task).
    DeadLetter {
        /// The task.
        task: TaskId,
        /// The letter.
        letter: DeadLetter,
    },
    /// Commit these positions; answer with [`Input::Committed`].
    Commit(Vec<(u32, i64)>),
    /// Pause or resume reading; answer with [`Input::PauseSet`].
    SetPaused(bool),
    /// Seek every assigned partition to the first record at or after `since_ms`; answer with
    /// [`Input::Sought`].
    Seek {
        /// Time in ms since the epoch.
        since_ms: i64,
    },
    /// Move the read positions of these partitions back to these offsets (a replay never
    /// skips records not yet delivered); answer with [`Input::SoughtTo`].
    SeekTo(Vec<(u32, i64)>),
    /// Read the lag beside the loop; answer with [`Input::Lag`].
    QueryLag,
}

/// Where a seek by time moved the read positions, and the group's committed positions of the
/// same partitions just before.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeekAnswer {
    /// `(partition, first offset at or after the time)`.
    pub positions: Vec<(u32, i64)>,
    /// `(partition, committed position)`; `None` when never committed.
    pub committed: Vec<(u32, Option<i64>)>,
}

/// How the driver is to read next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPlan {
    /// Poll for at most this many events, waiting at most this long for the first; `None`:
    /// do not poll now (enough work waits; the records stay prefetched).
    pub read: Option<(usize, Duration)>,
    /// No more work can start now: after an empty poll, wait for a task to finish (or a short
    /// while) rather than polling again at once.
    pub busy: bool,
}

/// A drain's state as the admin API, `ctl` and metrics show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DrainStatus {
    /// The target cluster is Up.
    pub up: bool,
    /// Reading from the queue is paused (down, operator, replay, catch-up).
    pub reading_paused: bool,
    /// An operator paused the cluster.
    pub operator_paused: bool,
    /// A replay is waiting for in-flight work or for its seek.
    pub replaying: bool,
    /// Replaying a backlog at the catch-up rate.
    pub catching_up: bool,
    /// Tasks running (deliveries, DDL, dead letters).
    pub in_flight: usize,
    /// Batches and DDL waiting to start.
    pub waiting: usize,
    /// Records read but not finished.
    pub pending_records: usize,
    /// Records behind the end of the queue, at the last reading.
    pub lag_records: Option<i64>,
    /// Seconds behind, at the last reading.
    pub lag_seconds: f64,
    /// Records the committed positions moved past since start.
    pub committed_records: u64,
    /// When the last lag reading was taken, in ms since the Unix epoch (0: none yet).
    #[serde(default)]
    pub lag_read_ms: i64,
    /// The last lag reading found nothing left to deliver, with reading not paused.
    #[serde(default)]
    pub caught_up: bool,
}

impl DrainStatus {
    /// An upper bound of how many seconds the cluster is behind at `now_ms`, given when this
    /// router last enqueued a write (`last_write_ms`): 0 when the last reading found it caught
    /// up and nothing was written since; else the reading's lag plus the time since it (the
    /// oldest record it misses cannot be older than that). Writes of other routers after the
    /// reading are not seen: across routers the bound is late by up to one lag interval.
    pub fn lag_bound_seconds(&self, now_ms: i64, last_write_ms: i64) -> f64 {
        if self.lag_read_ms == 0 {
            return f64::INFINITY;
        }
        let since = now_ms.saturating_sub(self.lag_read_ms).max(0) as f64 / 1000.0;
        match (self.caught_up, last_write_ms <= self.lag_read_ms) {
            (true, true) => 0.0,
            (true, false) => since,
            (false, _) => self.lag_seconds + since,
        }
    }
}

/// Limits of one drain.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// The cluster whose routes (and lag) the drain follows: the target, or for a reroute the
    /// down cluster.
    pub routes_of: String,
    /// The cluster's own drain (replays, catch-up, lag); not a reroute.
    pub primary: bool,
    /// Tasks running at once.
    pub max_in_flight: usize,
    /// Lines per batch.
    pub batch_max_lines: usize,
    /// Bytes per batch.
    pub batch_max_bytes: usize,
    /// How long a batch stays open.
    pub batch_linger: Duration,
    /// Lines/s while replaying a backlog after an outage.
    pub catchup_rate: Option<f64>,
}
