//! One batch of writer requests staged into a single atomic write.

use super::*;

/// One batch of requests staged into a single atomic write: the state it will leave, and the
/// answers to send once it is durable.
pub(super) struct Staged {
    pub(super) store: crate::queue::embedded::store::Store,
    pub(super) wb: fjall::OwnedWriteBatch,
    pub(super) parts: Vec<PartitionState>,
    pub(super) groups: BTreeMap<String, GroupState>,
    /// Partitions whose counters changed.
    pub(super) touched: Vec<bool>,
    pub(super) must_sync: bool,
    pub(super) wrote: bool,
    pub(super) replies: Vec<Reply>,
    pub(super) evictor: Option<Evictor>,
    pub(super) dropped: (u64, u64),
    pub(super) next_dead_letter: u64,
    pub(super) last_us: i64,
    pub(super) now_us: i64,
}

impl Staged {
    /// A new member of `group` (the group becomes known).
    pub(super) fn join(&mut self, group: String, reply: oneshot::Sender<Result<u64, Error>>) {
        let key = codec::group_key(&group);
        if key.len() > usize::from(u16::MAX) {
            drop(reply.send(Err(Error::Setup("group name too long".into()))));
            return;
        }
        let partitions = self.parts.len();
        let g = self.groups.entry(group).or_insert_with(|| GroupState {
            committed: vec![None; partitions],
            generation: 0,
        });
        g.generation += 1;
        self.wb.insert(&self.store.meta, key, []);
        self.must_sync = true;
        self.wrote = true;
        self.replies.push(Reply::Join(reply, g.generation));
    }

    /// A member's commit, if it is still the group's current member.
    pub(super) fn commit(
        &mut self,
        group: &str,
        generation: u64,
        positions: &[(u32, i64)],
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        if let Err(e) = stage_commit(
            group,
            generation,
            positions,
            &mut self.groups,
            self.parts.len(),
        ) {
            drop(reply.send(Err(e)));
            return;
        }
        for &(p, next) in positions {
            match codec::commit_key(group, p) {
                Ok(k) => self.wb.insert(&self.store.meta, k, next.to_be_bytes()),
                Err(e) => tracing::error!(error = %e, "bad group name"),
            }
        }
        self.must_sync = true;
        self.wrote = true;
        self.replies.push(Reply::Unit(reply));
    }

    /// Positions set without a member (the group becomes known).
    pub(super) fn seed(
        &mut self,
        group: String,
        positions: &[(u32, i64)],
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        let partitions = self.parts.len();
        if let Some(&(p, next)) = positions
            .iter()
            .find(|&&(p, next)| p as usize >= partitions || next < 0)
        {
            drop(reply.send(Err(Error::Setup(format!(
                "cannot seed offset {next} of partition {p} (the queue has {partitions})"
            )))));
            return;
        }
        let keys: Result<Vec<_>, _> = positions
            .iter()
            .map(|&(p, _)| codec::commit_key(&group, p))
            .collect();
        let keys = match keys {
            Ok(k) => k,
            Err(e) => {
                drop(reply.send(Err(Error::Setup(e))));
                return;
            }
        };
        self.wb
            .insert(&self.store.meta, codec::group_key(&group), []);
        for (k, &(_, next)) in keys.into_iter().zip(positions) {
            self.wb.insert(&self.store.meta, k, next.to_be_bytes());
        }
        let g = self.groups.entry(group).or_insert_with(|| GroupState {
            committed: vec![None; partitions],
            generation: 0,
        });
        for &(p, next) in positions {
            g.committed[p as usize] = Some(next);
        }
        self.must_sync = true;
        self.wrote = true;
        self.replies.push(Reply::Unit(reply));
    }

    pub(super) fn dead_letter(
        &mut self,
        letter: &DeadLetter,
        reply: oneshot::Sender<Result<(), Error>>,
    ) {
        self.wb.insert(
            &self.store.dead_letters,
            self.next_dead_letter.to_be_bytes(),
            codec::encode_dead_letter(letter, self.now_us / 1000),
        );
        self.next_dead_letter += 1;
        self.wrote = true;
        self.replies.push(Reply::Unit(reply));
    }

    /// Deletes dead letters below id `before`.
    pub(super) fn purge(&mut self, before: u64, reply: oneshot::Sender<Result<(), Error>>) {
        for g in self.store.dead_letters.range(..before.to_be_bytes()) {
            match g.key() {
                Ok(k) => self.wb.remove(&self.store.dead_letters, k),
                Err(e) => {
                    let _ = reply.send(Err(storage_error("purging dead letters", e)));
                    return;
                }
            }
        }
        self.wrote = true;
        self.must_sync = true;
        self.replies.push(Reply::Unit(reply));
    }
}
