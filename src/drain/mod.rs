//! Per-cluster drains: one consumer group per cluster (`fluxroute-drain-<cluster>`) reads the
//! queue, takes the lines its routes send to the cluster, batches them by (db, rp), writes them,
//! and commits an offset only once every record below it is written or dead-lettered.
//!
//! Split in two: [`core::Core`] makes every decision (what to batch, start, commit, pause, seek)
//! from inputs and a time it is given, with no I/O — unit- and property-tested with fake time —
//! and [`Drain::run`] is the thin async driver that polls the queue, runs the core's commands
//! (delivery tasks in a `JoinSet`, commits, pauses, seeks, lag queries), feeds their answers
//! back, and publishes a typed [`core::DrainStatus`] on a `watch` channel ([`Drain::status`]).
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
pub mod core;
mod deliver;
pub mod reroute;
pub mod tracker;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng as _;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{ClusterConfig, Endpoint};
use crate::control::ClusterControl;
use crate::health::{ClusterHealth, ClusterState};
use crate::influx::{classify, ClusterClient, Outcome, ReasonClass};
use crate::metrics::DrainMetrics;
use crate::queue::{self, ConsumerGroup, DeadLetter, DeadLetterSink, Queue};
use crate::route::RouteTable;

use self::batch::Batch;
use self::core::{Command, Core, CoreConfig, DrainStatus, Input, SeekAnswer, TaskId, POLL_WAIT};
use self::deliver::Deliverer;

/// First retry delay; doubles up to [`MAX_BACKOFF`], with jitter.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A lag query running beside the drain loop.
type LagTask = tokio::task::JoinHandle<Result<Vec<(u32, i64)>, queue::Error>>;

/// The consumer group of a cluster's drain.
pub fn group_name(cluster: &str) -> String {
    format!("fluxroute-drain-{cluster}")
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
    status: watch::Sender<DrainStatus>,
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
            schema_hint: Arc::new(tokio::sync::Notify::new()),
        });
        Drain {
            cluster,
            kind,
            control: None,
            routes,
            queue,
            deliverer,
            status: watch::Sender::new(DrainStatus::default()),
        }
    }

    /// Follows the operator's control of the target cluster: pause, and (own drain only)
    /// replay requests.
    pub fn with_control(mut self, control: watch::Receiver<ClusterControl>) -> Drain {
        self.control = Some(control);
        self
    }

    /// Notified when the cluster refuses a write for a missing database or retention policy,
    /// or for a field type conflict (the cluster's schema refresher listens).
    pub fn schema_hint(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.deliverer.schema_hint)
    }

    /// The consumer group this drain reads with.
    pub fn group(&self) -> String {
        match &self.kind {
            DrainKind::Primary => group_name(&self.cluster.name),
            DrainKind::Reroute { from } => reroute_group_name(from),
        }
    }

    /// The drain's state, updated as it changes.
    pub fn status(&self) -> watch::Receiver<DrainStatus> {
        self.status.subscribe()
    }

    /// Runs until `cancel`; then lets in-flight writes finish within `grace` and commits.
    ///
    /// # Errors
    /// When the consumer group cannot be joined.
    pub async fn run(self, cancel: CancellationToken, grace: Duration) -> Result<(), queue::Error> {
        // Routes (and lag) are those of the cluster whose writes this drain carries.
        let (name, primary) = match &self.kind {
            DrainKind::Primary => (self.cluster.name.clone(), true),
            DrainKind::Reroute { from } => (from.clone(), false),
        };
        let consumer: Arc<dyn ConsumerGroup> = Arc::from(self.queue.join(&self.group()).await?);
        let c = &self.cluster;
        let config = CoreConfig {
            routes_of: name.clone(),
            primary,
            max_in_flight: c.max_in_flight.get(),
            batch_max_lines: c.batch_max_lines.get(),
            batch_max_bytes: c.batch_max_bytes.get(),
            batch_linger: c.batch_linger,
            catchup_rate: c.catchup_rate.map(|r| r.get() as f64),
        };
        let control = self
            .control
            .as_ref()
            .map(|c| c.borrow().clone())
            .unwrap_or_default();
        tracing::info!(cluster = %c.name, routes_of = %name, "drain started");
        let mut driver = Driver {
            core: Core::new(config, self.routes, control, Instant::now()),
            name,
            primary,
            consumer,
            health: self.deliverer.health.subscribe(),
            published_health: None,
            control: self.control,
            deliverer: self.deliverer,
            tasks: JoinSet::new(),
            ids: HashMap::new(),
            lag: None,
            task_cancel: cancel.child_token(),
            status: self.status,
        };
        driver.run(&cancel).await;
        driver.shutdown(grace).await;
        Ok(())
    }
}

