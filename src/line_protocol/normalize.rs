//! From a parsed line to what the queue holds: the timestamp in ns (with influxd's checks), the
//! normalized line, and the canonical series key and its hash.

use super::*;

/// Scales a written timestamp to ns with influxd's overflow and range checks (`SafeCalcTime`).
#[inline]
pub(super) fn scale_timestamp(ts: i64, precision: Precision) -> Result<i64, ParseErrorKind> {
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
    if line.plain {
        return true;
    }
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
pub(super) fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
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
