//! Per-cluster drains: one consumer group per cluster (`fluxroute-drain-<cluster>`) reads the
//! queue, takes the lines its routes send to the cluster, batches them by (db, rp), writes them,
//! and commits an offset only once every record below it is written or dead-lettered.
//!
//! Owns: the read → batch → write → classify → commit loop of one cluster, DDL ordering,
//! dead-lettering, and pausing while the cluster is Down or misconfigured (the queue buffers
//! meanwhile; nothing is held in memory beyond `max_in_flight` batches plus one open batch per
//! (db, rp)). It does not decide health (see [`crate::health`]) nor what an answer means (see
//! [`crate::influx::classify`]).
//!
//! Invariants:
//! - A batch's records are finished only after the cluster answered 2xx or the batch is durably
//!   dead-lettered (invariant 2); the committed offset never passes an unfinished record
//!   ([`tracker::OffsetTracker`], invariant 4).
//! - Retries never give up on transient failures; a poison batch is dead-lettered and never
//!   blocks the partition behind it.
//! - `CREATE DATABASE` records are applied in log order: after every earlier batch of the drain
//!   finished, before any later one starts.
//! - One cluster's drain shares nothing a slow cluster could hold with another's (invariant 5).

pub mod batch;
mod deliver;
pub mod reroute;
pub mod tracker;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng as _;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{ClusterConfig, Endpoint};
use crate::control::{ClusterControl, ReplayRequest};
use crate::health::{ClusterHealth, ClusterState};
use crate::influx::{classify, ClusterClient, Outcome, ReasonClass};
use crate::metrics::DrainMetrics;
use crate::queue::{self, ConsumerGroup, DeadLetter, DeadLetterSink, Event, Queue, RecordKind};

use self::deliver::Deliverer;
use crate::route::{ClusterFilter, RouteTable};

use self::batch::{Batch, Batcher};
use self::tracker::OffsetTracker;

/// Events taken from the queue per poll.
const POLL_MAX_EVENTS: usize = 512;
/// How long one poll waits for the first event.
const POLL_WAIT: Duration = Duration::from_millis(50);
/// Reading stops (the records stay prefetched) while `max_in_flight` x this many batches wait.
const READY_READ_FACTOR: usize = 2;
/// While reading stops, a poll this often still serves rebalance events...
const IDLE_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// ...taking this many events at most (records among them add to the waiting work).
const IDLE_POLL_MAX_EVENTS: usize = 4;
/// First retry delay; doubles up to [`MAX_BACKOFF`], with jitter.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How often commits are sent at most.
const COMMIT_INTERVAL: Duration = Duration::from_millis(200);
/// How often the lag is read from the queue.
const LAG_INTERVAL: Duration = Duration::from_secs(2);

/// A lag query running beside the drain loop.
type LagTask = tokio::task::JoinHandle<Result<Vec<(u32, i64)>, queue::Error>>;

/// The consumer group of a cluster's drain.
pub fn group_name(cluster: &str) -> String {
    format!("fluxroute-drain-{cluster}")
}

/// Work waiting to be started, in log order.
#[derive(Debug)]
enum Work {
    Write(Batch),
    CreateDatabase { db: String, source: (u32, i64) },
}

/// What a finished task reports.
#[derive(Debug)]
struct Finished {
    sources: Vec<(u32, i64)>,
    /// `false` when cancelled (shutdown): the records stay unfinished and are read again later.
    done: bool,
}

/// The consumer group that reroutes a down cluster's writes to its standby.
pub fn reroute_group_name(cluster: &str) -> String {
    format!("fluxroute-reroute-{cluster}")
}

/// Whose writes a drain delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainKind {
    /// The cluster's own drain.
    Primary,
    /// A reroute: the writes routed to cluster `from` (down), delivered to this drain's cluster.
    Reroute {
        /// The down cluster.
        from: String,
    },
}

/// A cluster's drain.
#[derive(Debug)]
pub struct Drain {
    cluster: Arc<ClusterConfig>,
    kind: DrainKind,
    control: Option<watch::Receiver<ClusterControl>>,
    routes: RouteTable,
    queue: Arc<dyn Queue>,
    deliverer: Arc<Deliverer>,
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
    fn new(rate: f64) -> CatchUp {
        CatchUp {
            rate,
            tokens: 0.0,
            refilled: Instant::now(),
            active: false,
        }
    }

