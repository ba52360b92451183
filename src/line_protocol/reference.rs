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
    let mut tags: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
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

    // Field set, first pass.
    let fields_start = skip_blanks(t, key_end);
    let fields_end = scan_fields(t, fields_start)?;
    let fields = t[fields_start..fields_end].to_vec();

    // Field set, second pass.
    let mut field_keys = Vec::new();
    let mut rest: &[u8] = &fields;
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

    // Timestamp.
    let ts_start = skip_blanks(t, fields_end);
    let mut j = ts_start;
    while j < n && t[j] != b'\n' && t[j] != b' ' {
        if !(t[j].is_ascii_digit() || (t[j] == b'-' && j == ts_start)) {
            return Err(E::BadTimestamp);
        }
        j += 1;
    }
    let timestamp = if j == ts_start {
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
    };

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

/// The first pass over the field set (`scanFields`), starting at `start`; returns its end.
fn scan_fields(t: &[u8], start: usize) -> Result<usize, ParseErrorKind> {
    use ParseErrorKind as E;
    let n = t.len();
    let mut i = start;
    let mut quoted = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    while i < n {
        let c = t[i];
        if c == b'\\' && i + 1 < n {
            i += 2;
            continue;
        }
        if c == b'"' && equals > commas {
            quoted = !quoted;
            i += 1;
            continue;
        }
        if c == b'=' && !quoted {
            equals += 1;
            // An empty key: `= ` after a space or a comma that is not escaped.
            let before = t[i - 1];
            if (before == b' ' || before == b',') && t[i - 2] != b'\\' {
                return Err(E::MissingFieldKey);
            }
            let Some(&next) = t.get(i + 1) else {
                return Err(E::MissingFieldValue);
            };
            if next == b',' || next == b' ' {
                return Err(E::MissingFieldValue);
            }
            if next.is_ascii_digit() || b".-Nn".contains(&next) {
                i = number_end(t, i + 1)?;
                continue;
            }
            if next != b'"' {
                i = boolean_end(t, i + 1)?;
                continue;
            }
        }
        if c == b',' && !quoted {
            commas += 1;
        }
        if c == b' ' && !quoted {
            break;
        }
        i += 1;
    }
    if quoted {
        return Err(E::UnbalancedQuotes);
    }
    if equals == 0 || commas + 1 != equals {
        return Err(E::InvalidFieldFormat);
    }
    Ok(i)
}

/// A number value starting at `start` (`scanNumber`); returns its end.
fn number_end(t: &[u8], start: usize) -> Result<usize, ParseErrorKind> {
    use ParseErrorKind as E;
    let end = (start..t.len())
        .find(|&k| t[k] == b',' || t[k] == b' ')
        .unwrap_or(t.len());
    let v = &t[start..end];
    let negative = v[0] == b'-';
    if negative && v.len() == 1 {
        return Err(E::InvalidNumber);
    }
    // Classify every byte as influxd's loop does; the first bad one ends the value.
    let mut int_suffix = None;
    let mut unsigned_suffix = None;
    let mut dots = 0;
    let mut exponent = false;
    for (k, &c) in v.iter().enumerate().skip(usize::from(negative)) {
        let suffix_seen = int_suffix.is_some() || unsigned_suffix.is_some();
        match c {
            b'i' if k > 0 && !suffix_seen => int_suffix = Some(k),
            b'u' if k > 0 && !suffix_seen => unsigned_suffix = Some(k),
            b'.' if dots > 0 => return Err(E::InvalidNumber),
            b'.' => dots += 1,
            b'e' | b'E' if k > 0 => exponent = true,
            b'+' | b'-' if k > 0 && matches!(v[k - 1], b'e' | b'E') => {}
            b'0'..=b'9' => {}
            _ => return Err(E::InvalidNumber),
        }
    }
    if (int_suffix.is_some() || unsigned_suffix.is_some()) && (dots > 0 || exponent) {
        return Err(E::InvalidNumber);
    }
    let digits = v.len() - usize::from(int_suffix.is_some()) - dots - usize::from(negative);
    if digits == 0 {
        return Err(E::InvalidNumber);
    }
    if int_suffix.is_some() {
        if v.last() != Some(&b'i') {
            return Err(E::InvalidNumber);
        }
        let text = &v[..v.len() - 1];
        if text.len() >= 19 && parse_int(text).is_none() {
            return Err(E::IntegerOutOfRange(
                String::from_utf8_lossy(text).into_owned(),
            ));
        }
    } else if unsigned_suffix.is_some() {
        return Err(E::InvalidNumber);
    } else if exponent || v.len() >= 25 {
        let finite = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(f64::is_finite);
        if !finite {
            return Err(E::InvalidFloat);
        }
    }
    Ok(end)
}

