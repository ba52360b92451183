//! Byte scanners that mirror InfluxDB 1.6's `models/points.go` (`scanLine`, `scanKey`,
//! `scanMeasurement`, `scanTags`, `scanFields`, `scanNumber`, `scanBoolean`, `scanTime`,
//! `skipWhitespace`), rewritten for speed but with the same decisions and the same error
//! precedence. Every quirk below is deliberate; the differential test against `influxd` guards it.
//!
//! Two escape rules coexist in 1.6 and both are kept:
//! - key section (measurement, tag keys and values): a byte is escaped when the byte before it is
//!   a backslash, whatever escaped that backslash (`a\\,b` still has an escaped comma);
//! - field section and line splitting: a backslash skips itself and the next byte.

use memchr::{memchr, memchr2, memchr3};

use super::classify::{skip_to, FIELD_STOP, LINE_STOP, MEASUREMENT_STOP, TAG_STOP};
use super::{Line, ParseErrorKind, Precision, MAX_KEY_LENGTH};

/// `skipWhitespace`: 1.6 skips spaces, tabs and NUL bytes.
#[inline]
pub(super) fn skip_whitespace(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && matches!(buf[i], b' ' | b'\t' | 0) {
        i += 1;
    }
    i
}

/// `scanLine`: the end (exclusive, without the `'\n'`) of the line that starts at `start`.
///
/// A newline does not end a line when it is escaped by a backslash or inside a double-quoted
/// field value (1.6 counts `=` and `,` after the first space to decide what a quote is).
#[inline]
pub(super) fn scan_line(buf: &[u8], start: usize) -> usize {
    scan_line_plain(buf, start).0
}

/// [`scan_line`], also saying whether the line is plain: no quote and no backslash in it.
#[inline]
pub(super) fn scan_line_plain(buf: &[u8], start: usize) -> (usize, bool) {
    // Without a quote or a backslash, scanLine's state never changes: the line ends at the
    // first newline. One SIMD pass finds the newline or the first byte that needs the slow path.
    match memchr3(b'\n', b'"', b'\\', &buf[start..]) {
        None => (buf.len(), true),
        Some(n) if buf[start + n] == b'\n' => (start + n, true),
        Some(n) => (scan_line_slow(buf, start, start + n), false),
    }
}

/// A line with a quote or a backslash, first found at `first`: scanLine's state there follows
/// from counts (no backslash and no quote before it), then the walk goes on from `first`.
#[cold]
fn scan_line_slow(buf: &[u8], start: usize, first: usize) -> usize {
    let head = &buf[start..first];
    let state = match memchr(b' ', head) {
        None => LineState::default(),
        // The space itself is neither `=` nor `,`; scanLine counts them from there on.
        Some(s) => {
            let count = |b: u8| head[s..].iter().filter(|&&c| c == b).count();
            LineState {
                fields: true,
                equals: count(b'='),
                commas: count(b','),
                quoted: false,
            }
        }
    };
    scan_line_from(buf, first, state).0
}

/// scanLine's state: past the first space (`fields`), `=` and `,` seen since, inside quotes.
#[derive(Debug, Default, Clone, Copy)]
struct LineState {
    fields: bool,
    equals: usize,
    commas: usize,
    quoted: bool,
}

/// `scanLine` from `i`: the end of the line (clamped to the buffer) and whether a quote was open
/// there.
fn scan_line_state(buf: &[u8], i: usize) -> (usize, bool) {
    scan_line_from(buf, i, LineState::default())
}

/// `scanLine` from `i` in state `st`.
fn scan_line_from(buf: &[u8], mut i: usize, st: LineState) -> (usize, bool) {
    let LineState {
        mut fields,
        mut equals,
        mut commas,
        mut quoted,
    } = st;
    loop {
        i = skip_to::<LINE_STOP>(buf, i);
        if i >= buf.len() {
            break;
        }
        let c = buf[i];
        if c == b'\\' {
            // 1.6 skips two bytes even past the end of the body; clamp below.
            i += 2;
            continue;
        }
        if c == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && c == b'=' {
                i += 1;
                equals += 1;
                continue;
            } else if !quoted && c == b',' {
                i += 1;
                commas += 1;
                continue;
            } else if c == b'"' && equals > commas {
                i += 1;
                quoted = !quoted;
                continue;
            }
        }
        if c == b'\n' && !quoted {
            break;
        }
        i += 1;
    }
    (i.min(buf.len()), quoted)
}

