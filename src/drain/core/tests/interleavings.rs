//! Random interleavings of polls, outcomes, revocations, replays and DDL: nothing is committed
//! before it is finished, nothing is lost.
use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Write,
    CreateDatabase,
    /// Routed to no cluster of this drain.
    Elsewhere,
    Undecodable,
}

#[derive(Debug, Clone)]
enum Op {
    Poll { partition: u32, max: usize },
    Finish { pick: usize, done: bool },
    Revoke(u32),
    Assign(u32),
    Replay { since_ms: i64 },
    Tick(u64),
    Health(bool),
    OperatorPause(bool),
    AnswerLag,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        8 => Just(Kind::Write),
        1 => Just(Kind::CreateDatabase),
        2 => Just(Kind::Elsewhere),
        1 => Just(Kind::Undecodable),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u32..2, 1usize..6).prop_map(|(partition, max)| Op::Poll { partition, max }),
        5 => (any::<usize>(), prop::bool::weighted(0.95))
            .prop_map(|(pick, done)| Op::Finish { pick, done }),
        1 => (0u32..2).prop_map(Op::Revoke),
        2 => (0u32..2).prop_map(Op::Assign),
        1 => (0i64..30).prop_map(|o| Op::Replay { since_ms: o * 10 }),
        2 => (0u64..300).prop_map(Op::Tick),
        1 => any::<bool>().prop_map(Op::Health),
        1 => any::<bool>().prop_map(Op::OperatorPause),
        1 => Just(Op::AnswerLag),
    ]
}

/// A running task: its id, its records, whether it is a DDL.
type Running = (TaskId, Vec<(u32, i64)>, bool);

/// A queue with two partitions, one member (this drain) and a cluster, around a core.
struct World {
    core: Core,
    now: Instant,
    logs: [Vec<Kind>; 2],
    committed: [i64; 2],
    assigned: [bool; 2],
    position: [i64; 2],
    paused: bool,
    control: ClusterControl,
    replays: i64,
    lag_asked: bool,
    running: Vec<Running>,
    /// Records whose work finished at least once.
    finished: BTreeSet<(u32, i64)>,
}

impl World {
    fn kind(&self, p: u32, o: i64) -> Kind {
        self.logs[p as usize][o as usize]
    }

    fn needs_work(&self, p: u32, o: i64) -> bool {
        self.kind(p, o) != Kind::Elsewhere
    }

    fn feed(&mut self, input: Input) -> Result<(), TestCaseError> {
        let mut pending: VecDeque<Command> = self.core.step(input, self.now).into();
        while let Some(command) = pending.pop_front() {
            let answer = self.carry_out(command)?;
            if let Some(answer) = answer {
                pending.extend(self.core.step(answer, self.now));
            }
        }
        Ok(())
    }

    fn carry_out(&mut self, command: Command) -> Result<Option<Input>, TestCaseError> {
        Ok(match command {
            Command::Deliver { task, batch } => {
                prop_assert!(
                    !self.running.iter().any(|r| r.2),
                    "a write started beside a DDL"
                );
                self.running.push((task, batch.sources, false));
                None
            }
            Command::Ddl { task, source, .. } => {
                prop_assert!(self.running.is_empty(), "DDL started beside other work");
                self.running.push((task, vec![source], true));
                None
            }
            Command::DeadLetter { task, letter } => {
                // An undecodable record never reaches the cluster: no ordering to keep.
                self.running.push((task, letter.sources, false));
                None
            }
            Command::Commit(positions) => {
                for &(p, pos) in &positions {
                    let len = self.logs[p as usize].len() as i64;
                    prop_assert!(pos <= len, "commit {pos} past the end {len} of {p}");
                    for o in 0..pos {
                        prop_assert!(
                            !self.needs_work(p, o) || self.finished.contains(&(p, o)),
                            "commit {pos} on partition {p} passes unfinished offset {o}"
                        );
                    }
                    self.committed[p as usize] = pos;
                }
                Some(Input::Committed {
                    positions,
                    ok: true,
                })
            }
            Command::SetPaused(paused) => {
                self.paused = paused;
                Some(Input::PauseSet { paused, ok: true })
            }
            Command::Seek { since_ms } => {
                let mut answer = SeekAnswer::default();
                for p in 0..2u32 {
                    let i = p as usize;
                    if self.assigned[i] {
                        let len = self.logs[i].len() as i64;
                        let pos = (0..len).find(|o| o * 10 >= since_ms).unwrap_or(len);
                        self.position[i] = pos;
                        answer.positions.push((p, pos));
                        answer.committed.push((p, Some(self.committed[i])));
                    }
                }
                Some(Input::Sought(Some(answer)))
            }
            Command::SeekTo(positions) => {
                for (p, pos) in positions {
                    prop_assert!(self.assigned[p as usize], "seek on a partition not owned");
                    self.position[p as usize] = pos;
                }
                Some(Input::SoughtTo(true))
            }
            Command::QueryLag => {
                self.lag_asked = true;
                None
            }
        })
    }

