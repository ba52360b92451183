"""Prints scripts/bench's tables and writes its JSON: called by scripts/bench with the results file,
the criterion and end-to-end figures as JSON, the seconds per run, the core count and the commit."""
import json, sys, time
out_path, crit, ingest, secs, ncpu, rev = sys.argv[1:]
crit, ingest = json.loads(crit), json.loads(ingest)
result = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": rev, "cpus": int(ncpu),
          "bench_seconds": int(secs)}

if crit:
    print("\nline protocol (criterion, median; same ~1 MB Telegraf-like body)")
    base = crit.get("influxdb_line_protocol_parse_lines")
    print(f"  {'bench':<38} {'MB/s':>8} {'95% CI MB/s':>17} {'vs crate':>9}")
    for name, c in crit.items():
        ratio = c["mb_per_sec"] / base["mb_per_sec"] if base else None
        c["ratio_vs_influxdb_line_protocol"] = ratio
        lo, hi = c["mb_per_sec_ci95"]
        r = f"{ratio:8.2f}x" if ratio else "        -"
        print(f"  {name:<38} {c['mb_per_sec']:8.1f} {lo:8.1f}–{hi:<8.1f} {r}")
    result["line_protocol"] = crit

def delivery_costs(r):
    """CPU per million lines written (to every cluster) and peak RSS of a delivering row (d, e)."""
    mlines, cpu = r["lines_written"] / 1e6, r["cpu_seconds"]
    return {
        "core_seconds_per_million_lines": {k: v / mlines for k, v in cpu.items()},
        "cpu_seconds": cpu,
        "server_core_seconds_per_million_lines": cpu["fluxroute"] / mlines,
        "machine_busy_fraction": r["machine_busy_fraction"],
        "fluxroute_peak_rss_mb": r["vm_hwm_kb"]["fluxroute"] / 1024,
        "peak_rss_mb": {k: v / 1024 for k, v in r["vm_hwm_kb"].items()},
    }

