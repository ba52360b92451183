"""scripts/bench's measurements, one subcommand per kind of row (the report is benches/report.py):

  row REPORT TIME OUT CLK_TCK CPU_JSON RSS_JSON MACHINE_BUSY MACHINE_TOTAL
      summarises one loadgen run (rows a, b, c, f, p): loadgen's report, the servers' CPU and
      peak RSS, fluxroute's own mean request and enqueue times from its metrics before and after.
  criterion DIR STAMP
      criterion's median estimates (written after STAMP) as MB/s, printed as JSON.
  drain URL OUT DEADLINE CLK_TCK NAME=PID...
      row d: thaws the frozen influxd and times the drain delivering the backlog.
  live URL OUT DEADLINE CLK_TCK REPORT NAME=PID... -- LOADGEN COMMAND...
      row e: runs loadgen into fluxroute while the drain delivers, until every line is stored.
  influxd-points URL
      points influxd has written so far (its `write` statistics), printed.
  settle ROW_JSON URL POINTS_BEFORE DEADLINE
      for a peer that acknowledges before influxd has the lines (row p2): waits until influxd has
      written every acknowledged line since POINTS_BEFORE, and adds the delivered rate to the row.
  collect DIR
      the end-to-end rows' JSON files as one JSON document, printed.

Rows d and e read FR_CLUSTERS (the routed clusters' names) from the environment. Processes are
named NAME=PID; names starting with `influxd` are the clusters' servers."""
import json, os, signal, subprocess, sys, time, urllib.request

ACCEPTED = 'fluxroute_ingest_lines_total{outcome="accepted"}'


def parse_metrics(text):
    """Prometheus text exposition as {series: value}."""
    vals = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        k, v = line.rsplit(" ", 1)
        try:
            vals[k] = float(v)
        except ValueError:
            pass
    return vals


def metrics_file(path):
    return parse_metrics(open(path).read()) if os.path.exists(path) else {}


def metrics_url(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return parse_metrics(r.read().decode())


def ticks(pid):
    """User + system clock ticks of a process so far."""
    f = open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()
    return int(f[11]) + int(f[12])


def machine():
    """(busy, total) ticks of the whole machine."""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:9]]
    return sum(f) - f[3] - f[4], sum(f)


def vm_hwm_kb(pid):
    return int([l for l in open(f"/proc/{pid}/status") if l.startswith("VmHWM:")][0].split()[1])


def clusters():
    return os.environ["FR_CLUSTERS"].split()


def written(m, names):
    """Lines written to every cluster together; each accepted line is owed once per cluster."""
    return sum(m.get(f'fluxroute_drain_lines_written_total{{cluster="{c}"}}', 0.0) for c in names)


def last_json_line(path):
    report = None
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            report = json.loads(line)
    return report


def named_pids(args):
    return dict(p.split("=") for p in args)


def row(report_path, time_path, out, clk, cpu, rss_kb, mbusy, mtotal):
    clk = float(clk)
    report = last_json_line(report_path)
    u, s = (float(x) for x in open(time_path).read().split()[-2:])
    # fluxroute's own view of the run: mean time in the queue's enqueue vs the whole request.
    base = report_path[: -len(".report")]
    m0, m1 = metrics_file(base + ".metrics0"), metrics_file(base + ".metrics1")

    def mean_ms(name, labels=""):
        c, s = f"{name}_count{labels}", f"{name}_sum{labels}"
        n = m1.get(c, 0) - m0.get(c, 0)
        return (m1.get(s, 0) - m0.get(s, 0)) / n * 1e3 if n else None

    fr = {
        "requests": m1.get("fluxroute_ingest_request_duration_seconds_count", 0)
        - m0.get("fluxroute_ingest_request_duration_seconds_count", 0),
        "request_mean_ms": mean_ms("fluxroute_ingest_request_duration_seconds"),
        "enqueue_ok_mean_ms": mean_ms("fluxroute_ingest_enqueue_duration_seconds", '{outcome="ok"}'),
    }
    json.dump({
        "report": report,
        "cpu_seconds": {k: v / clk for k, v in json.loads(cpu).items()} | {"loadgen": u + s},
        "vm_hwm_kb": json.loads(rss_kb),
        "fluxroute_metrics": fr,
        "machine_busy_fraction": int(mbusy) / int(mtotal) if int(mtotal) else 0.0,
    }, open(out, "w"))


def criterion(base, stamp):
    stamp = os.path.getmtime(stamp)
    out = {}
    for name in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        new = os.path.join(base, name, "new")
        est, bench = os.path.join(new, "estimates.json"), os.path.join(new, "benchmark.json")
        if not (os.path.exists(est) and os.path.exists(bench)) or os.path.getmtime(est) < stamp:
            continue
        e = json.load(open(est))
        b = json.load(open(bench))
        nbytes = (b.get("throughput") or {}).get("Bytes")
        if not nbytes:
            continue
        med = e["median"]
        mbs = lambda ns: nbytes / (ns * 1e-9) / 1e6
        out[name] = {
            "bytes_per_iter": nbytes,
            "median_ns": med["point_estimate"],
            "mb_per_sec": mbs(med["point_estimate"]),
            # A slower time is a lower rate: the CI's upper time bound gives the lower MB/s bound.
            "mb_per_sec_ci95": [mbs(med["confidence_interval"]["upper_bound"]),
                                mbs(med["confidence_interval"]["lower_bound"])],
        }
    print(json.dumps(out))