    fn poll(&mut self, p: u32, max: usize) -> Result<(), TestCaseError> {
        let i = p as usize;
        for _ in 0..max {
            if !self.assigned[i] || self.paused {
                break;
            }
            let o = self.position[i];
            let Some(&kind) = self.logs[i].get(o as usize) else {
                break;
            };
            self.position[i] += 1;
            let event = match kind {
                Kind::Write => write(p, o),
                Kind::CreateDatabase => ddl(p, o),
                Kind::Elsewhere => record(p, o, RecordMeta::write("other", ""), 1),
                Kind::Undecodable => Input::Event(Event::Undecodable {
                    partition: p,
                    offset: o,
                    reason: "test".into(),
                    payload: Bytes::new(),
                }),
            };
            self.feed(event)?;
        }
        Ok(())
    }

    fn finish(&mut self, pick: usize, done: bool) -> Result<(), TestCaseError> {
        if self.running.is_empty() {
            return Ok(());
        }
        let (task, sources, _) = self.running.remove(pick % self.running.len());
        if done {
            self.finished.extend(sources);
        }
        self.feed(Input::Finished { task, done })
    }

    fn assign(&mut self, p: u32) -> Result<(), TestCaseError> {
        let i = p as usize;
        if self.assigned[i] {
            return Ok(());
        }
        self.assigned[i] = true;
        self.position[i] = self.committed[i];
        self.feed(Input::Event(Event::Assigned(vec![p])))
    }

    fn revoke(&mut self, p: u32) -> Result<(), TestCaseError> {
        if !self.assigned[p as usize] {
            return Ok(());
        }
        self.assigned[p as usize] = false;
        self.feed(Input::Event(Event::Revoked(vec![p])))
    }

    fn answer_lag(&mut self) -> Result<(), TestCaseError> {
        if !self.lag_asked {
            return Ok(());
        }
        self.lag_asked = false;
        let lag = (0..2u32)
            .filter(|&p| self.assigned[p as usize])
            .map(|p| {
                (
                    p,
                    self.logs[p as usize].len() as i64 - self.committed[p as usize],
                )
            })
            .collect();
        self.feed(Input::Lag {
            lag: Some(lag),
            wall_ms: 1_000,
        })
    }

    fn apply(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Poll { partition, max } => self.poll(partition, max),
            Op::Finish { pick, done } => self.finish(pick, done),
            Op::Revoke(p) => self.revoke(p),
            Op::Assign(p) => self.assign(p),
            Op::Replay { since_ms } => {
                self.replays += 1;
                self.control.replay = Some(ReplayRequest {
                    id: self.replays,
                    since_ms,
                });
                self.feed(Input::Control(self.control.clone()))
            }
            Op::Tick(ms) => {
                self.now += Duration::from_millis(ms);
                self.feed(Input::Tick)
            }
            Op::Health(up) => self.feed(Input::Health { up }),
            Op::OperatorPause(paused) => {
                self.control.paused = paused;
                self.feed(Input::Control(self.control.clone()))
            }
            Op::AnswerLag => self.answer_lag(),
        }
    }

    /// A healthy restart of the member that then runs until everything is committed.
    fn run_to_the_end(&mut self) -> Result<(), TestCaseError> {
        self.feed(Input::Health { up: true })?;
        self.control.paused = false;
        self.feed(Input::Control(self.control.clone()))?;
        for p in 0..2 {
            self.revoke(p)?;
            self.assign(p)?;
        }
        for _ in 0..500 {
            let ends = [self.logs[0].len() as i64, self.logs[1].len() as i64];
            if self.committed == ends && self.running.is_empty() {
                return Ok(());
            }
            for p in 0..2 {
                self.poll(p, 100)?;
            }
            while !self.running.is_empty() {
                self.finish(0, true)?;
            }
            self.answer_lag()?;
            self.now += Duration::from_millis(200);
            self.feed(Input::Tick)?;
        }
        Err(TestCaseError::fail(format!(
            "never caught up: committed {:?}, running {:?}, status {:?}",
            self.committed,
            self.running,
            self.core.status()
        )))
    }
}

proptest! {
    #[test]
    fn never_commits_past_unfinished_work_and_loses_nothing(
        log0 in proptest::collection::vec(kind(), 0..25),
        log1 in proptest::collection::vec(kind(), 0..25),
        max_in_flight in 1usize..4,
        batch_lines in 1usize..4,
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let now = Instant::now();
        let mut world = World {
            core: Core::new(config(max_in_flight, batch_lines), routes(), ClusterControl::default(), now),
            now,
            logs: [log0, log1],
            committed: [0, 0],
            assigned: [false, false],
            position: [0, 0],
            paused: false,
            control: ClusterControl::default(),
            replays: 0,
            lag_asked: false,
            running: Vec::new(),
            finished: BTreeSet::new(),
        };
        for op in ops {
            world.apply(op)?;
        }
        world.run_to_the_end()?;
        for p in 0..2u32 {
            for o in 0..world.logs[p as usize].len() as i64 {
                prop_assert!(
                    !world.needs_work(p, o) || world.finished.contains(&(p, o)),
                    "offset {o} of partition {p} was never delivered"
                );
            }
        }
    }
}
