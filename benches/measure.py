"""scripts/bench's measurements, one subcommand per kind of row (the report is benches/report.py):

  row BASE DEADLINE ADMIN_URL NAME=PID... -- LOADGEN COMMAND...
      one loadgen run (rows a, b, c, f, p, p2), bounded by DEADLINE seconds: loadgen's report
      (BASE.report), the servers' CPU and peak RSS, loadgen's own CPU, the machine's use and, with
      ADMIN_URL (fluxroute's metrics; may be empty), fluxroute's mean request and enqueue times;
      written to BASE.json. Exits 1 when loadgen failed (it exits 1 itself when only some
      requests failed: the report counts them).
  criterion DIR STAMP
      criterion's median estimates (written after STAMP) as MB/s, printed as JSON.
  drain URL OUT DEADLINE NAME=PID...
      row d: thaws the frozen influxd and times the drain delivering the backlog.
  live URL OUT DEADLINE REPORT NAME=PID... -- LOADGEN COMMAND...
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
import json, os, resource, signal, subprocess, sys, time, urllib.request

ACCEPTED = 'fluxroute_ingest_lines_total{outcome="accepted"}'
CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def cpu_ticks(pids):
    """{name: ticks so far} of named processes."""
    return {k: ticks(p) for k, p in pids.items()}


def cpu_seconds(before, after):
    return {k: (after[k] - before[k]) / CLK_TCK for k in before}


def vm_hwm_kb(pids):
    """{name: peak RSS in kB} of named processes."""
    return {k: int([l for l in open(f"/proc/{p}/status") if l.startswith("VmHWM:")][0].split()[1])
            for k, p in pids.items()}


def busy_fraction(before, after):
    """The machine's CPU use between two machine() readings."""
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def split_command(args):
    """NAME=PID... -- COMMAND... as ({name: pid}, command)."""
    sep = args.index("--")
    return named_pids(args[:sep]), list(args[sep + 1:])


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


def row(base, deadline, admin_url, *rest):
    pids, cmd = split_command(rest)
    report_path = base + ".report"
    m0 = metrics_url(admin_url) if admin_url else {}
    k0, mc0 = cpu_ticks(pids), machine()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(report_path, "w") as out, open(base + ".loadgen.log", "w") as err:
        try:
            rc = subprocess.run(cmd, stdout=out, stderr=err, timeout=float(deadline)).returncode
        except subprocess.TimeoutExpired:
            rc = "timed out"
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    k1, mc1 = cpu_ticks(pids), machine()
    m1 = metrics_url(admin_url) if admin_url else {}
    report = last_json_line(report_path)
    if rc not in (0, 1) or report is None or "lines_acked" not in report:
        sys.stderr.write(open(base + ".loadgen.log").read())
        sys.exit(f"loadgen exited: {rc}")

    # fluxroute's own view of the run: mean time in the queue's enqueue vs the whole request.
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
    loadgen_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    json.dump({
        "report": report,
        "cpu_seconds": cpu_seconds(k0, k1) | {"loadgen": loadgen_cpu},
        "vm_hwm_kb": vm_hwm_kb(pids),
        "fluxroute_metrics": fr,
        "machine_busy_fraction": busy_fraction(mc0, mc1),
    }, open(base + ".json", "w"))


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


def drain(url, out, deadline, *pid_args):
    """Row d: from the first line written to influxd after the thaw until the drain has written
    every accepted line (fluxroute's own counters), or the deadline."""
    deadline = time.monotonic() + float(deadline)
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
    prev = (t_thaw, w0, cpu_ticks(pids), machine())
    done = False
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now, m = time.monotonic(), metrics_url(url)
        w = written(m, names)
        snap = (now, w, cpu_ticks(pids), machine())
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
            "cpu_seconds": cpu_seconds(start[2], end[2]),
            "machine_busy_fraction": busy_fraction(start[3], end[3]),
        })
    res["drain_metrics"] = {k: v for k, v in m.items() if k.startswith("fluxroute_drain")
                            and "_bucket" not in k}
    res["vm_hwm_kb"] = vm_hwm_kb(pids)
    json.dump(res, open(out, "w"))


def live(url, out, deadline, report, *rest):
    """Row e: lines written to influxd from loadgen's start until the drain has written every
    line accepted, per second: what clients get stored per second through fluxroute."""
    pids, cmd = split_command(rest)
    deadline, names = float(deadline), clusters()
    m0 = metrics_url(url)
    w0, a0 = written(m0, names), m0.get(ACCEPTED, 0.0)
    t0, k0, mc0 = time.monotonic(), cpu_ticks(pids), machine()
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
    t1, k1, mc1 = time.monotonic(), cpu_ticks(pids), machine()
    lines = written(m, names) - w0
    json.dump({
        "complete": done, "loadgen_exit": lg.returncode, "report": last_json_line(report),
        "clusters": len(names),
        "lines_accepted": target / len(names) - a0, "lines_written": lines,
        "load_secs": t_load - t0, "elapsed_secs": t1 - t0, "catchup_secs": t1 - t_load,
        "lines_per_sec": lines / (t1 - t0) / len(names),
        "cpu_seconds": cpu_seconds(k0, k1),
        "machine_busy_fraction": busy_fraction(mc0, mc1),
        "vm_hwm_kb": vm_hwm_kb(pids),
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
