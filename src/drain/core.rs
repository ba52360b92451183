//! The drain's decisions without I/O and without a clock: [`Core::step`] takes one input
//! (records and rebalance events read, a delivery finished, health or operator control changed,
//! a lag reading, a tick) and the time, and answers the commands to carry out (deliver, apply a
//! schema change, dead-letter, commit, pause or resume reading, seek, read the lag).
//!
//! The core owns the offset tracker, the batcher, catch-up, the DDL barrier, replay and pause
//! state; the async driver ([`super::Drain::run`]) only carries out its commands and feeds their
//! answers back. Contract with the driver: the answers to [`Command::Commit`],
//! [`Command::SetPaused`] and [`Command::Seek`] come back (as [`Input::Committed`],
//! [`Input::PauseSet`], [`Input::Sought`]) before any other input; the other commands run
//! beside the loop and answer whenever they finish.
//!
//! Invariants (unit- and property-tested below):
//! - a commit never passes a record whose delivery has not finished ([`OffsetTracker`]);
//! - a schema change (DDL) starts after every earlier task finished and before any later one;
//! - a replay commits what is finished, then seeks, then commits the new positions;
//! - a revoked partition's finished records are committed before it is forgotten;
//! - reading pauses while the cluster is down, an operator paused it, a replay waits, or the
//!   catch-up rate holds back the work that waits.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::batch::{Batch, Batcher, Piece};
use super::tracker::OffsetTracker;
use crate::control::{ClusterControl, ReplayRequest};
use crate::influx::ReasonClass;
use crate::query::statement::Ddl;
use crate::queue::payload::{self, Payload};
use crate::queue::{DeadLetter, Event, Record, RecordKind};
use crate::route::{ClusterFilter, RouteTable};

mod protocol;
mod select;

pub use self::protocol::{Command, CoreConfig, DrainStatus, Input, PollPlan, SeekAnswer, TaskId};
use self::select::select_lines;

/// Events taken from the queue per poll.
pub(super) const POLL_MAX_EVENTS: usize = 512;
/// How long one poll waits for the first event.
pub(super) const POLL_WAIT: Duration = Duration::from_millis(50);
/// Reading stops (the records stay prefetched) while `max_in_flight` x this many batches wait.
const READY_READ_FACTOR: usize = 2;
/// While reading stops, a poll this often still serves rebalance events...
const IDLE_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// ...taking this many events at most (records among them add to the waiting work).
const IDLE_POLL_MAX_EVENTS: usize = 4;
/// How often commits are sent at most.
const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// How often the lag is read from the queue.
const LAG_INTERVAL: Duration = Duration::from_secs(2);
/// How long after a failed seek or pause it is tried again.
const EFFECT_RETRY: Duration = Duration::from_millis(250);

/// Work waiting to be started, in log order.
#[derive(Debug)]
enum Work {
    Write(Batch),
    Ddl {
        statement: String,
        db: String,
        source: (u32, i64),
    },
}

/// Where a requested replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replay {
    Idle,
    /// Finishing what was read before seeking.
    Draining(ReplayRequest),
    /// The seek was sent.
    Seeking(ReplayRequest),
    /// The seek by time went past records not yet delivered: moving back to them.
    Correcting(ReplayRequest),
    /// No partitions were assigned to seek: waits for an assignment.
    NeedsAssignment(ReplayRequest),
}

/// Limits lines/s while a recovered cluster replays its backlog (`catchup_rate`).
#[derive(Debug)]
struct CatchUp {
    rate: f64,
    tokens: f64,
    refilled: Instant,
    active: bool,
}

impl CatchUp {
    fn new(rate: f64, now: Instant) -> CatchUp {
        CatchUp {
            rate,
            tokens: 0.0,
            refilled: now,
            active: false,
        }
    }

    fn start(&mut self, now: Instant) {
        self.active = true;
        self.tokens = 0.0;
        self.refilled = now;
    }