/// A boolean value starting at `start` (`scanBoolean`); returns its end.
fn boolean_end(t: &[u8], start: usize) -> Result<usize, ParseErrorKind> {
    const SPELLINGS: [&[u8]; 10] = [
        b"t", b"T", b"true", b"True", b"TRUE", b"f", b"F", b"false", b"False", b"FALSE",
    ];
    if !b"tfTF".contains(&t[start]) {
        return Err(ParseErrorKind::InvalidBoolean);
    }
    let end = (start + 1..t.len())
        .find(|&k| t[k] == b',' || t[k] == b' ')
        .unwrap_or(t.len());
    if SPELLINGS.contains(&&t[start..end]) {
        Ok(end)
    } else {
        Err(ParseErrorKind::InvalidBoolean)
    }
}

/// influxd's error text for a whole body (see [`super::WriteOutcome`]), `None` for 204.
pub fn outcome_text(lines: &[RefLine]) -> Option<Vec<u8>> {
    let points: Vec<&RefPoint> = lines
        .iter()
        .filter_map(|l| l.result.as_ref().ok())
        .collect();
    let drops: Vec<DropReason> = points.iter().filter_map(|p| p.drop_reason()).collect();
    // The first key-level drop (a `time` tag or a key that is not UTF-8) in body order names
    // the reason, else the first `time`-only field set.
    let first_key_level = drops
        .iter()
        .find(|d| !matches!(d, DropReason::TimeFieldOnly { .. }));
    if let Some(reason) = first_key_level.or(drops.first()) {
        let mut out = b"partial write: ".to_vec();
        match reason {
            DropReason::TimeTag { measurement } | DropReason::TimeFieldOnly { measurement } => {
                let what = if matches!(reason, DropReason::TimeTag { .. }) {
                    "invalid tag key: input tag"
                } else {
                    "invalid field name: input field"
                };
                out.extend_from_slice(format!("{what} \"time\" on measurement \"").as_bytes());
                out.extend_from_slice(measurement);
                out.extend_from_slice(b"\" is invalid");
            }
            DropReason::InvalidUnicode { key } => {
                out.extend_from_slice(b"key contains invalid unicode: \"");
                out.extend_from_slice(key);
                out.push(b'"');
            }
        }
        out.extend_from_slice(format!(" dropped={}", drops.len()).as_bytes());
        return Some(out);
    }
    let mut errors: Vec<Vec<u8>> = Vec::new();
    for line in lines {
        if let Err(kind) = &line.result {
            let mut e = b"unable to parse '".to_vec();
            e.extend_from_slice(&line.text);
            e.extend_from_slice(b"': ");
            match kind {
                ParseErrorKind::InvalidValue(key) => {
                    e.extend_from_slice(b"invalid value: field-key=");
                    e.extend_from_slice(key);
                }
                other => e.extend_from_slice(other.to_string().as_bytes()),
            }
            errors.push(e);
        }
    }
    if errors.is_empty() {
        return None;
    }
    let joined = errors.join(&b'\n');
    if points.is_empty() {
        Some(joined)
    } else {
        let mut out = b"partial write: ".to_vec();
        out.extend_from_slice(&joined);
        out.extend_from_slice(b" dropped=0");
        Some(out)
    }
}

/// Runs the scanner and the reference over `body` and reports the first disagreement.
///
/// `receive_nanos` stands for the request's receive time (lines without a timestamp).
///
/// # Errors
/// A description of the first difference found.
pub fn compare(
    body: &[u8],
    precision: Option<Precision>,
    receive_nanos: i64,
) -> Result<(), String> {
    let expected = lines(body, precision);
    let scanner = match precision {
        Some(p) => super::lines(body).with_precision(p),
        None => super::lines(body),
    };
    let actual: Vec<_> = scanner.collect();
    let show = |b: &[u8]| format!("{:?}", String::from_utf8_lossy(b));
    if actual.len() != expected.len() {
        return Err(format!(
            "scanner found {} lines, reference {}: scanner {:?}, reference {:?}",
            actual.len(),
            expected.len(),
            actual
                .iter()
                .map(|l| show(l.as_ref().map_or_else(|e| e.text, |l| l.text)))
                .collect::<Vec<_>>(),
            expected.iter().map(|l| show(&l.text)).collect::<Vec<_>>()
        ));
    }
    let mut outcome = super::WriteOutcome::new();
    for (n, (a, e)) in actual.iter().zip(&expected).enumerate() {
        let text = a.as_ref().map_or_else(|err| err.text, |l| l.text);
        let at = || format!("line {n} {}", show(&e.text));
        if text != e.text.as_slice() {
            return Err(format!("{}: scanner's line text is {}", at(), show(text)));
        }
        // The single-line entry points agree with the body iterator.
        let single = match precision {
            Some(p) => super::parse_line_with_precision(text, p),
            None => super::parse_line(text),
        };
        if single.as_ref().map_err(Clone::clone) != a.as_ref().map_err(|err| err.kind.clone()) {
            return Err(format!("{}: parse_line says {single:?}, lines {a:?}", at()));
        }
        match (a, &e.result) {
            (Ok(line), Ok(point)) => {
                compare_point(line, point, precision, receive_nanos)
                    .map_err(|m| format!("{}: {m}", at()))?;
                outcome.record_line(line);
            }
            (Err(err), Err(kind)) => {
                if err.kind != *kind {
                    return Err(format!(
                        "{}: scanner rejects with {:?}, reference with {kind:?}",
                        at(),
                        err.kind
                    ));
                }
                outcome.record_error(err);
            }
            (Ok(line), Err(kind)) => {
                return Err(format!(
                    "{}: scanner accepts ({line:?}), reference rejects with {kind:?}",
                    at()
                ))
            }
            (Err(err), Ok(point)) => {
                return Err(format!(
                    "{}: scanner rejects with {:?}, reference accepts ({point:?})",
                    at(),
                    err.kind
                ))
            }
        }
    }
    let want = outcome_text(&expected);
    if outcome.error_text() != want {
        return Err(format!(
            "error text: scanner {:?}, reference {:?}",
            outcome.error_text().map(|t| show(&t)),
            want.map(|t| show(&t))
        ));
    }
    // The JSON body is the text, encoded.
    if let Some(body) = outcome.error_body() {
        if !body.starts_with(b"{\"error\":\"") || !body.ends_with(b"\"}\n") {
            return Err(format!("error body is not a JSON object: {}", show(&body)));
        }
    }
    Ok(())
}

