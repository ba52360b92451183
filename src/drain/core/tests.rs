use bytes::Bytes;

use super::select::{measurement_of, select_lines};
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
    let t0 = Instant::now();
    let mut c = CatchUp::new(1000.0, t0);
    assert!(c.admit(5000, t0), "inactive: no limit");
    c.start(t0);
    let t = t0 + Duration::from_millis(500);
    assert!(c.admit(400, t), "500 tokens after half a second");
    assert!(!c.admit(400, t), "only ~100 left");
    // A batch larger than a second's worth is admitted once the bucket is full.
    assert!(c.admit(5000, t + Duration::from_secs(10)));
}

// ---- A driver with fake time: carries out commands at once, as `Drain::run` does. ----

use std::collections::{BTreeMap, BTreeSet};

use crate::config::RouteConfig;
use crate::queue::RecordMeta;

/// What the core asked for, in order, as the tests read it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Did {
    Deliver(TaskId, Vec<(u32, i64)>),
    Create(TaskId, String),
    DeadLetter(TaskId, Vec<(u32, i64)>),
    Commit(Vec<(u32, i64)>),
    Pause(bool),
    Seek(i64),
    SeekTo(Vec<(u32, i64)>),
    QueryLag,
}

/// Routes database `db` (every measurement) to cluster `a`; anything else goes nowhere.
fn routes() -> RouteTable {
    let glob = |p: &str| vec![glob::Pattern::new(p).expect("test glob")];
    RouteTable::new(vec![RouteConfig {
        databases: glob("db"),
        retention_policies: glob("*"),
        measurements: glob("*"),
        clusters: vec!["a".into()],
        rename: BTreeMap::new(),
    }])
}

fn config(max_in_flight: usize, batch_max_lines: usize) -> CoreConfig {
    CoreConfig {
        routes_of: "a".into(),
        primary: true,
        max_in_flight,
        batch_max_lines,
        batch_max_bytes: 1 << 20,
        batch_linger: Duration::from_millis(100),
        catchup_rate: None,
    }
}

fn record(partition: u32, offset: i64, meta: RecordMeta, lines: usize) -> Input {
    Input::Event(Event::Record(Record {
        partition,
        offset,
        timestamp_ms: offset * 10,
        meta,
        payload: Bytes::from("m v=1 1\n".repeat(lines)),
    }))
}

fn write(partition: u32, offset: i64) -> Input {
    record(partition, offset, RecordMeta::write("db", ""), 1)
}

fn ddl(partition: u32, offset: i64) -> Input {
    record(partition, offset, RecordMeta::create_database("db"), 0)
}

/// Feeds inputs to a core at a fake time and answers commits, pauses and seeks at once.
struct Sim {
    core: Core,
    now: Instant,
    /// What a seek answers.
    seek_answer: SeekAnswer,
    /// Commands carried out, in order.
    did: Vec<Did>,
}

impl Sim {
    fn new(config: CoreConfig) -> Sim {
        let now = Instant::now();
        Sim {
            core: Core::new(config, routes(), ClusterControl::default(), now),
            now,
            seek_answer: SeekAnswer::default(),
            did: Vec::new(),
        }
    }

    /// Feeds `input`; returns what the core asked for meanwhile.
    fn feed(&mut self, input: Input) -> Vec<Did> {
        let start = self.did.len();
        let mut pending: VecDeque<Command> = self.core.step(input, self.now).into();
        while let Some(command) = pending.pop_front() {
            let answer = match command {
                Command::Deliver { task, batch } => {
                    self.did.push(Did::Deliver(task, batch.sources));
                    None
                }
                Command::Ddl { task, db, .. } => {
                    self.did.push(Did::Create(task, db));
                    None
                }
                Command::DeadLetter { task, letter } => {
                    self.did.push(Did::DeadLetter(task, letter.sources));
                    None
                }
                Command::Commit(positions) => {
                    self.did.push(Did::Commit(positions.clone()));
                    Some(Input::Committed {
                        positions,
                        ok: true,
                    })
                }
                Command::SetPaused(paused) => {
                    self.did.push(Did::Pause(paused));
                    Some(Input::PauseSet { paused, ok: true })
                }
                Command::Seek { since_ms } => {
                    self.did.push(Did::Seek(since_ms));
                    Some(Input::Sought(Some(self.seek_answer.clone())))
                }
                Command::SeekTo(positions) => {
                    self.did.push(Did::SeekTo(positions));
                    Some(Input::SoughtTo(true))
                }
                Command::QueryLag => {
                    self.did.push(Did::QueryLag);
                    None
                }
            };
            if let Some(answer) = answer {
                pending.extend(self.core.step(answer, self.now));
            }
        }
        self.did[start..]
            .iter()
            .filter(|d| **d != Did::QueryLag)
            .cloned()
            .collect()
    }

