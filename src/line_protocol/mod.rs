//! InfluxDB line protocol: a validating, zero-copy scanner that decides exactly as InfluxDB 1.x
//! (`influxd` 1.6, `models/points.go`) does.
//!
//! What it owns: splitting a write body into lines, validating each line (accept or reject with
//! influxd's own reason text), locating the series key (measurement + tag set), the field set and
//! the timestamp, converting the timestamp to nanoseconds with influxd's overflow and range checks,
//! writing the normalized line (`key fields ts_ns\n`), and hashing the canonical series key for
//! partitioning. It also knows the two checks influxd's storage layer applies after parsing (tag
//! key `time`, a field set made only of `time`) and how influxd words a write's error body.
//!
//! It also decides field type conflicts inside one write as influxd does (`conflicts.rs`:
//! [`settle`]), taking the request as written into an existing shard that holds none of its
//! fields with another type.
//!
//! What it does not own: I/O, HTTP, gzip, and anything stateful in influxd (field types stored
//! by earlier writes, series and tag-value limits). It does know how influxd words and JSON-encodes a
//! write's error ([`WriteOutcome::error_body`], [`append_json_string`]) because that depends on
//! the raw line bytes.
//!
//! Invariants:
//! - Pure and allocation-free on the accept path; a [`Line`] borrows from the body.
//! - Accept/reject decisions and reason texts are influxd 1.6's, including its quirks (each one is
//!   noted where it is implemented in `scan.rs`); `tests/differential_influxd.rs` checks this
//!   against a real `influxd`.
//! - [`series_key_hash`] is xxh3-64 (seed 0) of the canonical series key and must never change:
//!   it decides Kafka partitions, and so the order of a series.
//!
//! Lines are split as 1.6's `scanLine` does: a newline inside a double-quoted field value, or one
//! preceded by a backslash, does not end the line. A '\r' before the newline stays in the line
//! (1.x rejects `cpu v=1\r` with "invalid number").

mod classify;
mod conflicts;
mod drops;
mod normalize;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod reference;
mod scan;
#[cfg(test)]
mod tests;

pub use self::conflicts::{
    field_pairs, settle, settle_with, FieldMap, FieldPairs, FieldType, StoredFields, Verdict,
};
pub use self::drops::{append_json_string, drop_reason, DropReason, WriteOutcome};
#[cfg(test)]
use self::normalize::format_i64;
use self::normalize::scale_timestamp;
pub use self::normalize::{
    canonical_series_key, is_normalizable, series_key_hash, timestamp_nanos, write_normalized,
};

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

/// Largest length of a series key (measurement + tags), and of a series key plus the 4-byte
/// field separator plus a field key (`models.MaxKeyLength`).
pub const MAX_KEY_LENGTH: usize = 65535;

/// Smallest timestamp influxd 1.x accepts, in ns (`models.MinNanoTime` = i64::MIN + 2).
pub const MIN_NANOS: i64 = i64::MIN + 2;
/// Largest timestamp influxd 1.x accepts, in ns (`models.MaxNanoTime` = i64::MAX - 1).
pub const MAX_NANOS: i64 = i64::MAX - 1;

/// The unit of the timestamps of a write request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// `n`, `ns` (the default).
    Nanosecond,
    /// `u` (v1), `us`.
    Microsecond,
    /// `ms`.
    Millisecond,
    /// `s`.
    Second,
    /// `m` (v1 only).
    Minute,
    /// `h` (v1 only).
    Hour,
}

impl Precision {
    /// v1 `/write?precision=`: `""` | `n` | `ns` -> ns, `u` | `us` | `µ` -> µs, `ms`, `s`, `m`,
    /// `h`; anything else `None` (InfluxDB 1.8 answers 400 for an unknown precision).
    ///
    /// Note: influxd 1.6 itself never rejects a precision and treats every value it does not know
    /// (including `us` and `µ`) as nanoseconds; see [`Precision::from_v1_lenient`].
    pub fn from_v1(s: &str) -> Option<Precision> {
        match s {
            "" | "n" | "ns" => Some(Precision::Nanosecond),
            "u" | "us" | "µ" => Some(Precision::Microsecond),
            "ms" => Some(Precision::Millisecond),
            "s" => Some(Precision::Second),
            "m" => Some(Precision::Minute),
            "h" => Some(Precision::Hour),
            _ => None,
        }
    }

