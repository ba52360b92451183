//! The write path end to end against real services: fluxroute in process, a real Kafka-protocol
//! broker, and a real `influxd` as the oracle for InfluxDB's answers.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "ingest/conflicts.rs"]
mod conflicts;

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fluxroute::query::statement::Ddl;
use fluxroute::queue::kafka::{KafkaConsumerGroup, KafkaSettings};
use fluxroute::queue::payload::plain_lines;
use fluxroute::queue::{ConsumerGroup, Event, Record, RecordKind, RecordMeta};
use reqwest::StatusCode;
use support::broker::{Broker, Storage};
use support::config::Setup;
use support::fluxroute::Fluxroute;
use support::influxd::Influxd;

const TOPIC: &str = "writes";
const PARTITIONS: u32 = 4;

fn config(bootstrap: &str, extra: &str) -> String {
    Setup::kafka(bootstrap)
        .topic(TOPIC)
        .partitions(PARTITIONS)
        .queue_line("produce_timeout = \"2s\"")
        .section(&format!(
            "[ingest]\nmax_body_bytes = 100000\nenqueue_timeout = \"3s\"\nretry_after = \"2s\"\n{extra}"
        ))
        .grace(None)
        .cluster_toml("[[clusters]]\nname = \"primary\"\napi = \"v1\"\nendpoints = [\"http://127.0.0.1:9\"]\n")
        .route(&["telegraf", "app_*", "diff"], &["primary"])
        .toml()
}

fn settings(bootstrap: &str) -> KafkaSettings {
    KafkaSettings {
        brokers: vec![bootstrap.to_owned()],
        topic: TOPIC.into(),
        partitions: PARTITIONS,
        replication_factor: 1,
        max_record_bytes: 1_000_000,
        linger: Duration::from_millis(1),
        produce_timeout: Duration::from_secs(5),
        properties: BTreeMap::new(),
        client_metrics: None,
    }
}

/// Reads records from the topic with a fresh group until `pred` holds or the deadline passes.
async fn read_until(bootstrap: &str, pred: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let group = format!("test-{}", uuid::Uuid::new_v4());
    let consumer = KafkaConsumerGroup::join(&settings(bootstrap), &group).expect("join group");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while !pred(&records) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "records never arrived; have {records:?}"
        );
        for ev in consumer
            .poll(1000, Duration::from_millis(500))
            .await
            .expect("poll")
        {
            if let Event::Record(r) = ev {
                records.push(r);
            }
        }
    }
    records
}

fn lines_of(records: &[Record], meta: &RecordMeta) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .filter(|r| &r.meta == meta)
        .flat_map(|r| {
            String::from_utf8(
                plain_lines(&r.payload)
                    .expect("payload decompresses")
                    .to_vec(),
            )
            .expect("utf-8 payload")
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
        })
        .collect();
    out.sort();
    out
}