    fn finish(&mut self, task: TaskId) -> Vec<Did> {
        self.feed(Input::Finished { task, done: true })
    }

    /// Moves the clock on and ticks.
    fn after(&mut self, d: Duration) -> Vec<Did> {
        self.now += d;
        self.feed(Input::Tick)
    }
}

/// Past the commit interval.
const LATER: Duration = Duration::from_millis(250);

#[test]
fn a_commit_never_passes_an_unfinished_record() {
    let mut sim = Sim::new(config(4, 1));
    assert_eq!(sim.feed(write(0, 0)), vec![Did::Deliver(0, vec![(0, 0)])]);
    sim.feed(write(0, 1));
    sim.feed(write(0, 2));
    sim.finish(2);
    sim.finish(1);
    assert_eq!(sim.after(LATER), vec![Did::Commit(vec![(0, 0)])]);
    assert_eq!(sim.after(LATER), vec![], "nothing moved");
    sim.finish(0);
    assert_eq!(sim.after(LATER), vec![Did::Commit(vec![(0, 3)])]);
    assert_eq!(sim.core.status().committed_records, 3);
}

#[test]
fn a_cancelled_delivery_leaves_its_records_unfinished() {
    let mut sim = Sim::new(config(4, 1));
    sim.feed(write(0, 0));
    sim.feed(Input::Finished {
        task: 0,
        done: false,
    });
    assert_eq!(sim.after(LATER), vec![Did::Commit(vec![(0, 0)])]);
    assert_eq!(sim.core.status().pending_records, 1);
}

#[test]
fn create_database_is_a_barrier_both_ways() {
    let mut sim = Sim::new(config(4, 1));
    sim.feed(write(0, 0));
    assert_eq!(sim.feed(ddl(0, 1)), vec![], "waits for the earlier write");
    assert_eq!(sim.feed(write(0, 2)), vec![], "waits behind the DDL");
    assert_eq!(sim.finish(0), vec![Did::Create(1, "db".into())]);
    assert_eq!(
        sim.after(Duration::ZERO),
        vec![],
        "nothing starts beside the DDL"
    );
    assert_eq!(sim.finish(1), vec![Did::Deliver(2, vec![(0, 2)])]);
}

#[test]
fn create_database_closes_the_open_batch_first() {
    let mut sim = Sim::new(config(4, 100));
    assert_eq!(sim.feed(write(0, 0)), vec![], "the batch stays open");
    assert_eq!(sim.feed(ddl(0, 1)), vec![Did::Deliver(0, vec![(0, 0)])]);
    assert_eq!(sim.finish(0), vec![Did::Create(1, "db".into())]);
}

#[test]
fn batches_close_on_linger_and_size() {
    let mut sim = Sim::new(config(4, 3));
    sim.feed(write(0, 0));
    sim.feed(write(1, 0));
    assert_eq!(
        sim.feed(write(0, 1)),
        vec![Did::Deliver(0, vec![(0, 0), (1, 0), (0, 1)])]
    );
    sim.feed(write(0, 2));
    assert_eq!(sim.after(Duration::from_millis(50)), vec![]);
    assert_eq!(
        sim.after(Duration::from_millis(50)),
        vec![Did::Deliver(1, vec![(0, 2)])]
    );
}

#[test]
fn records_routed_nowhere_are_skipped_and_committed() {
    let mut sim = Sim::new(config(4, 1));
    assert_eq!(
        sim.feed(record(0, 0, RecordMeta::write("other", ""), 1)),
        vec![]
    );
    assert_eq!(
        sim.feed(record(0, 1, RecordMeta::write("db", ""), 0)),
        vec![]
    );
    assert_eq!(sim.after(LATER), vec![Did::Commit(vec![(0, 2)])]);
}