    /// Whether a batch of `lines` may start now (taking its tokens).
    fn admit(&mut self, lines: usize) -> bool {
        if !self.active {
            return true;
        }
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.refilled).as_secs_f64() * self.rate)
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

impl Drain {
    /// A drain delivering to `cluster` over `queue`, following `health` (the target's).
    pub fn new(
        cluster: Arc<ClusterConfig>,
        kind: DrainKind,
        routes: RouteTable,
        queue: Arc<dyn Queue>,
        client: ClusterClient,
        health: Arc<ClusterHealth>,
        metrics: DrainMetrics,
    ) -> Drain {
        metrics.start_cluster(&cluster.name);
        let deliverer = Arc::new(Deliverer {
            cluster: cluster.name.clone(),
            endpoints: cluster.endpoints.clone(),
            client,
            health,
            dead_letters: queue.dead_letters(),
            create_databases: cluster.create_databases,
            metrics,
        });
        Drain {
            cluster,
            kind,
            control: None,
            routes,
            queue,
            deliverer,
        }
    }

    /// Follows the operator's control of the target cluster: pause, and (own drain only)
    /// replay requests.
    pub fn with_control(mut self, control: watch::Receiver<ClusterControl>) -> Drain {
        self.control = Some(control);
        self
    }

    /// The consumer group this drain reads with.
    pub fn group(&self) -> String {
        match &self.kind {
            DrainKind::Primary => group_name(&self.cluster.name),
            DrainKind::Reroute { from } => reroute_group_name(from),
        }
    }

