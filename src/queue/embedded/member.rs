//! A member of a consumer group on the embedded log: owns every partition, reads from its
//! positions in bounded batches, pauses, seeks and commits.

use super::*;

#[derive(Debug, Default)]
pub(super) struct MemberState {
    pub(super) assigned: bool,
    pub(super) revoked: bool,
    /// Next offset to read per partition.
    pub(super) positions: Vec<i64>,
    /// Partition the next read starts with (rotates for fairness).
    pub(super) first: u32,
}

/// A member of a consumer group of an [`EmbeddedQueue`]. See the module docs for what happens
/// when a second member of the same group joins.
#[derive(Debug)]
pub struct EmbeddedMember {
    pub(super) shared: Arc<Shared>,
    pub(super) group: String,
    pub(super) generation: u64,
    pub(super) member: tokio::sync::Mutex<MemberState>,
    pub(super) paused: AtomicBool,
}

impl Drop for EmbeddedMember {
    fn drop(&mut self) {
        let mut live = self.shared.live.lock().unwrap_or_else(|p| p.into_inner());
        if live.get(&self.group) == Some(&self.generation) {
            live.remove(&self.group);
        }
    }
}

impl EmbeddedMember {
    pub(super) fn all_partitions(&self) -> Vec<u32> {
        (0..self.shared.partitions).collect()
    }
}

#[async_trait]
impl ConsumerGroup for EmbeddedMember {
    fn group(&self) -> &str {
        &self.group
    }

