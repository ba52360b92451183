//! The line protocol scanner against the slow reference (`fluxroute::line_protocol::reference`),
//! then the ingest's encoding of the same body (`ingest::encode`).
//!
//! The input is the request body as is, so the seeds are plain line protocol. The precision, the
//! receive time, the partition count and the record size cap are picked from the input's length
//! and first byte, so every input replays identically.
//!
//! Checked, besides "no panic":
//! - every line: the scanner and the reference accept or reject it alike, with the same reason;
//!   accepted lines agree on measurement, tags, series key, field set, timestamp, canonical key
//!   and its hash, storage drop reason, time in ns and the normalized line; the body's influxd
//!   error text is the same (`reference::compare`);
//! - precision names: a short input read as `precision=` gets the same unit from the v1, v2
//!   and influxd 1.6 readings wherever they both know it;
//! - `encode`: every accepted line lands, normalized, in the record of its partition, in body
//!   order (less the points a field type conflict drops); records stay under the size cap unless
//!   they hold a single line; accepted and rejected counts add up to the body's lines.

#![no_main]

use fluxroute::ingest::encode::{self, Target};
use fluxroute::line_protocol::{self as lp, reference, Precision};
use libfuzzer_sys::fuzz_target;

const PRECISIONS: [Option<Precision>; 7] = [
    None,
    Some(Precision::Nanosecond),
    Some(Precision::Microsecond),
    Some(Precision::Millisecond),
    Some(Precision::Second),
    Some(Precision::Minute),
    Some(Precision::Hour),
];

/// Receive times: a usual one, around 0, and the edges of influxd's range and of i64.
const RECEIVE_NANOS: [i64; 8] = [
    1_700_000_000_123_456_789,
    0,
    -1,
    -1_000_000_001,
    lp::MIN_NANOS,
    lp::MAX_NANOS,
    i64::MIN,
    i64::MAX,
];

const RECORD_CAPS: [usize; 3] = [1, 100, 1 << 20];

/// A queued line as the drain reads it: series key, field set, timestamp.
type ReadBack = (Vec<u8>, Vec<u8>, Option<i64>);

fuzz_target!(|body: &[u8]| {
    let pick = body
        .len()
        .wrapping_add(usize::from(body.first().copied().unwrap_or(0)));
    let precision = PRECISIONS[pick % PRECISIONS.len()];
    let receive_nanos = RECEIVE_NANOS[(pick / PRECISIONS.len()) % RECEIVE_NANOS.len()];
    if let Err(e) = reference::compare(body, precision, receive_nanos) {
        panic!(
            "scanner and reference disagree (precision {precision:?}, receive time \
             {receive_nanos}): {e}\nbody: {:?}",
            String::from_utf8_lossy(body)
        );
    }
    check_precision_names(body);
    let partitions = 1 + (pick % 5) as u32;
    let cap = RECORD_CAPS[pick % RECORD_CAPS.len()];
    check_encode(
        body,
        precision.unwrap_or(Precision::Nanosecond),
        receive_nanos,
        partitions,
        cap,
    );
});