fn now_nanos() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    )
    .unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_default().to_owned()
    }
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.text().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_and_v2_writes_land_normalized_in_the_topic() {
    let broker = Broker::start(Storage::Memory);
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "")).await;
    let http = support::http_client();

    let before = now_nanos();
    let a = send(
        http.post(format!(
            "{}/write?db=telegraf&rp=autogen&precision=s",
            fr.url()
        ))
        .body("cpu,host=a usage=1.5 1700000000\ncpu,host=b usage=2 \nmem,host=a free=3i\n"),
    )
    .await;
    let after = now_nanos();
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    assert_eq!(a.headers["X-Influxdb-Version"], "1.8.10");
    assert!(a.headers.contains_key("Request-Id"));

    let b = send(
        http.post(format!(
            "{}/api/v2/write?org=o&bucket=app_x/short&precision=ms",
            fr.url()
        ))
        .body("http_req,path=/a count=1i 1700000000123\n"),
    )
    .await;
    assert_eq!(b.status, StatusCode::NO_CONTENT, "{}", b.body);

    let records = read_until(&broker.bootstrap(), |rs| {
        rs.iter()
            .filter(|r| r.meta.kind == RecordKind::Write)
            .map(|r| {
                plain_lines(&r.payload)
                    .expect("payload decompresses")
                    .iter()
                    .filter(|&&c| c == b'\n')
                    .count()
            })
            .sum::<usize>()
            >= 4
    })
    .await;
    let v1 = lines_of(&records, &RecordMeta::write("telegraf", "autogen"));
    assert_eq!(v1.len(), 3, "{v1:?}");
    assert!(
        v1.contains(&"cpu,host=a usage=1.5 1700000000000000000".to_owned()),
        "{v1:?}"
    );
    // Lines without a timestamp carry the request's receive time, one instant for the request.
    let stamped: Vec<i64> = v1
        .iter()
        .filter(|l| !l.starts_with("cpu,host=a "))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(stamped.len(), 2);
    assert_eq!(stamped[0], stamped[1]);
    // precision=s: like InfluxDB, the receive time is truncated to whole seconds.
    assert_eq!(stamped[0] % 1_000_000_000, 0);
    assert!(
        stamped[0] > before - 1_000_000_000 && stamped[0] <= after,
        "{stamped:?} not within a second before [{before}, {after}]"
    );

    let v2 = lines_of(&records, &RecordMeta::write("app_x", "short"));
    assert_eq!(
        v2,
        vec!["http_req,path=/a count=1i 1700000000123000000".to_owned()]
    );
    for r in &records {
        assert!(r.partition < PARTITIONS);
    }
    fr.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn create_database_is_a_schema_change_record_on_every_partition() {
    let broker = Broker::start(Storage::Memory);
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "")).await;
    let http = support::http_client();
    let a = send(
        http.post(format!("{}/query", fr.url()))
            .form(&[("q", "CREATE DATABASE \"telegraf\"")]),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.json(),
        serde_json::json!({"results":[{"statement_id":0}]})
    );

    let unsupported = send(http.get(format!(
        "{}/query?q=CREATE+USER+x+WITH+PASSWORD+%27y%27",
        fr.url()
    )))
    .await;
    assert_eq!(unsupported.status, StatusCode::BAD_REQUEST);
    assert!(
        unsupported
            .error()
            .contains("not supported through fluxroute"),
        "{}",
        unsupported.body
    );
    // A read no cluster can answer (the only one is on a closed port): 503 with Retry-After.
    let read = send(http.get(format!(
        "{}/query?db=telegraf&q=SELECT+*+FROM+cpu",
        fr.url()
    )))
    .await;
    assert_eq!(
        read.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        read.body
    );
    assert!(
        read.error().contains("no cluster could answer"),
        "{}",
        read.body
    );

    let records = read_until(&broker.bootstrap(), |rs| rs.len() >= PARTITIONS as usize).await;
    let mut parts: Vec<u32> = records
        .iter()
        .filter(|r| {
            r.meta == RecordMeta::ddl("telegraf")
                && Ddl::from_payload(&r.payload)
                    .is_ok_and(|d| d.render("telegraf") == "CREATE DATABASE \"telegraf\"")
        })
        .map(|r| r.partition)
        .collect();
    parts.sort_unstable();
    assert_eq!(parts, (0..PARTITIONS).collect::<Vec<_>>());
}

/// One request sent to both fluxroute and influxd: status and error text must agree.
struct Case {
    name: &'static str,
    path: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, &'static str)>,
}