/// Whether `head + ' ' + timestamp + '\n'` is split by `scanLine` as exactly one line, whatever
/// follows it. `head` does not end in a backslash that escapes nothing.
pub(super) fn splits_as_one_line(head: &[u8]) -> bool {
    // A space, digits and a minus sign change nothing in scanLine's state: the appended
    // newline ends the line unless a quote is open at the end of `head`.
    let (end, quoted) = scan_line_state(head, 0);
    end == head.len() && !quoted
}

/// `parsePoint`: validates one line (leading whitespace already skipped).
///
/// With `precision` the timestamp range check happens where 1.6 does it (before the check for
/// trailing garbage), so the error text matches influxd's for every line.
pub(super) fn parse_point(
    buf: &[u8],
    precision: Option<Precision>,
) -> Result<Line<'_>, ParseErrorKind> {
    let len = buf.len();

    // --- scanMeasurement ---
    if len == 0 || buf[0] == b',' {
        return Err(ParseErrorKind::MissingMeasurement);
    }
    let mut i = 1;
    let has_tags = loop {
        i = skip_to::<MEASUREMENT_STOP>(buf, i);
        if i >= len {
            return Err(ParseErrorKind::MissingFields);
        }
        if buf[i - 1] != b'\\' {
            break buf[i] == b',';
        }
        i += 1;
    };
    let measurement_len = i;

    // --- scanTags + the sorted/duplicate check of scanKey ---
    let (key_len, tags_sorted, duplicate, time_tag) = if has_tags {
        scan_tags(buf, i + 1)?
    } else {
        (i, true, false, false)
    };
    if duplicate || (!tags_sorted && has_duplicate_tag_keys(&buf[measurement_len + 1..key_len])) {
        return Err(ParseErrorKind::DuplicateTags);
    }
    if key_len > MAX_KEY_LENGTH {
        return Err(ParseErrorKind::MaxKeyLengthExceeded(key_len));
    }

    // --- scanFields ---
    let (fields_start, fields_end, irregular, shape) =
        scan_fields(buf, key_len, mix_bytes(SHAPE_SEED, &buf[..measurement_len]))?;
    // 1.6 then walks the fields again with other rules (`walkFields`: escapes as in the key
    // section, a value ends only at a comma), checking that each field's series key (key +
    // 4-byte separator + field key) fits. When the field set strictly alternates `k=v,k=v` and
    // has no backslash, the walk splits it exactly as scanFields did and cannot fail; otherwise
    // (or when the field set is too long to fit) it must run.
    if irregular || key_len + 4 + (fields_end - fields_start) > MAX_KEY_LENGTH {
        walk_fields(key_len, &buf[fields_start..fields_end])?;
    }

    let timestamp = scan_time(buf, fields_end, precision)?;

    Ok(Line {
        text: buf,
        measurement_len,
        key_len,
        fields_start,
        fields_end,
        timestamp,
        tags_sorted,
        time_tag,
        plain: false,
        // An irregular field set is split differently by influxd's field iterator: unknown.
        field_shape: if irregular {
            0
        } else {
            fold(shape, SHAPE_SEED) | 1
        },
    })
}

/// Start of a [`Line::field_shape`] hash (any odd constant).
const SHAPE_SEED: u64 = 0x9E37_79B9_7F4A_7C15;
/// Second constant of the field-shape mixing.
const SHAPE_MIX: u64 = 0xD6E8_FEB8_6659_FD93;

/// Folded multiply: the mixing step of [`Line::field_shape`].
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Mixes `s` (a measurement or a field key) into a field-shape hash: short names with two
/// loads, longer ones through xxh3.
#[inline(always)]
fn mix_bytes(h: u64, s: &[u8]) -> u64 {
    let n = s.len();
    let (a, b) = if (8..=16).contains(&n) {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&s[..8]);
        hi.copy_from_slice(&s[n - 8..]);
        (u64::from_le_bytes(lo), u64::from_le_bytes(hi))
    } else if n < 8 {
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(s);
        (u64::from_le_bytes(w), 0)
    } else {
        (xxhash_rust::xxh3::xxh3_64(s), 0)
    };
    fold(
        h ^ a ^ SHAPE_SEED,
        b ^ SHAPE_MIX ^ (n as u64).wrapping_mul(SHAPE_SEED),
    )
}