#[test]
fn at_most_max_in_flight_tasks_run() {
    let mut sim = Sim::new(config(2, 1));
    for o in 0..5 {
        sim.feed(write(0, o));
    }
    assert_eq!(sim.core.status().in_flight, 2);
    assert_eq!(sim.core.status().waiting, 3);
    assert_eq!(sim.finish(0), vec![Did::Deliver(2, vec![(0, 2)])]);
}

#[test]
fn undecodable_records_are_dead_lettered_then_finished() {
    let mut sim = Sim::new(config(4, 1));
    let did = sim.feed(Input::Event(Event::Undecodable {
        partition: 0,
        offset: 0,
        reason: "no header".into(),
        payload: Bytes::from_static(b"?"),
    }));
    assert_eq!(did, vec![Did::DeadLetter(0, vec![(0, 0)])]);
    assert_eq!(sim.after(LATER), vec![Did::Commit(vec![(0, 0)])]);
    sim.finish(0);
    assert_eq!(sim.after(LATER), vec![Did::Commit(vec![(0, 1)])]);
}

#[test]
fn a_revoked_partition_commits_before_it_is_forgotten() {
    let mut sim = Sim::new(config(4, 1));
    sim.feed(write(0, 0));
    sim.feed(write(1, 0));
    sim.finish(0);
    assert_eq!(
        sim.feed(Input::Event(Event::Revoked(vec![0]))),
        vec![Did::Commit(vec![(0, 1), (1, 0)])]
    );
    // Its in-flight work still finishes, but nothing more is committed for it.
    sim.finish(1);
    assert_eq!(sim.after(LATER), vec![Did::Commit(vec![(1, 1)])]);
    // Partition 0's record (committed as it was revoked) and partition 1's.
    assert_eq!(sim.core.status().committed_records, 2);
}

#[test]
fn reading_pauses_while_the_cluster_is_down_or_paused_by_an_operator() {
    let mut sim = Sim::new(config(4, 1));
    assert_eq!(
        sim.feed(Input::Health { up: false }),
        vec![Did::Pause(true)]
    );
    assert!(sim.core.status().reading_paused);
    assert_eq!(
        sim.feed(Input::Health { up: true }),
        vec![Did::Pause(false)]
    );
    let paused = ClusterControl {
        paused: true,
        ..ClusterControl::default()
    };
    assert_eq!(sim.feed(Input::Control(paused)), vec![Did::Pause(true)]);
    assert_eq!(sim.feed(write(0, 0)), vec![], "nothing starts while paused");
    assert_eq!(
        sim.feed(Input::Control(ClusterControl::default())),
        vec![Did::Deliver(0, vec![(0, 0)]), Did::Pause(false)]
    );
}

#[test]
fn a_failed_pause_is_tried_again_later_not_at_once() {
    let mut sim = Sim::new(config(4, 1));
    let out = sim.core.step(Input::Health { up: false }, sim.now);
    assert!(out.iter().any(|c| matches!(c, Command::SetPaused(true))));
    let out = sim.core.step(
        Input::PauseSet {
            paused: true,
            ok: false,
        },
        sim.now,
    );
    assert!(out.is_empty(), "no retry within the same instant: {out:?}");
    assert_eq!(
        sim.after(Duration::from_millis(300)),
        vec![Did::Pause(true)]
    );
}

fn replay(id: i64, since_ms: i64) -> Input {
    Input::Control(ClusterControl {
        replay: Some(ReplayRequest { id, since_ms }),
        ..ClusterControl::default()
    })
}

#[test]
fn a_replay_finishes_what_was_read_commits_seeks_and_commits_again() {
    let mut sim = Sim::new(config(4, 100));
    sim.feed(write(0, 5));
    sim.feed(write(0, 6));
    sim.seek_answer = SeekAnswer {
        positions: vec![(0, 2)],
        committed: vec![(0, Some(7))],
    };
    // The open batch is closed and delivered; reading pauses; no seek while it is in flight.
    assert_eq!(
        sim.feed(replay(1, 20)),
        vec![Did::Deliver(0, vec![(0, 5), (0, 6)]), Did::Pause(true)]
    );
    assert!(sim.core.status().replaying);
    assert_eq!(
        sim.finish(0),
        vec![
            Did::Commit(vec![(0, 7)]),
            Did::Seek(20),
            Did::Commit(vec![(0, 2)]),
            Did::Pause(false),
        ]
    );
    assert!(!sim.core.status().replaying);
    assert_eq!(sim.feed(replay(1, 20)), vec![], "a request is applied once");
}

