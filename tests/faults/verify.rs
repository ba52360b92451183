//! Checking a fault scenario's outcome: what each cluster stored, duplicates, recovery time, the
//! final comparison with what was acknowledged, and the summary table.

use super::*;

// ---------------------------------------------------------------------------------------------
// Clusters: stored points, duplicates, recovery, the final comparison
// ---------------------------------------------------------------------------------------------

/// A named cluster (one `influxd`).
pub(crate) type Cluster<'a> = (&'a str, &'a Influxd);

/// The points `influxd` holds in [`DB`] (a blocking query, kept off the runtime's workers).
pub(crate) fn stored(influxd: &Influxd) -> BTreeSet<String> {
    tokio::task::block_in_place(|| support::points::stored(influxd, DB))
}

/// Points `influxd` accepted over HTTP since it started (`SHOW STATS`, httpd `pointsWrittenOK`),
/// counting every replay.
pub(crate) fn points_received(influxd: &Influxd) -> u64 {
    let resp = tokio::task::block_in_place(|| influxd.query("SHOW STATS FOR 'httpd'")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let series = &v["results"][0]["series"][0];
    let columns = series["columns"].as_array().unwrap();
    let i = columns
        .iter()
        .position(|c| c == "pointsWrittenOK")
        .unwrap_or_else(|| panic!("no pointsWrittenOK in {v}"));
    series["values"][0][i].as_u64().unwrap()
}

/// How long a scenario took to recover after its fault ended.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recovery {
    /// Until the first request (of the slowest load) sent after the fault was acknowledged.
    pub(crate) ingest: Duration,
    /// Until every cluster held every line acknowledged before the fault ended plus those of
    /// that first request of each load.
    pub(crate) delivered: Duration,
}