    /// Runs until `cancel`; then lets in-flight writes finish within `grace` and commits.
    ///
    /// # Errors
    /// When the consumer group cannot be joined.
    pub async fn run(self, cancel: CancellationToken, grace: Duration) -> Result<(), queue::Error> {
        let target = self.cluster.name.clone();
        // Routes (and lag) are those of the cluster whose writes this drain carries.
        let (name, primary) = match &self.kind {
            DrainKind::Primary => (target.clone(), true),
            DrainKind::Reroute { from } => (from.clone(), false),
        };
        let consumer: Arc<dyn ConsumerGroup> = Arc::from(self.queue.join(&self.group()).await?);
        let mut lag_task: Option<LagTask> = None;
        let mut catch_up = self
            .cluster
            .catchup_rate
            .filter(|_| primary)
            .map(|r| CatchUp::new(r.get() as f64));
        let mut was_up = true;
        let mut control = self.control.clone();
        // Replay requests made before this start were applied by the instance that got them.
        let mut last_replay = control
            .as_ref()
            .and_then(|c| c.borrow().replay.map(|r| r.id));
        let mut pending_replay: Option<ReplayRequest> = None;
        // A replay seeks the partitions this drain holds; with none (between a revoke and the
        // next assignment, or more members than partitions) it waits for an assignment.
        let mut replay_needs_assignment = false;
        let mut state = self.deliverer.health.subscribe();
        let max_in_flight = self.cluster.max_in_flight.get();
        let mut batcher = Batcher::new(
            self.cluster.batch_max_lines.get(),
            self.cluster.batch_max_bytes.get(),
            self.cluster.batch_linger,
        );
        let mut tracker = OffsetTracker::new();
        let mut ready: VecDeque<Work> = VecDeque::new();
        let mut inflight: JoinSet<Finished> = JoinSet::new();
        let mut barrier = false;
        let mut paused = false;
        let mut last_poll = Instant::now();
        let mut last_commit = Instant::now();
        let mut last_lag = Instant::now() - LAG_INTERVAL;
        let mut caught_up_at = Instant::now();
        let task_cancel = cancel.child_token();
        let m = self.deliverer.metrics.clone();
        tracing::info!(cluster = %target, routes_of = %name, "drain started");

        let mut published: Option<ClusterState> = None;
        while !cancel.is_cancelled() {
            let current = state.borrow_and_update().clone();
            let up = current.is_up();
            if primary {
                // Gauges change only with the state.
                if published.as_ref() != Some(&current) {
                    publish_state(&m, &name, &current);
                    published = Some(current);
                }
                if let Some(c) = catch_up.as_mut() {
                    if up && !was_up {
                        tracing::info!(cluster = %name, rate = c.rate, "cluster back; replaying its backlog at the catch-up rate");
                        c.active = true;
                        c.tokens = 0.0;
                        c.refilled = Instant::now();
                    }
                }
            }
            was_up = up;
            // Finished tasks.
            while let Some(res) = inflight.try_join_next() {
                finish(res, &mut tracker, &name);
                barrier = false;
            }
            // Start work in log order; DDL is a barrier both ways.
            let operator_paused = control.as_ref().is_some_and(|c| c.borrow().paused);
            while inflight.len() < max_in_flight && !barrier && !operator_paused {
                match ready.front() {
                    Some(Work::CreateDatabase { .. }) if !inflight.is_empty() => break,
                    Some(Work::Write(b))
                        if !catch_up.as_mut().is_none_or(|c| c.admit(b.line_count)) =>
                    {
                        break
                    }
                    None => break,
                    Some(_) => {}
                }
                let Some(work) = ready.pop_front() else { break };
                let d = Arc::clone(&self.deliverer);
                let c = task_cancel.clone();
                let st = state.clone();
                match work {
                    Work::Write(batch) => {
                        inflight.spawn(async move { d.deliver(batch, st, c).await });
                    }
                    Work::CreateDatabase { db, source } => {
                        barrier = true;
                        inflight.spawn(async move { d.create(db, source, st, c).await });
                    }
                }
            }
            // Replay: finish what was read, then seek back and re-deliver from the time.
            if primary && pending_replay.is_none() {
                let req = control.as_mut().and_then(|c| c.borrow_and_update().replay);
                if let Some(req) = req.filter(|r| Some(r.id) != last_replay) {
                    tracing::info!(cluster = %name, since_ms = req.since_ms, "replay requested");
                    pending_replay = Some(req);
                }
            }
            if let Some(req) = pending_replay {
                ready.extend(batcher.take_all().into_iter().map(Work::Write));
                if ready.is_empty() && inflight.is_empty() && !replay_needs_assignment {
                    commit(&*consumer, &mut tracker, &name, &m).await;
                    match consumer.seek_to_time(req.since_ms).await {
                        Ok(positions) if positions.is_empty() => {
                            tracing::info!(cluster = %name, "replay waits until partitions are assigned");
                            replay_needs_assignment = true;
                        }
                        Ok(positions) => {
                            for &(p, pos) in &positions {
                                tracker.reset(p, pos);
                            }
                            commit(&*consumer, &mut tracker, &name, &m).await;
                            tracing::info!(cluster = %name, ?positions, "replaying from the requested time");
                            last_replay = Some(req.id);
                            pending_replay = None;
                        }
                        Err(e) => {
                            tracing::warn!(cluster = %name, error = %e, "seeking for a replay; retrying")
                        }
                    }
                }
            }
            // Pause reading while the cluster is down, paused by an operator, about to replay,
            // or while the catch-up rate holds back the work that waits. Pausing is not the
            // everyday back-pressure (below): librdkafka drops a paused partition's prefetched
            // records and fetches them again after the resume.
            let operator_paused = control.as_ref().is_some_and(|c| c.borrow().paused);
            let held_back = catch_up.as_ref().is_some_and(|c| c.active);
            let want_pause = !state.borrow().is_up()
                || operator_paused
                || pending_replay.is_some()
                || (held_back && ready.len() >= max_in_flight * READY_READ_FACTOR);
            if want_pause != paused {
                match consumer.set_paused(want_pause).await {
                    Ok(()) => {
                        paused = want_pause;
                        tracing::debug!(cluster = %name, paused, "drain reading paused/resumed");
                    }
                    Err(e) => tracing::warn!(cluster = %name, error = %e, "pausing the consumer"),
                }
            }
            // Read (poll is cancel safe, but it is never raced: records must not be dropped).
            // When no more work can start, only take what is there (rebalance events), then
            // wait for a delivery to finish instead, so a freed slot is refilled at once.
            // Enough work waiting: leave the next records in the client's prefetch queue
            // (bounded by the client) and only poll now and then, for rebalance events.
            let enough = ready.len() >= max_in_flight * READY_READ_FACTOR;
            let busy = paused || enough || inflight.len() >= max_in_flight;
            let wait = if busy { Duration::ZERO } else { POLL_WAIT };
            let polled = if !enough || paused {
                consumer.poll(POLL_MAX_EVENTS, wait).await
            } else if last_poll.elapsed() >= IDLE_POLL_INTERVAL {
                last_poll = Instant::now();
                consumer.poll(IDLE_POLL_MAX_EVENTS, wait).await
            } else {
                Ok(Vec::new())
            };
            if busy && polled.as_ref().is_ok_and(Vec::is_empty) {
                tokio::select! {
                    Some(res) = inflight.join_next(), if !inflight.is_empty() => {
                        finish(res, &mut tracker, &name);
                        barrier = false;
                    }
                    () = tokio::time::sleep(POLL_WAIT) => {}
                    _ = state.changed() => {}
                    () = cancel.cancelled() => {}
                }
            }
            let events = match polled {
                Ok(ev) => ev,
                Err(e) => {
                    tracing::warn!(cluster = %name, error = %e, "reading the queue");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(MIN_BACKOFF * 5) => {}
                    }
                    Vec::new()
                }
            };
            let now = Instant::now();
            for ev in events {
                match ev {
                    Event::Assigned(parts) => {
                        tracing::info!(cluster = %name, ?parts, "partitions assigned");
                        replay_needs_assignment = false;
                    }
                    Event::Revoked(parts) => {
                        tracing::info!(cluster = %name, ?parts, "partitions revoked");
                        // Commit what is finished; the new owner reads the rest again. Work
                        // already batched is still delivered: a batch mixes partitions, and
                        // dropping it would strand the records of partitions this drain keeps
                        // (a revoked partition's lines written twice are harmless).
                        commit(&*consumer, &mut tracker, &name, &m).await;
                        tracker.revoke(&parts);
                    }
                    Event::Undecodable {
                        partition,
                        offset,
                        reason,
                        payload,
                    } => {
                        tracker.read(partition, offset, 0);
                        let letter = DeadLetter {
                            cluster: name.clone(),
                            db: String::new(),
                            rp: String::new(),
                            status: 0,
                            reason: format!("undecodable record: {reason}"),
                            reason_class: ReasonClass::Undecodable.as_str(),
                            sources: vec![(partition, offset)],
                            lines: payload,
                        };
                        if self.deliverer.dead_letter(letter, 0, &cancel).await {
                            tracker.finish(partition, offset);
                        }
                    }
                    Event::Record(r) => match r.meta.kind {
                        RecordKind::CreateDatabase => {
                            match self.routes.database_on(&name, &r.meta.db) {
                                Some(db) => {
                                    tracker.read(r.partition, r.offset, r.timestamp_ms);
                                    ready.extend(batcher.take_all().into_iter().map(Work::Write));
                                    ready.push_back(Work::CreateDatabase {
                                        db,
                                        source: (r.partition, r.offset),
                                    });
                                }
                                None => tracker.skip(r.partition, r.offset),
                            }
                        }
                        RecordKind::Write => {
                            let (db, lines, count) =
                                match self.routes.filter_for(&name, &r.meta.db, &r.meta.rp) {
                                    ClusterFilter::Nothing => (None, r.payload, 0),
                                    ClusterFilter::All { db } => {
                                        let n =
                                            crate::line_protocol::line_slices(&r.payload).count();
                                        (Some(db), r.payload, n)
                                    }
                                    ClusterFilter::ByMeasurement { db } => {
                                        let (lines, n) = select_lines(&r.payload, |m| {
                                            self.routes.takes(&name, &r.meta.db, &r.meta.rp, m)
                                        });
                                        (Some(db), lines, n)
                                    }
                                };
                            match db {
                                Some(db) if count > 0 => {
                                    tracker.read(r.partition, r.offset, r.timestamp_ms);
                                    let full = batcher.add(
                                        &db,
                                        &r.meta.rp,
                                        &lines,
                                        count,
                                        (r.partition, r.offset),
                                        now,
                                    );
                                    ready.extend(full.into_iter().map(Work::Write));
                                }
                                _ => tracker.skip(r.partition, r.offset),
                            }
                        }
                    },
                }
            }
            ready.extend(batcher.take_expired(now).into_iter().map(Work::Write));
            if last_commit.elapsed() >= COMMIT_INTERVAL {
                commit(&*consumer, &mut tracker, &name, &m).await;
                last_commit = Instant::now();
            }
            // The lag is read off the loop (it takes broker round trips).
            if primary && lag_task.is_none() && last_lag.elapsed() >= LAG_INTERVAL {
                last_lag = Instant::now();
                let c = Arc::clone(&consumer);
                lag_task = Some(tokio::spawn(async move { c.lag().await }));
            }
            let finished = match lag_task.take_if(|t| t.is_finished()) {
                // Finished: the await returns at once.
                Some(t) => t.await.ok().and_then(Result::ok),
                None => None,
            };
            if let Some(lag) = finished {
                let records: i64 = lag.iter().map(|(_, l)| l).sum();
                m.lag_records.with_label_values(&[&name]).set(records);
                if records == 0 && tracker.pending() == 0 {
                    caught_up_at = Instant::now();
                    if let Some(c) = catch_up.as_mut().filter(|c| c.active) {
                        tracing::info!(cluster = %name, "caught up");
                        c.active = false;
                    }
                }
                let oldest = tracker
                    .oldest_pending_ms()
                    .map(|ms| queue::now_ms().saturating_sub(ms) as f64 / 1000.0);
                let behind = if records > 0 {
                    caught_up_at.elapsed().as_secs_f64()
                } else {
                    0.0
                };
                m.lag_seconds
                    .with_label_values(&[&name])
                    .set(oldest.unwrap_or(0.0).max(behind));
            }
            if state.has_changed().unwrap_or(false) {
                continue;
            }
        }

