//! Field type conflicts inside one request, answered as a real influxd answers them.

use super::*;

/// Every point of `db` as `measurement time`, one query per measurement (a wildcard query leaves
/// out a measurement whose field has another type in another measurement).
fn stored_by_measurement(influxd: &Influxd, db: &str) -> std::collections::BTreeSet<String> {
    let rows = |q: &str| -> Vec<serde_json::Value> {
        let resp = influxd.select(db, q).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        v["results"][0]["series"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let mut out = std::collections::BTreeSet::new();
    for name in rows("SHOW MEASUREMENTS") {
        let name = name[0].as_str().unwrap().to_owned();
        let q = format!("SELECT * FROM \"{}\"", name.replace('"', "\\\""));
        for row in rows(&q) {
            out.insert(format!("{name} {}", row[0].as_i64().unwrap()));
        }
    }
    out
}

/// Field type conflicts inside one request, against influxd 1.6.7 writing into a shard that
/// exists (a seed point of another measurement creates it first), which is the answer fluxroute
/// gives: status, exact body, the points written, and `X-Fluxroute-Dropped`. (Into a shard that
/// the write itself creates, influxd answers a plain `field type conflict` and writes nothing;
/// fluxroute cannot know a cluster's shards.)
#[tokio::test(flavor = "multi_thread")]
async fn field_type_conflicts_match_a_real_influxd() {
    let broker = Broker::start(Storage::Memory);
    let influxd = Influxd::start().expect("influxd");
    let influx_url = format!("http://{}", influxd.http_addr());
    let fr = Fluxroute::start(&config(&broker.bootstrap(), "")).await;
    let http = support::http_client();
    let cases: &[(&str, &str)] = &[
        ("within a line, alone", "cpu v=1,v=2i 1\n"),
        (
            "within a line, and a good line",
            "c1 v=1,v=2i 1\nc2 w=1 2\n",
        ),
        ("integer then float within a line", "d4 v=1i,v=2 1\n"),
        (
            "across lines, first type wins",
            "m v=1i 1\nm v=2 2\nm v=3i 3\nm v=\"s\" 4\nn v=1 5\n",
        ),
        (
            "with a parse error",
            "m v=1 2\nm v=2i 3\nbad line\nm w=1 4\n",
        ),
        ("time tag before", "m,time=x v=1 2\nm v=1 3\nm v=2i 4\n"),
        ("time tag after", "m v=1 3\nm v=2i 4\nm,time=x v=1 2\n"),
        ("time fields only after", "m v=1 3\nm v=2i 4\nm time=1 5\n"),
        (
            "a second conflict",
            "a v=1 1\na v=2i 2\nb w=1 3\nb w=true 4\n",
        ),
        (
            "escaped names",
            "m\\ x a\\ b=1 1\nm\\ x a\\ b=2i 2\nm\\ x a\\=b=3i 3\n",
        ),
        ("string and boolean", "m v=\"x\" 1\nm v=t 2\nm v=\"y\" 3\n"),
        ("other measurements", "a v=1 1\nb v=2i 2\nc v=\"x\" 3\n"),
        ("time field ignored", "m time=1,v=1 1\nm time=1i,v=2 2\n"),
    ];
    let mut written = Vec::new();
    for (n, (name, body)) in cases.iter().enumerate() {
        let db = format!("app_conflict{n}");
        let r = send(
            http.post(format!("{influx_url}/query"))
                .form(&[("q", format!("CREATE DATABASE {db}"))]),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let seed = send(
            http.post(format!("{influx_url}/write?db={db}"))
                .body("seed x=1 1"),
        )
        .await;
        assert_eq!(seed.status, StatusCode::NO_CONTENT);

        let path = format!("/write?db={db}");
        let ours = send(http.post(format!("{}{path}", fr.url())).body(*body)).await;
        let theirs = send(http.post(format!("{influx_url}{path}")).body(*body)).await;
        assert_eq!(
            (ours.status, &ours.body),
            (theirs.status, &theirs.body),
            "{name}"
        );

        let mut stored = stored_by_measurement(&influxd, &db);
        stored.remove("seed 1");
        let dropped = ours
            .headers
            .get("X-Fluxroute-Dropped")
            .map_or(0, |v| v.to_str().unwrap().parse::<usize>().unwrap());
        assert_eq!(
            dropped + stored.len(),
            body.lines().count(),
            "{name}: X-Fluxroute-Dropped"
        );
        written.push((*name, RecordMeta::write(&db, ""), stored));
    }
    // What fluxroute enqueued is what influxd wrote.
    let records = read_until(&broker.bootstrap(), |rs| {
        written
            .iter()
            .all(|(_, meta, stored)| lines_of(rs, meta).len() >= stored.len())
    })
    .await;
    for (name, meta, stored) in &written {
        let enqueued: std::collections::BTreeSet<String> = lines_of(&records, meta)
            .iter()
            .map(|l| {
                let line = fluxroute::line_protocol::parse_line(l.as_bytes()).unwrap();
                let name = String::from_utf8(line.measurement().into_owned()).unwrap();
                format!("{name} {}", line.timestamp.unwrap())
            })
            .collect();
        assert_eq!(&enqueued, stored, "{name}");
    }
}
