//! Comparing the scanner with the reference: line by line, then the body's influxd error text.

use super::*;

/// influxd's error text for a whole body (see [`crate::line_protocol::WriteOutcome`]), `None` for 204.
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
        Some(p) => crate::line_protocol::lines(body).with_precision(p),
        None => crate::line_protocol::lines(body),
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
    let mut outcome = crate::line_protocol::WriteOutcome::new();
    for (n, (a, e)) in actual.iter().zip(&expected).enumerate() {
        let text = a.as_ref().map_or_else(|err| err.text, |l| l.text);
        let at = || format!("line {n} {}", show(&e.text));
        if text != e.text.as_slice() {
            return Err(format!("{}: scanner's line text is {}", at(), show(text)));
        }
        // The single-line entry points agree with the body iterator.
        let single = match precision {
            Some(p) => crate::line_protocol::parse_line_with_precision(text, p),
            None => crate::line_protocol::parse_line(text),
        };
        // `plain` is what the body iterator saw while splitting (the single-line entry points
        // do not look): it must be true exactly when the line has no quote and no backslash.
        if let Ok(l) = a {
            if l.plain != memchr::memchr2(b'"', b'\\', l.text).is_none() {
                return Err(format!(
                    "{}: plain is {} for {}",
                    at(),
                    l.plain,
                    show(l.text)
                ));
            }
        }
        let a_any = a
            .as_ref()
            .map(|l| crate::line_protocol::Line { plain: false, ..*l });
        if single.clone() != a_any.map_err(|err| err.kind.clone()) {
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
    line: &crate::line_protocol::Line<'_>,
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
    crate::line_protocol::canonical_series_key(line, &mut canonical);
    let want = p.canonical_key();
    check(
        "canonical key",
        canonical == want,
        format!("{canonical:?} vs {want:?}"),
    )?;
    let hash = crate::line_protocol::series_key_hash(line);
    check(
        "series hash",
        hash == xxhash_rust::xxh3::xxh3_64(&want),
        format!("{hash:#x} for {want:?}"),
    )?;
    let drop = crate::line_protocol::drop_reason(line);
    check(
        "drop reason",
        drop == p.drop_reason(),
        format!("{drop:?} vs {:?}", p.drop_reason()),
    )?;

    // Time and the normalized line, as the ingest computes them.
    let unit = precision.unwrap_or(Precision::Nanosecond);
    let want_ns = reference_nanos(p.timestamp, unit, receive_nanos);
    let got_ns = crate::line_protocol::timestamp_nanos(line.timestamp, unit, receive_nanos);
    check(
        "time in ns",
        got_ns.as_ref().ok() == want_ns.as_ref(),
        format!("{got_ns:?} vs {want_ns:?}"),
    )?;
    let ns = got_ns.unwrap_or(receive_nanos);
    let want = p.normalized(ns);
    check(
        "normalizability",
        crate::line_protocol::is_normalizable(line) == want.is_some(),
        format!(
            "{} vs {want:?}",
            crate::line_protocol::is_normalizable(line)
        ),
    )?;
    let Some(want) = want else { return Ok(()) };
    let mut out = Vec::new();
    crate::line_protocol::write_normalized(line, ns, &mut out);
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