    /// Whether a batch of `lines` may start now (taking its tokens).
    fn admit(&mut self, lines: usize, now: Instant) -> bool {
        if !self.active {
            return true;
        }
        self.tokens = (self.tokens
            + now.saturating_duration_since(self.refilled).as_secs_f64() * self.rate)
            .min(self.rate.max(lines as f64));
        self.refilled = now;
        if self.tokens >= lines as f64 {
            self.tokens -= lines as f64;
            true
        } else {
            false
        }
    }
}

/// The drain's decisions. See the module documentation.
#[derive(Debug)]
pub struct Core {
    config: CoreConfig,
    routes: RouteTable,
    batcher: Batcher,
    tracker: OffsetTracker,
    ready: VecDeque<Work>,
    /// Running tasks and the records each finishes.
    tasks: HashMap<TaskId, Vec<(u32, i64)>>,
    next_task: TaskId,
    /// The running DDL task nothing may start beside.
    barrier: Option<TaskId>,
    up: bool,
    control: ClusterControl,
    /// The last replay applied (requests made before start were applied by the instance that
    /// got them).
    last_replay: Option<i64>,
    replay: Replay,
    /// Reading is paused at the queue.
    paused: bool,
    /// A pause or resume was sent and not answered yet.
    pause_outstanding: bool,
    /// A failed pause or resume is not tried again before this.
    pause_not_before: Option<Instant>,
    /// A failed seek is not tried again before this.
    seek_not_before: Option<Instant>,
    /// Where a replay being corrected goes on reading.
    replay_positions: Vec<(u32, i64)>,
    /// Partitions revoked whose commit is under way; forgotten once it is answered.
    revoking: Vec<u32>,
    commit_outstanding: bool,
    catch_up: Option<CatchUp>,
    last_commit: Instant,
    last_lag: Option<Instant>,
    lag_outstanding: bool,
    last_poll: Instant,
    caught_up_at: Instant,
    lag_records: Option<i64>,
    lag_seconds: f64,
    lag_read_ms: i64,
    caught_up: bool,
    committed_records: u64,
    stopping: bool,
}

impl Core {
    /// A core that starts at `now` with the operator's `control` as it is.
    pub fn new(
        config: CoreConfig,
        routes: RouteTable,
        control: ClusterControl,
        now: Instant,
    ) -> Core {
        let catch_up = config
            .catchup_rate
            .filter(|_| config.primary)
            .map(|r| CatchUp::new(r, now));
        Core {
            batcher: Batcher::new(
                config.batch_max_lines,
                config.batch_max_bytes,
                config.batch_linger,
            ),
            config,
            routes,
            tracker: OffsetTracker::new(),
            ready: VecDeque::new(),
            tasks: HashMap::new(),
            next_task: 0,
            barrier: None,
            up: true,
            last_replay: control.replay.map(|r| r.id),
            control,
            replay: Replay::Idle,
            paused: false,
            pause_outstanding: false,
            pause_not_before: None,
            seek_not_before: None,
            replay_positions: Vec::new(),
            revoking: Vec::new(),
            commit_outstanding: false,
            catch_up,
            last_commit: now,
            last_lag: None,
            lag_outstanding: false,
            last_poll: now,
            caught_up_at: now,
            lag_records: None,
            lag_seconds: 0.0,
            lag_read_ms: 0,
            caught_up: false,
            committed_records: 0,
            stopping: false,
        }
    }