fn case(name: &'static str, path: &'static str, body: &[u8]) -> Case {
    Case {
        name,
        path,
        body: body.to_vec(),
        headers: vec![],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_match_a_real_influxd() {
    let broker = Broker::start(Storage::Memory);
    let influxd = Influxd::start().expect("influxd");
    let influx_url = format!("http://{}", influxd.http_addr());
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "")).await;
    let http = support::http_client();
    // The oracle needs the databases fluxroute's routes cover.
    for db in ["telegraf", "diff"] {
        let r = send(
            http.post(format!("{influx_url}/query"))
                .form(&[("q", format!("CREATE DATABASE {db}"))]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }

    let big_line = format!("m v=\"{}\" 1\n", "x".repeat(100_100));
    let bomb = gzip(format!("m v=\"{}\" 1\n", "y".repeat(200_000)).as_bytes());
    let cases = vec![
        case(
            "partial write",
            "/write?db=telegraf",
            b"good v=1 1\nbad line\ngood2 v=2 2\n",
        ),
        case("all bad", "/write?db=telegraf", b"bad\nalso bad=1\n"),
        case("empty body", "/write?db=telegraf", b""),
        case(
            "comments and blanks only",
            "/write?db=telegraf",
            b"# nothing\n\n",
        ),
        case("missing db", "/write", b"m v=1 1\n"),
        case("unknown db", "/write?db=nope", b"m v=1 1\n"),
        case(
            "bad consistency",
            "/write?db=telegraf&consistency=most",
            b"m v=1 1\n",
        ),
        case(
            "good consistency",
            "/write?db=telegraf&consistency=quorum",
            b"m v=1 1\n",
        ),
        // influxd takes the level case-insensitively, and checks it only after the body parsed.
        case(
            "consistency in capitals",
            "/write?db=telegraf&consistency=ANY",
            b"m v=1 1\n",
        ),
        case(
            "consistency capitalized",
            "/write?db=telegraf&consistency=One",
            b"m v=1 1\n",
        ),
        case(
            "bad consistency, no valid line",
            "/write?db=telegraf&consistency=most",
            b"bad line\n",
        ),
        case(
            "bad consistency, some valid lines",
            "/write?db=telegraf&consistency=most",
            b"m v=1 1\nbad line\n",
        ),
        case(
            "bad consistency, empty body",
            "/write?db=telegraf&consistency=most",
            b"",
        ),
        case(
            "precision s",
            "/write?db=telegraf&precision=s",
            b"m v=1 1700000000\n",
        ),
        case("raw oversize", "/write?db=telegraf", big_line.as_bytes()),
        Case {
            name: "gzip",
            path: "/write?db=telegraf",
            body: gzip(b"m v=1 1\nm v=2 2\n"),
            headers: vec![("Content-Encoding", "gzip")],
        },
        Case {
            name: "corrupt gzip",
            path: "/write?db=telegraf",
            body: b"definitely not gzip".to_vec(),
            headers: vec![("Content-Encoding", "gzip")],
        },
        Case {
            name: "decompressed oversize",
            path: "/write?db=telegraf",
            body: bomb,
            headers: vec![("Content-Encoding", "gzip")],
        },
    ];
    let mut influxd_cfg_note = String::new();
    for c in &cases {
        let mut answers = Vec::new();
        for base in [&fr.url(), &influx_url] {
            let mut req = http.post(format!("{base}{}", c.path)).body(c.body.clone());
            for (k, v) in &c.headers {
                req = req.header(*k, *v);
            }
            answers.push(send(req).await);
        }
        let (ours, theirs) = (&answers[0], &answers[1]);
        if c.name == "decompressed oversize" || c.name == "raw oversize" {
            // influxd's max-body-size is its default (25 MB); only fluxroute's cap is low here.
            assert_eq!(
                ours.status,
                StatusCode::PAYLOAD_TOO_LARGE,
                "{}: {}",
                c.name,
                ours.body
            );
            assert_eq!(ours.error(), "Request Entity Too Large");
            influxd_cfg_note.push_str(c.name);
            continue;
        }
        assert_eq!(
            ours.status, theirs.status,
            "{}: ours {} / influxd {}",
            c.name, ours.body, theirs.body
        );
        assert_eq!(ours.error(), theirs.error(), "{}", c.name);
        if !theirs.status.is_success() {
            assert_eq!(
                ours.headers
                    .get("X-Influxdb-Error")
                    .map(|v| v.to_str().unwrap().to_owned()),
                theirs
                    .headers
                    .get("X-Influxdb-Error")
                    .map(|v| v.to_str().unwrap().replace('\n', " ")),
                "{}",
                c.name
            );
        }
    }
    assert!(!influxd_cfg_note.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn fluxroute_specific_answers() {
    let broker = Broker::start(Storage::Memory);
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "")).await;
    let http = support::http_client();

    let ok = send(
        http.post(format!("{}/write?db=telegraf", fr.url()))
            .body("m v=1 1"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    let partial = send(
        http.post(format!("{}/write?db=telegraf", fr.url()))
            .body("m v=1 1\nbad\nworse\n"),
    )
    .await;
    assert_eq!(partial.status, StatusCode::BAD_REQUEST);
    assert_eq!(partial.headers["X-Fluxroute-Dropped"], "2");

    let bad_precision = send(
        http.post(format!("{}/write?db=telegraf&precision=x", fr.url()))
            .body("m v=1 1"),
    )
    .await;
    assert_eq!(bad_precision.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_precision.error(),
        "invalid precision \"x\" (use n, u, ms, s, m or h)"
    );

    let get_write = send(http.get(format!("{}/write?db=telegraf", fr.url()))).await;
    assert_eq!(get_write.status, StatusCode::METHOD_NOT_ALLOWED);

    let v2_bad = send(
        http.post(format!("{}/api/v2/write?org=o&bucket=telegraf", fr.url()))
            .body("good v=1 1\nbad\n"),
    )
    .await;
    assert_eq!(v2_bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(v2_bad.json()["code"], "invalid");
    assert_eq!(
        v2_bad.json()["message"],
        "unable to parse 'bad': missing fields",
        "{}",
        v2_bad.body
    );

    let v2_no_bucket = send(
        http.post(format!("{}/api/v2/write?org=o", fr.url()))
            .body("m v=1 1"),
    )
    .await;
    assert_eq!(v2_no_bucket.status, StatusCode::BAD_REQUEST);

    let ping = send(http.get(format!("{}/ping", fr.url()))).await;
    assert_eq!(ping.status, StatusCode::NO_CONTENT);
    assert_eq!(ping.headers["X-Influxdb-Build"], "OSS");
    let head = send(http.head(format!("{}/ping", fr.url()))).await;
    assert_eq!(head.status, StatusCode::NO_CONTENT);
    let verbose = send(http.get(format!("{}/ping?verbose=true", fr.url()))).await;
    assert_eq!(verbose.status, StatusCode::OK);
    assert_eq!(verbose.json()["version"], "1.8.10");

    let health = send(http.get(format!("{}/health", fr.url()))).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "pass");

    let metrics = send(http.get(format!("{}/metrics", fr.admin_url()))).await;
    assert!(metrics
        .body
        .contains("fluxroute_ingest_requests_total{endpoint=\"write\",status=\"400\"}"));
    assert!(metrics
        .body
        .contains("fluxroute_ingest_enqueue_duration_seconds_bucket"));
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_forms_and_answers() {
    let broker = Broker::start(Storage::Memory);
    let users = r#"
[[ingest.users]]
name = "telegraf"
password = "${TG_PASSWORD}"
token = "${TG_TOKEN}"
databases = ["telegraf"]
"#;
    let env = HashMap::from([
        ("TG_PASSWORD".to_owned(), "pw-1".to_owned()),
        ("TG_TOKEN".to_owned(), "token-1".to_owned()),
    ]);
    let fr = Fluxroute::start_with_env(&config(&broker.bootstrap(), users), &env).await;
    let http = support::http_client();
    let url = |q: &str| format!("{}/write?{q}", fr.url());

    let none = send(http.post(url("db=telegraf")).body("m v=1 1")).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.headers["WWW-Authenticate"], "Basic realm=\"InfluxDB\"");
    assert_eq!(none.error(), "unable to parse authentication credentials");

    let wrong = send(
        http.post(url("db=telegraf&u=telegraf&p=nope"))
            .body("m v=1 1"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.error(), "authorization failed");

    for req in [
        http.post(url("db=telegraf&u=telegraf&p=pw-1")),
        http.post(url("db=telegraf"))
            .basic_auth("telegraf", Some("pw-1")),
        http.post(url("db=telegraf"))
            .header("Authorization", "Token telegraf:pw-1"),
        http.post(url("db=telegraf"))
            .header("Authorization", "Token token-1"),
        http.post(format!("{}/api/v2/write?bucket=telegraf&org=x", fr.url()))
            .header("Authorization", "Token token-1"),
    ] {
        let ok = send(req.body("m v=1 1")).await;
        assert_eq!(ok.status, StatusCode::NO_CONTENT, "{}", ok.body);
    }

    let forbidden = send(http.post(url("db=app_x&u=telegraf&p=pw-1")).body("m v=1 1")).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.error(),
        "\"telegraf\" user is not authorized to write to database \"app_x\""
    );

    let v2_wrong = send(
        http.post(format!("{}/api/v2/write?bucket=telegraf&org=x", fr.url()))
            .header("Authorization", "Token bad"),
    )
    .await;
    assert_eq!(v2_wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(v2_wrong.json()["code"], "unauthorized");
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_down_gives_503_then_recovers_without_restart() {
    let broker = Broker::start(Storage::Memory);
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "")).await;
    let http = support::http_client();
    let write = || {
        http.post(format!("{}/write?db=telegraf", fr.url()))
            .body("m v=1 1\n")
    };
    assert_eq!(send(write()).await.status, StatusCode::NO_CONTENT);

    broker.freeze();
    let started = std::time::Instant::now();
    let down = send(write()).await;
    let took = started.elapsed();
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.body
    );
    assert_eq!(down.headers["Retry-After"], "2");
    // enqueue_timeout is 3s; allow scheduling slack but nothing like a hang.
    assert!(took < Duration::from_secs(10), "503 took {took:?}");
    let health = send(http.get(format!("{}/health", fr.url()))).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);

    broker.thaw();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let a = send(write()).await;
        if a.status == StatusCode::NO_CONTENT {
            break;
        }
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.body);
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes never recovered: {}\nbroker log:\n{}",
            a.body,
            broker.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_shed_before_reading_the_body() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = Broker::start(Storage::Memory);
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "max_concurrent_requests = 1")).await;
    let http = support::http_client();

    // A slow client holds the only slot: headers sent, body still coming.
    let body = "slow,host=a v=1 1\n";
    let mut slow = tokio::net::TcpStream::connect(fr.ingest).await.unwrap();
    let head = format!(
        "POST /write?db=telegraf HTTP/1.1\r\nHost: fluxroute\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body.as_bytes()[..5]).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = send(http.get(format!("{}/metrics", fr.admin_url()))).await;
        if m.body.contains("fluxroute_ingest_requests_in_flight 1") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow request never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let shed = send(
        http.post(format!("{}/write?db=telegraf", fr.url()))
            .body("m v=1 1\n"),
    )
    .await;
    assert_eq!(
        shed.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        shed.body
    );
    assert_eq!(shed.headers["Retry-After"], "2");

    // The slow request completes normally, and the slot is free again.
    slow.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    let ok = send(
        http.post(format!("{}/write?db=telegraf", fr.url()))
            .body("m v=1 1\n"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_body_times_out_and_frees_its_slot() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broker = Broker::start(Storage::Memory);
    let fr = Fluxroute::start(&config(
        &broker.bootstrap(),
        "max_concurrent_requests = 1\nbody_read_timeout = \"1s\"",
    ))
    .await;
    let mut slow = tokio::net::TcpStream::connect(fr.ingest).await.unwrap();
    slow.write_all(b"POST /write?db=telegraf HTTP/1.1\r\nHost: fluxroute\r\nContent-Length: 100\r\nConnection: close\r\n\r\nm v=1")
        .await
        .unwrap();
    // The body never completes: the answer is a 408 after body_read_timeout, not a hang.
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(20), slow.read_to_string(&mut answer))
        .await
        .expect("answered within the deadline")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("timed out reading the request body"),
        "{answer}"
    );
    let ok = send(
        support::http_client()
            .post(format!("{}/write?db=telegraf", fr.url()))
            .body("m v=1 1\n"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT, "the slot is free again");
}