/// `scanTags` from `i` (just after the comma that follows the measurement), with the
/// sorted/duplicate check of `scanKey`: the key section's end, whether the tags were sorted, and
/// whether two neighbouring keys were equal (reported by the caller once every tag scanned), and
/// whether a key is `time`.
#[inline(always)]
fn scan_tags(buf: &[u8], mut i: usize) -> Result<(usize, bool, bool, bool), ParseErrorKind> {
    let len = buf.len();
    let mut tags_sorted = true;
    let mut duplicate = false;
    let mut time_tag = false;
    let mut prev_key: &[u8] = &[];
    let mut first = true;
    loop {
        // scanTagsKey
        let ks = i;
        if i >= len || matches!(buf[i], b' ' | b',' | b'=') {
            return Err(ParseErrorKind::MissingTagKey);
        }
        loop {
            i = skip_to::<TAG_STOP>(buf, i + 1);
            if i >= len {
                return Err(ParseErrorKind::MissingTagValue);
            }
            if buf[i - 1] != b'\\' {
                if buf[i] == b'=' {
                    break;
                }
                return Err(ParseErrorKind::MissingTagValue);
            }
        }
        let key = &buf[ks..i];
        time_tag |= key == b"time";
        if tags_sorted && !first {
            match prev_key.cmp(key) {
                std::cmp::Ordering::Greater => tags_sorted = false,
                // 1.6 reports this only after every tag scanned cleanly.
                std::cmp::Ordering::Equal => duplicate = true,
                std::cmp::Ordering::Less => {}
            }
        }
        first = false;
        prev_key = key;
        i += 1;

        // scanTagsValue
        if i >= len || buf[i] == b',' || buf[i] == b' ' {
            return Err(ParseErrorKind::MissingTagValue);
        }
        // The first byte of a value is not examined: `a==b` is tag a with value `=b`.
        let at_space = loop {
            i = skip_to::<TAG_STOP>(buf, i + 1);
            if i >= len {
                return Err(ParseErrorKind::MissingFields);
            }
            if buf[i - 1] != b'\\' {
                match buf[i] {
                    b'=' => return Err(ParseErrorKind::InvalidTagFormat),
                    b',' => break false,
                    _ => break true,
                }
            }
        };
        if at_space {
            return Ok((i, tags_sorted, duplicate, time_tag));
        }
        i += 1;
    }
}

/// `scanTime` after the field set ending at `fields_end`; with `precision`, 1.6's range check.
#[inline(always)]
fn scan_time(
    buf: &[u8],
    fields_end: usize,
    precision: Option<Precision>,
) -> Result<Option<i64>, ParseErrorKind> {
    let len = buf.len();
    let ts_start = skip_whitespace(buf, fields_end);
    let mut j = ts_start + usize::from(buf.get(ts_start) == Some(&b'-'));
    // Eight digits at a time, then byte by byte from the first word that is not all digits.
    while let Some(word) = buf.get(j..j + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if !all_digits(u64::from_le_bytes(w)) {
            break;
        }
        j += 8;
    }
    while j < len {
        let c = buf[j];
        if c == b'\n' || c == b' ' {
            break;
        }
        if !(c.is_ascii_digit() || (c == b'-' && j == ts_start)) {
            return Err(ParseErrorKind::BadTimestamp);
        }
        j += 1;
    }
    Ok(if j > ts_start {
        let ts = parse_timestamp(&buf[ts_start..j])?;
        if let Some(p) = precision {
            super::scale_timestamp(ts, p)?;
        }
        // Only spaces may follow a timestamp (a line without one is not checked: 1.6 ignores
        // whatever follows the field set then, even a newline that a quote kept in the line).
        if buf[j..].iter().any(|&c| c != b' ') {
            return Err(ParseErrorKind::InvalidPoint);
        }
        Some(ts)
    } else {
        None
    })
}