        if let Some(t) = lag_task.take() {
            t.abort();
        }
        // Shutdown: write what is open, let in-flight work finish within the grace period.
        tracing::info!(cluster = %name, in_flight = inflight.len(), "drain stopping");
        let deadline = tokio::time::Instant::now() + grace;
        ready.extend(batcher.take_all().into_iter().map(Work::Write));
        if state.borrow().is_up() {
            for work in ready.drain(..) {
                if let Work::Write(batch) = work {
                    let d = Arc::clone(&self.deliverer);
                    let c = task_cancel.clone();
                    let st = state.clone();
                    inflight.spawn(async move { d.deliver(batch, st, c).await });
                }
            }
        }
        loop {
            match tokio::time::timeout_at(deadline, inflight.join_next()).await {
                Ok(Some(Ok(f))) if f.done => {
                    for (p, o) in f.sources {
                        tracker.finish(p, o);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(cluster = %name, pending = inflight.len(), "writes still in flight after the grace period; they will be replayed");
                    task_cancel.cancel();
                    inflight.shutdown().await;
                    break;
                }
            }
        }
        commit(&*consumer, &mut tracker, &name, &m).await;
        tracing::info!(cluster = %name, "drain stopped");
        Ok(())
    }
}

/// Finishes the records of a delivery task that completed (not of one cancelled at shutdown).
fn finish(
    res: Result<Finished, tokio::task::JoinError>,
    tracker: &mut OffsetTracker,
    cluster: &str,
) {
    match res {
        Ok(f) if f.done => {
            for (p, o) in f.sources {
                tracker.finish(p, o);
            }
        }
        Ok(_) => {}
        Err(e) => tracing::error!(%cluster, error = %e, "delivery task failed"),
    }
}

