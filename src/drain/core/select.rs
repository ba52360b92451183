//! Choosing the lines of a record that a cluster takes, by measurement.

use bytes::Bytes;

/// The measurement of a normalized line (up to the first unescaped `,` or space), unescaped.
pub(super) fn measurement_of(line: &[u8]) -> std::borrow::Cow<'_, str> {
    let mut end = line.len();
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'\\' => i += 1,
            b',' | b' ' => {
                end = i;
                break;
            }
            _ => {}
        }
        i += 1;
    }
    let raw = &line[..end.min(line.len())];
    if raw.contains(&b'\\') {
        let mut out = Vec::with_capacity(raw.len());
        let mut j = 0;
        while j < raw.len() {
            if raw[j] == b'\\' && matches!(raw.get(j + 1), Some(b',' | b' ')) {
                j += 1;
            }
            out.push(raw[j]);
            j += 1;
        }
        std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
    } else {
        String::from_utf8_lossy(raw)
    }
}

/// The lines of `payload` whose measurement `keep` accepts, and their count.
pub(super) fn select_lines(payload: &Bytes, keep: impl Fn(&str) -> bool) -> (Bytes, usize) {
    let mut out = Vec::new();
    let mut n = 0;
    for line in crate::line_protocol::line_slices(payload) {
        // The measurement as influxd stores it; the fast reading for a line that does not parse
        // (queued lines always do).
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let name = match crate::line_protocol::parse_line(text) {
            Ok(l) => {
                std::borrow::Cow::Owned(String::from_utf8_lossy(&l.measurement()).into_owned())
            }
            Err(_) => measurement_of(line),
        };
        if keep(&name) {
            out.extend_from_slice(line);
            n += 1;
        }
    }
    (Bytes::from(out), n)
}