/// `scanFields`: returns (start, end) of the field set, whether it is irregular (it holds a
/// backslash, or an `=` that does not follow a key: `s="x"n=1,b`: scanFields accepts that,
/// 1.6's second pass `walkFields` then rejects it), and `shape` with each field key and value
/// type mixed in (meaningful only for a regular field set, which influxd's field iterator splits
/// as this scan does).
#[inline]
fn scan_fields(
    buf: &[u8],
    from: usize,
    mut shape: u64,
) -> Result<(usize, usize, bool, u64), ParseErrorKind> {
    let len = buf.len();
    let start = skip_whitespace(buf, from);
    let mut i = start;
    let mut key_start = start;
    let mut quoted = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    let mut irregular = false;
    loop {
        // Bytes outside FIELD_STOP only advance (quoted state is handled below).
        i = skip_to::<FIELD_STOP>(buf, i);
        if i >= len {
            break;
        }
        let c = buf[i];
        if c == b'\\' {
            irregular = true;
            if i + 1 < len {
                i += 2;
                continue;
            }
        }
        if c == b'"' && equals > commas {
            quoted = !quoted;
            i += 1;
            continue;
        }
        if quoted {
            // Inside a string only an escape or the closing quote matters.
            i = match memchr2(b'"', b'\\', &buf[i + 1..]) {
                Some(n) => i + 1 + n,
                None => len,
            };
            continue;
        }
        match c {
            b'=' => {
                irregular |= equals != commas;
                equals += 1;
                // i >= start >= 2: the key has a byte and is followed by a space.
                let before = buf[i - 1];
                if (before == b' ' || before == b',') && buf[i - 2] != b'\\' {
                    return Err(ParseErrorKind::MissingFieldKey);
                }
                if i + 1 >= len {
                    return Err(ParseErrorKind::MissingFieldValue);
                }
                let n = buf[i + 1];
                if n == b',' || n == b' ' {
                    return Err(ParseErrorKind::MissingFieldValue);
                }
                shape = mix_bytes(shape, &buf[key_start.min(i)..i]);
                if n.is_ascii_digit() || matches!(n, b'.' | b'-' | b'N' | b'n') {
                    i = scan_number(buf, i + 1)?;
                    // Integer or float (an unsigned value was refused).
                    shape ^= u64::from(buf[i - 1] == b'i') + 1;
                    continue;
                }
                if n != b'"' {
                    i = scan_boolean(buf, i + 1)?;
                    shape ^= 3;
                    continue;
                }
                shape ^= 4;
            }
            b',' => {
                commas += 1;
                key_start = i + 1;
            }
            b' ' => break,
            _ => {}
        }
        i += 1;
    }
    if quoted {
        return Err(ParseErrorKind::UnbalancedQuotes);
    }
    if equals == 0 || commas + 1 != equals {
        return Err(ParseErrorKind::InvalidFieldFormat);
    }
    Ok((start, i, irregular, shape))
}

/// `scanNumber`: returns the end of the value.
#[inline]
fn scan_number(buf: &[u8], mut i: usize) -> Result<usize, ParseErrorKind> {
    let len = buf.len();
    let start = i;
    let mut is_int = false;
    let mut is_unsigned = false;
    if buf[i] == b'-' {
        i += 1;
        if i == len {
            return Err(ParseErrorKind::InvalidNumber);
        }
    }
    let mut decimal = false;
    let mut scientific = false;
    loop {
        while i < len && buf[i].is_ascii_digit() {
            i += 1;
        }
        if i >= len {
            break;
        }
        let c = buf[i];
        if c == b',' || c == b' ' {
            break;
        }
        match c {
            b'i' if i > start && !(is_int || is_unsigned) => is_int = true,
            b'u' if i > start && !(is_int || is_unsigned) => is_unsigned = true,
            b'.' => {
                if decimal {
                    return Err(ParseErrorKind::InvalidNumber);
                }
                decimal = true;
            }
            b'e' | b'E' if i > start => scientific = true,
            b'+' | b'-' if matches!(buf[i - 1], b'e' | b'E') => {}
            // NaN, Inf, and every other byte.
            _ => return Err(ParseErrorKind::InvalidNumber),
        }
        i += 1;
    }
    if (is_int || is_unsigned) && (decimal || scientific) {
        return Err(ParseErrorKind::InvalidNumber);
    }
    let digits =
        i - start - usize::from(is_int) - usize::from(decimal) - usize::from(buf[start] == b'-');
    if digits == 0 {
        return Err(ParseErrorKind::InvalidNumber);
    }
    if is_int {
        // `9i10` is not an integer.
        if buf[i - 1] != b'i' {
            return Err(ParseErrorKind::InvalidNumber);
        }
        let text = &buf[start..i - 1];
        // Fewer than 19 characters always fit in an int64.
        if text.len() >= 19 && parse_i64(text).is_none() {
            return Err(ParseErrorKind::IntegerOutOfRange(ascii(text)));
        }
    } else if is_unsigned {
        // influxd 1.6 ships with unsigned integers disabled (`enableUint64Support = false`).
        return Err(ParseErrorKind::InvalidNumber);
    } else if scientific || i - start >= 25 {
        let ok = std::str::from_utf8(&buf[start..i])
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(f64::is_finite);
        if !ok {
            return Err(ParseErrorKind::InvalidFloat);
        }
    }
    Ok(i)
}

