//! Field type conflicts inside one write request, decided as influxd 1.6 decides them.
//!
//! influxd keeps one type per field key of a measurement (per shard). Checked against influxd
//! 1.6.7, a write behaves like this:
//! - Validation only compares a point with the fields stored *before* the write. Fields new to
//!   the shard are collected in body order and created after validation; the first one whose key
//!   was just created with another type fails the whole write with a plain `field type conflict`
//!   (nothing written; the fields created before it stay).
//! - influxd's points writer retries a failed write to a shard that exists, once. The retry
//!   validates against the fields the first attempt created: each point that conflicts with them
//!   is dropped (`partial write: field type conflict: input field "v" on measurement "m" is type
//!   integer, already exists as type float dropped=N`), the others are written; if the retry's
//!   own new fields conflict again, the answer is the plain `field type conflict` and nothing is
//!   written. So the first type seen wins, up to the first conflict.
//! - Each attempt compacts the request's list of points in place when it drops one (a `time`
//!   tag, only `time` fields), and the retry reads that list as left: some points are gone and
//!   others appear twice (counted twice in `dropped=`). [`settle`] replays this exactly.
//! - The reason is the first drop reason of the retry, tag drops before the rest; parse errors
//!   are then not mentioned. Field keys and measurement names are compared unescaped; a field
//!   named `time` is ignored; the same key in another measurement is no conflict.
//!
//! fluxroute does not see a cluster's shards, so it answers as influxd answers a write into a
//! shard that exists, with every point of the request in that shard (the steady state of a
//! database being written to). The fields stored before the write are those the caller knows
//! ([`StoredFields`], from the schema views; none without them): [`settle_with`] validates the
//! first attempt against them, and a point whose field is stored with another type is dropped
//! (`partial write: field type conflict: …`, also when it is the only point). Where influxd
//! would answer otherwise — the write that creates a shard (plain `field type conflict`, nothing
//! written), a stored field fluxroute does not know, points in several shards — the cluster's
//! own answer is the drain's, as before.
//!
//! Cost: the scanner gives each line a hash of its measurement, field keys and value types
//! ([`Line::field_shape`]); a request looks at the fields of a line only when that shape is new
//! to it, so Telegraf's batches (the same field set line after line) pay one set lookup a line.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use super::scan::{field_key_end, field_value_end};
use super::{unescape, DropReason, Line};

/// influxd's type of a field value (`influxql.DataType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `1`, `1.5`, `-2e3`.
    Float,
    /// `1i`.
    Integer,
    /// `1u` (influxd 1.6 refuses these when parsing).
    Unsigned,
    /// `"text"`.
    String,
    /// `t`, `true`, `F`, ...
    Boolean,
}

impl FieldType {
    /// The type as influxd names it in errors.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::Unsigned => "unsigned",
            FieldType::String => "string",
            FieldType::Boolean => "boolean",
        }
    }

    /// The type influxd's field iterator gives a value as [`field_pairs`] splits it; `None` for
    /// an empty value (influxd skips it in type checks).
    pub fn of_value(value: &[u8]) -> Option<FieldType> {
        let first = *value.first()?;
        Some(match first {
            b'"' => FieldType::String,
            b'0'..=b'9' | b'-' | b'.' | b'n' | b'N' | b'i' | b'I' | b'u' => match value.last() {
                Some(b'i') => FieldType::Integer,
                Some(b'u') => FieldType::Unsigned,
                _ => FieldType::Float,
            },
            _ => FieldType::Boolean,
        })
    }
}

/// The (raw key, raw value) pairs of a valid field set, split as influxd's field iterator splits
/// them (`walkFields`): a key ends at the first `=` not preceded by a backslash, a value at the
/// first comma outside double quotes (`\"` and `\\` escape in a value).
pub fn field_pairs(fields: &[u8]) -> FieldPairs<'_> {
    FieldPairs { rest: fields }
}

