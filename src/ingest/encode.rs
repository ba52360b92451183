//! From a request body to queue records: validate every line, fix its timestamp in nanoseconds,
//! pick its partition from (db, rp, series key), and pack lines into records below the queue's
//! record size. Pure: no I/O.

use bytes::Bytes;

use crate::line_protocol::{self, Precision};
use crate::queue::{OutgoingRecord, RecordMeta};

/// What a body turned into.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Records to enqueue.
    pub records: Vec<OutgoingRecord>,
    /// Valid lines packed into `records`.
    pub accepted: usize,
    /// Lines that failed to parse or that InfluxDB would drop (tag key `time`, only `time`
    /// fields, a field type conflict).
    pub rejected: usize,
    /// Points older than the retention policy keeps (counted in `rejected` too).
    pub beyond_retention: usize,
    /// Lines that parsed (enqueued, or dropped by InfluxDB's storage rules). With none accepted
    /// but some parsed, the answer is InfluxDB's storage answer rather than a parse error.
    pub points: usize,
    /// InfluxDB 1.x's error message for this body (`unable to parse …` or `partial write: …`),
    /// `None` when every line is good.
    pub error: Option<String>,
    /// Each rejected line's reason joined by `\n`, without InfluxDB 1.x's `partial write`
    /// framing: the v2 API's message, which rejects the whole batch.
    pub line_errors: String,
    /// Fields of the accepted points absent from [`Target::stored`] (unescaped measurement,
    /// unescaped key, type): the clusters create them on delivery. Empty without stored fields
    /// or with a field type conflict.
    pub fresh_fields: Vec<(Vec<u8>, Vec<u8>, line_protocol::FieldType)>,
    /// The body has a field type conflict, decided with [`Target::stored`] fields known.
    pub stored_conflict: bool,
    /// Lines in each of `records`, in order.
    pub record_lines: Vec<usize>,
}

/// Records shorter than this stay plain without a try: the frame and gzip's header and
/// trailer take 26 bytes, about what deflate saves on a line or two.
const MIN_COMPRESSED_RECORD: usize = 128;

impl Encoded {
    /// Compresses every record's lines into one framed gzip member
    /// ([`crate::queue::payload`]): once here, instead of once per cluster in the drains. A
    /// record that does not get smaller stays plain, so no record outgrows the queue's record
    /// size cap that its lines were packed to; records under 128 bytes are not tried.
    pub fn compress_records(&mut self) {
        for (record, &n) in self.records.iter_mut().zip(&self.record_lines) {
            if record.payload.len() < MIN_COMPRESSED_RECORD {
                continue;
            }
            let framed = crate::queue::payload::pack(&record.payload, n);
            if framed.len() < record.payload.len() {
                record.payload = framed;
            }
        }
    }
}

fn push_line_error(out: &mut String, reason: impl std::fmt::Display) {
    use std::fmt::Write as _;
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = write!(out, "{reason}");
}

/// Where a request's lines go.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Database.
    pub db: &'a str,
    /// Retention policy ("" for the default).
    pub rp: &'a str,
    /// Partitions of the queue.
    pub partitions: u32,
    /// Payload cap of one record.
    pub max_record_bytes: usize,
    /// Points before this (ns since the epoch) are beyond the retention policy every cluster
    /// of the write has: dropped, as influxd drops them.
    pub min_time: Option<i64>,
    /// Field types every cluster of the write already holds: a point with one of these fields
    /// of another type is dropped, as influxd drops it.
    pub stored: Option<&'a dyn line_protocol::StoredFields>,
}

impl Target<'_> {
    /// Whether influxd would drop `line` as beyond the retention policy.
    fn is_beyond_retention(
        &self,
        line: &line_protocol::Line<'_>,
        precision: Precision,
        receive_nanos: i64,
    ) -> bool {
        // A line without a timestamp gets the receive time: never beyond.
        self.min_time.is_some_and(|min| {
            line.timestamp.is_some()
                && line_protocol::timestamp_nanos(line.timestamp, precision, receive_nanos)
                    .is_ok_and(|ts| ts < min)
        })
    }
}