    /// influxd 1.6's exact reading of `/write?precision=` (`models.GetPrecisionMultiplier`):
    /// `u`, `ms`, `s`, `m`, `h` are honoured and everything else, `us` and `µ` included, means
    /// nanoseconds. Checked against influxd 1.6.7.
    pub fn from_v1_lenient(s: &str) -> Precision {
        match s {
            "u" => Precision::Microsecond,
            "ms" => Precision::Millisecond,
            "s" => Precision::Second,
            "m" => Precision::Minute,
            "h" => Precision::Hour,
            _ => Precision::Nanosecond,
        }
    }

    /// v2 `/api/v2/write?precision=`: `""` | `ns`, `us`, `ms`, `s`; anything else `None`.
    pub fn from_v2(s: &str) -> Option<Precision> {
        match s {
            "" | "ns" => Some(Precision::Nanosecond),
            "us" => Some(Precision::Microsecond),
            "ms" => Some(Precision::Millisecond),
            "s" => Some(Precision::Second),
            _ => None,
        }
    }

    /// Nanoseconds in one unit.
    pub fn nanos_per_unit(self) -> i64 {
        match self {
            Precision::Nanosecond => 1,
            Precision::Microsecond => 1_000,
            Precision::Millisecond => 1_000_000,
            Precision::Second => 1_000_000_000,
            Precision::Minute => 60_000_000_000,
            Precision::Hour => 3_600_000_000_000,
        }
    }
}

/// One valid line, borrowed from the request body.
///
/// Offsets index [`Line::text`]: `text[..key_len]` is the raw series key, `text[fields_start..
/// fields_end]` the raw field set. They are usually contiguous (`fields_start == key_len + 1`);
/// influxd also allows several spaces, tabs or NULs between the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line as influxd echoes it in errors: leading whitespace skipped, no trailing `'\n'`.
    pub text: &'a [u8],
    /// `text[..measurement_len]`: the measurement, escaped as written.
    pub measurement_len: usize,
    /// `text[..key_len]`: measurement + tag set as written (the raw series key).
    pub key_len: usize,
    /// Start of the field set in `text`.
    pub fields_start: usize,
    /// End of the field set in `text` (no trailing space).
    pub fields_end: usize,
    /// The timestamp as written, in the request's precision units.
    pub timestamp: Option<i64>,
    /// Tag keys are already in influxd's order (strictly ascending bytes of the escaped keys).
    pub tags_sorted: bool,
    /// A tag key is `time` as written (influxd drops such a point): set by the scanner, so the
    /// drop check needs no search of its own.
    pub time_tag: bool,
    /// The line holds no quote and no backslash: it splits the same in any context and can be
    /// normalized as written. `false` when the scanner did not look (then checked on demand).
    pub plain: bool,
    /// A hash of the measurement, the field keys and the value types as influxd's field iterator
    /// reads them, or 0 when the scanner cannot tell (a field set with a backslash or a stray
    /// `=`). Lines with the same non-zero shape have the same fields with the same types, up to
    /// a 64-bit hash collision; used to skip repeated field sets in type-conflict checks.
    pub field_shape: u64,
}

impl<'a> Line<'a> {
    /// The raw series key: measurement and tags as written.
    pub fn key(&self) -> &'a [u8] {
        &self.text[..self.key_len]
    }

    /// The raw (escaped) measurement.
    pub fn measurement_raw(&self) -> &'a [u8] {
        &self.text[..self.measurement_len]
    }

    /// The measurement name as influxd reports and stores it (`\,` `\"` `\ ` `\=` unescaped).
    pub fn measurement(&self) -> Cow<'a, [u8]> {
        unescape(self.measurement_raw())
    }

    /// The raw field set.
    pub fn fields(&self) -> &'a [u8] {
        &self.text[self.fields_start..self.fields_end]
    }

    /// Raw tags (key, value), escaped as written, in the order written (collects into a small
    /// `Vec`: not for the hot path).
    pub fn tags(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        let mut spans = Vec::new();
        if self.key_len > self.measurement_len {
            scan::for_each_tag(&self.text[self.measurement_len + 1..self.key_len], |t| {
                spans.push(t)
            });
        }
        spans.into_iter().map(|t: &'a [u8]| {
            let k = scan::tag_key(t);
            (k, &t[k.len() + 1..])
        })
    }

    /// The line's text as a zero-copy slice of `body`.
    ///
    /// # Panics
    /// If this line was not parsed from `body`'s bytes.
    pub fn text_bytes(&self, body: &Bytes) -> Bytes {
        body.slice_ref(self.text)
    }
}