#[test]
fn a_replay_never_skips_records_not_delivered_yet() {
    let mut sim = Sim::new(config(4, 1));
    // Partition 0 committed at 4 and never read since; partition 1 read and finished up to 3.
    for o in 0..3 {
        sim.feed(write(1, o));
        sim.finish(o as TaskId);
    }
    sim.seek_answer = SeekAnswer {
        positions: vec![(0, 10), (1, 9)],
        committed: vec![(0, Some(4)), (1, Some(3))],
    };
    assert_eq!(
        sim.feed(replay(1, 90)),
        vec![
            Did::Commit(vec![(1, 3)]),
            Did::Seek(90),
            Did::Pause(true),
            Did::SeekTo(vec![(0, 4), (1, 3)]),
            Did::Commit(vec![(0, 4), (1, 3)]),
            Did::Pause(false),
        ]
    );
}

#[test]
fn a_replay_requested_before_start_is_not_applied_again() {
    let control = ClusterControl {
        replay: Some(ReplayRequest { id: 7, since_ms: 0 }),
        ..ClusterControl::default()
    };
    let mut core = Core::new(config(4, 1), routes(), control, Instant::now());
    let out = core.step(Input::Tick, Instant::now());
    assert!(
        out.iter().all(|c| matches!(c, Command::QueryLag)),
        "{out:?}"
    );
}

#[test]
fn a_replay_without_partitions_waits_for_an_assignment() {
    let mut sim = Sim::new(config(4, 1));
    assert_eq!(
        sim.feed(replay(1, 0)),
        vec![Did::Seek(0), Did::Pause(true)],
        "nothing in flight: seeks at once"
    );
    assert!(sim.core.status().replaying);
    assert_eq!(sim.after(Duration::from_secs(5)), vec![], "waits");
    sim.seek_answer = SeekAnswer {
        positions: vec![(0, 0), (1, 0)],
        committed: vec![(0, None), (1, None)],
    };
    assert_eq!(
        sim.feed(Input::Event(Event::Assigned(vec![0, 1]))),
        vec![
            Did::Seek(0),
            Did::Commit(vec![(0, 0), (1, 0)]),
            Did::Pause(false)
        ]
    );
}

#[test]
fn a_failed_seek_is_tried_again_later() {
    let mut sim = Sim::new(config(4, 1));
    sim.feed(Input::Health { up: true });
    let out = sim.core.step(replay(1, 0), sim.now);
    assert!(out
        .iter()
        .any(|c| matches!(c, Command::Seek { since_ms: 0 })));
    let out = sim.core.step(Input::Sought(None), sim.now);
    assert!(
        !out.iter().any(|c| matches!(c, Command::Seek { .. })),
        "no retry within the same instant"
    );
    sim.seek_answer = SeekAnswer {
        positions: vec![(0, 0)],
        committed: vec![(0, Some(0))],
    };
    let did = sim.after(Duration::from_millis(300));
    assert!(did.contains(&Did::Seek(0)), "{did:?}");
}

#[test]
fn catch_up_limits_the_rate_after_an_outage_until_caught_up() {
    let mut config = config(4, 10);
    config.catchup_rate = Some(10.0);
    let mut sim = Sim::new(config);
    sim.feed(Input::Health { up: false });
    sim.feed(Input::Health { up: true });
    assert!(sim.core.status().catching_up);
    let ten_lines = record(0, 0, RecordMeta::write("db", ""), 10);
    assert_eq!(sim.feed(ten_lines), vec![], "no tokens yet");
    let delivered = |did: Vec<Did>| {
        did.into_iter()
            .filter(|d| matches!(d, Did::Deliver(..)))
            .collect::<Vec<_>>()
    };
    assert_eq!(delivered(sim.after(Duration::from_millis(500))), vec![]);
    assert_eq!(
        delivered(sim.after(Duration::from_millis(500))),
        vec![Did::Deliver(0, vec![(0, 0)])]
    );
    sim.finish(0);
    sim.feed(Input::Lag {
        lag: Some(vec![(0, 0)]),
        wall_ms: 100,
    });
    assert!(!sim.core.status().catching_up);
}