fn publish_state(m: &DrainMetrics, cluster: &str, s: &ClusterState) {
    m.cluster_up
        .with_label_values(&[cluster])
        .set(i64::from(s.is_up()));
    m.cluster_misconfigured
        .with_label_values(&[cluster])
        .set(i64::from(s.misconfigured.is_some()));
    for (i, up) in s.endpoints_up.iter().enumerate() {
        m.endpoint_up
            .with_label_values(&[cluster, &i.to_string()])
            .set(i64::from(*up));
    }
}

async fn commit(
    consumer: &dyn ConsumerGroup,
    tracker: &mut OffsetTracker,
    cluster: &str,
    m: &DrainMetrics,
) {
    let positions = tracker.committable();
    if positions.is_empty() {
        return;
    }
    match consumer.commit(&positions).await {
        Ok(()) => {
            let advanced = tracker.committed(&positions);
            m.records_committed
                .with_label_values(&[cluster])
                .inc_by(advanced);
        }
        Err(e) => tracing::warn!(%cluster, error = %e, "commit failed; will retry"),
    }
}

/// The measurement of a normalized line (up to the first unescaped `,` or space), unescaped.
fn measurement_of(line: &[u8]) -> std::borrow::Cow<'_, str> {
    let mut end = line.len();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 1,
            b',' | b' ' => {
                end = i;
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let raw = &line[..end.min(line.len())];
    if raw.contains(&b'\\') {
        let mut out = Vec::with_capacity(raw.len());
        let mut j = 0;
        while j < raw.len() {
            if raw[j] == b'\\' && matches!(raw.get(j + 1), Some(b',' | b' ')) {
                j += 1;
            }
            out.push(raw[j]);
            j += 1;
        }
        std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
    } else {
        String::from_utf8_lossy(raw)
    }
}