/// Carries out the core's commands: owns the consumer, the tasks and the lag query, and
/// publishes the drain's status.
struct Driver {
    core: Core,
    name: String,
    primary: bool,
    consumer: Arc<dyn ConsumerGroup>,
    health: watch::Receiver<ClusterState>,
    published_health: Option<ClusterState>,
    control: Option<watch::Receiver<ClusterControl>>,
    deliverer: Arc<Deliverer>,
    tasks: JoinSet<bool>,
    ids: HashMap<tokio::task::Id, TaskId>,
    lag: Option<LagTask>,
    /// Cancels the tasks: a child of the drain's token, cancelled apart after the grace.
    task_cancel: CancellationToken,
    status: watch::Sender<DrainStatus>,
}

impl Driver {
    /// Reads, feeds and carries out until `cancel`.
    async fn run(&mut self, cancel: &CancellationToken) {
        while !cancel.is_cancelled() {
            let current = self.health.borrow_and_update().clone();
            if self.published_health.as_ref() != Some(&current) {
                if self.primary {
                    publish_health(&self.deliverer.metrics, &self.name, &current);
                }
                let up = current.is_up();
                self.published_health = Some(current);
                self.feed(Input::Health { up }).await;
            }
            let control = self
                .control
                .as_mut()
                .filter(|c| c.has_changed().unwrap_or(false))
                .map(|c| c.borrow_and_update().clone());
            if let Some(control) = control {
                self.feed(Input::Control(control)).await;
            }
            while let Some(res) = self.tasks.try_join_next_with_id() {
                self.finished(res).await;
            }
            self.feed(Input::Tick).await;
            // Read (poll is cancel safe, but it is never raced: records must not be dropped).
            let plan = self.core.poll_plan(Instant::now());
            let polled = match plan.read {
                Some((max, wait)) => self.consumer.poll(max, wait).await,
                None => Ok(Vec::new()),
            };
            // No more work can start: wait for a delivery to finish, so a freed slot is
            // refilled at once.
            if plan.busy && polled.as_ref().is_ok_and(Vec::is_empty) {
                let finished = tokio::select! {
                    Some(res) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => Some(res),
                    () = tokio::time::sleep(POLL_WAIT) => None,
                    _ = self.health.changed() => None,
                    () = cancel.cancelled() => None,
                };
                if let Some(res) = finished {
                    self.finished(res).await;
                }
            }
            let events = match polled {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(cluster = %self.name, error = %e, "reading the queue");
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        () = tokio::time::sleep(MIN_BACKOFF * 5) => {}
                    }
                    Vec::new()
                }
            };
            for event in events {
                self.feed(Input::Event(event)).await;
            }
            // The lag is read off the loop (it takes broker round trips).
            if let Some(task) = self.lag.take_if(|t| t.is_finished()) {
                let lag = match task.await {
                    Ok(Ok(lag)) => Some(lag),
                    Ok(Err(e)) => {
                        tracing::debug!(cluster = %self.name, error = %e, "reading the lag");
                        None
                    }
                    Err(e) => {
                        tracing::warn!(cluster = %self.name, error = %e, "lag query failed");
                        None
                    }
                };
                let wall_ms = queue::now_ms();
                self.feed(Input::Lag { lag, wall_ms }).await;
            }
            self.publish();
        }
    }

    /// Delivers what is open (while the cluster is up) and lets in-flight work finish within
    /// `grace`, then commits.
    async fn shutdown(&mut self, grace: Duration) {
        if let Some(t) = self.lag.take() {
            t.abort();
        }
        tracing::info!(cluster = %self.name, in_flight = self.core.in_flight(), "drain stopping");
        let deadline = tokio::time::Instant::now() + grace;
        self.feed(Input::Stop).await;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(Some(res)) => self.finished(res).await,
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(cluster = %self.name, pending = self.tasks.len(), "writes still in flight after the grace period; they will be replayed");
                    self.task_cancel.cancel();
                    self.tasks.shutdown().await;
                    break;
                }
            }
        }
        self.feed(Input::Final).await;
        self.publish();
        tracing::info!(cluster = %self.name, "drain stopped");
    }

    /// Steps the core with `input` and carries out its commands, feeding back the answers of
    /// those that are awaited here (commit, pause, seek) before anything else.
    async fn feed(&mut self, input: Input) {
        let mut commands: VecDeque<Command> = self.core.step(input, Instant::now()).into();
        while let Some(command) = commands.pop_front() {
            let answer = match command {
                Command::Deliver { task, batch } => {
                    let (d, state, cancel) = self.task_parts();
                    self.spawn(task, async move { d.deliver(batch, state, cancel).await });
                    None
                }
                Command::Ddl {
                    task,
                    statement,
                    db,
                    ..
                } => {
                    let (d, state, cancel) = self.task_parts();
                    self.spawn(
                        task,
                        async move { d.apply(statement, db, state, cancel).await },
                    );
                    None
                }
                Command::DeadLetter { task, letter } => {
                    let (d, _, cancel) = self.task_parts();
                    self.spawn(task, async move { d.dead_letter(letter, 0, &cancel).await });
                    None
                }
                Command::Commit(positions) => {
                    let ok = match self.consumer.commit(&positions).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(cluster = %self.name, error = %e, "commit failed; will retry");
                            false
                        }
                    };
                    Some(Input::Committed { positions, ok })
                }
                Command::SetPaused(paused) => {
                    let ok = match self.consumer.set_paused(paused).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(cluster = %self.name, error = %e, "pausing the consumer");
                            false
                        }
                    };
                    Some(Input::PauseSet { paused, ok })
                }
                Command::Seek { since_ms } => {
                    let answer = match self.seek_to_time(since_ms).await {
                        Ok(answer) => Some(answer),
                        Err(e) => {
                            tracing::warn!(cluster = %self.name, error = %e, "seeking for a replay; retrying");
                            None
                        }
                    };
                    Some(Input::Sought(answer))
                }
                Command::SeekTo(positions) => {
                    let ok = match self.consumer.seek(&positions).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::warn!(cluster = %self.name, error = %e, "seeking back for a replay; retrying");
                            false
                        }
                    };
                    Some(Input::SoughtTo(ok))
                }
                Command::QueryLag => {
                    let c = Arc::clone(&self.consumer);
                    self.lag = Some(tokio::spawn(async move { c.lag().await }));
                    None
                }
            };
            if let Some(answer) = answer {
                commands.extend(self.core.step(answer, Instant::now()));
            }
        }
    }

    /// Seeks by time and reads the committed positions of the partitions it moved.
    async fn seek_to_time(&self, since_ms: i64) -> Result<SeekAnswer, queue::Error> {
        let positions = self.consumer.seek_to_time(since_ms).await?;
        let parts: Vec<u32> = positions.iter().map(|&(p, _)| p).collect();
        let committed = if parts.is_empty() {
            Vec::new()
        } else {
            self.consumer.committed(&parts).await?
        };
        Ok(SeekAnswer {
            positions,
            committed,
        })
    }

    fn task_parts(
        &self,
    ) -> (
        Arc<Deliverer>,
        watch::Receiver<ClusterState>,
        CancellationToken,
    ) {
        (
            Arc::clone(&self.deliverer),
            self.health.clone(),
            self.task_cancel.clone(),
        )
    }

    fn spawn(
        &mut self,
        task: TaskId,
        work: impl std::future::Future<Output = bool> + Send + 'static,
    ) {
        let handle = self.tasks.spawn(work);
        self.ids.insert(handle.id(), task);
    }

    /// Feeds a finished task (one that failed counts as not done: its records stay unfinished).
    async fn finished(&mut self, res: Result<(tokio::task::Id, bool), tokio::task::JoinError>) {
        let (id, done) = match res {
            Ok(r) => r,
            Err(e) => {
                if !e.is_cancelled() {
                    tracing::error!(cluster = %self.name, error = %e, "delivery task failed");
                }
                (e.id(), false)
            }
        };
        if let Some(task) = self.ids.remove(&id) {
            self.feed(Input::Finished { task, done }).await;
        }
    }

    /// Sends the core's status when it changed, and updates the metrics it carries.
    fn publish(&self) {
        let now = self.core.status();
        let before = self.status.borrow().clone();
        if now == before {
            return;
        }
        let m = &self.deliverer.metrics;
        let advanced = now
            .committed_records
            .saturating_sub(before.committed_records);
        if advanced > 0 {
            m.records_committed
                .with_label_values(&[&self.name])
                .inc_by(advanced);
        }
        if self.primary {
            if let Some(records) = now.lag_records {
                m.lag_records.with_label_values(&[&self.name]).set(records);
                m.lag_seconds
                    .with_label_values(&[&self.name])
                    .set(now.lag_seconds);
            }
        }
        self.status.send_replace(now);
    }
}

fn publish_health(m: &DrainMetrics, cluster: &str, s: &ClusterState) {
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

#[cfg(test)]
mod tests {
    use super::deliver::backoff;
    use super::*;

    #[test]
    fn backoff_grows_and_honours_retry_after() {
        assert!(backoff(1, None) <= MIN_BACKOFF * 2);
        assert!(backoff(20, None) <= MAX_BACKOFF);
        assert!(backoff(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }
}
