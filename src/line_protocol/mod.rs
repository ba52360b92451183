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
//! What it does not own: I/O, HTTP, gzip, and anything stateful in influxd (field type
//! conflicts, series and tag-value limits). It does know how influxd words and JSON-encodes a
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

#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod reference;
mod scan;
#[cfg(test)]
mod tests;

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
            let end = scan::scan_line(body, start);
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
                scan::parse_point(text, self.precision).map_err(|kind| LineError { text, kind }),
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

/// Scales a written timestamp to ns with influxd's overflow and range checks (`SafeCalcTime`).
#[inline]
fn scale_timestamp(ts: i64, precision: Precision) -> Result<i64, ParseErrorKind> {
    match ts.checked_mul(precision.nanos_per_unit()) {
        Some(ns) if (MIN_NANOS..=MAX_NANOS).contains(&ns) => Ok(ns),
        _ => Err(ParseErrorKind::TimeOutsideRange),
    }
}

/// The line's time in ns: the written timestamp scaled by `precision`, or `receive_nanos`
/// truncated to `precision` when the line has none (influxd's `SetPrecision`). The caller takes
/// one receive instant per request, as influxd does.
///
/// # Errors
/// [`ParseErrorKind::TimeOutsideRange`] when the written timestamp overflows or falls outside
/// [`MIN_NANOS`]..=[`MAX_NANOS`] (influxd's text), or when the truncated receive time does (a
/// clock outside years 1677-2262; found by fuzzing: it used to overflow).
#[inline]
pub fn timestamp_nanos(
    ts: Option<i64>,
    precision: Precision,
    receive_nanos: i64,
) -> Result<i64, ParseErrorKind> {
    match ts {
        Some(ts) => scale_timestamp(ts, precision),
        None => {
            match receive_nanos.checked_sub(receive_nanos.rem_euclid(precision.nanos_per_unit())) {
                Some(ns) if (MIN_NANOS..=MAX_NANOS).contains(&ns) => Ok(ns),
                _ => Err(ParseErrorKind::TimeOutsideRange),
            }
        }
    }
}

/// Whether a normalized line (see [`write_normalized`]) reads back as this line with its
/// timestamp. Two kinds of valid lines cannot be normalized (both found by fuzzing the ingest's
/// encoding); the ingest refuses them:
/// - a field set that ends in a backslash that escapes nothing (possible only in bytes after a
///   closing quote, `v="a"\`): influxd's field scanner lets a backslash escape the byte after
///   it, so the space before the timestamp would join the field set and the line would come
///   back without a time;
/// - a line holding a newline that influxd's line splitter kept inside the line only thanks to
///   its context: leading blanks (a leading space makes the splitter count quotes from the
///   start: `" a\"=\"\n\"b v=1"` is one line, `"a\"=\"\n\"b v=1"` two), or the end of the body
///   inside what the splitter counts as a quote (with a newline after its timestamp it would
///   swallow the next line).
pub fn is_normalizable(line: &Line<'_>) -> bool {
    let head = &line.text[..line.fields_end];
    // The field scanner takes backslashes in pairs: an odd run at the end leaves one that would
    // escape the space after it.
    let trailing = head.iter().rev().take_while(|&&c| c == b'\\').count();
    trailing % 2 == 0 && (is_plain(head) || scan::splits_as_one_line(head))
}

/// Without a quote, a backslash or a newline, a line splits the same in any context.
#[inline]
fn is_plain(head: &[u8]) -> bool {
    memchr::memchr3(b'"', b'\\', b'\n', head).is_none()
}