/// Why influxd rejects a line. `Display` gives influxd 1.6's own reason text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    /// The line starts with a comma (or is empty).
    #[error("missing measurement")]
    MissingMeasurement,
    /// The key ended the line (`cpu`, `cpu,a=b`).
    #[error("missing fields")]
    MissingFields,
    /// `cpu,=a`, `cpu,,a=b`, a trailing comma after the tags.
    #[error("missing tag key")]
    MissingTagKey,
    /// `cpu,a v=1`, `cpu,a= v=1`.
    #[error("missing tag value")]
    MissingTagValue,
    /// An unescaped `=` inside a tag value.
    #[error("invalid tag format")]
    InvalidTagFormat,
    /// The same tag key twice.
    #[error("duplicate tags")]
    DuplicateTags,
    /// Series key (or series key + 4 + a field key) longer than [`MAX_KEY_LENGTH`].
    #[error("max key length exceeded: {0} > 65535")]
    MaxKeyLengthExceeded(usize),
    /// `walkFields` found a field key without `=` and a value after it; happens when the
    /// escape rules of 1.6's two field scanners disagree (`cpu v\\=1i`). Holds the key bytes.
    #[error("invalid value: field-key={}", go_lossy(.0))]
    InvalidValue(Vec<u8>),
    /// `cpu =1`, `cpu a=1,=2`.
    #[error("missing field key")]
    MissingFieldKey,
    /// `cpu a=`, `cpu a=,b=1`.
    #[error("missing field value")]
    MissingFieldValue,
    /// A malformed number, NaN, or an unsigned `u` value (disabled in 1.6).
    #[error("invalid number")]
    InvalidNumber,
    /// An `i` integer outside int64 (holds the digits as written).
    #[error("unable to parse integer {0}: strconv.ParseInt: parsing \"{0}\": value out of range")]
    IntegerOutOfRange(String),
    /// A float that does not parse or overflows (checked for exponents and ≥ 25 characters).
    #[error("invalid float")]
    InvalidFloat,
    /// A value that starts with a letter and is not one of the boolean spellings.
    #[error("invalid boolean")]
    InvalidBoolean,
    /// A string value without its closing quote.
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    /// Field set without `=`, or with a dangling comma/key.
    #[error("invalid field format")]
    InvalidFieldFormat,
    /// A non-digit in the timestamp (`+5`, `1.5`, `1e9`, a tab or `\r` after it).
    #[error("bad timestamp")]
    BadTimestamp,
    /// Timestamp `-` alone (holds the text).
    #[error("strconv.ParseInt: parsing \"{0}\": invalid syntax")]
    TimestampSyntax(String),
    /// Timestamp outside int64 (holds the text).
    #[error("strconv.ParseInt: parsing \"{0}\": value out of range")]
    TimestampOutOfRange(String),
    /// Timestamp × precision outside [`MIN_NANOS`, `MAX_NANOS`], or overflowing.
    #[error("time outside range -9223372036854775806 - 9223372036854775806")]
    TimeOutsideRange,
    /// Something other than spaces after the timestamp.
    #[error("point is invalid")]
    InvalidPoint,
    /// Not influxd's: the line cannot be written back with a timestamp and read as itself (see
    /// [`is_normalizable`]), so fluxroute cannot make its replays harmless; the ingest refuses
    /// it. influxd 1.6 accepts such a line and stores it at its own receive time.
    #[error("fluxroute cannot give this line a timestamp: written back with one, it would not read as the same line")]
    NotNormalizable,
}

/// A rejected line. `Display` is `unable to parse '<text>': <reason>`, exactly as influxd says
/// it (invalid UTF-8 shown as U+FFFD per byte, as Go's JSON encoder would).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError<'a> {
    /// The line as influxd echoes it (leading whitespace skipped, no trailing `'\n'`).
    pub text: &'a [u8],
    /// Why it was rejected.
    pub kind: ParseErrorKind,
}

impl fmt::Display for LineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unable to parse '{}': {}",
            go_lossy(self.text),
            self.kind
        )
    }
}

impl std::error::Error for LineError<'_> {}

impl LineError<'_> {
    /// Appends `unable to parse '<text>': <reason>` with the line's bytes as written (influxd
    /// echoes raw bytes; its JSON encoder then shows each invalid UTF-8 byte as `\ufffd`).
    pub fn write_raw(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        out.extend_from_slice(b"unable to parse '");
        out.extend_from_slice(self.text);
        // Writing to a Vec cannot fail.
        if let ParseErrorKind::InvalidValue(key) = &self.kind {
            out.extend_from_slice(b"': invalid value: field-key=");
            out.extend_from_slice(key);
        } else {
            let _ = write!(out, "': {}", self.kind);
        }
    }
}