    /// Takes one input at `now`; returns the commands to carry out, in order.
    pub fn step(&mut self, input: Input, now: Instant) -> Vec<Command> {
        let mut out = Vec::new();
        match input {
            Input::Health { up } => {
                if up && !self.up {
                    if let Some(c) = self.catch_up.as_mut() {
                        tracing::info!(cluster = %self.config.routes_of, rate = c.rate, "cluster back; replaying its backlog at the catch-up rate");
                        c.start(now);
                    }
                }
                self.up = up;
            }
            Input::Control(c) => self.control = c,
            Input::Event(ev) => self.event(ev, now, &mut out),
            Input::Finished { task, done } => {
                if let Some(sources) = self.tasks.remove(&task) {
                    if done {
                        for (p, o) in sources {
                            self.tracker.finish(p, o);
                        }
                    }
                }
                if self.barrier == Some(task) {
                    self.barrier = None;
                }
            }
            Input::Committed { positions, ok } => {
                self.commit_outstanding = false;
                if ok {
                    self.committed_records += self.tracker.committed(&positions);
                }
                if !self.revoking.is_empty() {
                    let parts = std::mem::take(&mut self.revoking);
                    self.tracker.revoke(&parts);
                }
            }
            Input::PauseSet { paused, ok } => {
                self.pause_outstanding = false;
                if !ok {
                    self.pause_not_before = Some(now + EFFECT_RETRY);
                }
                if ok {
                    self.paused = paused;
                    tracing::debug!(cluster = %self.config.routes_of, paused, "drain reading paused/resumed");
                }
            }
            Input::Sought(result) => self.sought(result, now, &mut out),
            Input::SoughtTo(ok) => {
                if let Replay::Correcting(req) = self.replay {
                    if ok {
                        self.replayed(req, &mut out);
                    } else {
                        self.replay = Replay::Draining(req);
                        self.seek_not_before = Some(now + EFFECT_RETRY);
                    }
                }
            }
            Input::Lag { lag, wall_ms } => self.lag(lag, wall_ms, now),
            Input::Tick => {}
            Input::Stop => {
                self.stopping = true;
                self.flush_batches();
                if self.up {
                    while let Some(work) = self.ready.pop_front() {
                        if let Work::Write(batch) = work {
                            let task = self.start_task(batch.sources.clone());
                            out.push(Command::Deliver { task, batch });
                        }
                    }
                }
            }
            Input::Final => self.commit(&mut out),
        }
        if !self.stopping {
            self.advance(now, &mut out);
        }
        out
    }

    /// How to read next.
    pub fn poll_plan(&mut self, now: Instant) -> PollPlan {
        let enough = self.ready.len() >= self.config.max_in_flight * READY_READ_FACTOR;
        let busy = self.paused || enough || self.tasks.len() >= self.config.max_in_flight;
        let wait = if busy { Duration::ZERO } else { POLL_WAIT };
        let read = if !enough || self.paused {
            Some((POLL_MAX_EVENTS, wait))
        } else if now.saturating_duration_since(self.last_poll) >= IDLE_POLL_INTERVAL {
            self.last_poll = now;
            Some((IDLE_POLL_MAX_EVENTS, wait))
        } else {
            None
        };
        PollPlan { read, busy }
    }

    /// The state as shown to operators.
    pub fn status(&self) -> DrainStatus {
        DrainStatus {
            up: self.up,
            reading_paused: self.paused,
            operator_paused: self.control.paused,
            replaying: self.replay != Replay::Idle,
            catching_up: self.catch_up.as_ref().is_some_and(|c| c.active),
            in_flight: self.tasks.len(),
            waiting: self.ready.len(),
            pending_records: self.tracker.pending(),
            lag_records: self.lag_records,
            lag_seconds: self.lag_seconds,
            committed_records: self.committed_records,
            lag_read_ms: self.lag_read_ms,
            caught_up: self.caught_up,
        }
    }

    /// Tasks running.
    pub fn in_flight(&self) -> usize {
        self.tasks.len()
    }

    fn start_task(&mut self, sources: Vec<(u32, i64)>) -> TaskId {
        let task = self.next_task;
        self.next_task += 1;
        self.tasks.insert(task, sources);
        task
    }

    fn flush_batches(&mut self) {
        self.ready
            .extend(self.batcher.take_all().into_iter().map(Work::Write));
    }