/// Measures [`Recovery`] from `fault_end`, polling the clusters.
pub(crate) async fn recovery(
    loads: &[&Load],
    clusters: &[Cluster<'_>],
    fault_end: Instant,
) -> Result<Recovery, String> {
    recovery_without(loads, &[], clusters, fault_end).await
}

/// [`recovery`] where the loads in `gone` lost their server for good: what they had
/// acknowledged before `fault_end` must be delivered too, but they are not expected to get a
/// request acknowledged after it.
pub(crate) async fn recovery_without(
    loads: &[&Load],
    gone: &[&Load],
    clusters: &[Cluster<'_>],
    fault_end: Instant,
) -> Result<Recovery, String> {
    let mut target = BTreeSet::new();
    for l in loads.iter().chain(gone) {
        target.extend(l.acked_by(fault_end));
    }
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    let mut probes: Vec<Option<Instant>> = vec![None; loads.len()];
    loop {
        for (probe, l) in probes.iter_mut().zip(loads) {
            if probe.is_none() {
                if let Some((lines, answered)) = l.first_acked_after(fault_end) {
                    target.extend(lines);
                    *probe = Some(answered);
                }
            }
        }
        if probes.iter().all(Option::is_some)
            && clusters.iter().all(|(_, c)| target.is_subset(&stored(c)))
        {
            let ingest = probes.iter().flatten().max().copied().unwrap_or(fault_end);
            return Ok(Recovery {
                ingest: ingest.saturating_duration_since(fault_end),
                delivered: fault_end.elapsed(),
            });
        }
        if Instant::now() >= deadline {
            let missing: Vec<String> = clusters
                .iter()
                .map(|(n, c)| format!("{n}: {}", target.difference(&stored(c)).count()))
                .collect();
            return Err(format!(
                "not recovered {DELIVERY_DEADLINE:?} after the fault: acknowledged after it per \
                 load {:?}, answers {:?}, lines missing per cluster {missing:?}",
                probes.iter().map(Option::is_some).collect::<Vec<_>>(),
                loads.iter().map(|l| l.statuses()).collect::<Vec<_>>()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What [`verify`] found.
#[derive(Debug)]
pub(crate) struct Verified {
    /// Distinct points per cluster.
    pub(crate) delivered: Vec<usize>,
    /// Stored points sent but not acknowledged (the same set in every cluster).
    pub(crate) extra: usize,
    /// Points each `influxd` accepted beyond its distinct points (replays absorbed).
    pub(crate) dups: Vec<u64>,
}

/// The exact comparison: every acknowledged line is stored in every cluster; the clusters end up
/// holding the same points; a stored line that was not acknowledged was sent (answered with an
/// error or cut off).
pub(crate) async fn verify(
    scenario: &str,
    result: &LoadResult,
    clusters: &[Cluster<'_>],
) -> Verified {
    let acked = result.acked();
    let unacked = result.unacked();
    assert_eq!(
        acked.len() as u64,
        result.acked_lines(),
        "{scenario}: every line is a distinct point"
    );
    assert!(!acked.is_empty(), "{scenario}: nothing acknowledged");
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    for (name, c) in clusters {
        loop {
            let have = stored(c);
            let missing: Vec<&String> = acked.difference(&have).collect();
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{scenario}: cluster {name} misses {} of {} acknowledged lines after \
                 {DELIVERY_DEADLINE:?}, e.g. {:?}; influxd log:\n{}",
                missing.len(),
                acked.len(),
                missing.iter().take(3).collect::<Vec<_>>(),
                c.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    // Lines made durable but not acknowledged (a 503 after the queue took them, a crash before
    // the answer) reach every cluster too: wait until all clusters hold the same points.
    let sets = loop {
        let sets: Vec<BTreeSet<String>> = clusters.iter().map(|(_, c)| stored(c)).collect();
        if sets.windows(2).all(|w| w[0] == w[1]) {
            break sets;
        }
        assert!(
            Instant::now() < deadline,
            "{scenario}: clusters hold different points: {:?}",
            sets.iter().map(BTreeSet::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let mut dups = Vec::new();
    for ((name, c), have) in clusters.iter().zip(&sets) {
        let stray: Vec<&String> = have
            .iter()
            .filter(|k| !acked.contains(*k) && !unacked.contains(*k))
            .collect();
        assert!(
            stray.is_empty(),
            "{scenario}: cluster {name} holds {} points nobody sent, e.g. {:?}",
            stray.len(),
            stray.iter().take(3).collect::<Vec<_>>()
        );
        let received = points_received(c);
        assert!(
            received >= have.len() as u64,
            "{scenario}: {name} accepted {received} points but holds {}",
            have.len()
        );
        dups.push(received - have.len() as u64);
    }
    Verified {
        delivered: sets.iter().map(BTreeSet::len).collect(),
        extra: sets[0].len() - acked.len(),
        dups,
    }
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) scenario: &'static str,
    pub(crate) acked: u64,
    pub(crate) failed: String,
    pub(crate) delivered: String,
    pub(crate) extra: usize,
    pub(crate) dups: String,
    pub(crate) recovery: Recovery,
    pub(crate) took: Duration,
}

pub(crate) static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());

pub(crate) fn summarize(
    scenario: &'static str,
    result: &LoadResult,
    clusters: &[Cluster<'_>],
    v: &Verified,
    recovery: Recovery,
    started: Instant,
) {
    let failed: Vec<String> = result
        .statuses()
        .into_iter()
        .filter(|(k, _)| !k.starts_with('2'))
        .map(|(k, n)| format!("{n}×{k}"))
        .collect();
    let per = |f: &dyn Fn(usize) -> String| {
        clusters
            .iter()
            .enumerate()
            .map(|(i, (n, _))| format!("{n}={}", f(i)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let row = Row {
        scenario,
        acked: result.acked_lines(),
        failed: if failed.is_empty() {
            "0".into()
        } else {
            failed.join(",")
        },
        delivered: per(&|i| v.delivered[i].to_string()),
        extra: v.extra,
        dups: per(&|i| v.dups[i].to_string()),
        recovery,
        took: started.elapsed(),
    };
    println!(
        "SUMMARY {scenario}: acked {} lines, failed requests {}, delivered {}, extra {}, \
         duplicates absorbed {}, ingest back after {} ms, recovery {} ms, missing 0",
        row.acked,
        row.failed,
        row.delivered,
        row.extra,
        row.dups,
        row.recovery.ingest.as_millis(),
        row.recovery.delivered.as_millis()
    );
    let mut rows = ROWS.lock().unwrap();
    rows.push(row);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<32} {:>7} {:<16} {:<18} {:>5} {:<16} {:>11} {:>9} {:>7}",
        "scenario",
        "acked",
        "failed requests",
        "delivered",
        "extra",
        "dups",
        "ingest back",
        "recovery",
        "took"
    );
    for r in rows.iter() {
        let _ = writeln!(
            t,
            "{:<32} {:>7} {:<16} {:<18} {:>5} {:<16} {:>9}ms {:>7}ms {:>6.1}s",
            r.scenario,
            r.acked,
            r.failed,
            r.delivered,
            r.extra,
            r.dups,
            r.recovery.ingest.as_millis(),
            r.recovery.delivered.as_millis(),
            r.took.as_secs_f64()
        );
    }
    println!("fault scenarios finished so far (missing acknowledged lines: 0 in each):\n{t}");
}