/// Bytes to text the way Go's `encoding/json` does it: each byte that does not start a valid
/// UTF-8 sequence becomes one U+FFFD.
fn go_lossy(mut bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    loop {
        match std::str::from_utf8(bytes) {
            Ok(s) => {
                out.push_str(s);
                return Cow::Owned(out);
            }
            Err(e) => {
                let (valid, rest) = bytes.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push('\u{FFFD}');
                bytes = &rest[1..];
            }
        }
    }
}

/// `pkg/escape.Unescape`: `\,` `\"` `\ ` `\=` lose their backslash.
fn unescape(raw: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\\', raw).is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' && matches!(raw.get(i + 1), Some(b',' | b'"' | b' ' | b'=')) {
            out.push(raw[i + 1]);
            i += 2;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// Validates one line as influxd's `parsePoint` does.
///
/// `text` is one line as [`lines`] delimits it: it may hold a newline inside a quoted string
/// value or after a backslash. Leading whitespace (space, tab, NUL) is skipped and not part of
/// [`Line::text`]. Callers pass non-blank, non-comment lines (a `#` line is parsed as a point).
///
/// The timestamp is not range-checked here (that needs the precision: see
/// [`timestamp_nanos`]). The only consequence: a line whose timestamp is out of range *and* is
/// followed by garbage gets "point is invalid" where influxd says "time outside range ...";
/// [`parse_line_with_precision`] gives influxd's exact answer.
///
/// # Errors
/// The reason influxd would give.
pub fn parse_line(text: &[u8]) -> Result<Line<'_>, ParseErrorKind> {
    scan::parse_point(&text[scan::skip_whitespace(text, 0)..], None)
}

/// [`parse_line`] plus influxd's range check of the timestamp at the point where influxd makes
/// it, so the reason text is influxd's for every line.
///
/// # Errors
/// The reason influxd would give for this line at this precision.
pub fn parse_line_with_precision(
    text: &[u8],
    precision: Precision,
) -> Result<Line<'_>, ParseErrorKind> {
    scan::parse_point(&text[scan::skip_whitespace(text, 0)..], Some(precision))
}

/// Iterator over the lines of a request body; see [`lines`].
#[derive(Debug, Clone)]
pub struct Lines<'a> {
    body: &'a [u8],
    pos: usize,
    precision: Option<Precision>,
}

/// Splits a request body as influxd's `ParsePointsWithPrecision` does and validates each line.
///
/// Blank lines (only spaces, tabs, NULs) and lines whose first non-blank byte is `#` are skipped;
/// every other line yields `Ok(Line)` or `Err(LineError)`, in body order.
pub fn lines(body: &[u8]) -> Lines<'_> {
    Lines {
        body,
        pos: 0,
        precision: None,
    }
}

impl<'a> Lines<'a> {
    /// Range-checks timestamps for `precision` while parsing, where influxd does (see
    /// [`parse_line_with_precision`]).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = Some(precision);
        self
    }

    /// Byte offset in the body where the next line starts.
    pub fn offset(&self) -> usize {
        self.pos.min(self.body.len())
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<Line<'a>, LineError<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let body = self.body;
        while self.pos < body.len() {
            let start = self.pos;
            let (end, plain) = scan::scan_line_plain(body, start);
            self.pos = end + 1;
            let mut block = &body[start..end];
            let first = scan::skip_whitespace(block, 0);
            if first >= block.len() || block[first] == b'#' {
                continue;
            }
            // A block ends in '\n' only when a backslash before it kept it in the line.
            if let Some(stripped) = block.strip_suffix(b"\n") {
                block = stripped;
            }
            let text = &block[first.min(block.len())..];
            return Some(
                scan::parse_point(text, self.precision)
                    .map(|line| Line { plain, ..line })
                    .map_err(|kind| LineError { text, kind }),
            );
        }
        None
    }
}

/// The lines of a body, each with its terminating newline, split where influxd splits them: a
/// newline inside a quoted string value stays in its line. For queued (normalized) payloads,
/// whose lines are all valid, this is the drain's unit of batching, routing and counting.
pub fn line_slices(body: &[u8]) -> LineSlices<'_> {
    LineSlices { body, pos: 0 }
}

/// Iterator of [`line_slices`].
#[derive(Debug, Clone)]
pub struct LineSlices<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for LineSlices<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let body = self.body;
        if self.pos >= body.len() {
            return None;
        }
        let start = self.pos;
        let end = scan::scan_line(body, start);
        self.pos = end + 1;
        Some(&body[start..self.pos.min(body.len())])
    }
}