    /// What follows any input: start work, move a replay on, pause or resume, close lingering
    /// batches, commit and read the lag on their intervals.
    fn advance(&mut self, now: Instant, out: &mut Vec<Command>) {
        self.ready
            .extend(self.batcher.take_expired(now).into_iter().map(Work::Write));
        self.replay_progress(now, out);
        self.dispatch(now, out);
        self.pause_or_resume(now, out);
        if now.saturating_duration_since(self.last_commit) >= COMMIT_INTERVAL {
            self.last_commit = now;
            self.commit(out);
        }
        if self.config.primary
            && !self.lag_outstanding
            && self
                .last_lag
                .is_none_or(|t| now.saturating_duration_since(t) >= LAG_INTERVAL)
        {
            self.last_lag = Some(now);
            self.lag_outstanding = true;
            out.push(Command::QueryLag);
        }
    }

    /// Starts work in log order; DDL is a barrier both ways.
    fn dispatch(&mut self, now: Instant, out: &mut Vec<Command>) {
        if self.control.paused {
            return;
        }
        while self.tasks.len() < self.config.max_in_flight && self.barrier.is_none() {
            match self.ready.front() {
                None => break,
                Some(Work::Ddl { .. }) if !self.tasks.is_empty() => break,
                Some(Work::Write(b))
                    if !self
                        .catch_up
                        .as_mut()
                        .is_none_or(|c| c.admit(b.line_count, now)) =>
                {
                    break
                }
                Some(_) => {}
            }
            let Some(work) = self.ready.pop_front() else {
                break;
            };
            match work {
                Work::Write(batch) => {
                    let task = self.start_task(batch.sources.clone());
                    out.push(Command::Deliver { task, batch });
                }
                Work::Ddl {
                    statement,
                    db,
                    source,
                } => {
                    let task = self.start_task(vec![source]);
                    self.barrier = Some(task);
                    out.push(Command::Ddl {
                        task,
                        statement,
                        db,
                        source,
                    });
                }
            }
        }
    }

    /// Replay: finish what was read, commit it, seek back, and commit the new positions.
    fn replay_progress(&mut self, now: Instant, out: &mut Vec<Command>) {
        if self.replay == Replay::Idle && self.config.primary {
            if let Some(req) = self
                .control
                .replay
                .filter(|r| Some(r.id) != self.last_replay)
            {
                tracing::info!(cluster = %self.config.routes_of, since_ms = req.since_ms, "replay requested");
                self.replay = Replay::Draining(req);
            }
        }
        if let Replay::Draining(req) = self.replay {
            self.flush_batches();
            let retry_due = self.seek_not_before.is_none_or(|t| now >= t);
            if self.ready.is_empty() && self.tasks.is_empty() && retry_due {
                self.seek_not_before = None;
                self.commit(out);
                out.push(Command::Seek {
                    since_ms: req.since_ms,
                });
                self.replay = Replay::Seeking(req);
            }
        }
    }

    fn sought(&mut self, answer: Option<SeekAnswer>, now: Instant, out: &mut Vec<Command>) {
        let Replay::Seeking(req) = self.replay else {
            return;
        };
        let Some(answer) = answer else {
            self.replay = Replay::Draining(req);
            self.seek_not_before = Some(now + EFFECT_RETRY);
            return;
        };
        if answer.positions.is_empty() {
            tracing::info!(cluster = %self.config.routes_of, "replay waits until partitions are assigned");
            self.replay = Replay::NeedsAssignment(req);
            return;
        }
        // Never forward: records after the committed position (or, after a failed commit,
        // after what this drain finished) but before the time were not delivered yet.
        let mut back = Vec::new();
        self.replay_positions = answer
            .positions
            .iter()
            .map(|&(p, target)| {
                let committed = answer
                    .committed
                    .iter()
                    .find(|(q, _)| *q == p)
                    .and_then(|(_, c)| *c);
                let bound = match (committed, self.tracker.position(p)) {
                    (Some(c), Some(t)) => Some(c.min(t)),
                    (c, t) => c.or(t),
                };
                let pos = bound.map_or(target, |b| target.min(b));
                if pos != target {
                    back.push((p, pos));
                }
                (p, pos)
            })
            .collect();
        if back.is_empty() {
            self.replayed(req, out);
        } else {
            tracing::info!(cluster = %self.config.routes_of, ?back, "the replay time is after records not delivered yet; reading on from those");
            self.replay = Replay::Correcting(req);
            out.push(Command::SeekTo(back));
        }
    }