/// influxd's reason for points beyond the retention policy.
const BEYOND_RETENTION: &str = "points beyond retention policy";

/// The partition of a line: a series always lands on the same partition of a given db/rp, so it
/// keeps its order in the queue.
pub fn partition_of(db_rp_hash: u64, series_hash: u64, partitions: u32) -> u32 {
    let mixed = (series_hash ^ db_rp_hash).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // The high half is the best-mixed part of the product.
    u32::try_from((mixed >> 32) % u64::from(partitions.max(1))).unwrap_or(0)
}

/// Stable hash of (db, rp), mixed into each line's partition choice.
pub fn db_rp_hash(db: &str, rp: &str) -> u64 {
    let mut key = Vec::with_capacity(db.len() + rp.len() + 1);
    key.extend_from_slice(db.as_bytes());
    key.push(0);
    key.extend_from_slice(rp.as_bytes());
    xxhash_rust::xxh3::xxh3_64(&key)
}

/// A line of a body as the ingest sees it: refused by the scanner (or by fluxroute), or a point
/// that InfluxDB would try to store.
enum Item<'a> {
    Refused(line_protocol::LineError<'a>),
    Point(line_protocol::Line<'a>),
}

fn items(body: &[u8], precision: Precision) -> impl Iterator<Item = Item<'_>> {
    line_protocol::lines(body)
        .with_precision(precision)
        .map(|item| match item {
            Err(e) => Item::Refused(e),
            // A line that cannot take a timestamp cannot be made replay-safe: refused (before
            // the storage checks only when influxd would not drop it anyway).
            Ok(line)
                if !line_protocol::is_normalizable(&line)
                    && line_protocol::drop_reason(&line).is_none() =>
            {
                Item::Refused(line_protocol::LineError {
                    text: line.text,
                    kind: line_protocol::ParseErrorKind::NotNormalizable,
                })
            }
            Ok(line) => Item::Point(line),
        })
}

/// Validates and packs `body`. `receive_nanos` is the one instant stamped on lines without a
/// timestamp (as InfluxDB does per request, truncated to the precision).
///
/// A body that gives one field two types is packed twice: the first pass notices the conflict,
/// [`line_protocol::settle`] decides over all its points as influxd would, and the second pass
/// packs only the points influxd would write.
pub fn encode(
    body: &[u8],
    precision: Precision,
    receive_nanos: i64,
    target: Target<'_>,
) -> Encoded {
    let (encoded, conflict) = pack(body, precision, receive_nanos, target, None);
    if !conflict {
        return encoded;
    }
    // Points beyond retention never reach influxd's storage: they take no part in conflicts.
    let points: Vec<_> = items(body, precision)
        .filter_map(|item| match item {
            Item::Point(line) if !target.is_beyond_retention(&line, precision, receive_nanos) => {
                Some((line, line_protocol::drop_reason(&line)))
            }
            Item::Point(_) | Item::Refused(_) => None,
        })
        .collect();
    let verdict = line_protocol::settle_with(&points, target.stored);
    tracing::debug!(?verdict, "field type conflict inside one request");
    let stored_conflict = target.stored.is_some() && verdict != line_protocol::Verdict::Clean;
    let mut encoded = pack(body, precision, receive_nanos, target, Some(verdict)).0;
    encoded.stored_conflict = stored_conflict;
    encoded
}