/// Appends the normalized line to `out`: the line as written up to the end of its field set
/// (key, the blanks after it, fields), then `' ' + ts_ns + '\n'`. When [`is_normalizable`]
/// holds, it reads back (with [`lines`], alone or among other normalized lines) as the same
/// line with `ts_ns` as its timestamp; otherwise it does not.
///
/// The blanks between key and fields are kept as written: influxd reads `=1` after a tab or a
/// NUL as a field with an empty key but after a space as a missing key, so `m \0=1` must not
/// become `m =1` (found by fuzzing the ingest's encoding).
#[inline]
pub fn write_normalized(line: &Line<'_>, ts_ns: i64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let digits = format_i64(ts_ns, &mut buf);
    out.reserve(line.fields_end + digits.len() + 2);
    out.extend_from_slice(&line.text[..line.fields_end]);
    out.push(b' ');
    out.extend_from_slice(digits);
    out.push(b'\n');
}

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Decimal text of `v` in the tail of `buf` (itoa's two-digits-at-a-time method).
#[inline]
fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut pos = buf.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        pos -= 2;
        buf[pos..pos + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    } else {
        pos -= 1;
        buf[pos] = b'0' + n as u8;
    }
    if v < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

/// Stable 64-bit hash of the canonical series key, for partitioning.
///
/// Algorithm (fixed forever): xxh3-64 with seed 0 (`xxhash_rust::xxh3::xxh3_64`) of the
/// canonical key bytes = the measurement as written, then for each tag in ascending byte order
/// of its escaped key, `,` + `key=value` as written. This is the key influxd 1.6's parser builds
/// (it sorts tags the same way and keeps escapes as written), so two lines of one influxd series
/// written with the same escaping hash alike whatever their tag order.
pub fn series_key_hash(line: &Line<'_>) -> u64 {
    if line.tags_sorted {
        return xxhash_rust::xxh3::xxh3_64(line.key());
    }
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for_each_sorted_tag(line, |part| h.update(part));
    h.digest()
}

/// Appends the canonical series key (see [`series_key_hash`]) to `out`.
pub fn canonical_series_key(line: &Line<'_>, out: &mut Vec<u8>) {
    if line.tags_sorted {
        out.extend_from_slice(line.key());
    } else {
        for_each_sorted_tag(line, |part| out.extend_from_slice(part));
    }
}

/// Feeds measurement, then `,` and each tag in sorted order, to `f`.
fn for_each_sorted_tag(line: &Line<'_>, mut f: impl FnMut(&[u8])) {
    f(line.measurement_raw());
    let mut tags: Vec<&[u8]> = Vec::new();
    scan::for_each_tag(&line.text[line.measurement_len + 1..line.key_len], |t| {
        tags.push(t)
    });
    tags.sort_unstable_by(|a, b| scan::tag_key(a).cmp(scan::tag_key(b)));
    for t in tags {
        f(b",");
        f(t);
    }
}

/// Why influxd 1.6's storage layer drops a point that parsed (after parsing, before writing;
/// `tsdb.Shard.validateSeriesAndFields`). influxd answers 400 `partial write: <reason>
/// dropped=<n>`; see [`WriteOutcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// A tag key is exactly `time`.
    TimeTag {
        /// Measurement name, unescaped as influxd prints it; raw bytes, as influxd echoes them.
        measurement: Vec<u8>,
    },
    /// Every field key is exactly `time` (a `time` field next to others is silently ignored by
    /// influxd and the point is written without it).
    TimeFieldOnly {
        /// Measurement name, unescaped as influxd prints it; raw bytes, as influxd echoes them.
        measurement: Vec<u8>,
    },
    /// The measurement, a tag key or value, or a field key is not valid UTF-8. influxd 1.6
    /// stores such a series but fails to persist its field index (a 500 on that and later
    /// writes, which a drain would retry forever); 1.8 with `validate-keys` drops the point with
    /// this reason. fluxroute always drops it, so an invalid key never reaches a cluster.
    InvalidUnicode {
        /// The series key (or field key) with the invalid bytes; raw bytes, as influxd echoes
        /// them.
        key: Vec<u8>,
    },
}

