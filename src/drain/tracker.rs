//! Which offsets a drain may commit: per partition, the lowest record not yet written or
//! dead-lettered bounds the committed position, so in-flight batches may finish in any order and
//! the committed offset never passes a gap (invariant 4). Pure.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default)]
struct PartitionTrack {
    /// Offsets read but not yet finished, with their append time (ms).
    pending: BTreeMap<i64, i64>,
    /// One past the highest offset read.
    next: Option<i64>,
    /// The last position committed (or known committed).
    committed: Option<i64>,
    /// Where this drain began reading the partition (the group's position then): its first
    /// commit counts the records from here.
    start: Option<i64>,
}

impl PartitionTrack {
    fn position(&self) -> Option<i64> {
        match self.pending.keys().next() {
            Some(&lowest) => Some(lowest),
            None => self.next,
        }
    }
}

/// Offsets read, finished and committable, per partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    parts: HashMap<u32, PartitionTrack>,
}

impl OffsetTracker {
    /// An empty tracker.
    pub fn new() -> OffsetTracker {
        OffsetTracker::default()
    }

    /// A record was read and has work outstanding.
    pub fn read(&mut self, partition: u32, offset: i64, timestamp_ms: i64) {
        let t = self.parts.entry(partition).or_default();
        t.start.get_or_insert(offset);
        t.pending.insert(offset, timestamp_ms);
        t.next = Some(t.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// A record was read and needs no work (not routed to this cluster).
    pub fn skip(&mut self, partition: u32, offset: i64) {
        let t = self.parts.entry(partition).or_default();
        t.start.get_or_insert(offset);
        t.next = Some(t.next.map_or(offset + 1, |n| n.max(offset + 1)));
    }

    /// A record's work is finished (written or dead-lettered).
    pub fn finish(&mut self, partition: u32, offset: i64) {
        if let Some(t) = self.parts.get_mut(&partition) {
            t.pending.remove(&offset);
        }
    }

    /// Positions that moved since the last call: `(partition, next offset to read)`. Call
    /// [`OffsetTracker::committed`] once they are durably committed.
    pub fn committable(&self) -> Vec<(u32, i64)> {
        let mut out: Vec<(u32, i64)> = self
            .parts
            .iter()
            .filter_map(|(&p, t)| {
                let pos = t.position()?;
                (t.committed != Some(pos)).then_some((p, pos))
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Records that `positions` are committed; returns how many records the positions moved
    /// forward past (a partition's first commit counts from where this drain began reading it).
    pub fn committed(&mut self, positions: &[(u32, i64)]) -> u64 {
        let mut advanced = 0;
        for &(p, pos) in positions {
            if let Some(t) = self.parts.get_mut(&p) {
                if let Some(prev) = t.committed.or(t.start) {
                    advanced += u64::try_from(pos - prev).unwrap_or(0);
                }
                t.committed = Some(pos);
            }
        }
        advanced
    }

    /// Forgets revoked partitions (their uncommitted records go to the new owner).
    pub fn revoke(&mut self, partitions: &[u32]) {
        for p in partitions {
            self.parts.remove(p);
        }
    }

    /// Starts `partition` over at `position` (after a seek): nothing pending, to be committed.
    pub fn reset(&mut self, partition: u32, position: i64) {
        self.parts.insert(
            partition,
            PartitionTrack {
                pending: BTreeMap::new(),
                next: Some(position),
                committed: None,
                start: Some(position),
            },
        );
    }

    /// The next offset to commit for `partition`: its lowest unfinished record, else one past
    /// the highest read (`None` when not tracked).
    pub fn position(&self, partition: u32) -> Option<i64> {
        self.parts
            .get(&partition)
            .and_then(PartitionTrack::position)
    }

    /// Whether `partition` is tracked (assigned and read from).
    pub fn owns(&self, partition: u32) -> bool {
        self.parts.contains_key(&partition)
    }

    /// Append time (ms) of the oldest record read but unfinished.
    pub fn oldest_pending_ms(&self) -> Option<i64> {
        self.parts
            .values()
            .filter_map(|t| t.pending.values().min().copied())
            .min()
    }

    /// Records read but unfinished.
    pub fn pending(&self) -> usize {
        self.parts.values().map(|t| t.pending.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_commits_past_a_gap() {
        let mut t = OffsetTracker::new();
        for o in 10..15 {
            t.read(0, o, o * 100);
        }
        t.finish(0, 12);
        t.finish(0, 11);
        assert_eq!(t.committable(), vec![(0, 10)]);
        t.committed(&[(0, 10)]);
        assert_eq!(t.committable(), vec![]);
        t.finish(0, 10);
        assert_eq!(t.committable(), vec![(0, 13)]);
        assert_eq!(t.oldest_pending_ms(), Some(1300));
        t.finish(0, 13);
        t.finish(0, 14);
        assert_eq!(t.committable(), vec![(0, 15)]);
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn skipped_records_advance_the_position() {
        let mut t = OffsetTracker::new();
        t.skip(1, 0);
        t.skip(1, 1);
        assert_eq!(t.committable(), vec![(1, 2)]);
        t.read(1, 2, 0);
        t.skip(1, 3);
        assert_eq!(t.committable(), vec![(1, 2)]);
        t.finish(1, 2);
        assert_eq!(t.committable(), vec![(1, 4)]);
    }

    #[test]
    fn a_first_commit_counts_from_where_reading_began() {
        // A group that had committed 5 on partition 0: this drain reads from 5; its first
        // commit at 8 moved past 3 records, the next at 9 past one more.
        let mut t = OffsetTracker::new();
        for o in 5..8 {
            t.read(0, o, 0);
            t.finish(0, o);
        }
        t.skip(1, 0);
        assert_eq!(t.committed(&t.committable()), 4);
        t.read(0, 8, 0);
        t.finish(0, 8);
        assert_eq!(t.committed(&t.committable()), 1);
        // After a seek back (a replay), commits count from the seek's position.
        t.reset(0, 2);
        t.read(0, 2, 0);
        t.finish(0, 2);
        assert_eq!(t.committed(&t.committable()), 1);
    }

    #[test]
    fn revoked_partitions_are_forgotten() {
        let mut t = OffsetTracker::new();
        t.read(0, 0, 0);
        t.read(1, 0, 0);
        t.revoke(&[0]);
        assert!(!t.owns(0));
        t.finish(1, 0);
        assert_eq!(t.committable(), vec![(1, 1)]);
    }

    proptest::proptest! {
        #[test]
        fn committed_position_is_the_first_unfinished(order in proptest::collection::vec(0usize..50, 0..50)) {
            let mut t = OffsetTracker::new();
            for o in 0..50 { t.read(0, o, 0); }
            let mut done = [false; 50];
            for i in order {
                done[i] = true;
                t.finish(0, i as i64);
                let first_open = done.iter().position(|d| !d).unwrap_or(50) as i64;
                proptest::prop_assert_eq!(t.committable(), vec![(0, first_open)]);
            }
        }
    }
}
