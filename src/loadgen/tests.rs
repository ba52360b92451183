//! Unit tests of the generator, the rate limit, the report and `run` against local servers.

use super::generator::*;
use super::writer::*;
use super::*;
use std::collections::HashSet;

fn spec(hosts: usize, shapes: &[Shape]) -> GeneratorSpec {
    GeneratorSpec {
        hosts,
        shapes: shapes.to_vec(),
        extra_tags: 0,
        extra_fields: 0,
        base_ns: 1_700_000_000_000_000_000,
    }
}

fn lines(gen: &Generator, first: u64, count: usize) -> String {
    let mut out = Vec::new();
    gen.write_lines(first, count, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn lines_look_like_telegraf() {
    let gen = Generator::try_new(&spec(50, &[Shape::Cpu, Shape::Mem, Shape::Disk])).unwrap();
    let text = lines(&gen, 3 * 42, 3);
    let got: Vec<&str> = text.lines().collect();
    assert!(
        got[0].starts_with("cpu,cpu=cpu-total,host=host042,region=eu-west usage_user="),
        "{}",
        got[0]
    );
    assert!(
        got[1].starts_with("mem,host=host042,region=eu-west used="),
        "{}",
        got[1]
    );
    assert!(
        got[2].starts_with(
            "disk,device=nvme0n1p1,fstype=ext4,host=host042,path=/,region=eu-west free="
        ),
        "{}",
        got[2]
    );
    assert!(got[0].contains(",usage_system=") && got[0].contains(",usage_idle="));
    assert!(got[1].contains("i,free=") && got[1].contains("i,used_percent="));
    assert!(got[2].contains("i,used=") && got[2].contains("i,used_percent="));
    assert!(text.ends_with('\n'));
}

#[test]
fn lines_parse_and_tags_are_sorted() {
    let mut s = spec(7, &[Shape::Cpu, Shape::Mem, Shape::Disk]);
    s.extra_tags = 12;
    s.extra_fields = 3;
    let gen = Generator::try_new(&s).unwrap();
    let text = lines(&gen, 0, 500);
    let mut n = 0;
    for parsed in influxdb_line_protocol::parse_lines(&text) {
        let line = parsed.unwrap();
        n += 1;
        let tags: Vec<String> = line
            .series
            .tag_set
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
        let mut sorted = tags.clone();
        sorted.sort();
        assert_eq!(tags, sorted);
        assert!(tags.len() >= 2 + 12);
        assert!(line.timestamp.is_some());
        assert_eq!(line.field_set.len() - 3, {
            match line.series.measurement.as_str() {
                "cpu" => 3,
                "mem" | "disk" => 4,
                other => panic!("unexpected measurement {other}"),
            }
        });
        for (_, v) in &line.field_set {
            match v {
                influxdb_line_protocol::FieldValue::F64(f) => {
                    assert!((0.0..=1000.0).contains(f));
                }
                influxdb_line_protocol::FieldValue::I64(i) => assert!(*i > 0),
                other => panic!("unexpected field {other:?}"),
            }
        }
        if line.series.measurement.as_str() == "cpu" {
            let sum: f64 = ["usage_user", "usage_system", "usage_idle"]
                .iter()
                .map(|k| match line.field_value(k) {
                    Some(influxdb_line_protocol::FieldValue::F64(f)) => *f,
                    other => panic!("{k}: {other:?}"),
                })
                .sum();
            assert!((sum - 100.0).abs() < 1e-6, "{sum}");
        }
    }
    assert_eq!(n, 500);
}

#[test]
fn every_line_is_a_distinct_point_across_batches() {
    let gen = Generator::try_new(&spec(3, &[Shape::Cpu, Shape::Disk])).unwrap();
    // Batches of 7 taken in any order (as concurrent connections would) still cover
    // distinct (series, timestamp) pairs.
    let mut seen = HashSet::new();
    for batch in [5u64, 0, 3, 1, 4, 2] {
        let text = lines(&gen, batch * 7, 7);
        assert_eq!(text.lines().count(), 7);
        for line in text.lines() {
            let (series, rest) = line.split_once(' ').unwrap();
            let ts = rest.rsplit_once(' ').unwrap().1;
            assert!(seen.insert((series.to_owned(), ts.to_owned())), "{line}");
        }
    }
    assert_eq!(seen.len(), 42);
    // Each series advances 1 µs per point.
    assert_eq!(gen.timestamp_ns(6) - gen.timestamp_ns(0), 1_000);
    assert_eq!(gen.timestamp_ns(5), gen.timestamp_ns(0));
}

#[test]
fn generation_is_deterministic_and_batch_sizes_exact() {
    let gen = Generator::try_new(&spec(10, &[Shape::Mem])).unwrap();
    assert_eq!(lines(&gen, 100, 50), lines(&gen, 100, 50));
    let whole = lines(&gen, 0, 30);
    let parts = lines(&gen, 0, 10) + &lines(&gen, 10, 20);
    assert_eq!(whole, parts);
    assert_eq!(lines(&gen, 0, 0), "");
}

#[test]
fn fixed_point_formatting() {
    let fmt = |v, d| {
        let mut out = Vec::new();
        push_fixed(&mut out, v, d);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(fmt(0, 1), "0.0");
    assert_eq!(fmt(845, 1), "84.5");
    assert_eq!(fmt(1000, 1), "100.0");
    assert_eq!(fmt(5, 2), "0.05");
    assert_eq!(fmt(12_345, 2), "123.45");
    let mut out = Vec::new();
    push_u64(&mut out, u64::MAX);
    assert_eq!(out, u64::MAX.to_string().as_bytes());
}

#[test]
fn measurement_list_parsing() {
    assert_eq!(
        Shape::parse_list("disk, cpu,disk").unwrap(),
        vec![Shape::Disk, Shape::Cpu]
    );
    assert!(Shape::parse_list("cpu,net").is_err());
    assert!(Shape::parse_list(" , ").is_err());
}

#[test]
fn allocation_stops_exactly_at_max_lines() {
    let args = test_args(&["--max-lines", "25", "--batch-size", "10"]);
    let plan = Plan::try_from_args(&args).unwrap();
    let shared = Shared {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
        write_url: plan.write_url,
        auth: Auth::None,
        gzip: false,
        generator: Generator::try_new(&spec(1, &[Shape::Cpu])).unwrap(),
        batch_size: 10,
        max_lines: 25,
        next_line: AtomicU64::new(0),
        deadline: Instant::now(),
        limiter: None,
        counters: Counters::default(),
        first_error: Mutex::new(None),
    };
    assert_eq!(shared.allocate(), Some((0, 10)));
    assert_eq!(shared.allocate(), Some((10, 10)));
    assert_eq!(shared.allocate(), Some((20, 5)));
    assert_eq!(shared.allocate(), None);
    assert_eq!(shared.allocate(), None);
}

#[test]
fn token_bucket_paces_batches() {
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(1000, 100, t0);
    // A full bucket: the first batch goes at once, the next ones queue 100 ms apart.
    assert_eq!(bucket.acquire(100, t0), Duration::ZERO);
    assert_eq!(bucket.acquire(100, t0), Duration::from_millis(100));
    assert_eq!(bucket.acquire(100, t0), Duration::from_millis(200));
    // At 300 ms the debt is repaid and the fourth batch is on schedule, the fifth is not.
    let t1 = t0 + Duration::from_millis(300);
    assert_eq!(bucket.acquire(100, t1), Duration::ZERO);
    assert_eq!(bucket.acquire(100, t1), Duration::from_millis(100));
    // Idle time refills at most one batch (the burst).
    let t2 = t1 + Duration::from_secs(10);
    assert_eq!(bucket.acquire(100, t2), Duration::ZERO);
    assert!(bucket.acquire(100, t2) > Duration::ZERO);
}

#[test]
fn token_bucket_long_run_rate() {
    // 10 batches of 500 at 5000 lines/s: the last may go at 0.9 s.
    let t0 = Instant::now();
    let mut bucket = TokenBucket::new(5000, 500, t0);
    let waits: Vec<Duration> = (0..10).map(|_| bucket.acquire(500, t0)).collect();
    let last = waits[9].as_secs_f64();
    assert!((last - 0.9).abs() < 1e-9, "{last}");
}

#[derive(clap::Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: LoadgenArgs,
}

fn test_args(extra: &[&str]) -> LoadgenArgs {
    use clap::Parser as _;
    let argv = std::iter::once("loadgen").chain(extra.iter().copied());
    Cli::try_parse_from(argv).unwrap().args
}

#[test]
fn urls_and_auth() {
    let v1 = Plan::try_from_args(&test_args(&[
        "--url",
        "http://h:1/prefix/",
        "--db",
        "my db",
        "--rp",
        "r1",
        "--username",
        "u",
        "--password",
        "p",
    ]))
    .unwrap();
    assert_eq!(
        v1.write_url.as_str(),
        "http://h:1/prefix/write?db=my+db&rp=r1&precision=ns"
    );
    assert!(matches!(v1.auth, Auth::Basic { .. }));
    assert_eq!(
        endpoint(&v1.base_url, "query").as_str(),
        "http://h:1/prefix/query"
    );

    let v2 = Plan::try_from_args(&test_args(&[
        "--api", "v2", "--org", "o", "--db", "b", "--token", "secret",
    ]))
    .unwrap();
    assert_eq!(
        v2.write_url.as_str(),
        "http://127.0.0.1:8086/api/v2/write?org=o&bucket=b&precision=ns"
    );
    match &v2.auth {
        Auth::Header(h) => assert_eq!(h.to_str().unwrap(), "Token secret"),
        other => panic!("{other:?}"),
    }
    assert!(!format!("{:?}", test_args(&["--token", "secret"])).contains("secret"));
}

#[test]
fn bad_arguments_are_rejected() {
    for argv in [
        &["--batch-size", "0"][..],
        &["--connections", "0"],
        &["--rate", "0"],
        &["--hosts", "0"],
        &["--measurements", "cpu,gpu"],
        &["--url", "ftp://x"],
        &["--url", "not a url"],
        &["--password", "p"],
    ] {
        assert!(
            Plan::try_from_args(&test_args(argv)).is_err(),
            "{argv:?} accepted"
        );
    }
}

#[test]
fn report_renders() {
    let report = Report {
        lines_acked: 10,
        lines_failed: 5,
        requests_ok: 2,
        requests_failed: 1,
        transport_errors: 0,
        status_counts: BTreeMap::from([(204, 2), (500, 1)]),
        bytes_sent: 2048,
        elapsed: Duration::from_secs(2),
        lines_per_sec: 5.0,
        bytes_per_sec: 1024.0,
        latency_p50: Duration::from_millis(3),
        latency_p90: Duration::from_millis(4),
        latency_p99: Duration::from_millis(5),
        latency_max: Duration::from_millis(6),
        first_error: Some("HTTP 500: boom".into()),
    };
    let json = report.to_json();
    assert_eq!(json["status_counts"]["500"], 1);
    assert_eq!(json["latency_ms"]["p99"], 5.0);
    let text = report.to_string();
    assert!(text.contains("204: 2, 500: 1"), "{text}");
    assert!(text.contains("HTTP 500: boom"), "{text}");
}