impl DropReason {
    /// Appends the reason with the measurement's (or key's) bytes as written (influxd's JSON
    /// encoder then shows each invalid UTF-8 byte as `\ufffd`, as for parse errors).
    pub fn write_raw(&self, out: &mut Vec<u8>) {
        let (what, measurement) = match self {
            DropReason::TimeTag { measurement } => {
                ("invalid tag key: input tag \"time\"", measurement)
            }
            DropReason::TimeFieldOnly { measurement } => {
                ("invalid field name: input field \"time\"", measurement)
            }
            DropReason::InvalidUnicode { key } => {
                out.extend_from_slice(b"key contains invalid unicode: \"");
                out.extend_from_slice(key);
                out.push(b'"');
                return;
            }
        };
        out.extend_from_slice(what.as_bytes());
        out.extend_from_slice(b" on measurement \"");
        out.extend_from_slice(measurement);
        out.extend_from_slice(b"\" is invalid");
    }
}

/// influxd's reason text, invalid UTF-8 shown as U+FFFD per byte.
impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::new();
        self.write_raw(&mut raw);
        f.write_str(&go_lossy(&raw))
    }
}

/// Whether influxd 1.6 would drop this parsed line before storing it, and why.
pub fn drop_reason(line: &Line<'_>) -> Option<DropReason> {
    let name = || line.measurement().into_owned();
    // Cheap pre-check: a `time` tag key follows an unescaped comma.
    if memchr::memmem::find(line.key(), b",time=").is_some()
        && line.tags().any(|(k, _)| k == b"time")
    {
        return Some(DropReason::TimeTag {
            measurement: name(),
        });
    }
    if let Some(key) = invalid_unicode_key(line) {
        return Some(DropReason::InvalidUnicode { key: key.to_vec() });
    }
    // Cheap pre-check: the field set must start with `time=` for every key to be `time`.
    if !line.fields().starts_with(b"time=") {
        return None;
    }
    let mut only_time = true;
    walk_field_keys(line.fields(), |k| only_time &= k == b"time");
    only_time.then(|| DropReason::TimeFieldOnly {
        measurement: name(),
    })
}

/// The series key, or else the first field key, when it is not valid UTF-8 (ASCII fast path).
fn invalid_unicode_key<'a>(line: &Line<'a>) -> Option<&'a [u8]> {
    let key = line.key();
    if !key.is_ascii() && std::str::from_utf8(key).is_err() {
        return Some(key);
    }
    let fields = line.fields();
    if fields.is_ascii() {
        return None;
    }
    let mut bad = None;
    walk_field_keys(fields, |k| {
        if bad.is_none() && std::str::from_utf8(k).is_err() {
            bad = Some(k);
        }
    });
    bad
}

/// `walkFields` over a valid field set, keys only.
fn walk_field_keys<'a>(mut fields: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    while !fields.is_empty() {
        let mut k = 0;
        while k < fields.len() && !(fields[k] == b'=' && (k == 0 || fields[k - 1] != b'\\')) {
            k += 1;
        }
        f(&fields[..k]);
        fields = fields.get(k + 1..).unwrap_or(&[]);
        let mut v = 0;
        let mut quoted = false;
        while v < fields.len() {
            let c = fields[v];
            if c == b'\\' && matches!(fields.get(v + 1), Some(b'"' | b'\\')) {
                v += 2;
                continue;
            }
            if c == b'"' {
                quoted = !quoted;
            } else if c == b',' && !quoted {
                break;
            }
            v += 1;
        }
        fields = fields.get(v + 1..).unwrap_or(&[]);
    }
}

/// What influxd 1.6 answers for a whole write body, built line by line.
///
/// Checked against influxd 1.6.7 (`tests/differential_influxd.rs`):
/// - no parse error, no drop: 204;
/// - every non-blank line fails to parse: 400 `{"error":"<e1>\n<e2>..."}` — each error is
///   `unable to parse '<line>': <reason>`, joined by `'\n'`, no `partial write` prefix;
/// - some lines parse and some do not, none dropped: 400 `partial write: <e1>\n<e2>... dropped=0`
///   (the good lines are written; parse failures are not counted in `dropped`);
/// - some parsed points dropped by storage: 400 `partial write: <reason> dropped=<n>` where n
///   counts dropped points only and the reason is the first `time` tag drop in body order, else
///   the first `time`-only field set drop; parse errors are then not mentioned at all.
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    points: usize,
    /// Raw bytes: the lines are echoed as written (see [`append_json_string`]).
    parse_errors: Vec<u8>,
    dropped: usize,
    tag_reason: Option<DropReason>,
    field_reason: Option<DropReason>,
}