def drain(url, out, deadline, clk, *pid_args):
    """Row d: from the first line written to influxd after the thaw until the drain has written
    every accepted line (fluxroute's own counters), or the deadline."""
    deadline, clk = time.monotonic() + float(deadline), float(clk)
    pids, names = named_pids(pid_args), clusters()

    def thaw():
        for k, p in pids.items():
            if k.startswith("influxd"):
                os.kill(int(p), signal.SIGCONT)

    m = metrics_url(url)
    if not any(k.startswith("fluxroute_drain") for k in m):
        thaw()
        json.dump({"skipped": "this fluxroute has no drain metrics"}, open(out, "w"))
        return
    target, w0 = m[ACCEPTED] * len(names), written(m, names)
    t_thaw = time.monotonic()
    thaw()
    start = None  # (time, written, ticks, machine) at the last poll before progress
    prev = (t_thaw, w0, {k: ticks(p) for k, p in pids.items()}, machine())
    done = False
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now, m = time.monotonic(), metrics_url(url)
        w = written(m, names)
        snap = (now, w, {k: ticks(p) for k, p in pids.items()}, machine())
        if start is None and w > w0:
            start = prev  # nothing was being written yet at that poll
        prev = snap
        if w >= target:
            done = True
            break
    end = prev
    res = {"clusters": len(names), "backlog_lines": target - w0, "complete": done,
           "first_write_after_thaw_s": (start[0] - t_thaw) if start else None}
    if start:
        secs = end[0] - start[0]
        lines = end[1] - start[1]
        res.update({
            # lines/s stored in each cluster (lines_written counts every cluster's).
            "lines_written": lines, "elapsed_secs": secs,
            "lines_per_sec": lines / secs / len(names) if secs else 0,
            "cpu_seconds": {k: (end[2][k] - start[2][k]) / clk for k in pids},
            "machine_busy_fraction": (end[3][0] - start[3][0]) / max(1, end[3][1] - start[3][1]),
        })
    res["drain_metrics"] = {k: v for k, v in m.items() if k.startswith("fluxroute_drain")
                            and "_bucket" not in k}
    res["vm_hwm_kb"] = {k: vm_hwm_kb(p) for k, p in pids.items()}
    json.dump(res, open(out, "w"))


def live(url, out, deadline, clk, report, *rest):
    """Row e: lines written to influxd from loadgen's start until the drain has written every
    line accepted, per second: what clients get stored per second through fluxroute."""
    sep = rest.index("--")
    pids, cmd = named_pids(rest[:sep]), list(rest[sep + 1:])
    deadline, clk, names = float(deadline), float(clk), clusters()
    m0 = metrics_url(url)
    w0, a0 = written(m0, names), m0.get(ACCEPTED, 0.0)
    t0, k0, mc0 = time.monotonic(), {k: ticks(p) for k, p in pids.items()}, machine()
    with open(report, "w") as rep:
        lg = subprocess.run(cmd, stdout=rep, stderr=subprocess.DEVNULL, timeout=deadline)
    t_load = time.monotonic()
    target = metrics_url(url)[ACCEPTED] * len(names)
    done = False
    while time.monotonic() < t_load + deadline:
        m = metrics_url(url)
        if written(m, names) >= target:
            done = True
            break
        time.sleep(0.1)
    t1, k1, mc1 = time.monotonic(), {k: ticks(p) for k, p in pids.items()}, machine()
    lines = written(m, names) - w0
    json.dump({
        "complete": done, "loadgen_exit": lg.returncode, "report": last_json_line(report),
        "clusters": len(names),
        "lines_accepted": target / len(names) - a0, "lines_written": lines,
        "load_secs": t_load - t0, "elapsed_secs": t1 - t0, "catchup_secs": t1 - t_load,
        "lines_per_sec": lines / (t1 - t0) / len(names),
        "cpu_seconds": {k: (k1[k] - k0[k]) / clk for k in pids},
        "machine_busy_fraction": (mc1[0] - mc0[0]) / max(1, mc1[1] - mc0[1]),
        "vm_hwm_kb": {k: vm_hwm_kb(p) for k, p in pids.items()},
    }, open(out, "w"))


def influxd_points(url):
    """influxd's count of points written (`pointReq` of its `write` statistics)."""
    with urllib.request.urlopen(f"{url}/debug/vars", timeout=5) as r:
        return int(json.load(r)["write"]["values"].get("pointReq", 0))


def settle(row_json, url, before, deadline):
    """Delivered lines/s of a peer that acknowledges from memory: lines acknowledged over the
    time from loadgen's start until influxd has written them all (or the deadline)."""
    row_data = json.load(open(row_json))
    acked = row_data["report"]["lines_acked"]
    t_end = time.monotonic()
    deadline = t_end + float(deadline)
    while True:
        written_now = influxd_points(url) - int(before)
        if written_now >= acked or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    after = time.monotonic() - t_end
    secs = row_data["report"]["elapsed_secs"] + after
    row_data["delivered"] = {
        "lines_written": written_now, "complete": written_now >= acked,
        "catchup_secs": after, "lines_per_sec": min(written_now, acked) / secs,
    }
    json.dump(row_data, open(row_json, "w"))


def collect(d):
    rows = ("direct", "direct_gzip", "direct_end", "relay", "proxy", "fluxroute",
            "fluxroute_gzip", "fluxroute_half")
    r = {n: json.load(open(f"{d}/{n}.json")) for n in rows if os.path.exists(f"{d}/{n}.json")}
    r["drain"] = json.load(open(f"{d}/drain.json"))
    r["live"] = json.load(open(f"{d}/live.json"))
    print(json.dumps(r))


if __name__ == "__main__":
    commands = {"row": row, "criterion": criterion, "drain": drain, "live": live,
                "influxd-points": lambda url: print(influxd_points(url)), "settle": settle,
                "collect": collect}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(commands)}}} ARGS... (see the docstring)")
    commands[sys.argv[1]](*sys.argv[2:])