/// Iterator of [`field_pairs`].
#[derive(Debug, Clone)]
pub struct FieldPairs<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for FieldPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let f = self.rest;
        if f.is_empty() {
            return None;
        }
        let k = field_key_end(f);
        let value = f.get(k + 1..).unwrap_or(&[]);
        let v = field_value_end(value);
        self.rest = value.get(v + 1..).unwrap_or(&[]);
        Some((&f[..k], &value[..v]))
    }
}

/// The fields influxd would hold after some writes: unescaped measurement -> unescaped field key
/// -> type.
type Known = HashMap<Vec<u8>, HashMap<Vec<u8>, FieldType>>;

/// Field types a cluster already holds (unescaped measurement -> unescaped key -> type), as its
/// schema view learned them.
pub type FieldMap = HashMap<Vec<u8>, HashMap<Vec<u8>, FieldType>>;

/// The field types stored before a write, as far as they are known: the fields a write is
/// validated against before any of its own fields are created.
pub trait StoredFields: std::fmt::Debug {
    /// The type field `key` of `measurement` (both unescaped) is stored with, if known.
    fn stored(&self, measurement: &[u8], key: &[u8]) -> Option<FieldType>;
}

impl StoredFields for FieldMap {
    fn stored(&self, measurement: &[u8], key: &[u8]) -> Option<FieldType> {
        self.get(measurement).and_then(|m| m.get(key)).copied()
    }
}

/// What a field of a point meets in [`Known`].
enum Check {
    New,
    Same,
    Conflict(FieldType),
}

fn check(
    known: &Known,
    stored: Option<&dyn StoredFields>,
    measurement: &[u8],
    key: &[u8],
    ty: FieldType,
) -> Check {
    let found = known
        .get(measurement)
        .and_then(|m| m.get(key).copied())
        .or_else(|| stored.and_then(|s| s.stored(measurement, key)));
    match found {
        None => Check::New,
        Some(t) if t == ty => Check::Same,
        Some(t) => Check::Conflict(t),
    }
}

/// The fields of a line that influxd type-checks: (unescaped key, type), `time` and empty values
/// left out.
fn typed_fields<'a>(line: &Line<'a>) -> impl Iterator<Item = (Cow<'a, [u8]>, FieldType)> {
    field_pairs(line.fields()).filter_map(|(key, value)| {
        let ty = FieldType::of_value(value)?;
        (key != b"time").then(|| (unescape(key), ty))
    })
}

/// A `u64` that is already a hash, used as is.
#[derive(Debug, Default, Clone, Copy)]
struct ShapeHasher(u64);

impl Hasher for ShapeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The field types a request has shown so far, to notice its first field type conflict.
///
/// A line is looked at field by field only when its [`Line::field_shape`] is new to the request
/// (or unknown); the same shape again can neither add a field nor conflict.
#[derive(Debug, Clone, Default)]
pub(super) struct FieldTypes {
    shapes: HashSet<u64, BuildHasherDefault<ShapeHasher>>,
    known: Known,
    conflict: bool,
    /// Fields of the request absent from the stored ones (only when some are stored).
    fresh: Vec<(Vec<u8>, Vec<u8>, FieldType)>,
}

impl FieldTypes {
    /// Takes in a point influxd would try to write (not dropped before its fields are checked);
    /// a field stored before the write with another type (`stored`) is a conflict too.
    #[inline]
    pub(super) fn observe(&mut self, line: &Line<'_>, stored: Option<&dyn StoredFields>) {
        let shape = line.field_shape;
        if self.conflict || (shape != 0 && self.shapes.contains(&shape)) {
            return;
        }
        self.observe_fields(line, stored);
        if !self.conflict && shape != 0 {
            self.shapes.insert(shape);
        }
    }