/// `scanBoolean`: t, T, true, True, TRUE, f, F, false, False, FALSE.
#[inline]
fn scan_boolean(buf: &[u8], start: usize) -> Result<usize, ParseErrorKind> {
    if !matches!(buf[start], b't' | b'f' | b'T' | b'F') {
        return Err(ParseErrorKind::InvalidBoolean);
    }
    let mut i = start + 1;
    while i < buf.len() && buf[i] != b',' && buf[i] != b' ' {
        i += 1;
    }
    match &buf[start..i] {
        b"t" | b"T" | b"f" | b"F" | b"true" | b"True" | b"TRUE" | b"false" | b"False"
        | b"FALSE" => Ok(i),
        _ => Err(ParseErrorKind::InvalidBoolean),
    }
}

/// Go's `strconv.ParseInt(s, 10, 64)` for `-?[0-9]*` (what scanTime lets through).
fn parse_timestamp(text: &[u8]) -> Result<i64, ParseErrorKind> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    if digits.is_empty() {
        return Err(ParseErrorKind::TimestampSyntax(ascii(text)));
    }
    if digits.len() <= 19 {
        // 19 digits cannot overflow a u64; then check the i64 range. Eight digits at a time.
        let (head, chunks) = digits.split_at(digits.len() % 8);
        let mut v = head.iter().fold(0u64, |v, &c| v * 10 + u64::from(c - b'0'));
        for chunk in chunks.chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            v = v * 100_000_000 + eight_digits(u64::from_le_bytes(word));
        }
        let neg = digits.len() < text.len();
        if v <= i64::MAX as u64 {
            let v = v as i64;
            return Ok(if neg { -v } else { v });
        }
        if neg && v == i64::MIN.unsigned_abs() {
            return Ok(i64::MIN);
        }
        return Err(ParseErrorKind::TimestampOutOfRange(ascii(text)));
    }
    parse_i64(text).ok_or_else(|| ParseErrorKind::TimestampOutOfRange(ascii(text)))
}

/// Whether all eight bytes of `word` are ASCII digits: each byte's high nibble is 3, and
/// stays 3 with 6 added (its low nibble is at most 9). When the first test passes every byte
/// is at most 0x3F, so adding 6 carries into no neighbour.
#[inline(always)]
fn all_digits(word: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    word & HIGH == THREES && word.wrapping_add(0x0606_0606_0606_0606) & HIGH == THREES
}

/// The value of eight ASCII digits loaded little-endian (first digit in the lowest byte), by
/// pairwise combination within the word.
#[inline(always)]
fn eight_digits(word: u64) -> u64 {
    let d = word - 0x3030_3030_3030_3030;
    let d = (d * 10 + (d >> 8)) & 0x00FF_00FF_00FF_00FF;
    let d = (d * 100 + (d >> 16)) & 0x0000_FFFF_0000_FFFF;
    (d * 10_000 + (d >> 32)) & 0xFFFF_FFFF
}

/// `-?[0-9]+` to i64; None on overflow (the caller has checked the syntax).
#[inline]
fn parse_i64(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, text),
    };
    // Accumulate negatively so that i64::MIN parses.
    let mut v: i64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_sub(i64::from(c - b'0'))?;
    }
    if neg {
        Some(v)
    } else {
        v.checked_neg()
    }
}

fn ascii(text: &[u8]) -> String {
    String::from_utf8_lossy(text).into_owned()
}