#[test]
fn lag_seconds_count_from_the_oldest_unfinished_record() {
    let mut sim = Sim::new(config(4, 1));
    sim.feed(write(0, 100)); // appended at 1,000 ms
    sim.feed(Input::Lag {
        lag: Some(vec![(0, 0)]),
        wall_ms: 4_000,
    });
    let s = sim.core.status();
    assert_eq!(s.lag_records, Some(0));
    assert!((s.lag_seconds - 3.0).abs() < 1e-9, "{s:?}");
    // Records behind with nothing pending: seconds since the drain was last caught up.
    sim.finish(0);
    sim.feed(Input::Lag {
        lag: Some(vec![(0, 0)]),
        wall_ms: 4_000,
    });
    sim.now += Duration::from_secs(2);
    sim.feed(Input::Lag {
        lag: Some(vec![(0, 3)]),
        wall_ms: 6_000,
    });
    assert!((sim.core.status().lag_seconds - 2.0).abs() < 1e-9);
}

#[test]
fn enough_waiting_work_stops_reading_except_for_rebalance_polls() {
    let mut sim = Sim::new(config(1, 1));
    assert_eq!(
        sim.core.poll_plan(sim.now),
        PollPlan {
            read: Some((POLL_MAX_EVENTS, POLL_WAIT)),
            busy: false
        }
    );
    for o in 0..3 {
        sim.feed(write(0, o));
    }
    // One in flight, two waiting (= max_in_flight x 2): no full reads.
    assert_eq!(sim.core.poll_plan(sim.now).read, None);
    sim.now += IDLE_POLL_INTERVAL;
    assert_eq!(
        sim.core.poll_plan(sim.now),
        PollPlan {
            read: Some((IDLE_POLL_MAX_EVENTS, Duration::ZERO)),
            busy: true
        }
    );
    assert_eq!(sim.core.poll_plan(sim.now).read, None, "not again at once");
}

#[test]
fn stop_delivers_what_is_open_and_final_commits() {
    let mut sim = Sim::new(config(1, 100));
    sim.feed(write(0, 0));
    sim.feed(write(0, 1));
    assert_eq!(
        sim.feed(Input::Stop),
        vec![Did::Deliver(0, vec![(0, 0), (0, 1)])]
    );
    sim.finish(0);
    assert_eq!(sim.feed(Input::Final), vec![Did::Commit(vec![(0, 2)])]);
}

#[test]
fn stop_while_down_delivers_nothing_and_commits_nothing_unfinished() {
    let mut sim = Sim::new(config(1, 100));
    sim.feed(Input::Health { up: false });
    sim.feed(write(0, 0));
    assert_eq!(sim.feed(Input::Stop), vec![]);
    assert_eq!(sim.feed(Input::Final), vec![Did::Commit(vec![(0, 0)])]);
}

mod interleavings;

fn schema_change(partition: u32, offset: i64, db: &str, payload: Vec<u8>) -> Input {
    Input::Event(Event::Record(Record {
        partition,
        offset,
        timestamp_ms: offset * 10,
        meta: RecordMeta::ddl(db),
        payload: Bytes::from(payload),
    }))
}

