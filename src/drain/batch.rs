//! Batching for one cluster: lines of the same (db, rp) go together until a batch reaches its
//! line or byte limit or its linger time. Each source record lands in exactly one batch, so a
//! batch's outcome finishes its records. A batch holds either plain lines or concatenated gzip
//! members (records framed at ingest), never both: a record of the other kind closes the open
//! batch first. Byte limits count the bytes held (compressed for members). Pure.

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
    /// Normalized lines, each ending in `\n`; gzip members of such lines when `gzip`.
    pub lines: Bytes,
    /// `lines` are concatenated gzip members.
    pub gzip: bool,
    /// Number of lines.
    pub line_count: usize,
    /// Source records: (partition, offset).
    pub sources: Vec<(u32, i64)>,
}

impl Batch {
    /// The batch with plain lines (members decompressed).
    ///
    /// # Errors
    /// The reason, when the members do not decompress.
    pub fn plain(&self) -> Result<Batch, String> {
        let lines = self.plain_lines()?;
        Ok(Batch {
            db: self.db.clone(),
            rp: self.rp.clone(),
            lines,
            gzip: false,
            line_count: self.line_count,
            sources: self.sources.clone(),
        })
    }

    /// The batch's lines, plain (members decompressed).
    ///
    /// # Errors
    /// The reason, when the members do not decompress.
    pub fn plain_lines(&self) -> Result<Bytes, String> {
        if self.gzip {
            crate::gzip::decompress(&self.lines)
        } else {
            Ok(self.lines.clone())
        }
    }

    /// Splits the batch in two halves by lines (for a 413), plain; `None` for a single line
    /// (or members that do not decompress).
    pub fn split(&self) -> Option<(Batch, Batch)> {
        if self.line_count < 2 {
            return None;
        }
        if self.gzip {
            return self.plain().ok()?.split();
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
            gzip: false,
            line_count,
            sources: self.sources.clone(),
        };
        Some((
            part(self.lines.slice(..cut), half),
            part(self.lines.slice(cut..), self.line_count - half),
        ))
    }
}

/// One record's share of a batch.
#[derive(Debug, Clone, Copy)]
pub struct Piece<'a> {
    /// Plain normalized lines, or one gzip member of them.
    pub bytes: &'a [u8],
    /// Lines in `bytes`.
    pub lines: usize,
    /// `bytes` is a gzip member.
    pub gzip: bool,
}

#[derive(Debug)]
struct OpenBatch {
    lines: BytesMut,
    gzip: bool,
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
    /// make room or because it holds the other kind, and this one if it alone fills a batch).
    pub fn add(
        &mut self,
        db: &str,
        rp: &str,
        piece: Piece<'_>,
        source: (u32, i64),
        now: Instant,
    ) -> Vec<Batch> {
        let Piece {
            bytes: lines,
            lines: line_count,
            gzip,
        } = piece;
        let mut out = Vec::new();
        let key = (db.to_owned(), rp.to_owned());
        if let Some(b) = self.open.get(&key) {
            if b.lines.len() + lines.len() > self.max_bytes
                || b.line_count + line_count > self.max_lines
                || b.gzip != gzip
            {
                if let Some(b) = self.open.remove(&key) {
                    out.push(close(&key, b));
                }
            }
        }
        let b = self.open.entry(key.clone()).or_insert_with(|| OpenBatch {
            lines: BytesMut::with_capacity(lines.len().max(64 * 1024)),
            gzip,
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
        gzip: b.gzip,
        line_count: b.line_count,
        sources: b.sources,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(bytes: &[u8], lines: usize) -> Piece<'_> {
        Piece {
            bytes,
            lines,
            gzip: false,
        }
    }

    #[test]
    fn members_and_plain_lines_never_share_a_batch() {
        let now = Instant::now();
        let mut b = Batcher::new(100, 1 << 20, Duration::from_secs(1));
        let m1 = crate::gzip::compress(b"a v=1 1\n");
        let m2 = crate::gzip::compress(b"b v=2 2\nc v=3 3\n");
        let gz = |bytes| Piece {
            bytes,
            lines: 0,
            gzip: true,
        };
        assert!(b
            .add(
                "db",
                "",
                Piece {
                    lines: 1,
                    ..gz(&m1)
                },
                (0, 0),
                now
            )
            .is_empty());
        assert!(b
            .add(
                "db",
                "",
                Piece {
                    lines: 2,
                    ..gz(&m2)
                },
                (0, 1),
                now
            )
            .is_empty());
        // A plain record closes the batch of members.
        let out = b.add("db", "", plain(b"d v=4 4\n", 1), (0, 2), now);
        assert_eq!(out.len(), 1);
        let members = &out[0];
        assert!(members.gzip);
        assert_eq!((members.line_count, members.sources.len()), (3, 2));
        let p = members.plain().unwrap();
        assert_eq!(&p.lines[..], b"a v=1 1\nb v=2 2\nc v=3 3\n");
        assert!(!p.gzip);
        // A 413 splits members by lines, plain.
        let (x, y) = members.split().unwrap();
        assert_eq!((&x.lines[..], x.gzip), (&b"a v=1 1\n"[..], false));
        assert_eq!(&y.lines[..], b"b v=2 2\nc v=3 3\n");
        let rest = b.take_all();
        assert_eq!(rest.len(), 1);
        assert!(!rest[0].gzip);
    }

    #[test]
    fn closes_on_line_and_byte_limits() {
        let now = Instant::now();
        let mut b = Batcher::new(3, 1000, Duration::from_secs(1));
        assert!(b
            .add("db", "", plain(b"a v=1 1\nb v=1 1\n", 2), (0, 0), now)
            .is_empty());
        let out = b.add("db", "", plain(b"c v=1 1\nd v=1 1\n", 2), (0, 1), now);
        // The first batch closes to make room; the second stays open.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].line_count, 2);
        assert_eq!(out[0].sources, vec![(0, 0)]);
        let out = b.add("db", "", plain(b"e v=1 1\n", 1), (1, 0), now);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].line_count, 3);
        assert_eq!(out[0].sources, vec![(0, 1), (1, 0)]);
        assert!(b.is_empty());
    }

    #[test]
    fn keys_by_db_and_rp_and_lingers() {
        let t0 = Instant::now();
        let mut b = Batcher::new(100, 1000, Duration::from_millis(200));
        b.add("a", "", plain(b"m v=1 1\n", 1), (0, 0), t0);
        b.add("a", "short", plain(b"m v=1 1\n", 1), (0, 1), t0);
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
            gzip: false,
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
            gzip: false,
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
