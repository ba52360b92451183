//! A slow reference for influxd 1.6's line protocol decisions, for differential testing of the
//! scanner. Compiled only for tests and fuzzing (`cfg(any(test, fuzzing))`); the property test in
//! `tests.rs` and the `line_protocol` fuzz target (`fuzz/`) compare it with [`super::lines`] on
//! every input, line by line: accept or reject, the reason, and for accepted lines every part the
//! ingest uses (series key, tags, field set, timestamp, canonical key and hash, storage drop
//! reason, time in ns, normalized line), then the whole body's influxd error text. Whether a line
//! can be normalized is decided by writing it back and reading it again with this reference.
//!
//! Written from the grammar and influxd 1.6's documented quirks, not from `scan.rs`: owned
//! buffers, one byte at a time, no lookup tables, no fast paths (the field set is always walked
//! a second time, duplicates are found by comparing every pair of tag keys, integers are range
//! checked through `i128`, the time range through `i128` products). Slow and simple on purpose.
//!
//! The rules, as influxd 1.6 (`models/points.go`) applies them:
//! - Lines: a `'\n'` ends a line unless a backslash precedes it (a backslash always skips the
//!   next byte) or it is inside a string value. After the first space of a line, `=` and `,`
//!   outside a string are counted and a `"` opens or closes a string only when more `=` than `,`
//!   were seen. Blank lines (space, tab, NUL) and lines starting with `#` are skipped; leading
//!   blanks and one trailing `'\n'` are not part of the line.
//! - Key section (measurement, tag keys and values): a byte is escaped when the byte before it is
//!   a backslash. The measurement is at least one byte and ends at the first unescaped `,` (tags
//!   follow) or space (fields follow); a tag key ends at an unescaped `=`, a tag value at an
//!   unescaped `,` or space, an unescaped `=` in a value is an error except as its first byte.
//! - Field section: a backslash skips the next byte; `k=v` pairs separated by `,` and ended by a
//!   space; values are numbers (`[-]digits[.digits][e[+-]digits]`, `i` suffix for integers, `u`
//!   refused), booleans (t T true True TRUE f F false False FALSE) or `"strings"`. After that
//!   first pass the set is walked again with the key-section rule for `=`, each key needing `=`
//!   and one more byte, and each (series key + 4 + field key) at most 65535 bytes.
//! - Timestamp: optional, `-?digits` after blanks; only spaces may follow it.

use super::{DropReason, ParseErrorKind, Precision};

mod compare;
mod fields;

pub use self::compare::{compare, outcome_text, reference_nanos};
use self::fields::scan_fields;

/// influxd's `MaxKeyLength`.
const MAX_KEY: usize = 65535;

/// A line as the reference sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefLine {
    /// The line as influxd echoes it.
    pub text: Vec<u8>,
    /// The point, or why influxd refuses the line.
    pub result: Result<RefPoint, ParseErrorKind>,
}

/// An accepted line's parts, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPoint {
    /// The measurement, escaped as written.
    pub measurement: Vec<u8>,
    /// Tags (key, value), escaped as written, in written order.
    pub tags: Vec<(Vec<u8>, Vec<u8>)>,
    /// Measurement and tags as written.
    pub key: Vec<u8>,
    /// The blanks between the series key and the field set, as written.
    pub blanks: Vec<u8>,
    /// The field set as written.
    pub fields: Vec<u8>,
    /// Field keys as influxd's second walk splits them.
    pub field_keys: Vec<Vec<u8>>,
    /// The timestamp as written.
    pub timestamp: Option<i64>,
}

impl RefPoint {
    /// Whether the tag keys are strictly ascending as written.
    pub fn tags_sorted(&self) -> bool {
        self.tags.windows(2).all(|w| w[0].0 < w[1].0)
    }

    /// Measurement, then `,key=value` for each tag in ascending key order.
    pub fn canonical_key(&self) -> Vec<u8> {
        let mut tags = self.tags.clone();
        tags.sort();
        let mut out = self.measurement.clone();
        for (k, v) in tags {
            out.push(b',');
            out.extend_from_slice(&k);
            out.push(b'=');
            out.extend_from_slice(&v);
        }
        out
    }

    /// The line as the ingest queues it, `key blanks fields ts\n`, or `None` when that does not
    /// read back (split and parsed by this reference, followed by another line) as this point
    /// with `ts_ns` as its timestamp.
    pub fn normalized(&self, ts_ns: i64) -> Option<Vec<u8>> {
        let mut line = self.key.clone();
        line.extend_from_slice(&self.blanks);
        line.extend_from_slice(&self.fields);
        line.extend_from_slice(format!(" {ts_ns}\n").as_bytes());
        let read = lines(&[&line[..], b"next v=1 0\n"].concat(), None);
        match read.as_slice() {
            [RefLine {
                result: Ok(point), ..
            }, RefLine {
                result: Ok(next), ..
            }] if point.key == self.key
                && point.fields == self.fields
                && point.timestamp == Some(ts_ns)
                && next.key == b"next" =>
            {
                Some(line)
            }
            _ => None,
        }
    }