fn compare_point(
    line: &super::Line<'_>,
    p: &RefPoint,
    precision: Option<Precision>,
    receive_nanos: i64,
) -> Result<(), String> {
    let check = |what: &str, ok: bool, detail: String| {
        if ok {
            Ok(())
        } else {
            Err(format!("{what} differs: {detail}"))
        }
    };
    check(
        "measurement",
        line.measurement_raw() == p.measurement.as_slice(),
        format!("{:?} vs {:?}", line.measurement_raw(), p.measurement),
    )?;
    check(
        "unescaped measurement",
        *line.measurement() == *p.measurement_name(),
        format!("{:?} vs {:?}", line.measurement(), p.measurement_name()),
    )?;
    check(
        "series key",
        line.key() == p.key.as_slice(),
        format!("{:?} vs {:?}", line.key(), p.key),
    )?;
    check(
        "field set",
        line.fields() == p.fields.as_slice(),
        format!("{:?} vs {:?}", line.fields(), p.fields),
    )?;
    check(
        "timestamp",
        line.timestamp == p.timestamp,
        format!("{:?} vs {:?}", line.timestamp, p.timestamp),
    )?;
    let tags: Vec<(Vec<u8>, Vec<u8>)> =
        line.tags().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
    check("tags", tags == p.tags, format!("{tags:?} vs {:?}", p.tags))?;
    check(
        "tags_sorted",
        line.tags_sorted == p.tags_sorted(),
        format!("{} vs {}", line.tags_sorted, p.tags_sorted()),
    )?;
    let mut canonical = Vec::new();
    super::canonical_series_key(line, &mut canonical);
    let want = p.canonical_key();
    check(
        "canonical key",
        canonical == want,
        format!("{canonical:?} vs {want:?}"),
    )?;
    let hash = super::series_key_hash(line);
    check(
        "series hash",
        hash == xxhash_rust::xxh3::xxh3_64(&want),
        format!("{hash:#x} for {want:?}"),
    )?;
    let drop = super::drop_reason(line);
    check(
        "drop reason",
        drop == p.drop_reason(),
        format!("{drop:?} vs {:?}", p.drop_reason()),
    )?;

    // Time and the normalized line, as the ingest computes them.
    let unit = precision.unwrap_or(Precision::Nanosecond);
    let want_ns = reference_nanos(p.timestamp, unit, receive_nanos);
    let got_ns = super::timestamp_nanos(line.timestamp, unit, receive_nanos);
    check(
        "time in ns",
        got_ns.as_ref().ok() == want_ns.as_ref(),
        format!("{got_ns:?} vs {want_ns:?}"),
    )?;
    let ns = got_ns.unwrap_or(receive_nanos);
    let want = p.normalized(ns);
    check(
        "normalizability",
        super::is_normalizable(line) == want.is_some(),
        format!("{} vs {want:?}", super::is_normalizable(line)),
    )?;
    let Some(want) = want else { return Ok(()) };
    let mut out = Vec::new();
    super::write_normalized(line, ns, &mut out);
    check(
        "normalized line",
        out == want,
        format!(
            "{:?} vs {:?}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&want)
        ),
    )
}

/// The time of a point in ns: the written timestamp scaled (None when outside influxd's range),
/// or the receive time floored to the unit (None when that is outside influxd's range).
pub fn reference_nanos(ts: Option<i64>, unit: Precision, receive_nanos: i64) -> Option<i64> {
    let per = i128::from(unit_nanos(unit));
    let ns = match ts {
        Some(ts) => i128::from(ts) * per,
        None => i128::from(receive_nanos).div_euclid(per) * per,
    };
    let range = i128::from(i64::MIN) + 2..=i128::from(i64::MAX) - 1;
    if range.contains(&ns) {
        i64::try_from(ns).ok()
    } else {
        None
    }
}