if ingest:
    drain = ingest.pop("drain", None) or {}
    live = ingest.pop("live", None) or {}
    # With two clusters, (d) and (e) count lines stored per cluster and cost per line per cluster.
    clusters = drain.get("clusters") or live.get("clusters") or 1
    result["clusters"] = clusters
    to = "influxd" if clusters == 1 else f"{clusters} clusters"
    # influxd's rate falls as its data grows: the baseline is the mean of (a) and (a3) when both ran.
    directs = [ingest[n]["report"]["lines_per_sec"] for n in ("direct", "direct_end") if n in ingest]
    base = sum(directs) / len(directs)
    rows = []
    labels = {"direct": "a. influxd direct (baseline)", "fluxroute": "b. fluxroute ingest",
              "fluxroute_gzip": "c. fluxroute ingest, gzip",
              "fluxroute_half": "f. ingest at half (b)'s rate",
              "relay": "p. influxdb-relay → influxd",
              "proxy": "p2. influx-proxy, acked",
              "direct_gzip": "a2. influxd direct, gzip bodies",
              "direct_end": "a3. influxd direct, at the end"}
    for name, r in ingest.items():
        rep, cpu = r["report"], r["cpu_seconds"]
        mlines = rep["lines_acked"] / 1e6
        per_m = lambda s: s / mlines if mlines else None
        server = {"direct": "influxd", "direct_gzip": "influxd", "direct_end": "influxd",
                  "relay": "relay", "proxy": "proxy"}.get(name, "fluxroute")
        row = {
            "lines_per_sec": rep["lines_per_sec"],
            "p50_ms": rep["latency_ms"]["p50"],
            "p99_ms": rep["latency_ms"]["p99"],
            "ratio_vs_influxd": rep["lines_per_sec"] / base if base else None,
            "lines_acked": rep["lines_acked"],
            "lines_failed": rep["lines_failed"],
            "status_counts": rep["status_counts"],
            "first_error": rep["first_error"],
            "core_seconds_per_million_lines": {k: per_m(v) for k, v in cpu.items()},
            "cpu_seconds": cpu,
            "server_core_seconds_per_million_lines": per_m(cpu[server]),
            "machine_busy_fraction": r["machine_busy_fraction"],
            # The server's own peak RSS (fluxroute's, or the peer's in its row).
            "fluxroute_peak_rss_mb": (r["vm_hwm_kb"][server] / 1024) if server != "influxd" else None,
            "peak_rss_mb": {k: v / 1024 for k, v in r["vm_hwm_kb"].items()},
            "fluxroute_metrics": r["fluxroute_metrics"] if server == "fluxroute" else None,
        }
        rows.append((labels[name], row))
        if "delivered" in r:
            # A peer that acks from memory: the same run, counted when influxd had the lines.
            dl = r["delivered"]
            row["delivered"] = dl
            rows.append(("p2. influx-proxy, delivered", row | {
                "lines_per_sec": dl["lines_per_sec"], "p99_ms": None,
                "ratio_vs_influxd": dl["lines_per_sec"] / base if base else None}))
        ingest[name] = row
    if drain.get("lines_written"):
        row = {
            "lines_per_sec": drain["lines_per_sec"],
            "p50_ms": None,
            "p99_ms": None,
            "ratio_vs_influxd": drain["lines_per_sec"] / base if base else None,
            "backlog_lines": drain["backlog_lines"],
            "lines_written": drain["lines_written"],
            "complete": drain["complete"],
            "elapsed_secs": drain["elapsed_secs"],
            "first_write_after_thaw_s": drain["first_write_after_thaw_s"],
            "lines_failed": None,
            "drain_metrics": drain["drain_metrics"],
        } | delivery_costs(drain)
        rows.append((f"d. drain backlog → {to}", row))
        ingest["drain"] = row
    elif drain:
        ingest["drain"] = drain
    if live.get("lines_written"):
        rep = live["report"] or {}
        row = {
            "lines_per_sec": live["lines_per_sec"],
            "acked_lines_per_sec": rep.get("lines_per_sec"),
            "p50_ms": (rep.get("latency_ms") or {}).get("p50"),
            "p99_ms": (rep.get("latency_ms") or {}).get("p99"),
            "ratio_vs_influxd": live["lines_per_sec"] / base if base else None,
            "lines_written": live["lines_written"],
            "lines_accepted": live["lines_accepted"],
            "complete": live["complete"],
            "elapsed_secs": live["elapsed_secs"],
            "catchup_secs": live["catchup_secs"],
            "lines_failed": rep.get("lines_failed"),
        } | delivery_costs(live)
        rows.append((f"e. live: ingest + drain{'' if clusters == 1 else ' ×' + str(clusters)}", row))
        ingest["live"] = row
    result["ingest"] = ingest
    fmt = lambda v, f: (f % v) if v is not None else "-".rjust(len(f % 0))
    print(f"\nend-to-end ({secs}s per loadgen run; loadgen --batch-size 5000 --connections 4 --hosts 1000;"
          f" {ncpu} cores shared by loadgen and every server)")
    print(f"  {'run':<30} {'lines/s':>10} {'p99 ms':>8} {'vs influxd':>10} {'server':>8}"
          f" {'broker':>7} {'loadgen':>8} {'busy':>5} {'peak RSS':>9} {'failed':>7}")
    print(f"  {'':<30} {'':>10} {'':>8} {'':>10} {'--- core-s per M lines ---':>25} {'':>5} {'MB':>9} {'lines':>7}")
    for label, row in rows:
        c = row["core_seconds_per_million_lines"]
        print(f"  {label:<30} {row['lines_per_sec']:10.0f} {fmt(row['p99_ms'], '%8.1f')}"
              f" {row['ratio_vs_influxd']:9.2f}x {fmt(row['server_core_seconds_per_million_lines'], '%8.3f')}"
              f" {fmt(c.get('broker'), '%7.3f')} {fmt(c.get('loadgen'), '%8.3f')}"
              f" {row['machine_busy_fraction'] * 100:4.0f}% {fmt(row['fluxroute_peak_rss_mb'], '%9.1f')}"
              f" {fmt(row['lines_failed'], '%7d')}")
    print("  server = influxd for (a), fluxroute for the rest; busy = the whole machine's CPU use;")
    print("  peak RSS = fluxroute's VmHWM so far. (b, c): influxd frozen, so the drain is idle and only")
    print("  accepting into the queue is measured; (d): the drain delivering (b)+(c)+(f)'s backlog to influxd;")
    print("  (e): loadgen into fluxroute with the drain delivering at once, lines/s = stored in influxd per")
    print("  second from loadgen's start until the last accepted line was written; p99 = the acks'.")
    print("  (f): loadgen capped at half of (b)'s lines/s (influxd still frozen): ack latency unsaturated.")
    print("  (a2): influxd with gzip bodies, as the drain sends them by default (gzip = true).")
    if clusters > 1:
        print(f"  (d, e) with {clusters} clusters (one influxd each, the same cores): lines/s = stored in each")
        print("  cluster per second; core-s per M lines = per line per cluster (ingest's share halves).")
    if "direct_end" in ingest:
        print("  (a3): influxd direct again after (e); vs influxd = lines/s ÷ the mean of (a) and (a3), as")
        print("  influxd's own rate falls while its data grows over the run.")
    if "relay" in ingest:
        print("  (p): influxdb-relay (built locally) in front of influxd; server = the relay, whose acks")
        print("  follow influxd's (acked = delivered); influxd's own CPU is in the JSON.")
    if "proxy" in ingest:
        dl = ingest["proxy"].get("delivered") or {}
        print("  (p2): influx-proxy (built locally) in front of influxd; it acks from its memory buffer,"
              " so delivered =")
        print(f"  acked lines over the time until influxd had written them all"
              f" ({dl.get('catchup_secs', 0):.1f}s after loadgen ended"
              + ("" if dl.get("complete") else "; NOT all written by the deadline") + ").")
    for name, row in ingest.items():
        if name not in labels:
            continue
        if name not in ("direct", "direct_gzip", "direct_end", "relay", "proxy"):
            infl = row["core_seconds_per_million_lines"].get("influxd") or 0
            if infl > 0.05:
                print(f"  note: influxd used {infl:.2f} core-s/M lines during {name}: something was"
                      " delivering to it concurrently")
        fm = row["fluxroute_metrics"]
        if fm and fm["request_mean_ms"] is not None and fm["enqueue_ok_mean_ms"] is not None:
            print(f"  {name}: fluxroute request mean {fm['request_mean_ms']:.1f} ms, of which waiting"
                  f" for the queue's ack {fm['enqueue_ok_mean_ms']:.1f} ms;"
                  f" broker peak RSS {row['peak_rss_mb']['broker']:.0f} MB")
        if row["lines_failed"]:
            print(f"  WARNING: {name}: {row['lines_failed']} lines failed {row['status_counts']}:"
                  f" {row['first_error']}")
    d = ingest.get("drain")
    if d and "lines_written" in d:
        # Per line per cluster: every influxd's CPU over the lines written to all of them.
        infl = sum(v for k, v in d["core_seconds_per_million_lines"].items() if k.startswith("influxd"))
        print(f"  drain: {d['lines_written']:.0f} of {d['backlog_lines']:.0f} backlog lines in"
              f" {d['elapsed_secs']:.1f}s (first write {d['first_write_after_thaw_s']:.1f}s after influxd"
              f" was thawed), influxd {infl:.2f} core-s/M lines"
              + ("" if clusters == 1 else f"; {d['lines_per_sec'] * clusters:.0f} lines/s into all clusters")
              + ("" if d["complete"] else "; NOT complete: deadline reached"))
    elif d:
        print(f"  drain: not measured ({d.get('skipped', 'no lines were written to influxd')})")
    e = ingest.get("live")
    if e:
        print(f"  live: {e['lines_accepted']:.0f} lines acked at {e['acked_lines_per_sec'] or 0:.0f}/s,"
              f" all written {e['catchup_secs']:.1f}s after loadgen ended"
              + ("" if clusters == 1 else f"; {e['lines_per_sec'] * clusters:.0f} lines/s into all clusters")
              + ("" if e["complete"] else "; NOT complete: deadline reached"))

with open(out_path, "w") as f:
    json.dump(result, f, indent=2)
print(f"\nwritten to {out_path}")
