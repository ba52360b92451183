//! Point sets for exact comparisons: what a database holds, and what loadgen got acknowledged,
//! both as `measurement,k=v,... <ns>` with tags sorted.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::influxd::Influxd;

/// Every point `db` holds (empty when the database does not exist).
pub fn stored(influxd: &Influxd, db: &str) -> BTreeSet<String> {
    let Ok(resp) = influxd.select(db, "SELECT * FROM /.*/ GROUP BY *") else {
        return BTreeSet::new();
    };
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("query answer is JSON");
    let mut out = BTreeSet::new();
    for s in v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let mut key = s["name"].as_str().expect("series name").to_owned();
        for (k, val) in s["tags"].as_object().cloned().unwrap_or_default() {
            if let Some(val) = val.as_str().filter(|v| !v.is_empty()) {
                key.push_str(&format!(",{k}={val}"));
            }
        }
        for row in s["values"].as_array().expect("values") {
            out.insert(format!("{key} {}", row[0].as_i64().expect("epoch=ns time")));
        }
    }
    out
}

/// The points of the lines in a loadgen `--record-acked` file (tags without escapes).
pub fn acked(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (key, rest) = l.split_once(' ').expect("key and fields");
            let mut parts: Vec<&str> = key.split(',').collect();
            let m = parts.remove(0);
            parts.sort_unstable();
            let mut k = m.to_owned();
            for t in parts {
                k.push(',');
                k.push_str(t);
            }
            format!("{k} {}", rest.rsplit_once(' ').expect("timestamp").1)
        })
        .collect()
}

/// Waits until `db` holds exactly `want` (or, with `subset`, at least `want`).
pub async fn wait_for_points(
    influxd: &Influxd,
    db: &str,
    want: &BTreeSet<String>,
    subset: bool,
    within: Duration,
) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let have = stored(influxd, db);
        if (subset && want.is_subset(&have)) || &have == want {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            let missing = want.difference(&have).count();
            let extra = have.difference(want).count();
            panic!(
                "{}: {missing} points missing, {extra} unexpected after {within:?}; log:\n{}",
                influxd.url(),
                influxd.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