/// One pass of [`encode`]; also says whether the body has a field type conflict (always false
/// with a verdict).
fn pack(
    body: &[u8],
    precision: Precision,
    receive_nanos: i64,
    target: Target<'_>,
    verdict: Option<line_protocol::Verdict>,
) -> (Encoded, bool) {
    let partitions = target.partitions.max(1);
    let cap = target.max_record_bytes.max(1);
    let seed = db_rp_hash(target.db, target.rp);
    let meta = RecordMeta::write(target.db, target.rp);
    // Each partition's open record and its line count.
    let mut open: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); partitions as usize];
    let mut outcome = line_protocol::WriteOutcome::new();
    let mut out = Encoded::default();
    let conflict_reason = verdict
        .as_ref()
        .and_then(line_protocol::Verdict::error_text);

    for item in items(body, precision) {
        let line = match item {
            Item::Point(line) => line,
            Item::Refused(e) => {
                outcome.record_error(&e);
                push_line_error(&mut out.line_errors, &e);
                out.rejected += 1;
                continue;
            }
        };
        if target.is_beyond_retention(&line, precision, receive_nanos) {
            out.points += 1;
            out.rejected += 1;
            out.beyond_retention += 1;
            push_line_error(&mut out.line_errors, BEYOND_RETENTION);
            continue;
        }
        let point = out.points - out.beyond_retention;
        out.points += 1;
        if let Some(reason) = outcome.record_line_over(&line, target.stored) {
            push_line_error(&mut out.line_errors, reason);
            out.rejected += 1;
            continue;
        }
        if let (Some(v), Some(reason)) = (&verdict, &conflict_reason) {
            if !v.keeps(point) {
                push_line_error(&mut out.line_errors, String::from_utf8_lossy(reason));
                out.rejected += 1;
                continue;
            }
        }
        let ts = match line_protocol::timestamp_nanos(line.timestamp, precision, receive_nanos) {
            Ok(ts) => ts,
            Err(kind) => {
                // The scanner already range-checked written timestamps; only a receive time
                // outside InfluxDB's range could land here.
                outcome.record_error(&line_protocol::LineError {
                    text: line.text,
                    kind,
                });
                out.rejected += 1;
                continue;
            }
        };
        let p = partition_of(seed, line_protocol::series_key_hash(&line), partitions) as usize;
        let (buf, count) = &mut open[p];
        // Normalized size: key+fields, space, up to 20 digits, newline.
        if !buf.is_empty() && buf.len() + line.fields_end + 22 > cap {
            out.records.push(OutgoingRecord {
                partition: p as u32,
                meta: meta.clone(),
                payload: Bytes::from(std::mem::take(buf)),
            });
            out.record_lines.push(std::mem::take(count));
        }
        if buf.capacity() == 0 {
            buf.reserve((body.len() / partitions as usize + 64).min(cap + 64));
        }
        line_protocol::write_normalized(&line, ts, buf);
        *count += 1;
        out.accepted += 1;
    }
    for (p, (buf, count)) in open.into_iter().enumerate() {
        if !buf.is_empty() {
            out.records.push(OutgoingRecord {
                partition: p as u32,
                meta: meta.clone(),
                payload: Bytes::from(buf),
            });
            out.record_lines.push(count);
        }
    }
    let conflict = verdict.is_none() && outcome.has_field_type_conflict();
    if verdict.is_none() && out.accepted > 0 {
        out.fresh_fields = outcome.fresh_fields().to_vec();
    }
    if let Some(v) = verdict {
        outcome.apply(v);
    }
    out.error = outcome.error_message();
    // influxd maps points to shards (dropping those beyond retention) before its storage
    // checks: a storage drop's answer wins, else the retention drop's, which hides parse errors.
    if out.beyond_retention > 0 && outcome.dropped() == 0 {
        out.error = Some(format!(
            "partial write: {BEYOND_RETENTION} dropped={}",
            out.beyond_retention
        ));
    }
    (out, conflict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(partitions: u32, max: usize) -> Target<'static> {
        Target {
            db: "db",
            rp: "",
            partitions,
            max_record_bytes: max,
            min_time: None,
            stored: None,
        }
    }

    #[test]
    fn records_know_their_line_counts_and_compress_once() {
        let body: Vec<u8> = (0..500)
            .flat_map(|i| format!("cpu,host=h{i} v={i} {i}\n").into_bytes())
            .collect();
        // Four partitions, records cut at 2 KB: many records.
        let mut e = encode(&body, Precision::Nanosecond, 0, target(4, 2048));
        assert_eq!(e.records.len(), e.record_lines.len());
        assert!(e.records.len() > 4, "{}", e.records.len());
        let plain: Vec<Bytes> = e.records.iter().map(|r| r.payload.clone()).collect();
        for (r, &n) in e.records.iter().zip(&e.record_lines) {
            assert_eq!(r.payload.iter().filter(|&&c| c == b'\n').count(), n);
        }
        assert_eq!(e.record_lines.iter().sum::<usize>(), 500);
        // A record that would not get smaller stays plain (and within the record size cap).
        let mut tiny = encode(b"m v=1 1\n", Precision::Nanosecond, 0, target(1, 2048));
        tiny.compress_records();
        assert_eq!(&tiny.records[0].payload[..], b"m v=1 1\n");
        e.compress_records();
        for ((r, &n), p) in e.records.iter().zip(&e.record_lines).zip(&plain) {
            assert_eq!(
                crate::queue::payload::read(&r.payload),
                crate::queue::payload::Payload::Gzip {
                    lines: n,
                    member: r.payload.slice(8..)
                }
            );
            assert_eq!(&crate::queue::payload::plain_lines(&r.payload).unwrap(), p);
        }
    }

    #[test]
    fn stamps_missing_timestamps_and_normalizes() {
        let body = b"cpu,host=a usage=1 1700000000\n# comment\n\nmem free=2i\n";
        // As InfluxDB does, the receive time is truncated to the request's precision.
        let e = encode(body, Precision::Second, 42_700_000_000, target(1, 1 << 20));
        assert_eq!(e.accepted, 2);
        assert_eq!(e.rejected, 0);
        assert_eq!(e.records.len(), 1);
        assert_eq!(
            &e.records[0].payload[..],
            b"cpu,host=a usage=1 1700000000000000000\nmem free=2i 42000000000\n"
        );
        assert_eq!(e.records[0].meta, RecordMeta::write("db", ""));
    }

    #[test]
    fn collects_errors_in_influxdb_wording() {
        let body = b"good v=1 1\nbad\nalso bad=\n";
        let e = encode(body, Precision::Nanosecond, 0, target(4, 1 << 20));
        assert_eq!((e.accepted, e.rejected), (1, 2));
        let text = e.error.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].starts_with("partial write: unable to parse 'bad': "),
            "{}",
            lines[0]
        );
        assert!(lines[1].ends_with(" dropped=0"), "{}", lines[1]);
        assert!(
            lines[1].starts_with("unable to parse 'also bad=': "),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn points_influxdb_drops_are_not_enqueued() {
        let e = encode(
            b"m,time=1 v=1 1\nm v=2 2\n",
            Precision::Nanosecond,
            0,
            target(1, 1 << 20),
        );
        assert_eq!((e.accepted, e.rejected), (1, 1));
        assert_eq!(&e.records[0].payload[..], b"m v=2 2\n");
        assert_eq!(
            e.error.unwrap(),
            "partial write: invalid tag key: input tag \"time\" on measurement \"m\" is invalid dropped=1"
        );
    }

    /// Every record line read back: (key, fields, timestamp).
    fn read_back(e: &Encoded) -> Vec<(Vec<u8>, Vec<u8>, Option<i64>)> {
        e.records
            .iter()
            .flat_map(|r| line_protocol::lines(&r.payload))
            .map(|l| {
                let l = l.expect("records hold valid lines");
                (l.key().to_vec(), l.fields().to_vec(), l.timestamp)
            })
            .collect()
    }

    #[test]
    fn field_type_conflicts_keep_the_other_lines() {
        let e = encode(
            b"m v=1 1\nm v=2i 2\nbad\nn v=1i 3\n",
            Precision::Nanosecond,
            0,
            target(2, 1 << 20),
        );
        assert_eq!((e.accepted, e.rejected, e.points), (2, 2, 3));
        let mut back = read_back(&e);
        back.sort();
        assert_eq!(
            back,
            vec![
                (b"m".to_vec(), b"v=1".to_vec(), Some(1)),
                (b"n".to_vec(), b"v=1i".to_vec(), Some(3)),
            ]
        );
        assert_eq!(
            e.error.unwrap(),
            "partial write: field type conflict: input field \"v\" on measurement \"m\" is \
             type integer, already exists as type float dropped=1"
        );
        // A second conflict fails the whole write in influxd: nothing is enqueued.
        let e = encode(
            b"a v=1 1\na v=2i 2\nb w=1 3\nb w=t 4\n",
            Precision::Nanosecond,
            0,
            target(1, 1 << 20),
        );
        assert!(e.records.is_empty());
        assert_eq!((e.accepted, e.rejected, e.points), (0, 4, 4));
        assert_eq!(e.error.unwrap(), "field type conflict");
    }

    #[test]
    fn points_beyond_retention_are_dropped_as_influxd_does() {
        let old_target = Target {
            min_time: Some(100),
            ..target(1, 1 << 20)
        };
        // Checked on influxd 1.6.7: the old point is dropped and counted, the others stored.
        let e = encode(
            b"m v=1 50\nm v=2 150\nm v=3\n",
            Precision::Nanosecond,
            200,
            old_target,
        );
        assert_eq!((e.accepted, e.rejected, e.beyond_retention), (2, 1, 1));
        assert_eq!(
            e.error.as_deref(),
            Some("partial write: points beyond retention policy dropped=1")
        );
        // Parse errors are not mentioned then; all points old: nothing stored, same answer.
        let e = encode(
            b"m v=1 50\nbad\nm v=2 60\n",
            Precision::Nanosecond,
            200,
            old_target,
        );
        assert_eq!((e.accepted, e.rejected, e.points), (0, 3, 2));
        assert_eq!(
            e.error.as_deref(),
            Some("partial write: points beyond retention policy dropped=2")
        );
        // A storage drop among the kept points wins, with its own count; an old point with a
        // `time` tag is beyond retention, never reaching the storage checks.
        let e = encode(
            b"m v=1 50\nm,time=1 v=2 150\nm v=3 160\n",
            Precision::Nanosecond,
            200,
            old_target,
        );
        assert_eq!((e.accepted, e.rejected, e.beyond_retention), (1, 2, 1));
        assert_eq!(
            e.error.as_deref(),
            Some(
                "partial write: invalid tag key: input tag \"time\" on measurement \"m\" is invalid dropped=1"
            )
        );
        let e = encode(
            b"m,time=1 v=2 50\nm v=3 160\n",
            Precision::Nanosecond,
            200,
            old_target,
        );
        assert_eq!(
            e.error.as_deref(),
            Some("partial write: points beyond retention policy dropped=1")
        );
        // An old point takes no part in a field type conflict.
        let e = encode(
            b"m v=1i 50\nm v=2 160\n",
            Precision::Nanosecond,
            200,
            old_target,
        );
        assert_eq!((e.accepted, e.beyond_retention), (1, 1));
        let e = encode(
            b"m v=1i 150\nm v=2 50\nm v=3i 160\n",
            Precision::Nanosecond,
            200,
            old_target,
        );
        assert_eq!((e.accepted, e.beyond_retention), (2, 1));
        assert_eq!(
            e.error.as_deref(),
            Some("partial write: points beyond retention policy dropped=1")
        );
    }

    #[test]
    fn blanks_before_the_fields_are_kept() {
        // Found by fuzzing: `=1` after a NUL or a tab is a field with an empty key for influxd,
        // after a single space a missing key; normalizing the blanks to one space broke it.
        let e = encode(
            b"m \0=1 5\nn \t=2\n",
            Precision::Nanosecond,
            7,
            target(1, 1 << 20),
        );
        assert_eq!((e.accepted, e.rejected), (2, 0));
        assert_eq!(&e.records[0].payload[..], b"m \0=1 5\nn \t=2 7\n");
        assert_eq!(
            read_back(&e),
            vec![
                (b"m".to_vec(), b"=1".to_vec(), Some(5)),
                (b"n".to_vec(), b"=2".to_vec(), Some(7)),
            ]
        );
    }

    #[test]
    fn field_set_ending_in_a_backslash_is_refused() {
        // Found by fuzzing: the backslash would escape the space before the timestamp written
        // after it, so the queued line would come back without a time (influxd 1.6 accepts
        // `m v="a"\` and stores it at its own receive time, which breaks replay safety).
        let e = encode(
            b"ok v=1 1\nm v=\"a\"\\",
            Precision::Nanosecond,
            7,
            target(1, 1 << 20),
        );
        assert_eq!((e.accepted, e.rejected), (1, 1));
        assert_eq!(
            read_back(&e),
            vec![(b"ok".to_vec(), b"v=1".to_vec(), Some(1))]
        );
        // A point influxd drops anyway keeps influxd's answer.
        let e = encode(
            b"d,time=1 v=\"a\"\\",
            Precision::Nanosecond,
            7,
            target(1, 1 << 20),
        );
        assert_eq!(
            e.error.unwrap(),
            "partial write: invalid tag key: input tag \"time\" on measurement \"d\" is invalid dropped=1"
        );
        let e = encode(b"m v=\"a\"\\", Precision::Nanosecond, 7, target(1, 1 << 20));
        assert!(e.records.is_empty());
        assert_eq!(
            e.error.unwrap(),
            "unable to parse 'm v=\"a\"\\': fluxroute cannot give this line a timestamp: written \
             back with one, it would not read as the same line"
        );
    }

    #[test]
    fn receive_time_outside_influxd_range_rejects_untimed_lines() {
        // Found by fuzzing: flooring such a receive time overflowed.
        let e = encode(
            b"a v=1\nb v=2 5\n",
            Precision::Second,
            i64::MIN,
            target(1, 1 << 20),
        );
        assert_eq!((e.accepted, e.rejected), (1, 1));
        assert_eq!(
            read_back(&e),
            vec![(b"b".to_vec(), b"v=2".to_vec(), Some(5_000_000_000))]
        );
    }

    #[test]
    fn splits_records_below_the_cap() {
        let mut body = Vec::new();
        for i in 0..1000 {
            body.extend_from_slice(format!("m,host=h v={i} {i}\n").as_bytes());
        }
        let e = encode(&body, Precision::Nanosecond, 0, target(1, 1000));
        assert_eq!(e.accepted, 1000);
        assert!(e.records.len() > 10);
        let mut total = 0;
        for r in &e.records {
            assert!(r.payload.len() <= 1000, "{}", r.payload.len());
            assert!(r.payload.ends_with(b"\n"));
            total += r.payload.iter().filter(|&&b| b == b'\n').count();
        }
        assert_eq!(total, 1000);
    }

    #[test]
    fn a_series_keeps_its_partition() {
        let body = b"cpu,host=a v=1 1\ncpu,host=b v=1 1\ncpu,host=a v=2 2\ncpu,host=c v=1 1\n";
        let e = encode(body, Precision::Nanosecond, 0, target(8, 1 << 20));
        let part_of = |needle: &[u8]| {
            e.records
                .iter()
                .filter(|r| r.payload.windows(needle.len()).any(|w| w == needle))
                .map(|r| r.partition)
                .collect::<Vec<_>>()
        };
        let a = part_of(b"host=a");
        assert_eq!(a.len(), 1, "both host=a lines in one record");
        // Same series, differently ordered tags: same partition.
        let h1 = db_rp_hash("db", "");
        let p = |l: &[u8]| {
            let line = line_protocol::parse_line(l).unwrap();
            partition_of(h1, line_protocol::series_key_hash(&line), 8)
        };
        assert_eq!(p(b"cpu,a=1,b=2 v=1"), p(b"cpu,b=2,a=1 v=1"));
    }

    #[test]
    fn out_of_range_timestamp_is_a_line_error() {
        let e = encode(
            b"m v=1 9223372036854775807\n",
            Precision::Second,
            0,
            target(1, 1 << 20),
        );
        assert_eq!((e.accepted, e.rejected), (0, 1));
        assert!(e
            .error
            .unwrap()
            .starts_with("unable to parse 'm v=1 9223372036854775807': "));
    }

    /// Encodes `body` into a database already holding field `v` of `m` as a float.
    fn over_stored(body: &str, min_time: Option<i64>) -> Encoded {
        let mut stored = line_protocol::FieldMap::new();
        stored
            .entry(b"m".to_vec())
            .or_default()
            .extend([(b"v".to_vec(), line_protocol::FieldType::Float)]);
        stored
            .entry(b"m".to_vec())
            .or_default()
            .insert(b"s".to_vec(), line_protocol::FieldType::String);
        let t = Target {
            min_time,
            stored: Some(&stored),
            ..target(1, 1 << 20)
        };
        encode(body.as_bytes(), Precision::Nanosecond, 200, t)
    }

    fn stored_conflict(key: &str, ty: &str, was: &str, dropped: usize) -> Option<String> {
        Some(format!(
            "partial write: field type conflict: input field \"{key}\" on measurement \"m\" is \
             type {ty}, already exists as type {was} dropped={dropped}"
        ))
    }

    #[test]
    fn points_conflicting_with_stored_fields_are_dropped_as_influxd_does() {
        // Each body and answer as influxd 1.6.7 gave them over `m v=1,s="x"` written before.
        let e = over_stored("m v=2i 2", None);
        assert_eq!((e.accepted, e.rejected, e.points), (0, 1, 1));
        assert_eq!(e.error, stored_conflict("v", "integer", "float", 1));
        assert!(e.stored_conflict);
        let e = over_stored("m v=3 3\nm v=4i 4\nm v=5 5\nm v=6i 6", None);
        assert_eq!(e.error, stored_conflict("v", "integer", "float", 2));
        let kept: Vec<_> = read_back(&e).into_iter().map(|l| l.2).collect();
        assert_eq!(kept, vec![Some(3), Some(5)]);
        // The dropped point's new field is not created, nor learned.
        let e = over_stored("m v=7i,new=1 7\nm v=8 8", None);
        assert_eq!(e.error, stored_conflict("v", "integer", "float", 1));
        assert!(e.fresh_fields.is_empty());
        // New fields conflicting among themselves: influxd's retry over the compacted points.
        let e = over_stored("m v=9i 9\nm v=10 10\nm w=1 11\nm w=2i 12", None);
        assert_eq!(e.error, stored_conflict("w", "integer", "float", 2));
        assert_eq!(e.accepted, 2);
        // A `time` tag's reason comes first; parse errors are not mentioned.
        let e = over_stored("m s=1 13\nm v=14 14\nm,time=x v=1 15", None);
        assert_eq!(
            e.error.as_deref(),
            Some(
                "partial write: invalid tag key: input tag \"time\" on measurement \"m\" is \
                 invalid dropped=2"
            )
        );
        let e = over_stored("m v=16i 16\nbad\nm v=17 17", None);
        assert_eq!(e.error, stored_conflict("v", "integer", "float", 1));
        assert_eq!((e.accepted, e.rejected), (1, 2));
    }

    #[test]
    fn stored_fields_combine_with_retention_and_are_learned() {
        // Matching types: taken, and the new field is reported with its type.
        let e = over_stored("m v=1,new=1i 1\nm v=2,new=2i 2", None);
        assert_eq!((e.error, e.accepted, e.stored_conflict), (None, 2, false));
        assert_eq!(
            e.fresh_fields,
            vec![(
                b"m".to_vec(),
                b"new".to_vec(),
                line_protocol::FieldType::Integer
            )]
        );
        // A point beyond retention never meets the stored fields.
        let e = over_stored("m v=1i 50\nm v=2 150", Some(100));
        assert_eq!(
            e.error.as_deref(),
            Some("partial write: points beyond retention policy dropped=1")
        );
        // A conflict among the kept points wins, with its own count; every drop is rejected.
        let e = over_stored("m v=1 50\nm v=2i 150\nm v=3 160", Some(100));
        assert_eq!(e.error, stored_conflict("v", "integer", "float", 1));
        assert_eq!((e.accepted, e.rejected), (1, 2));
    }
}