/// Positions of the tag spans (`k=v`) in a tag section (the key after `measurement,`).
/// Separators are unescaped commas under the key-section rule.
pub(super) fn for_each_tag<'a>(tags: &'a [u8], mut f: impl FnMut(&'a [u8])) {
    let mut start = 0;
    let mut from = 0;
    while let Some(n) = memchr(b',', &tags[from..]) {
        let p = from + n;
        // A value's first byte is never a comma, so p > start here for valid lines.
        if p > 0 && tags[p - 1] == b'\\' {
            from = p + 1;
            continue;
        }
        f(&tags[start..p]);
        start = p + 1;
        from = start;
    }
    f(&tags[start..]);
}

/// The key of a `k=v` tag span: up to the first `=` not preceded by a backslash.
pub(super) fn tag_key(tag: &[u8]) -> &[u8] {
    let mut from = 0;
    while let Some(n) = memchr(b'=', &tag[from..]) {
        let p = from + n;
        if p == 0 || tag[p - 1] != b'\\' {
            return &tag[..p];
        }
        from = p + 1;
    }
    tag
}

/// Slow path of the duplicate check for lines whose tags are not sorted (1.6 sorts them, then
/// compares neighbours).
#[cold]
fn has_duplicate_tag_keys(tags: &[u8]) -> bool {
    let mut keys: Vec<&[u8]> = Vec::new();
    for_each_tag(tags, |t| keys.push(tag_key(t)));
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

/// `walkFields` as `parsePoint` uses it: a key must be followed by `=` and at least one byte
/// ("invalid value: field-key=<key>"), and each field's series key must fit
/// (`seriesKeySize`); whichever comes first in the field set decides the error.
#[cold]
fn walk_fields(key_len: usize, mut fields: &[u8]) -> Result<(), ParseErrorKind> {
    while !fields.is_empty() {
        let k = field_key_end(fields);
        if k + 2 > fields.len() {
            return Err(ParseErrorKind::InvalidValue(fields[..k].to_vec()));
        }
        let size = key_len + 4 + k;
        if size > MAX_KEY_LENGTH {
            return Err(ParseErrorKind::MaxKeyLengthExceeded(size));
        }
        fields = &fields[k + 1..];
        fields = fields.get(field_value_end(fields) + 1..).unwrap_or(&[]);
    }
    Ok(())
}

/// `scanTo(buf, 0, '=')` in `walkFields`: the end of the field key that starts `fields` (the
/// first byte is never treated as escaped).
pub(super) fn field_key_end(fields: &[u8]) -> usize {
    let mut k = 0;
    while k < fields.len() && !(fields[k] == b'=' && (k == 0 || fields[k - 1] != b'\\')) {
        k += 1;
    }
    k
}

/// `scanFieldValue`: the end of the field value that starts `value` (a comma outside double
/// quotes; only `\"` and `\\` are escapes in a value), at most `value.len()`.
pub(super) fn field_value_end(value: &[u8]) -> usize {
    let mut v = 0;
    let mut quoted = false;
    while v < value.len() {
        let c = value[v];
        if c == b'\\' && matches!(value.get(v + 1), Some(b'"' | b'\\')) {
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
    v.min(value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_mix_apart() {
        // Every name of 0-7 bytes over a small alphabet gets its own field-shape mix.
        let alphabet = b"ab_9";
        let mut names: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..7 {
            last = last
                .iter()
                .flat_map(|n| {
                    alphabet.iter().map(move |&c| {
                        let mut m = n.clone();
                        m.push(c);
                        m
                    })
                })
                .collect();
            names.extend(last.iter().cloned());
        }
        let mut seen = std::collections::HashMap::new();
        for n in &names {
            if let Some(other) = seen.insert(mix_bytes(SHAPE_SEED, n), n) {
                panic!("{other:?} and {n:?} mix alike");
            }
        }
        assert_eq!(seen.len(), names.len());
    }

    #[test]
    fn line_ends_agree_with_the_full_walk() {
        // The fast split (state taken from counts up to the first quote or backslash) against
        // scanLine's walk from the start, on bodies over the bytes that change its state.
        let alphabet = b" ,=\"\\\nab";
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let mut y = x;
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    y = y.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    alphabet[(y >> 59) as usize % alphabet.len()]
                })
                .collect();
            for start in 0..body.len() {
                assert_eq!(
                    scan_line(&body, start),
                    scan_line_state(&body, start).0,
                    "{:?} from {start}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
    }
}