    /// The replay's positions are set: read on from them.
    fn replayed(&mut self, req: ReplayRequest, out: &mut Vec<Command>) {
        let positions = std::mem::take(&mut self.replay_positions);
        for &(p, pos) in &positions {
            self.tracker.reset(p, pos);
        }
        tracing::info!(cluster = %self.config.routes_of, ?positions, "replaying from the requested time");
        self.commit(out);
        self.last_replay = Some(req.id);
        self.replay = Replay::Idle;
    }

    /// Pause reading while the cluster is down, paused by an operator, about to replay, or while
    /// the catch-up rate holds back the work that waits. Pausing is not the everyday
    /// back-pressure ([`Core::poll_plan`]): librdkafka drops a paused partition's prefetched
    /// records and fetches them again after the resume.
    fn pause_or_resume(&mut self, now: Instant, out: &mut Vec<Command>) {
        if self.pause_outstanding || self.pause_not_before.is_some_and(|t| now < t) {
            return;
        }
        let held_back = self.catch_up.as_ref().is_some_and(|c| c.active);
        let want = !self.up
            || self.control.paused
            || self.replay != Replay::Idle
            || (held_back && self.ready.len() >= self.config.max_in_flight * READY_READ_FACTOR);
        if want != self.paused {
            self.pause_outstanding = true;
            out.push(Command::SetPaused(want));
        }
    }

    fn commit(&mut self, out: &mut Vec<Command>) {
        if self.commit_outstanding {
            return;
        }
        let positions = self.tracker.committable();
        if !positions.is_empty() {
            self.commit_outstanding = true;
            out.push(Command::Commit(positions));
        }
    }

    fn event(&mut self, ev: Event, now: Instant, out: &mut Vec<Command>) {
        let name = &self.config.routes_of;
        match ev {
            Event::Assigned(parts) => {
                tracing::info!(cluster = %name, ?parts, "partitions assigned");
                if let Replay::NeedsAssignment(req) = self.replay {
                    self.replay = Replay::Draining(req);
                }
            }
            Event::Revoked(parts) => {
                tracing::info!(cluster = %name, ?parts, "partitions revoked");
                // Commit what is finished; the new owner reads the rest again. Work already
                // batched is still delivered: a batch mixes partitions, and dropping it would
                // strand the records of partitions this drain keeps (a revoked partition's
                // lines written twice are harmless).
                self.commit(out);
                if self.commit_outstanding {
                    self.revoking.extend(parts);
                } else {
                    self.tracker.revoke(&parts);
                }
            }
            Event::Undecodable {
                partition,
                offset,
                reason,
                payload,
            } => self.undecodable(partition, offset, 0, &reason, payload, out),
            Event::Record(r) => self.record(r, now, out),
        }
    }

    /// [`Core::undecodable`] for a record read whole.
    fn undecodable_record(&mut self, r: Record, reason: &str, out: &mut Vec<Command>) {
        self.undecodable(
            r.partition,
            r.offset,
            r.timestamp_ms,
            reason,
            r.payload,
            out,
        );
    }

    /// A record that cannot be carried out goes to the dead letters (it counts as read).
    fn undecodable(
        &mut self,
        partition: u32,
        offset: i64,
        timestamp_ms: i64,
        reason: &str,
        payload: bytes::Bytes,
        out: &mut Vec<Command>,
    ) {
        self.tracker.read(partition, offset, timestamp_ms);
        let letter = DeadLetter {
            cluster: self.config.routes_of.clone(),
            db: String::new(),
            rp: String::new(),
            status: 0,
            reason: format!("undecodable record: {reason}"),
            reason_class: ReasonClass::Undecodable.as_str(),
            sources: vec![(partition, offset)],
            lines: payload,
        };
        let task = self.start_task(vec![(partition, offset)]);
        out.push(Command::DeadLetter { task, letter });
    }

