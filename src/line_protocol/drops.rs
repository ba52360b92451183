//! What influxd's storage layer drops after parsing, and how influxd words a write's outcome.

use super::conflicts::{field_pairs, FieldType, FieldTypes, StoredFields, Verdict};
use super::*;

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
    // The scanner noticed a tag key `time`.
    if line.time_tag && line.tags().any(|(k, _)| k == b"time") {
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
    field_pairs(line.fields())
        .all(|(k, _)| k == b"time")
        .then(|| DropReason::TimeFieldOnly {
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
    field_pairs(fields)
        .map(|(k, _)| k)
        .find(|k| std::str::from_utf8(k).is_err())
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
///   the first `time`-only field set drop; parse errors are then not mentioned at all;
/// - two types for one field of a measurement: influxd's answer is decided over the whole body
///   (see `conflicts.rs`): [`WriteOutcome::has_field_type_conflict`] says so, and the caller
///   hands the [`settle`] verdict to [`WriteOutcome::apply`].
#[derive(Debug, Clone, Default)]
pub struct WriteOutcome {
    points: usize,
    /// Raw bytes: the lines are echoed as written (see [`append_json_string`]).
    parse_errors: Vec<u8>,
    dropped: usize,
    tag_reason: Option<DropReason>,
    field_reason: Option<DropReason>,
    field_types: FieldTypes,
    verdict: Option<Verdict>,
}

impl WriteOutcome {
    /// An empty outcome (no lines yet).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a line that parsed; returns why influxd would drop it, if it would.
    pub fn record_line(&mut self, line: &Line<'_>) -> Option<DropReason> {
        self.record_line_over(line, None)
    }

    /// [`WriteOutcome::record_line`] for a write into a shard holding the fields of `stored`:
    /// a field stored with another type counts as a field type conflict.
    pub fn record_line_over(
        &mut self,
        line: &Line<'_>,
        stored: Option<&dyn StoredFields>,
    ) -> Option<DropReason> {
        self.points += 1;
        let Some(reason) = drop_reason(line) else {
            self.field_types.observe(line, stored);
            return None;
        };
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

    /// Whether two of the recorded points give one field of a measurement two types: influxd's
    /// answer then depends on the whole body; see [`settle`] and [`WriteOutcome::apply`].
    pub fn has_field_type_conflict(&self) -> bool {
        self.field_types.conflicted()
    }

    /// The fields the recorded points bring that are not stored yet (see
    /// [`WriteOutcome::record_line_over`]), as (unescaped measurement, unescaped key, type);
    /// empty when the points have a field type conflict.
    pub fn fresh_fields(&self) -> &[(Vec<u8>, Vec<u8>, FieldType)] {
        self.field_types.fresh()
    }

    /// Takes influxd's decision on field types for the body (from [`settle`] over the same
    /// points); it decides the answer unless it is [`Verdict::Clean`].
    pub fn apply(&mut self, verdict: Verdict) {
        self.verdict = Some(verdict);
    }

    /// Number of points influxd would store.
    pub fn written(&self) -> usize {
        match &self.verdict {
            Some(Verdict::Rejected) => 0,
            Some(Verdict::Partial { keep, .. }) => keep.iter().filter(|&&k| k).count(),
            Some(Verdict::Clean) | None => self.points - self.dropped,
        }
    }

    /// Number of points influxd's storage layer would drop (the `dropped=` count; all points
    /// when a field type conflict fails the whole write).
    pub fn dropped(&self) -> usize {
        match &self.verdict {
            Some(Verdict::Rejected) => self.points,
            Some(Verdict::Partial { dropped, .. }) => *dropped,
            Some(Verdict::Clean) | None => self.dropped,
        }
    }

    /// Whether any line failed to parse.
    pub fn has_parse_errors(&self) -> bool {
        !self.parse_errors.is_empty()
    }

    /// influxd's error text as raw bytes (lines echoed as written), or `None` for 204.
    pub fn error_text(&self) -> Option<Vec<u8>> {
        if let Some(text) = self.verdict.as_ref().and_then(Verdict::error_text) {
            return Some(text);
        }
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