    #[cold]
    fn observe_fields(&mut self, line: &Line<'_>, stored: Option<&dyn StoredFields>) {
        let name = line.measurement();
        if !self.known.contains_key(name.as_ref()) {
            self.known.insert(name.to_vec(), HashMap::new());
        }
        let Some(fields) = self.known.get_mut(name.as_ref()) else {
            return;
        };
        for (key, ty) in typed_fields(line) {
            let before = stored.and_then(|s| s.stored(&name, &key));
            match fields.get(key.as_ref()).copied().or(before) {
                Some(t) if t != ty => {
                    self.conflict = true;
                    return;
                }
                Some(_) => {}
                None => {
                    if stored.is_some() && before.is_none() {
                        self.fresh.push((name.to_vec(), key.to_vec(), ty));
                    }
                    fields.insert(key.into_owned(), ty);
                }
            }
        }
    }

    /// The fields the request brings that are not stored yet, with their type (empty when it
    /// has a field type conflict or nothing is known stored).
    pub(super) fn fresh(&self) -> &[(Vec<u8>, Vec<u8>, FieldType)] {
        if self.conflict {
            &[]
        } else {
            &self.fresh
        }
    }

    /// Whether two points of the request gave one field two types.
    pub(super) fn conflicted(&self) -> bool {
        self.conflict
    }
}

/// influxd's decision on a request's points once field types are taken into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No field type conflict: the answer is the one of the drops and parse errors.
    Clean,
    /// `field type conflict`: influxd writes none of the request's points.
    Rejected,
    /// `partial write: <reason> dropped=<dropped>`: only the points marked in `keep` are written.
    Partial {
        /// Per point, in the order given to [`settle`]: whether influxd writes it.
        keep: Vec<bool>,
        /// The reason text, raw bytes (names echoed as written).
        reason: Vec<u8>,
        /// influxd's `dropped=` count.
        dropped: usize,
    },
}

impl Verdict {
    /// Whether influxd writes the `point`-th point (in the order given to [`settle`]), as far as
    /// field types go.
    pub fn keeps(&self, point: usize) -> bool {
        match self {
            Verdict::Clean => true,
            Verdict::Rejected => false,
            Verdict::Partial { keep, .. } => keep.get(point).copied().unwrap_or(false),
        }
    }

    /// influxd's error text for the request, raw bytes; `None` when [`Verdict::Clean`].
    pub fn error_text(&self) -> Option<Vec<u8>> {
        match self {
            Verdict::Clean => None,
            Verdict::Rejected => Some(b"field type conflict".to_vec()),
            Verdict::Partial {
                reason, dropped, ..
            } => {
                let mut out = b"partial write: ".to_vec();
                out.extend_from_slice(reason);
                out.extend_from_slice(format!(" dropped={dropped}").as_bytes());
                Some(out)
            }
        }
    }
}

/// A field to create: (unescaped measurement, unescaped key, type).
type NewField<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>, FieldType);

/// Keeps the first reason of an attempt.
fn note(reason: &mut Option<Vec<u8>>, write: &dyn Fn(&mut Vec<u8>)) {
    if reason.is_none() {
        let mut text = Vec::new();
        write(&mut text);
        *reason = Some(text);
    }
}