    /// The measurement with `\,` `\"` `\ ` `\=` unescaped.
    pub fn measurement_name(&self) -> Vec<u8> {
        let m = &self.measurement;
        let mut out = Vec::new();
        let mut i = 0;
        while i < m.len() {
            if m[i] == b'\\' && i + 1 < m.len() && b",\" =".contains(&m[i + 1]) {
                i += 1;
            }
            out.push(m[i]);
            i += 1;
        }
        out
    }

    /// Why the point is dropped before storage: a tag key `time`, a series key or field key
    /// that is not UTF-8 (fluxroute's rule, as InfluxDB 1.8's `validate-keys`), or only `time`
    /// fields.
    pub fn drop_reason(&self) -> Option<DropReason> {
        let measurement = self.measurement_name();
        let not_utf8 = |b: &[u8]| std::str::from_utf8(b).is_err();
        if self.tags.iter().any(|(k, _)| k == b"time") {
            Some(DropReason::TimeTag { measurement })
        } else if not_utf8(&self.key) {
            Some(DropReason::InvalidUnicode {
                key: self.key.clone(),
            })
        } else if let Some(k) = self.field_keys.iter().find(|k| not_utf8(k)) {
            Some(DropReason::InvalidUnicode { key: k.clone() })
        } else if self.field_keys.iter().all(|k| k == b"time") {
            Some(DropReason::TimeFieldOnly { measurement })
        } else {
            None
        }
    }
}

fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t' || c == 0
}

fn skip_blanks(t: &[u8], mut i: usize) -> usize {
    while i < t.len() && is_blank(t[i]) {
        i += 1;
    }
    i
}

/// Key-section rule: the byte at `i` is escaped when the byte before it is a backslash.
fn escaped(t: &[u8], i: usize) -> bool {
    i > 0 && t[i - 1] == b'\\'
}

/// The lines of a body, as influxd echoes them (blank and comment lines left out).
pub fn split(body: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let start = pos;
        let mut i = pos;
        let mut quoted = false;
        let mut in_fields = false;
        let mut equals = 0;
        let mut commas = 0;
        while i < body.len() {
            let c = body[i];
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b' ' {
                in_fields = true;
            }
            if in_fields && !quoted && c == b'=' {
                equals += 1;
            } else if in_fields && !quoted && c == b',' {
                commas += 1;
            } else if in_fields && c == b'"' && equals > commas {
                quoted = !quoted;
            } else if c == b'\n' && !quoted {
                break;
            }
            i += 1;
        }
        let end = i.min(body.len());
        pos = end + 1;
        let mut block = body[start..end].to_vec();
        let first = skip_blanks(&block, 0);
        if first >= block.len() || block[first] == b'#' {
            continue;
        }
        if block.last() == Some(&b'\n') {
            block.pop();
        }
        out.push(block.get(first..).unwrap_or_default().to_vec());
    }
    out
}

/// Every line of `body` with the reference's verdict; `precision` adds influxd's time range
/// check (as [`super::Lines::with_precision`]).
pub fn lines(body: &[u8], precision: Option<Precision>) -> Vec<RefLine> {
    split(body)
        .into_iter()
        .map(|text| {
            let result = parse(&text, precision);
            RefLine { text, result }
        })
        .collect()
}

/// Parses one line (leading blanks already removed).
///
/// # Errors
/// influxd 1.6's reason for refusing it.
pub fn parse(t: &[u8], precision: Option<Precision>) -> Result<RefPoint, ParseErrorKind> {
    let (measurement, tags, key_end) = parse_key(t)?;
    // Field set, first pass.
    let fields_start = skip_blanks(t, key_end);
    let fields_end = scan_fields(t, fields_start)?;
    let fields = t[fields_start..fields_end].to_vec();
    let field_keys = field_keys(&fields, key_end)?;
    let timestamp = parse_timestamp(t, fields_end, precision)?;
    Ok(RefPoint {
        measurement,
        tags,
        key: t[..key_end].to_vec(),
        blanks: t[key_end..fields_start].to_vec(),
        fields,
        field_keys,
        timestamp,
    })
}

/// A tag: key and value, as written.
type RefTag = (Vec<u8>, Vec<u8>);