    /// A schema change: after every earlier task, before any later one, on clusters a route
    /// sends its database to (under the cluster's name for it).
    fn ddl(&mut self, r: &Record, ddl: &Ddl) {
        match self.routes.database_on(&self.config.routes_of, &ddl.db) {
            Some(db) => {
                self.tracker.read(r.partition, r.offset, r.timestamp_ms);
                self.flush_batches();
                self.ready.push_back(Work::Ddl {
                    statement: ddl.render(&db),
                    db,
                    source: (r.partition, r.offset),
                });
            }
            None => self.tracker.skip(r.partition, r.offset),
        }
    }

    fn record(&mut self, r: Record, now: Instant, out: &mut Vec<Command>) {
        let name = &self.config.routes_of;
        match r.meta.kind {
            RecordKind::CreateDatabase => self.ddl(&r, &Ddl::create_database(&r.meta.db)),
            RecordKind::Ddl => match Ddl::from_payload(&r.payload) {
                Ok(ddl) => self.ddl(&r, &ddl),
                Err(reason) => self.undecodable_record(r, &reason, out),
            },
            RecordKind::Write => {
                let (db, lines, count, gzip) =
                    match self.routes.filter_for(name, &r.meta.db, &r.meta.rp) {
                        ClusterFilter::Nothing => (None, Bytes::new(), 0, false),
                        ClusterFilter::All { db } => match payload::read(&r.payload) {
                            // A framed member goes on as it is: its line count is in the frame.
                            Payload::Gzip { lines, member } => (Some(db), member, lines, true),
                            Payload::Plain(lines) => {
                                let n = crate::line_protocol::line_slices(&lines).count();
                                (Some(db), lines, n, false)
                            }
                        },
                        ClusterFilter::ByMeasurement { db } => {
                            // Choosing lines by measurement needs them plain.
                            let plain = match payload::plain_lines(&r.payload) {
                                Ok(plain) => plain,
                                Err(reason) => return self.undecodable_record(r, &reason, out),
                            };
                            let (lines, n) = select_lines(&plain, |m| {
                                self.routes.takes(name, &r.meta.db, &r.meta.rp, m)
                            });
                            (Some(db), lines, n, false)
                        }
                    };
                match db {
                    Some(db) if count > 0 => {
                        self.tracker.read(r.partition, r.offset, r.timestamp_ms);
                        let full = self.batcher.add(
                            &db,
                            &r.meta.rp,
                            Piece {
                                bytes: &lines,
                                lines: count,
                                gzip,
                            },
                            (r.partition, r.offset),
                            now,
                        );
                        self.ready.extend(full.into_iter().map(Work::Write));
                    }
                    _ => self.tracker.skip(r.partition, r.offset),
                }
            }
        }
    }

    fn lag(&mut self, lag: Option<Vec<(u32, i64)>>, wall_ms: i64, now: Instant) {
        self.lag_outstanding = false;
        let Some(lag) = lag else { return };
        let records: i64 = lag.iter().map(|(_, l)| l).sum();
        self.lag_records = Some(records);
        if records == 0 && self.tracker.pending() == 0 {
            self.caught_up_at = now;
            if let Some(c) = self.catch_up.as_mut().filter(|c| c.active) {
                tracing::info!(cluster = %self.config.routes_of, "caught up");
                c.active = false;
            }
        }
        let oldest = self
            .tracker
            .oldest_pending_ms()
            .map(|ms| wall_ms.saturating_sub(ms) as f64 / 1000.0);
        let behind = if records > 0 {
            now.saturating_duration_since(self.caught_up_at)
                .as_secs_f64()
        } else {
            0.0
        };
        self.lag_seconds = oldest.unwrap_or(0.0).max(behind);
        self.lag_read_ms = wall_ms;
        self.caught_up = records == 0 && self.tracker.pending() == 0 && !self.paused;
    }
}

#[cfg(test)]
mod tests;