fn check_encode(
    body: &[u8],
    precision: Precision,
    receive_nanos: i64,
    partitions: u32,
    cap: usize,
) {
    let target = Target {
        db: "db",
        rp: "rp",
        partitions,
        max_record_bytes: cap,
        // No schema view: nothing is beyond retention and no field is stored.
        min_time: None,
        stored: None,
    };
    let encoded = encode::encode(body, precision, receive_nanos, target);

    // What the reference expects: per partition, the normalized accepted lines in body order.
    let seed = encode::db_rp_hash("db", "rp");
    let mut want: Vec<Vec<u8>> = vec![Vec::new(); partitions as usize];
    let mut want_points: Vec<Vec<ReadBack>> = vec![Vec::new(); partitions as usize];
    // Field type conflicts: influxd's decision over the scanner's points (`lp::settle`, checked
    // against influxd in its unit tests and in tests/ingest.rs).
    let points: Vec<_> = lp::lines(body)
        .with_precision(precision)
        .filter_map(Result::ok)
        .filter(|l| lp::is_normalizable(l) || lp::drop_reason(l).is_some())
        .map(|l| (l, lp::drop_reason(&l)))
        .collect();
    let verdict = lp::settle(&points);
    let mut next_point = 0;
    let (mut accepted, mut rejected) = (0, 0);
    for line in reference::lines(body, Some(precision)) {
        let Ok(point) = line.result else {
            rejected += 1;
            continue;
        };
        let index = next_point;
        if point.drop_reason().is_some() || point.normalized(0).is_some() {
            next_point += 1;
        }
        if point.drop_reason().is_none() && !verdict.keeps(index) {
            rejected += 1;
            continue;
        }
        let ns = reference::reference_nanos(point.timestamp, precision, receive_nanos);
        // Refused: no time, dropped by influxd's storage, or no normalized form.
        let (Some(ns), None) = (ns, point.drop_reason()) else {
            rejected += 1;
            continue;
        };
        let Some(normalized) = point.normalized(ns) else {
            rejected += 1;
            continue;
        };
        let hash = xxhash_rust::xxh3::xxh3_64(&point.canonical_key());
        let p = encode::partition_of(seed, hash, partitions) as usize;
        want[p].extend_from_slice(&normalized);
        want_points[p].push((point.key, point.fields, Some(ns)));
        accepted += 1;
    }
    assert_eq!(
        (encoded.accepted, encoded.rejected),
        (accepted, rejected),
        "accepted/rejected counts"
    );
    assert_eq!(
        encoded.error.is_some(),
        rejected > 0,
        "an error message iff a line was rejected: {:?}",
        encoded.error
    );

    // The records, read back as the drain reads them: every line valid, with its time, and per
    // partition exactly the expected lines in order.
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); partitions as usize];
    let mut read_back: Vec<Vec<ReadBack>> = vec![Vec::new(); partitions as usize];
    for record in &encoded.records {
        assert!(
            record.partition < partitions,
            "partition {}",
            record.partition
        );
        assert_eq!(
            (record.meta.db.as_str(), record.meta.rp.as_str()),
            ("db", "rp")
        );
        assert!(!record.payload.is_empty(), "empty record");
        let lines = lp::lines(&record.payload).count();
        assert!(
            record.payload.len() <= cap || lines == 1,
            "record of {} bytes with {lines} lines above the cap {cap}",
            record.payload.len()
        );
        for line in lp::lines(&record.payload) {
            let line = line.unwrap_or_else(|e| panic!("a record holds an invalid line: {e}"));
            read_back[record.partition as usize].push((
                line.key().to_vec(),
                line.fields().to_vec(),
                line.timestamp,
            ));
        }
        got[record.partition as usize].extend_from_slice(&record.payload);
    }
    for p in 0..partitions as usize {
        assert!(
            got[p] == want[p],
            "partition {p}: records hold {:?}, expected {:?}",
            String::from_utf8_lossy(&got[p]),
            String::from_utf8_lossy(&want[p])
        );
        assert!(
            read_back[p] == want_points[p],
            "partition {p}: the records read back as {:?}, expected {:?}",
            read_back[p],
            want_points[p]
        );
    }
}

/// A short input is also a `precision=` value: each API's reading agrees with the others.
fn check_precision_names(body: &[u8]) {
    let Ok(name) = std::str::from_utf8(body) else {
        return;
    };
    if name.len() > 4 {
        return;
    }
    let v1 = Precision::from_v1(name);
    if let Some(v2) = Precision::from_v2(name) {
        assert_eq!(v1, Some(v2), "precision {name:?}");
    }
    let lenient = Precision::from_v1_lenient(name);
    if !matches!(name, "us" | "µ") {
        // influxd 1.6 reads `us` and `µ` as ns; every other name as /write does, unknown as ns.
        assert_eq!(
            v1.unwrap_or(Precision::Nanosecond),
            lenient,
            "precision {name:?}"
        );
    }
}