/// The key section: measurement, tags, and where the section ends.
fn parse_key(t: &[u8]) -> Result<(Vec<u8>, Vec<RefTag>, usize), ParseErrorKind> {
    use ParseErrorKind as E;
    let n = t.len();

    // Measurement.
    if n == 0 || t[0] == b',' {
        return Err(E::MissingMeasurement);
    }
    let mut i = 1;
    while i < n && (escaped(t, i) || (t[i] != b',' && t[i] != b' ')) {
        i += 1;
    }
    if i >= n {
        return Err(E::MissingFields);
    }
    let measurement = t[..i].to_vec();

    // Tags.
    let mut tags: Vec<RefTag> = Vec::new();
    let mut more_tags = t[i] == b',';
    while more_tags {
        i += 1;
        let key_start = i;
        if i >= n || b" ,=".contains(&t[i]) {
            return Err(E::MissingTagKey);
        }
        loop {
            i += 1;
            if i >= n {
                return Err(E::MissingTagValue);
            }
            if escaped(t, i) {
                continue;
            }
            if t[i] == b' ' || t[i] == b',' {
                return Err(E::MissingTagValue);
            }
            if t[i] == b'=' {
                break;
            }
        }
        let key = t[key_start..i].to_vec();
        i += 1;
        let value_start = i;
        if i >= n || t[i] == b',' || t[i] == b' ' {
            return Err(E::MissingTagValue);
        }
        // The value's first byte is taken as is, whatever it is.
        loop {
            i += 1;
            if i >= n {
                return Err(E::MissingFields);
            }
            if escaped(t, i) {
                continue;
            }
            match t[i] {
                b'=' => return Err(E::InvalidTagFormat),
                b',' => break,
                b' ' => {
                    more_tags = false;
                    break;
                }
                _ => {}
            }
        }
        tags.push((key, t[value_start..i].to_vec()));
    }
    let key_end = i;
    for a in 0..tags.len() {
        for b in a + 1..tags.len() {
            if tags[a].0 == tags[b].0 {
                return Err(E::DuplicateTags);
            }
        }
    }
    if key_end > MAX_KEY {
        return Err(E::MaxKeyLengthExceeded(key_end));
    }
    Ok((measurement, tags, key_end))
}

/// The field set's second pass: each key needs `=` and one more byte, and each (series key + 4
/// + field key) fits influxd's key limit.
fn field_keys(fields: &[u8], key_end: usize) -> Result<Vec<Vec<u8>>, ParseErrorKind> {
    use ParseErrorKind as E;
    let mut field_keys = Vec::new();
    let mut rest: &[u8] = fields;
    while !rest.is_empty() {
        let mut k = 0;
        while k < rest.len() && !(rest[k] == b'=' && (k == 0 || rest[k - 1] != b'\\')) {
            k += 1;
        }
        if k + 2 > rest.len() {
            return Err(E::InvalidValue(rest[..k].to_vec()));
        }
        if key_end + 4 + k > MAX_KEY {
            return Err(E::MaxKeyLengthExceeded(key_end + 4 + k));
        }
        field_keys.push(rest[..k].to_vec());
        rest = &rest[k + 1..];
        let mut v = 0;
        let mut quoted = false;
        while v < rest.len() {
            if rest[v] == b'\\'
                && v + 1 < rest.len()
                && (rest[v + 1] == b'"' || rest[v + 1] == b'\\')
            {
                v += 2;
            } else if rest[v] == b'"' {
                quoted = !quoted;
                v += 1;
            } else if rest[v] == b',' && !quoted {
                break;
            } else {
                v += 1;
            }
        }
        rest = &rest[v..];
        if !rest.is_empty() {
            rest = &rest[1..];
        }
    }
    Ok(field_keys)
}

/// The timestamp after the field set ending at `fields_end`, if any.
fn parse_timestamp(
    t: &[u8],
    fields_end: usize,
    precision: Option<Precision>,
) -> Result<Option<i64>, ParseErrorKind> {
    use ParseErrorKind as E;
    let n = t.len();
    let ts_start = skip_blanks(t, fields_end);
    let mut j = ts_start;
    while j < n && t[j] != b'\n' && t[j] != b' ' {
        if !(t[j].is_ascii_digit() || (t[j] == b'-' && j == ts_start)) {
            return Err(E::BadTimestamp);
        }
        j += 1;
    }
    Ok(if j == ts_start {
        None
    } else {
        let text = &t[ts_start..j];
        let shown = String::from_utf8_lossy(text).into_owned();
        if text == b"-" {
            return Err(E::TimestampSyntax(shown));
        }
        let ts = parse_int(text).ok_or(E::TimestampOutOfRange(shown))?;
        if let Some(p) = precision {
            let ns = i128::from(ts) * i128::from(unit_nanos(p));
            if ns < i128::from(i64::MIN) + 2 || ns > i128::from(i64::MAX) - 1 {
                return Err(E::TimeOutsideRange);
            }
        }
        if t[j..].iter().any(|&c| c != b' ') {
            return Err(E::InvalidPoint);
        }
        Some(ts)
    })
}

/// Nanoseconds per unit, written out independently of [`Precision::nanos_per_unit`].
fn unit_nanos(p: Precision) -> i64 {
    match p {
        Precision::Nanosecond => 1,
        Precision::Microsecond => 1000,
        Precision::Millisecond => 1000 * 1000,
        Precision::Second => 1000 * 1000 * 1000,
        Precision::Minute => 60 * 1000 * 1000 * 1000,
        Precision::Hour => 60 * 60 * 1000 * 1000 * 1000,
    }
}

/// `-?[0-9]+` as an i64, `None` when out of range (Go's `strconv.ParseInt(s, 10, 64)`).
fn parse_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let first_nonzero = digits
        .iter()
        .position(|&c| c != b'0')
        .unwrap_or(digits.len());
    let significant = &digits[first_nonzero..];
    if significant.len() > 19 {
        return None;
    }
    let mut v: i128 = 0;
    for &c in significant {
        v = v * 10 + i128::from(c - b'0');
    }
    if negative {
        v = -v;
    }
    i64::try_from(v).ok()
}
