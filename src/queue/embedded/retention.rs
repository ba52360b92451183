//! Retention decisions (pure): what may be deleted behind the consumer groups, and which records
//! a bounded queue drops first to keep its budget.

use std::iter::Peekable;

use super::codec::KeyFacts;

/// The first offset of a partition that must be kept under `KeepUntilDelivered`: the slowest
/// known group's committed position (a group that never committed holds everything), clamped to
/// `[head, next]`. With no known group nothing is delivered, so everything is kept.
pub(super) fn keep_from(
    committed: impl IntoIterator<Item = Option<i64>>,
    head: i64,
    next: i64,
) -> i64 {
    let slowest = committed
        .into_iter()
        .map(|c| c.unwrap_or(0))
        .min()
        .unwrap_or(head);
    slowest.clamp(head, next.max(head))
}

/// Walks the heads of every partition, oldest record first (append times are unique and
/// increasing across the store, so this is append order), to pick what a bounded queue drops
/// to make room.
pub(super) struct OldestFirst<I: Iterator> {
    heads: Vec<Peekable<I>>,
}

impl<I: Iterator> std::fmt::Debug for OldestFirst<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OldestFirst")
            .field("partitions", &self.heads.len())
            .finish()
    }
}

impl<I, E> OldestFirst<I>
where
    I: Iterator<Item = Result<KeyFacts, E>>,
{
    /// One iterator per partition, each in offset order from the partition's head.
    pub(super) fn new(partitions: impl IntoIterator<Item = I>) -> OldestFirst<I> {
        OldestFirst {
            heads: partitions.into_iter().map(Iterator::peekable).collect(),
        }
    }

    /// Removes and returns the oldest remaining record, `None` when every partition is empty.
    pub(super) fn pop_oldest(&mut self) -> Result<Option<KeyFacts>, E> {
        let mut best: Option<(usize, (i64, u32))> = None;
        for (i, it) in self.heads.iter_mut().enumerate() {
            let rank = match it.peek() {
                None => continue,
                Some(Ok(f)) => (f.append_us, f.partition),
                Some(Err(_)) => match it.next() {
                    Some(Err(e)) => return Err(e),
                    _ => continue,
                },
            };
            if best.is_none_or(|(_, b)| rank < b) {
                best = Some((i, rank));
            }
        }
        match best {
            None => Ok(None),
            Some((i, _)) => match self.heads.get_mut(i).and_then(Iterator::next) {
                Some(Ok(f)) => Ok(Some(f)),
                Some(Err(e)) => Err(e),
                None => Ok(None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(partition: u32, offset: i64, ts: i64) -> Result<KeyFacts, ()> {
        Ok(KeyFacts {
            partition,
            offset,
            append_us: ts,
            stored_bytes: 100,
        })
    }

    #[test]
    fn keeps_behind_the_slowest_group() {
        assert_eq!(keep_from([Some(5), Some(3)], 0, 10), 3);
        // A known group that never committed holds everything.
        assert_eq!(keep_from([Some(5), None], 2, 10), 2);
        // No group: nothing is delivered.
        assert_eq!(keep_from([], 2, 10), 2);
        // Positions past the end or before the head are clamped.
        assert_eq!(keep_from([Some(50)], 2, 10), 10);
        assert_eq!(keep_from([Some(1)], 2, 10), 2);
    }

    #[test]
    fn oldest_first_merges_partitions_by_time() {
        let p0 = vec![facts(0, 0, 10), facts(0, 1, 30)];
        let p1 = vec![facts(1, 0, 5), facts(1, 1, 10), facts(1, 2, 40)];
        let mut it = OldestFirst::new([p0.into_iter(), p1.into_iter()]);
        let mut order = Vec::new();
        while let Some(f) = it.pop_oldest().unwrap() {
            order.push((f.partition, f.offset));
        }
        assert_eq!(order, [(1, 0), (0, 0), (1, 1), (0, 1), (1, 2)]);
    }

    #[test]
    fn oldest_first_reports_errors() {
        let p0: Vec<Result<KeyFacts, ()>> = vec![Err(())];
        let mut it = OldestFirst::new([p0.into_iter()]);
        assert_eq!(it.pop_oldest(), Err(()));
        assert_eq!(it.pop_oldest(), Ok(None));
    }
}