/// One write attempt of influxd over `order` (indices into `points`), compacted in place as
/// influxd compacts its point list. `Err(())` when creating the new fields hits a conflict (the
/// fields created before it are left in `known`).
fn attempt(
    points: &[(Line<'_>, Option<DropReason>)],
    order: &mut [usize],
    known: &mut Known,
    stored: Option<&dyn StoredFields>,
) -> Result<Tried, ()> {
    let mut conflicts = 0;
    let mut dropped = 0;
    let mut reason: Option<Vec<u8>> = None;
    // Points with a `time` tag (or a key that is not UTF-8) go first.
    let mut kept = 0;
    for i in 0..order.len() {
        let drop = &points[order[i]].1;
        if let Some(r @ (DropReason::TimeTag { .. } | DropReason::InvalidUnicode { .. })) = drop {
            dropped += 1;
            note(&mut reason, &|out| r.write_raw(out));
            continue;
        }
        order[kept] = order[i];
        kept += 1;
    }
    // Then points made only of `time` fields, and points whose fields conflict with the fields
    // known before this attempt.
    let mut create: Vec<NewField<'_>> = Vec::new();
    let mut written = 0;
    for i in 0..kept {
        let (line, drop) = &points[order[i]];
        if let Some(r) = drop {
            dropped += 1;
            note(&mut reason, &|out| r.write_raw(out));
            continue;
        }
        let name = line.measurement();
        let conflict =
            typed_fields(line).find_map(|(key, ty)| match check(known, stored, &name, &key, ty) {
                Check::Conflict(was) => Some((key, ty, was)),
                Check::New | Check::Same => None,
            });
        if let Some((key, ty, was)) = conflict {
            dropped += 1;
            conflicts += 1;
            note(&mut reason, &|out| {
                out.extend_from_slice(b"field type conflict: input field \"");
                out.extend_from_slice(&key);
                out.extend_from_slice(b"\" on measurement \"");
                out.extend_from_slice(&name);
                out.extend_from_slice(b"\" is type ");
                out.extend_from_slice(ty.name().as_bytes());
                out.extend_from_slice(b", already exists as type ");
                out.extend_from_slice(was.name().as_bytes());
            });
            continue;
        }
        order[written] = order[i];
        written += 1;
        for (key, ty) in typed_fields(line) {
            if matches!(check(known, stored, &name, &key, ty), Check::New) {
                create.push((name.clone(), key, ty));
            }
        }
    }
    for (name, key, ty) in create {
        let fields = known.entry(name.into_owned()).or_default();
        match fields.get(key.as_ref()) {
            Some(&t) if t != ty => return Err(()),
            Some(_) => {}
            None => {
                fields.insert(key.into_owned(), ty);
            }
        }
    }
    Ok(Tried {
        written,
        dropped,
        conflicts,
        reason,
    })
}

/// What an [`attempt`] that created its fields did.
struct Tried {
    /// Points written: the first ones of the attempt's order.
    written: usize,
    /// Points dropped (the `dropped=` count).
    dropped: usize,
    /// Points dropped for a field type conflict.
    conflicts: usize,
    /// The first drop reason.
    reason: Option<Vec<u8>>,
}

impl Tried {
    fn verdict(self, order: &[usize], points: usize) -> Verdict {
        let mut keep = vec![false; points];
        for &p in &order[..self.written] {
            keep[p] = true;
        }
        Verdict::Partial {
            keep,
            reason: self.reason.unwrap_or_default(),
            dropped: self.dropped,
        }
    }
}

/// influxd 1.6's decision on the points of one request (see the module doc): `points` are the
/// lines that parsed and that fluxroute would otherwise enqueue or that influxd drops, in body
/// order, each with the reason influxd drops it, if it does.
pub fn settle(points: &[(Line<'_>, Option<DropReason>)]) -> Verdict {
    settle_with(points, None)
}

/// [`settle`] over a shard that already holds the fields of `stored`: the first attempt drops
/// each point with a field stored with another type (`partial write: field type conflict: …`,
/// checked against influxd 1.6.7), and its fields take part in the retry's checks.
pub fn settle_with(
    points: &[(Line<'_>, Option<DropReason>)],
    stored: Option<&dyn StoredFields>,
) -> Verdict {
    let mut order: Vec<usize> = (0..points.len()).collect();
    let mut known = Known::new();
    match attempt(points, &mut order, &mut known, stored) {
        Ok(tried) if tried.conflicts == 0 => return Verdict::Clean,
        Ok(tried) => return tried.verdict(&order, points.len()),
        Err(()) => {}
    }
    match attempt(points, &mut order, &mut known, stored) {
        Err(()) => Verdict::Rejected,
        Ok(tried) => tried.verdict(&order, points.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{drop_reason, lines, parse_line};
    use super::*;

    fn verdict(body: &str) -> Verdict {
        let points: Vec<_> = lines(body.as_bytes())
            .filter_map(Result::ok)
            .map(|l| (l, drop_reason(&l)))
            .collect();
        settle(&points)
    }

    fn answer(body: &str) -> (Option<String>, Vec<usize>) {
        let v = verdict(body);
        let n = lines(body.as_bytes()).filter(Result::is_ok).count();
        let text = v
            .error_text()
            .map(|t| String::from_utf8(t).expect("test bodies are UTF-8"));
        (text, (0..n).filter(|&p| v.keeps(p)).collect())
    }

    fn conflict(key: &str, m: &str, ty: &str, stored: &str, dropped: usize) -> Option<String> {
        Some(format!(
            "partial write: field type conflict: input field \"{key}\" on measurement \"{m}\" \
             is type {ty}, already exists as type {stored} dropped={dropped}"
        ))
    }

    #[test]
    fn value_types_as_influxd_reads_them() {
        let ty = |v: &str| FieldType::of_value(v.as_bytes());
        assert_eq!(ty("1"), Some(FieldType::Float));
        assert_eq!(ty("-1.5e3"), Some(FieldType::Float));
        assert_eq!(ty("1i"), Some(FieldType::Integer));
        assert_eq!(ty("1u"), Some(FieldType::Unsigned));
        assert_eq!(ty("\"s\""), Some(FieldType::String));
        assert_eq!(ty("t"), Some(FieldType::Boolean));
        assert_eq!(ty("FALSE"), Some(FieldType::Boolean));
        assert_eq!(ty(""), None);
    }

    #[test]
    fn field_pairs_split_as_influxd() {
        let pairs: Vec<(&[u8], &[u8])> = field_pairs(br#"a\ b=1,s="x,y=\"z",c\=d=t"#).collect();
        assert_eq!(
            pairs,
            vec![
                (&br"a\ b"[..], &b"1"[..]),
                (&b"s"[..], &br#""x,y=\"z""#[..]),
                (&br"c\=d"[..], &b"t"[..]),
            ]
        );
    }

    #[test]
    fn within_one_line() {
        assert_eq!(
            answer("c1 v=1,v=2i 1\nc2 w=1 2"),
            (conflict("v", "c1", "integer", "float", 1), vec![1])
        );
        assert_eq!(
            answer("d4 v=1i,v=2 1"),
            (conflict("v", "d4", "float", "integer", 1), vec![])
        );
        // The same type twice is no conflict.
        assert_eq!(verdict("m v=1,v=2 1"), Verdict::Clean);
    }

    #[test]
    fn across_lines_the_first_type_wins() {
        assert_eq!(
            answer("m v=1i 1\nm v=2 2\nm v=3i 3\nm v=\"s\" 4\nn v=1 5"),
            (conflict("v", "m", "float", "integer", 2), vec![0, 2, 4])
        );
    }

    #[test]
    fn every_pair_of_types_conflicts() {
        let values = ["1", "1i", "\"s\"", "true"];
        let names = ["float", "integer", "string", "boolean"];
        for (a, va) in values.iter().enumerate() {
            for (b, vb) in values.iter().enumerate() {
                let body = format!("m v={va} 1\nm v={vb} 2");
                let want = if a == b {
                    (None, vec![0, 1])
                } else {
                    (conflict("v", "m", names[b], names[a], 1), vec![0])
                };
                assert_eq!(answer(&body), want, "{body}");
            }
        }
    }

    #[test]
    fn other_measurements_and_time_fields_do_not_conflict() {
        assert_eq!(verdict("a v=1 1\nb v=1i 2\nc v=\"x\" 3"), Verdict::Clean);
        // influxd ignores a field named `time` next to others.
        assert_eq!(verdict("m time=1,v=1 1\nm time=1i,v=2 2"), Verdict::Clean);
    }

    #[test]
    fn escaped_names_are_compared_unescaped() {
        assert_eq!(
            answer("m\\ x a\\ b=1 1\nm\\ x a\\ b=2i 2\nm\\ x a\\=b=3i 3"),
            (conflict("a b", "m x", "integer", "float", 1), vec![0, 2])
        );
        assert_eq!(
            answer("m a\"b=1 1\nm a\\\"b=2i 2"),
            (conflict("a\"b", "m", "integer", "float", 1), vec![0])
        );
    }

    #[test]
    fn a_second_conflict_rejects_the_whole_write() {
        // The retry creates `b.w` and meets its second type: influxd writes nothing.
        assert_eq!(
            answer("a v=1 1\na v=2i 2\nb w=1 3\nb w=true 4"),
            (Some("field type conflict".into()), vec![])
        );
    }

    #[test]
    fn drops_before_a_conflict_follow_influxds_compaction() {
        // Checked against influxd 1.6.7: the `time` tag point is compacted away by the first
        // attempt and the conflicting point is seen twice by the retry.
        assert_eq!(
            answer("m,time=x v=1 2\nm v=1 3\nm v=2i 4"),
            (conflict("v", "m", "integer", "float", 2), vec![1])
        );
        // A `time` tag point after the conflict is still in place: its reason comes first.
        assert_eq!(
            answer("m v=1 3\nm v=2i 4\nm,time=x v=1 2").0.as_deref(),
            Some("partial write: invalid tag key: input tag \"time\" on measurement \"m\" is invalid dropped=2")
        );
        assert_eq!(
            answer("n,time=x v=1 1\nm v=1 2\nm v=2i 3\nk,time=y v=1 4").0.as_deref(),
            Some("partial write: invalid tag key: input tag \"time\" on measurement \"k\" is invalid dropped=3")
        );
        assert_eq!(
            answer("m v=1 3\nm v=2i 4\nm time=1 5"),
            (conflict("v", "m", "integer", "float", 2), vec![0])
        );
    }

    #[test]
    fn field_shapes_tell_field_sets_apart() {
        let shape = |l: &str| parse_line(l.as_bytes()).expect("valid line").field_shape;
        assert_eq!(shape("m,h=a v=1,w=2i 1"), shape("m,h=b v=7.5,w=-3i"));
        assert_eq!(shape("m s=\"a,b\",b=t"), shape("m s=\"\",b=FALSE 5"));
        assert_ne!(shape("m v=1"), shape("m v=1i"));
        assert_ne!(shape("m v=1"), shape("n v=1"));
        assert_ne!(shape("m v=1"), shape("m w=1"));
        assert_ne!(shape("m v=1,w=1"), shape("m w=1,v=1"));
        assert_ne!(shape("m v=t"), shape("m v=\"t\""));
        assert_ne!(
            shape("m a_long_field_key_name=1"),
            shape("m a_long_field_key_namf=1")
        );
        assert_ne!(shape("m v=1"), 0);
        // A backslash: the scanner leaves it to the field iterator.
        assert_eq!(shape("m a\\ b=1"), 0);
    }

    #[test]
    fn the_tracker_notices_exactly_what_settle_needs() {
        for body in [
            "m v=1 1\nm v=1 2\nm v=1i 3",
            "m v=1,v=2i 1",
            "a v=1 1\nb v=2i 2",
            "m v=1 1\nm w=1i 2\nm v=2 3",
            "m a\\ b=1 1\nm a\\ b=1i 2",
        ] {
            let mut t = FieldTypes::default();
            let mut points = Vec::new();
            for l in lines(body.as_bytes()).filter_map(Result::ok) {
                t.observe(&l, None);
                points.push((l, None));
            }
            assert_eq!(t.conflicted(), settle(&points) != Verdict::Clean, "{body}");
        }
    }
}
