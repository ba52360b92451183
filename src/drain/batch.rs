//! Batching for one cluster: lines of the same (db, rp) go together until a batch reaches its
//! line or byte limit or its linger time. Each source record lands in exactly one batch, so a
//! batch's outcome finishes its records. Pure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

/// Lines bound for one (db, rp) on one cluster.
#[derive(Debug)]
pub struct Batch {
    /// Target database (after renames).
    pub db: String,
    /// Target retention policy.
    pub rp: String,
    /// Normalized lines, each ending in `\n`.
    pub lines: Bytes,
    /// Number of lines.
    pub line_count: usize,
    /// Source records: (partition, offset).
    pub sources: Vec<(u32, i64)>,
}

impl Batch {
    /// Splits the batch in two halves by lines (for a 413); `None` for a single line.
    pub fn split(&self) -> Option<(Batch, Batch)> {
        if self.line_count < 2 {
            return None;
        }
        let half = self.line_count / 2;
        // Lines may hold newlines inside string values: cut where the line protocol splits.
        let cut: usize = crate::line_protocol::line_slices(&self.lines)
            .take(half)
            .map(<[u8]>::len)
            .sum();
        let part = |lines: Bytes, line_count| Batch {
            db: self.db.clone(),
            rp: self.rp.clone(),
            lines,
            line_count,
            sources: self.sources.clone(),
        };
        Some((
            part(self.lines.slice(..cut), half),
            part(self.lines.slice(cut..), self.line_count - half),
        ))
    }
}

#[derive(Debug)]
struct OpenBatch {
    lines: BytesMut,
    line_count: usize,
    sources: Vec<(u32, i64)>,
    opened: Instant,
}

/// Open batches of one cluster.
#[derive(Debug)]
pub struct Batcher {
    open: HashMap<(String, String), OpenBatch>,
    max_lines: usize,
    max_bytes: usize,
    linger: Duration,
}

impl Batcher {
    /// A batcher with the cluster's limits.
    pub fn new(max_lines: usize, max_bytes: usize, linger: Duration) -> Batcher {
        Batcher {
            open: HashMap::new(),
            max_lines: max_lines.max(1),
            max_bytes: max_bytes.max(1),
            linger,
        }
    }

    /// Adds one record's lines; returns batches that are full (at most two: the one closed to
    /// make room, and this one if it alone fills a batch).
    pub fn add(
        &mut self,
        db: &str,
        rp: &str,
        lines: &[u8],
        line_count: usize,
        source: (u32, i64),
        now: Instant,
    ) -> Vec<Batch> {
        let mut out = Vec::new();
        let key = (db.to_owned(), rp.to_owned());
        if let Some(b) = self.open.get(&key) {
            if b.lines.len() + lines.len() > self.max_bytes
                || b.line_count + line_count > self.max_lines
            {
                if let Some(b) = self.open.remove(&key) {
                    out.push(close(&key, b));
                }
            }
        }
        let b = self.open.entry(key.clone()).or_insert_with(|| OpenBatch {
            lines: BytesMut::with_capacity(lines.len().max(64 * 1024)),
            line_count: 0,
            sources: Vec::new(),
            opened: now,
        });
        b.lines.extend_from_slice(lines);
        b.line_count += line_count;
        b.sources.push(source);
        if b.lines.len() >= self.max_bytes || b.line_count >= self.max_lines {
            if let Some(b) = self.open.remove(&key) {
                out.push(close(&key, b));
            }
        }
        out
    }

    /// Closes batches open longer than the linger time.
    pub fn take_expired(&mut self, now: Instant) -> Vec<Batch> {
        let linger = self.linger;
        let keys: Vec<_> = self
            .open
            .iter()
            .filter(|(_, b)| now.duration_since(b.opened) >= linger)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.open.remove(&k).map(|b| close(&k, b)))
            .collect()
    }

    /// Closes every open batch (before a DDL record, at shutdown).
    pub fn take_all(&mut self) -> Vec<Batch> {
        self.open.drain().map(|(k, b)| close(&k, b)).collect()
    }

    /// When the oldest open batch expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|b| b.opened + self.linger).min()
    }

    /// Whether nothing is open.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

fn close(key: &(String, String), b: OpenBatch) -> Batch {
    Batch {
        db: key.0.clone(),
        rp: key.1.clone(),
        lines: b.lines.freeze(),
        line_count: b.line_count,
        sources: b.sources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_on_line_and_byte_limits() {
        let now = Instant::now();
        let mut b = Batcher::new(3, 1000, Duration::from_secs(1));
        assert!(b
            .add("db", "", b"a v=1 1\nb v=1 1\n", 2, (0, 0), now)
            .is_empty());
        let out = b.add("db", "", b"c v=1 1\nd v=1 1\n", 2, (0, 1), now);
        // The first batch closes to make room; the second stays open.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].line_count, 2);
        assert_eq!(out[0].sources, vec![(0, 0)]);
        let out = b.add("db", "", b"e v=1 1\n", 1, (1, 0), now);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].line_count, 3);
        assert_eq!(out[0].sources, vec![(0, 1), (1, 0)]);
        assert!(b.is_empty());
    }

    #[test]
    fn keys_by_db_and_rp_and_lingers() {
        let t0 = Instant::now();
        let mut b = Batcher::new(100, 1000, Duration::from_millis(200));
        b.add("a", "", b"m v=1 1\n", 1, (0, 0), t0);
        b.add("a", "short", b"m v=1 1\n", 1, (0, 1), t0);
        assert!(b.take_expired(t0 + Duration::from_millis(100)).is_empty());
        let out = b.take_expired(t0 + Duration::from_millis(200));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn split_keeps_newlines_inside_string_values() {
        let batch = Batch {
            db: "d".into(),
            rp: String::new(),
            lines: Bytes::from_static(b"a s=\"x\ny\" 1\nb v=1 1\n"),
            line_count: 2,
            sources: vec![(0, 5)],
        };
        let (x, y) = batch.split().unwrap();
        assert_eq!(&x.lines[..], b"a s=\"x\ny\" 1\n");
        assert_eq!(&y.lines[..], b"b v=1 1\n");
    }

    #[test]
    fn split_halves_by_lines() {
        let batch = Batch {
            db: "d".into(),
            rp: String::new(),
            lines: Bytes::from_static(b"a v=1 1\nb v=1 1\nc v=1 1\n"),
            line_count: 3,
            sources: vec![(0, 5)],
        };
        let (x, y) = batch.split().unwrap();
        assert_eq!(&x.lines[..], b"a v=1 1\n");
        assert_eq!(&y.lines[..], b"b v=1 1\nc v=1 1\n");
        assert_eq!((x.line_count, y.line_count), (1, 2));
        assert!(x.split().is_none());
    }
}