impl WriteOutcome {
    /// An empty outcome (no lines yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a line that parsed; returns why influxd would drop it, if it would.
    pub fn record_line(&mut self, line: &Line<'_>) -> Option<DropReason> {
        self.points += 1;
        let reason = drop_reason(line)?;
        self.dropped += 1;
        let slot = match reason {
            DropReason::TimeTag { .. } | DropReason::InvalidUnicode { .. } => &mut self.tag_reason,
            DropReason::TimeFieldOnly { .. } => &mut self.field_reason,
        };
        if slot.is_none() {
            *slot = Some(reason.clone());
        }
        Some(reason)
    }

    /// Records a line that failed to parse.
    pub fn record_error(&mut self, error: &LineError<'_>) {
        if !self.parse_errors.is_empty() {
            self.parse_errors.push(b'\n');
        }
        error.write_raw(&mut self.parse_errors);
    }

    /// Number of points influxd would store.
    pub fn written(&self) -> usize {
        self.points - self.dropped
    }

    /// Number of points influxd's storage layer would drop (the `dropped=` count).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Whether any line failed to parse.
    pub fn has_parse_errors(&self) -> bool {
        !self.parse_errors.is_empty()
    }

    /// influxd's error text as raw bytes (lines echoed as written), or `None` for 204.
    pub fn error_text(&self) -> Option<Vec<u8>> {
        if let Some(reason) = self.tag_reason.as_ref().or(self.field_reason.as_ref()) {
            let mut out = b"partial write: ".to_vec();
            reason.write_raw(&mut out);
            out.extend_from_slice(format!(" dropped={}", self.dropped).as_bytes());
            return Some(out);
        }
        if self.parse_errors.is_empty() {
            return None;
        }
        if self.points == 0 {
            return Some(self.parse_errors.clone());
        }
        let mut out = b"partial write: ".to_vec();
        out.extend_from_slice(&self.parse_errors);
        out.extend_from_slice(b" dropped=0");
        Some(out)
    }

    /// influxd's error text for logs (invalid UTF-8 shown as U+FFFD), or `None` for 204.
    pub fn error_message(&self) -> Option<String> {
        self.error_text().map(|t| go_lossy(&t).into_owned())
    }

    /// influxd's exact 400 body, `{"error":"..."}` + `'\n'`, or `None` for 204.
    pub fn error_body(&self) -> Option<Vec<u8>> {
        let text = self.error_text()?;
        let mut out = Vec::with_capacity(text.len() + 16);
        out.extend_from_slice(b"{\"error\":");
        append_json_string(&text, &mut out);
        out.extend_from_slice(b"}\n");
        Some(out)
    }
}

/// Appends `text` as a JSON string the way influxd's Go `encoding/json` writes it: `"` and `\`
/// escaped, `\n` `\r` `\t` short, other control bytes as `\u00XX`, `<` `>` `&` U+2028 U+2029 as
/// `\uXXXX`, and each byte that does not start valid UTF-8 as `\ufffd`.
pub fn append_json_string(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut rest = text;
    while !rest.is_empty() {
        let (valid, bad) = match std::str::from_utf8(rest) {
            Ok(s) => (s, false),
            Err(e) => (
                std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(),
                true,
            ),
        };
        for c in valid.chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                    let b = c as usize;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[b >> 4]);
                    out.push(HEX[b & 15]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        rest = &rest[valid.len()..];
        if bad {
            out.extend_from_slice(b"\\ufffd");
            rest = &rest[1..];
        }
    }
    out.push(b'"');
}
