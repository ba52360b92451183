//! Line protocol scanner vs the `influxdb-line-protocol` crate on a Telegraf-like body
//! (cpu/mem/disk/diskio/system lines, ~5,000 lines, ~1 MB), same input, same run.
//!
//! `cargo bench --bench line_protocol -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
// Switch to `fluxroute::line_protocol` when moved into the main crate.
use fluxroute::ingest::encode::{self, Target};
use fluxroute::line_protocol as lp;

/// A Telegraf-like body of about `target` bytes.
fn telegraf_body(target: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(target + 1024);
    let mut ts: i64 = 1_700_000_000_000_000_000;
    let mut n: u64 = 0x2545_F491_4F6C_DD1D;
    let mut rnd = || {
        n ^= n << 13;
        n ^= n >> 7;
        n ^= n << 17;
        n
    };
    let mut i = 0u64;
    while body.len() < target {
        let host = format!("web-{:02}.prod.example.com", i % 20);
        let line = match i % 5 {
            0 => format!(
                "cpu,cpu=cpu{},host={host} usage_guest=0,usage_guest_nice=0,usage_idle={}.{},\
                 usage_iowait=0.{},usage_irq=0,usage_nice=0,usage_softirq=0.{},usage_steal=0,\
                 usage_system={}.{},usage_user={}.{} {ts}\n",
                i % 8,
                rnd() % 100,
                rnd() % 1_000_000_000,
                rnd() % 1000,
                rnd() % 1000,
                rnd() % 10,
                rnd() % 100_000,
                rnd() % 40,
                rnd() % 10_000_000,
            ),
            1 => format!(
                "mem,host={host} active={}i,available={}i,available_percent={}.{},buffered={}i,\
                 cached={}i,free={}i,inactive={}i,total=16777216000i,used={}i,used_percent={}.{} \
                 {ts}\n",
                rnd() % 10_000_000_000,
                rnd() % 10_000_000_000,
                rnd() % 100,
                rnd() % 100_000_000,
                rnd() % 1_000_000_000,
                rnd() % 10_000_000_000,
                rnd() % 10_000_000_000,
                rnd() % 1_000_000_000,
                rnd() % 10_000_000_000,
                rnd() % 100,
                rnd() % 1_000_000,
            ),
            2 => format!(
                "disk,device=nvme0n1p{},fstype=ext4,host={host},mode=rw,path=/var/lib/data{} \
                 free={}i,inodes_free={}i,inodes_total=61054976i,inodes_used={}i,total=982141468672i,\
                 used={}i,used_percent={}.{} {ts}\n",
                i % 4,
                i % 4,
                rnd() % 1_000_000_000_000,
                rnd() % 60_000_000,
                rnd() % 1_000_000,
                rnd() % 1_000_000_000_000,
                rnd() % 100,
                rnd() % 10_000_000,
            ),
            3 => format!(
                "diskio,host={host},name=nvme0n1 io_time={}i,iops_in_progress=0i,read_bytes={}i,\
                 read_time={}i,reads={}i,weighted_io_time={}i,write_bytes={}i,write_time={}i,\
                 writes={}i {ts}\n",
                rnd() % 100_000_000,
                rnd() % 10_000_000_000_000,
                rnd() % 100_000_000,
                rnd() % 100_000_000,
                rnd() % 100_000_000,
                rnd() % 10_000_000_000_000,
                rnd() % 100_000_000,
                rnd() % 100_000_000,
            ),
            _ => format!(
                "system,host={host} load1={}.{},load15={}.{},load5={}.{},n_cpus=8i,n_users={}i,\
                 uptime={}i,uptime_format=\"{} days, {:2}:{:02}\" {ts}\n",
                rnd() % 8,
                rnd() % 100,
                rnd() % 8,
                rnd() % 100,
                rnd() % 8,
                rnd() % 100,
                rnd() % 10,
                rnd() % 10_000_000,
                rnd() % 100,
                rnd() % 24,
                rnd() % 60,
            ),
        };
        body.extend_from_slice(line.as_bytes());
        // One Telegraf interval per round of the five measurements.
        if matches!(i % 5, 4) {
            ts += 10_000_000_000;
        }
        i += 1;
    }
    body
}

fn bench(c: &mut Criterion) {
    let body = telegraf_body(1_000_000);
    let text = std::str::from_utf8(&body).expect("generated body is ASCII");
    let line_count = lp::lines(&body).count();
    assert!(lp::lines(&body).all(|l| l.is_ok()));
    assert_eq!(
        influxdb_line_protocol::parse_lines(text)
            .filter(|r| r.is_ok())
            .count(),
        line_count
    );
    eprintln!("body: {} bytes, {line_count} lines", body.len());

    let mut g = c.benchmark_group("line_protocol");
    g.throughput(Throughput::Bytes(body.len() as u64));

    g.bench_function("fluxroute_validate", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for line in lp::lines(black_box(&body)) {
                ok += usize::from(line.is_ok());
            }
            ok
        })
    });

    let mut out = Vec::with_capacity(body.len() + body.len() / 4);
    g.bench_function("fluxroute_validate_normalize_hash", |b| {
        b.iter(|| {
            out.clear();
            let mut h = 0u64;
            let receive = 1_700_000_000_123_456_789;
            for line in lp::lines(black_box(&body)).with_precision(lp::Precision::Nanosecond) {
                let Ok(line) = line else { continue };
                let Ok(ns) =
                    lp::timestamp_nanos(line.timestamp, lp::Precision::Nanosecond, receive)
                else {
                    continue;
                };
                lp::write_normalized(&line, ns, &mut out);
                h ^= lp::series_key_hash(&line);
            }
            (out.len(), h)
        })
    });

    // The ingest's whole pure path: validation, influxd's storage checks (drops, field type
    // conflicts), normalization and packing into per-partition records; then the same with
    // every field of the body already stored on the clusters (the steady state with known
    // schema views: each new field shape is also checked against them).
    let mut stored = lp::FieldMap::new();
    for line in lp::lines(&body).flatten() {
        let fields = stored.entry(line.measurement().to_vec()).or_default();
        for (key, value) in lp::field_pairs(line.fields()) {
            if let Some(ty) = lp::FieldType::of_value(value) {
                fields.insert(key.to_vec(), ty);
            }
        }
    }
    let variants: [(&str, Option<&dyn lp::StoredFields>); 2] = [
        ("fluxroute_ingest_encode", None),
        ("fluxroute_ingest_encode_stored_fields", Some(&stored)),
    ];
    for (name, stored) in variants {
        g.bench_function(name, |b| {
            let target = Target {
                db: "telegraf",
                rp: "",
                partitions: 12,
                max_record_bytes: 1_000_000,
                min_time: None,
                stored,
            };
            b.iter(|| {
                let e = encode::encode(
                    black_box(&body),
                    lp::Precision::Nanosecond,
                    1_700_000_000_123_456_789,
                    target,
                );
                (e.accepted, e.records.len())
            })
        });
    }

    g.bench_function("influxdb_line_protocol_parse_lines", |b| {
        b.iter(|| {
            let mut ok = 0usize;
            for line in influxdb_line_protocol::parse_lines(black_box(text)) {
                ok += usize::from(line.is_ok());
            }
            ok
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