/// The lines of `payload` whose measurement `keep` accepts, and their count.
fn select_lines(payload: &Bytes, keep: impl Fn(&str) -> bool) -> (Bytes, usize) {
    let mut out = Vec::new();
    let mut n = 0;
    for line in crate::line_protocol::line_slices(payload) {
        // The measurement as influxd stores it; the fast reading for a line that does not parse
        // (queued lines always do).
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let name = match crate::line_protocol::parse_line(text) {
            Ok(l) => {
                std::borrow::Cow::Owned(String::from_utf8_lossy(&l.measurement()).into_owned())
            }
            Err(_) => measurement_of(line),
        };
        if keep(&name) {
            out.extend_from_slice(line);
            n += 1;
        }
    }
    (Bytes::from(out), n)
}

#[cfg(test)]
mod tests {
    use super::deliver::backoff;
    use super::*;

    #[test]
    fn measurement_is_read_up_to_the_first_unescaped_separator() {
        assert_eq!(measurement_of(b"cpu,host=a v=1 1\n"), "cpu");
        // A line with a newline inside a string value is routed whole (found by fuzzing review).
        let payload = Bytes::from_static(b"log msg=\"a\nb\" 1\ncpu v=1 2\nlog msg=\"c\" 3\n");
        let (kept, n) = select_lines(&payload, |m| m == "log");
        assert_eq!(n, 2);
        assert_eq!(&kept[..], b"log msg=\"a\nb\" 1\nlog msg=\"c\" 3\n");
        assert_eq!(crate::line_protocol::line_slices(&payload).count(), 3);
        assert_eq!(measurement_of(b"disk\\ io v=1 1\n"), "disk io");
        assert_eq!(measurement_of(b"a\\,b,t=1 v=1 1"), "a,b");
    }

    #[test]
    fn select_lines_keeps_matching_measurements() {
        let payload = Bytes::from_static(b"http_a v=1 1\ncpu v=1 1\nhttp_b v=1 1\n");
        let (lines, n) = select_lines(&payload, |m| m.starts_with("http"));
        assert_eq!(n, 2);
        assert_eq!(&lines[..], b"http_a v=1 1\nhttp_b v=1 1\n");
    }

    #[test]
    fn catch_up_admits_batches_at_the_configured_rate() {
        let mut c = CatchUp::new(1000.0);
        assert!(c.admit(5000), "inactive: no limit");
        c.active = true;
        c.tokens = 0.0;
        c.refilled = Instant::now() - Duration::from_millis(500);
        assert!(c.admit(400), "500 tokens after half a second");
        assert!(!c.admit(400), "only ~100 left");
        // A batch larger than a second's worth is admitted once the bucket is full.
        c.refilled = Instant::now() - Duration::from_secs(10);
        assert!(c.admit(5000));
    }

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        assert!(backoff(1, None) <= MIN_BACKOFF * 2);
        assert!(backoff(20, None) <= MAX_BACKOFF);
        assert!(backoff(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }
}