#[test]
fn a_schema_change_reaches_the_cluster_under_its_name_for_the_database() {
    let glob = |p: &str| vec![glob::Pattern::new(p).expect("test glob")];
    let routes = RouteTable::new(vec![RouteConfig {
        databases: glob("db"),
        retention_policies: glob("*"),
        measurements: glob("cpu"),
        clusters: vec!["a".into()],
        rename: BTreeMap::from([("a".to_string(), "db_a".to_string())]),
    }]);
    let now = Instant::now();
    let mut core = Core::new(config(4, 1), routes, ClusterControl::default(), now);
    let statement = "CREATE RETENTION POLICY week ON db DURATION 7d REPLICATION 1";
    let Ok(crate::query::statement::Statement::Ddl(ddl)) =
        crate::query::statement::classify(statement, "")
    else {
        panic!("a schema change");
    };
    let out = core.step(schema_change(0, 0, "db", ddl.to_payload()), now);
    let applied: Vec<(&str, &str)> = out
        .iter()
        .filter_map(|c| match c {
            Command::Ddl { statement, db, .. } => Some((statement.as_str(), db.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        applied,
        vec![(
            "CREATE RETENTION POLICY week ON \"db_a\" DURATION 7d REPLICATION 1",
            "db_a"
        )]
    );

    // A schema change of a database no route sends here is skipped; one that cannot be read
    // is a dead letter (it counts as read, so the commit moves past it).
    let other = crate::query::statement::Ddl::create_database("elsewhere");
    let out = core.step(schema_change(1, 0, "elsewhere", other.to_payload()), now);
    assert!(
        !out.iter()
            .any(|c| matches!(c, Command::Ddl { .. } | Command::DeadLetter { .. })),
        "{out:?}"
    );
    let out = core.step(schema_change(1, 1, "db", b"{".to_vec()), now);
    assert!(
        out.iter().any(|c| matches!(
            c,
            Command::DeadLetter { letter, .. } if letter.sources == vec![(1, 1)]
        )),
        "{out:?}"
    );
}

#[test]
fn the_lag_bound_counts_what_was_written_since_the_reading() {
    let caught_up = DrainStatus {
        lag_read_ms: 10_000,
        caught_up: true,
        ..DrainStatus::default()
    };
    assert_eq!(caught_up.lag_bound_seconds(12_000, 9_000), 0.0);
    assert_eq!(caught_up.lag_bound_seconds(12_000, 11_000), 2.0);
    let behind = DrainStatus {
        lag_read_ms: 10_000,
        lag_seconds: 5.0,
        ..DrainStatus::default()
    };
    assert_eq!(behind.lag_bound_seconds(12_500, 0), 7.5);
    assert!(DrainStatus::default()
        .lag_bound_seconds(12_000, 0)
        .is_infinite());
}

#[test]
fn framed_records_batch_as_members_with_their_count_and_plain_for_a_measurement_filter() {
    let glob = |p: &str| vec![glob::Pattern::new(p).expect("test glob")];
    let route = |measurements: &str| {
        RouteTable::new(vec![RouteConfig {
            databases: glob("db"),
            retention_policies: glob("*"),
            measurements: glob(measurements),
            clusters: vec!["a".into()],
            rename: BTreeMap::new(),
        }])
    };
    let lines = b"cpu v=1 1\nmem v=2 2\ncpu v=3 3\n";
    let framed = |offset| {
        Input::Event(Event::Record(Record {
            partition: 0,
            offset,
            timestamp_ms: 0,
            meta: RecordMeta::write("db", ""),
            payload: crate::queue::payload::pack(lines, 3),
        }))
    };
    let delivered = |out: Vec<Command>| -> Vec<Batch> {
        out.into_iter()
            .filter_map(|c| match c {
                Command::Deliver { batch, .. } => Some(batch),
                _ => None,
            })
            .collect()
    };
    let now = Instant::now();

    // Every measurement: the members go on compressed, counted from the frame (a batch closes
    // at 6 lines: two records).
    let mut core = Core::new(config(4, 6), route("*"), ClusterControl::default(), now);
    assert!(delivered(core.step(framed(0), now)).is_empty());
    let batches = delivered(core.step(framed(1), now));
    assert_eq!(batches.len(), 1, "{batches:?}");
    let b = &batches[0];
    assert!(b.gzip);
    assert_eq!((b.line_count, b.sources.clone()), (6, vec![(0, 0), (0, 1)]));
    assert_eq!(&b.plain().unwrap().lines[..], &lines.repeat(2)[..]);

    // Only `cpu`: the record is read plain and its `cpu` lines chosen.
    let mut core = Core::new(config(4, 2), route("cpu"), ClusterControl::default(), now);
    let batches = delivered(core.step(framed(0), now));
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert!(!batches[0].gzip);
    assert_eq!(&batches[0].lines[..], b"cpu v=1 1\ncpu v=3 3\n");

    // A frame whose member is corrupt is a dead letter, read past.
    let mut bad = crate::queue::payload::pack(lines, 3).to_vec();
    bad.truncate(bad.len() - 3);
    let out = core.step(
        Input::Event(Event::Record(Record {
            partition: 0,
            offset: 1,
            timestamp_ms: 0,
            meta: RecordMeta::write("db", ""),
            payload: Bytes::from(bad),
        })),
        now,
    );
    assert!(
        out.iter().any(|c| matches!(
            c,
            Command::DeadLetter { letter, .. } if letter.sources == vec![(0, 1)]
        )),
        "{out:?}"
    );
}
