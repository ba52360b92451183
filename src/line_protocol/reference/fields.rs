//! The field set's first pass: values (numbers, booleans, strings) and where the set ends.

use super::*;

/// The first pass over the field set (`scanFields`), starting at `start`; returns its end.
pub(super) fn scan_fields(t: &[u8], start: usize) -> Result<usize, ParseErrorKind> {
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
pub(super) fn number_end(t: &[u8], start: usize) -> Result<usize, ParseErrorKind> {
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
pub(super) fn boolean_end(t: &[u8], start: usize) -> Result<usize, ParseErrorKind> {
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
