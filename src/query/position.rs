//! Read-your-writes: the queue position a write reached, handed to the client in
//! `X-Fluxroute-Position` and given back in a read's `X-Fluxroute-After`.
//!
//! The value is opaque to clients: `<partition>:<offset>` pairs, comma-separated, the highest
//! offset the write put in each partition. A cluster has a write once its drain's committed
//! position (the next offset to read, shared by every router of a Kafka topic through the
//! consumer group) is past every pair.

use std::collections::BTreeMap;
use std::fmt;

/// The header a write's answer carries.
pub const POSITION_HEADER: &str = "X-Fluxroute-Position";
/// The header a read names a position in.
pub const AFTER_HEADER: &str = "X-Fluxroute-After";

/// The highest offset written per partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position(BTreeMap<u32, i64>);

impl Position {
    /// The position after `appended` (records' partitions and offsets).
    pub fn of(appended: &[(u32, i64)]) -> Position {
        let mut p = Position::default();
        p.extend(appended);
        p
    }

    /// Adds records written later in the same request.
    pub fn extend(&mut self, appended: &[(u32, i64)]) {
        for &(partition, offset) in appended {
            let e = self.0.entry(partition).or_insert(offset);
            *e = (*e).max(offset);
        }
    }

    /// Takes the highest offset per partition of `self` and `other`.
    pub fn merge(&mut self, other: &Position) {
        for (&partition, &offset) in &other.0 {
            self.extend(&[(partition, offset)]);
        }
    }

    /// Nothing was written.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a header value written by [`Position`]'s `Display`.
    ///
    /// # Errors
    /// The value is not one.
    pub fn parse(s: &str) -> Result<Position, String> {
        let mut p = Position::default();
        for pair in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
            let parsed = pair
                .split_once(':')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<i64>().ok()?)));
            let Some(entry) = parsed.filter(|(_, o)| *o >= 0) else {
                return Err(format!(
                    "invalid {AFTER_HEADER} {s:?}: expected partition:offset pairs"
                ));
            };
            p.extend(&[entry]);
        }
        if p.is_empty() {
            return Err(format!("invalid {AFTER_HEADER} {s:?}: no position"));
        }
        Ok(p)
    }

    /// Whether a group whose committed positions (next offsets to read) are `committed` has
    /// read past every record of this position.
    pub fn passed_by(&self, committed: &[(u32, Option<i64>)]) -> bool {
        self.0.iter().all(|(p, o)| {
            committed
                .iter()
                .any(|(cp, c)| cp == p && c.is_some_and(|c| c > *o))
        })
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (p, o) in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{p}:{o}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_keep_the_highest_offset_per_partition_and_round_trip() {
        let mut p = Position::of(&[(1, 5), (0, 9), (1, 7)]);
        p.extend(&[(1, 6), (3, 0)]);
        assert_eq!(p.to_string(), "0:9,1:7,3:0");
        assert_eq!(Position::parse(&p.to_string()), Ok(p));
        for bad in ["", "x", "1:", "1:-2", "a:1", "1:2,oops"] {
            assert!(Position::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_group_passed_a_position_once_committed_beyond_each_partition() {
        let p = Position::of(&[(0, 9), (1, 7)]);
        assert!(p.passed_by(&[(0, Some(10)), (1, Some(8)), (2, None)]));
        assert!(
            !p.passed_by(&[(0, Some(10)), (1, Some(7))]),
            "7 itself not read"
        );
        assert!(!p.passed_by(&[(0, Some(10)), (1, None)]));
        assert!(!p.passed_by(&[(0, Some(10))]));
    }
}