    /// Returns up to `max` events (and at most 8 MiB of payload), waiting at most `timeout`
    /// for the first; wakes as soon as records are appended.
    ///
    /// # Cancel safety
    /// Cancel safe: the read position moves only when the events are returned.
    async fn poll(&self, max: usize, timeout: Duration) -> Result<Vec<Event>, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut m = self.member.lock().await;
        let mut wake = self.shared.wake.subscribe();
        let mut events = Vec::new();
        loop {
            wake.mark_unchanged();
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(closed_error());
            }
            let (current, parts, committed) = {
                let st = self.shared.lock_state();
                let g = st.groups.get(&self.group);
                (
                    g.map(|g| g.generation),
                    st.parts.clone(),
                    g.map(|g| g.committed.clone()).unwrap_or_default(),
                )
            };
            if current != Some(self.generation) {
                if m.assigned && !m.revoked {
                    m.revoked = true;
                    return Ok(vec![Event::Revoked(self.all_partitions())]);
                }
                m.revoked = true;
                tokio::time::sleep_until(deadline).await;
                return Ok(Vec::new());
            }
            if !m.assigned {
                m.assigned = true;
                m.positions = (0..parts.len())
                    .map(|p| committed.get(p).copied().flatten().unwrap_or(0))
                    .collect();
                events.push(Event::Assigned(self.all_partitions()));
            }
            for (pos, part) in m.positions.iter_mut().zip(&parts) {
                *pos = (*pos).max(part.head);
            }
            if self.paused.load(Ordering::Acquire) {
                if !events.is_empty() {
                    return Ok(events);
                }
                match tokio::time::timeout_at(deadline, wake.changed()).await {
                    Err(_) => return Ok(events),
                    Ok(Err(_)) => return Err(closed_error()),
                    Ok(Ok(())) => continue,
                }
            }
            let n = parts.len();
            let plan: Vec<(u32, i64, i64)> = (0..n)
                .map(|i| (i + m.first as usize) % n)
                .filter(|&p| m.positions[p] < parts[p].next)
                .map(|p| {
                    (
                        u32::try_from(p).unwrap_or(u32::MAX),
                        m.positions[p],
                        parts[p].next,
                    )
                })
                .collect();
            let room = max.saturating_sub(events.len());
            if !plan.is_empty() && room > 0 {
                let store = self.shared.store.clone();
                let read = tokio::task::spawn_blocking(move || read_plan(&store, plan, room))
                    .await
                    .map_err(|e| Error::Unavailable {
                        context: "reading the queue store".into(),
                        source: e.to_string().into(),
                    })??;
                m.first = (m.first + 1) % self.shared.partitions.max(1);
                for (p, after) in read.positions {
                    m.positions[p as usize] = after;
                }
                events.extend(read.events);
            }
            if !events.is_empty() || room == 0 {
                return Ok(events);
            }
            match tokio::time::timeout_at(deadline, wake.changed()).await {
                Err(_) => return Ok(events),
                Ok(Err(_)) => return Err(closed_error()),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Makes `positions` the group's committed positions, synced before returning.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when a newer member of the group took over, or the store fails;
    /// [`Error::Setup`] for a partition out of range or a negative offset.
    async fn commit(&self, positions: &[(u32, i64)]) -> Result<(), Error> {
        if positions.is_empty() {
            return Ok(());
        }
        let (group, generation, positions) =
            (self.group.clone(), self.generation, positions.to_vec());
        self.shared
            .call(|reply| Request::Commit {
                group,
                generation,
                positions,
                reply,
            })
            .await
    }

    /// Moves every partition's read position to its first record appended at or after
    /// `since_ms` (scanning keys only, from the retained head).
    async fn seek_to_time(&self, since_ms: i64) -> Result<Vec<(u32, i64)>, Error> {
        let mut m = self.member.lock().await;
        // As Kafka: nothing to seek before the first poll's assignment (which would set the
        // positions to the committed ones again) or after a revocation; the caller retries.
        if !m.assigned || m.revoked {
            return Err(Error::Unavailable {
                context: format!("seeking group {} to {since_ms} ms", self.group),
                source: "no partitions assigned to this member (poll first)".into(),
            });
        }
        let parts = self.shared.lock_state().parts.clone();
        let store = self.shared.store.clone();
        let since_us = since_ms.saturating_mul(1000);
        let heads: Vec<(i64, i64)> = parts.iter().map(|p| (p.head, p.next)).collect();
        let targets = tokio::task::spawn_blocking(move || -> Result<Vec<i64>, Error> {
            let mut out = Vec::with_capacity(heads.len());
            for (p, (head, next)) in heads.into_iter().enumerate() {
                let partition = u32::try_from(p).unwrap_or(u32::MAX);
                let mut target = next;
                for facts in store.facts_from(partition, head) {
                    let facts = facts?;
                    if facts.append_us >= since_us {
                        target = facts.offset;
                        break;
                    }
                }
                out.push(target);
            }
            Ok(out)
        })
        .await
        .map_err(|e| Error::Unavailable {
            context: "seeking the queue store".into(),
            source: e.to_string().into(),
        })??;
        if m.positions.len() < targets.len() {
            m.positions.resize(targets.len(), 0);
        }
        let mut out = Vec::with_capacity(targets.len());
        for (p, t) in targets.into_iter().enumerate() {
            m.positions[p] = t;
            out.push((u32::try_from(p).unwrap_or(u32::MAX), t));
        }
        Ok(out)
    }

    async fn seek(&self, positions: &[(u32, i64)]) -> Result<(), Error> {
        let mut m = self.member.lock().await;
        if !m.assigned || m.revoked {
            return Err(Error::Unavailable {
                context: format!("seeking group {}", self.group),
                source: "no partitions assigned to this member (poll first)".into(),
            });
        }
        let parts = self.shared.lock_state().parts.len();
        if m.positions.len() < parts {
            m.positions.resize(parts, 0);
        }
        for &(p, offset) in positions {
            let slot = usize::try_from(p)
                .ok()
                .and_then(|i| m.positions.get_mut(i))
                .ok_or_else(|| Error::Setup(format!("partition {p} out of range")))?;
            *slot = offset;
        }
        Ok(())
    }

    /// While paused, polls return only [`Event::Assigned`] / [`Event::Revoked`]; reading
    /// resumes after the last record returned.
    async fn set_paused(&self, paused: bool) -> Result<(), Error> {
        self.paused.store(paused, Ordering::Release);
        // Wake a poll waiting in the paused state.
        self.shared.wake.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    /// `(partition, end offset - committed position)` for every partition while this member
    /// owns them (after its first poll, until revoked); a partition never committed counts from
    /// its earliest retained record.
    async fn lag(&self) -> Result<Vec<(u32, i64)>, Error> {
        let (assigned, revoked) = {
            let m = self.member.lock().await;
            (m.assigned, m.revoked)
        };
        if !assigned || revoked {
            return Ok(Vec::new());
        }
        let st = self.shared.lock_state();
        let committed = st.groups.get(&self.group).map(|g| &g.committed);
        Ok(st
            .parts
            .iter()
            .enumerate()
            .map(|(p, part)| {
                let c = committed
                    .and_then(|c| c.get(p).copied().flatten())
                    .unwrap_or(part.head)
                    .max(part.head);
                (u32::try_from(p).unwrap_or(u32::MAX), (part.next - c).max(0))
            })
            .collect())
    }

    async fn committed(&self, partitions: &[u32]) -> Result<Vec<(u32, Option<i64>)>, Error> {
        let st = self.shared.lock_state();
        let committed = st.groups.get(&self.group).map(|g| &g.committed);
        partitions
            .iter()
            .map(|&p| {
                if p >= self.shared.partitions {
                    return Err(Error::Setup(format!(
                        "partition {p} does not exist (the queue has {})",
                        self.shared.partitions
                    )));
                }
                Ok((
                    p,
                    committed.and_then(|c| c.get(p as usize).copied().flatten()),
                ))
            })
            .collect()
    }
}

/// What one poll read: events in per-partition order, and each partition's new position.
#[derive(Debug, Default)]
pub(super) struct PlanRead {
    events: Vec<Event>,
    positions: Vec<(u32, i64)>,
}

/// Reads up to `max` records following `plan` (partition, from, until), in plan order, and at
/// most [`MAX_POLL_BYTES`] of payload (but at least one record).
pub(super) fn read_plan(
    store: &Store,
    plan: Vec<(u32, i64, i64)>,
    max: usize,
) -> Result<PlanRead, Error> {
    let mut out = PlanRead::default();
    let mut bytes = 0u64;
    for (p, from, until) in plan {
        let room = max - out.events.len();
        if room == 0 || bytes >= MAX_POLL_BYTES {
            break;
        }
        let (events, after) = store.read(p, from, until, room, MAX_POLL_BYTES - bytes)?;
        bytes += events
            .iter()
            .map(|e| match e {
                Event::Record(r) => r.payload.len() as u64,
                Event::Undecodable { payload, .. } => payload.len() as u64,
                Event::Assigned(_) | Event::Revoked(_) => 0,
            })
            .sum::<u64>();
        out.positions.push((p, after));
        out.events.extend(events);
    }
    Ok(out)
}
