#!/usr/bin/env python3
"""Iris benchmark: Iris with its lookup index vs plain DataFusion (same binary, --no-index) vs DuckDB, all over
the same sealed Parquet files, first in the daily layout, then after compaction. Also bulk import, HTTP ingest
with durable acknowledgement under concurrent collectors, two full-scan aggregates and verify throughput.
Writes benches/RESULTS.md. See benches/README.md."""

import argparse, http.client, json, os, platform, random, re, subprocess, sys, threading, time, urllib.parse
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(args, **kw):
    r = subprocess.run(args, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stderr}")
    return r


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


class Server:
    """`iris serve` on a free port; killed on exit."""

    def __init__(self, iris, data, *extra, env=None):
        self.p = subprocess.Popen([iris, "--data", str(data), "serve", "--listen", "127.0.0.1:0", *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  env={**os.environ, **(env or {})})
        for line in self.p.stdout:
            m = re.match(r"Iris listening on http://(\S+)", line)
            if m:
                self.addr = m.group(1)
                return
        sys.exit("the server did not start")

    def conn(self):
        host, port = self.addr.split(":")
        return http.client.HTTPConnection(host, int(port), timeout=600)

    def stop(self):
        self.p.terminate()
        self.p.wait()


def get_json(conn, path, token):
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"GET {path}: {r.status} {body[:300]!r}")
    return json.loads(body)


def timed(f, keys):
    times = []
    for k in keys:
        t = time.perf_counter()
        f(k)
        times.append((time.perf_counter() - t) * 1000)
    return pct(times, 50), pct(times, 99)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000, help="events to generate (100M for the full run)")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--keys", type=int, default=200, help="random keys per trace kind (Iris and DuckDB warm)")
    ap.add_argument("--peer-keys", type=int, default=30, help="keys for the slow paths (plain DataFusion, cold runs)")
    ap.add_argument("--ingest-events", type=int, default=1_000_000, help="events pushed over HTTP")
    ap.add_argument("--work", default="/tmp/iris-bench", help="scratch directory")
    ap.add_argument("--iris", default=None, help="iris binary (default: build --release)")
    a = ap.parse_args()
    command = "python3 benches/trace_bench.py " + " ".join(sys.argv[1:])

    try:
        import duckdb  # noqa: F401
    except ImportError:
        log("installing duckdb (the peer) with pip")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "duckdb"], check=True)
    import duckdb

    iris = a.iris
    if iris is None:
        log("building iris --release")
        subprocess.run(["cargo", "build", "--release", "--bin", "iris"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        iris = str(Path(target) / "release" / "iris")
    work = Path(a.work)
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    data = work / "data"
    store = data / "store"
    events = work / "events.jsonl"
    figures = []  # (measure, value, unit)
    rows = []  # (layout, query, engine, p50, p99)

    log(f"generating {a.events:,} events over {a.days} days")
    sh([iris, "gen", "--events", str(a.events), "--seed", "42", "--days", str(a.days), "--from", "2025-01-01",
        "--out", str(events)])
    sh([iris, "--data", str(data), "keygen"])
    log("importing")
    t = time.perf_counter()
    sh([iris, "--data", str(data), "import", "--format", "jsonl", str(events)])
    figures.append(("bulk import (JSON lines → sealed, indexed Parquet)", a.events / (time.perf_counter() - t), "events/s"))

    def sizes():
        pq = sum(p.stat().st_size for d in ("events", "compacted") for p in (store / d).rglob("*.parquet"))
        ix = sum(p.stat().st_size for p in (store / "index").rglob("*.tantivy"))
        files = sum(1 for d in ("events", "compacted") for _ in (store / d).rglob("*.parquet"))
        return pq, ix, files

    rng = random.Random(7)
    keys = {"subject": [], "actor": [], "ticket": []}
    counts = {"subject": defaultdict(int), "actor": defaultdict(int)}
    pattern = {k: re.compile(rf'"{column}":"([^"]*)"') for k, column in
               (("subject", "subject_id"), ("actor", "actor_id"))}
    with open(events) as f:
        # Reservoir sample of events, so keys come from the whole year.
        sample = []
        for i, line in enumerate(f):
            for k, pat in pattern.items():
                m = pat.search(line)
                if m:
                    counts[k][m.group(1)] += 1
            if len(sample) < 3 * a.keys:
                sample.append(line)
            else:
                j = rng.randrange(i + 1)
                if j < len(sample):
                    sample[j] = line
    sample = [json.loads(l) for l in sample]
    rng.shuffle(sample)
    keys["subject"] = [e["subject_id"] for e in sample[: a.keys]]
    keys["actor"] = [e["actor_id"] for e in sample[a.keys: 2 * a.keys]]
    keys["ticket"] = [e["ticket"] for e in sample[2 * a.keys:]]
    column = {"subject": "subject_id", "actor": "actor_id", "ticket": "ticket"}
    # The heaviest subject and actor (the Zipf head): their first page must come as fast as a rare key's.
    heavy = {k: max(c.items(), key=lambda kv: kv[1]) for k, c in counts.items() if c}
    for k, (key, n) in heavy.items():
        figures.append((f"heaviest {k}: events", n, ""))
    admin = sh([iris, "--data", str(data), "token", "--role", "admin"]).stdout.strip()

    def measure(layout, duck_table):
        pq, ix, files = sizes()
        figures.append((f"{layout}: Parquet files", files, ""))
        figures.append((f"{layout}: bytes/event on disk (Parquet)", pq / a.events, "B"))
        figures.append((f"{layout}: bytes/event (lookup index)", ix / a.events, "B"))
        con = duckdb.connect()
        # One server at a time: a data directory has one writer (the server holds its lock).
        for label, extra, env, n in [
                ("Iris + index (warm server, HTTP)", [], {}, a.keys),
                ("Iris + index through the DataFusion plan (previous path, warm server, HTTP)", [],
                 {"IRIS_TRACE_DIRECT": "0"}, a.peer_keys),
                ("plain DataFusion, no index (warm server, HTTP)", ["--no-index"], {}, a.peer_keys)]:
            server = Server(iris, data, *extra, env=env)
            try:
                conn = server.conn()
                for kind, ks in keys.items():
                    log(f"{layout}: trace by {kind}: {label}")

                    def via(k, kind=kind):
                        return get_json(conn, f"/v1/trace?{kind}={urllib.parse.quote(k)}&limit=10000", admin)

                    via(ks[0])  # the first query reads the chain's manifest; then warm
                    p50, p99 = timed(via, ks[:n])
                    rows.append((layout, f"trace by {kind}", label, p50, p99))
                for kind, (key, count) in heavy.items():
                    for size in (100, 10000):
                        log(f"{layout}: heaviest {kind}, first {size}: {label}")

                        def page(_, kind=kind, key=key, size=size):
                            return get_json(conn, f"/v1/trace?{kind}={urllib.parse.quote(key)}&limit={size}", admin)

                        page(0)
                        p50, p99 = timed(page, range(10))
                        rows.append((layout, f"heaviest {kind} ({count:,} events), first {size:,}", label, p50, p99))
            finally:
                server.stop()
        for kind, (key, count) in heavy.items():
            for size in (100, 10000):
                q = f"SELECT * FROM {duck_table} WHERE {column[kind]} = ? ORDER BY ts LIMIT {size}"
                con.execute(q, [key]).fetchall()
                p50, p99 = timed(lambda _: con.execute(q, [key]).fetchall(), range(10))
                rows.append((layout, f"heaviest {kind} ({count:,} events), first {size:,}",
                             "DuckDB (warm, in-process)", p50, p99))
        for kind, ks in keys.items():
            log(f"{layout}: trace by {kind}: DuckDB and cold runs")
            q = f"SELECT * FROM {duck_table} WHERE {column[kind]} = ? ORDER BY ts"
            con.execute(q, [ks[0]]).fetchall()
            p50, p99 = timed(lambda k: con.execute(q, [k]).fetchall(), ks)
            rows.append((layout, f"trace by {kind}", "DuckDB (warm, in-process)", p50, p99))
            for label, extra in [("Iris + index (cold: new process)", []),
                                 ("plain DataFusion (cold: new process)", ["--no-index"])]:
                p50, p99 = timed(lambda k: sh([iris, "--data", str(data), "trace", f"--{kind}", k, "--format", "csv",
                                               "--limit", "10000", *extra]), ks[: a.peer_keys])
                rows.append((layout, f"trace by {kind}", label, p50, p99))

            def duck_cold(k):
                c = duckdb.connect()
                c.execute(q, [k]).fetchall()
                c.close()

            p50, p99 = timed(duck_cold, ks[: a.peer_keys])
            rows.append((layout, f"trace by {kind}", "DuckDB (cold: new connection)", p50, p99))
        aggs = {
            "events per institution per month": "SELECT actor_org, date_trunc('month', ts) AS m, count(*) FROM {t} GROUP BY 1, 2",
            "NOK rate per message type": "SELECT message_type, avg(CASE WHEN result = 'nok' THEN 1.0 ELSE 0.0 END) FROM {t} GROUP BY 1",
        }
        for name, q in aggs.items():
            log(f"{layout}: {name}")
            t = time.perf_counter()
            sh([iris, "--data", str(data), "sql", q.format(t="events"), "--format", "csv"])
            rows.append((layout, name, "Iris (new process)", (time.perf_counter() - t) * 1000, None))
            t = time.perf_counter()
            con.execute(q.format(t=duck_table)).fetchall()
            rows.append((layout, name, "DuckDB (in-process)", (time.perf_counter() - t) * 1000, None))

    measure("daily", f"read_parquet('{store}/events/*/*/*.parquet', hive_partitioning=true)")

    log("compacting")
    months = sorted({f"{d.year:04}-{d.month:02}" for d in
                     (date.fromordinal(date(2025, 1, 1).toordinal() + i) for i in range(a.days))})
    t = time.perf_counter()
    sh([iris, "--data", str(data), "compact", *sum([["--month", m] for m in months], [])])
    figures.append(("compaction (daily → monthly sorted files)", a.events / (time.perf_counter() - t), "events/s"))
    measure("compacted", f"read_parquet('{store}/compacted/*/*/*.parquet', hive_partitioning=false)")

    log("verify")
    v = subprocess.run([iris, "--data", str(data), "verify"], capture_output=True, text=True)
    m = re.search(r"\(([\d.]+) MB/s\)", v.stdout + v.stderr)
    figures.append(("verify (hash every live file, check every seal)", float(m.group(1)) if m else float("nan"), "MB/s"))

    ingest(iris, work, events, a.ingest_events, figures)

    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"
    out = ["# Benchmark results", "",
           f"Command: `{command}` (release build). Machine: {machine}. "
           f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
           f"{a.events:,} events over {a.days} days; traces over {a.keys} random keys per kind "
           f"({a.peer_keys} for plain DataFusion and the cold runs). Times in milliseconds.", "",
           "| measure | value | unit |", "|---|---:|---|"]
    for k, val, unit in figures:
        out.append(f"| {k} | {val:,.1f} | {unit} |")
    out += ["", "| layout | query | engine | p50 ms | p99 ms |", "|---|---|---|---:|---:|"]
    for layout, q, eng, p50, p99 in rows:
        out.append(f"| {layout} | {q} | {eng} | {p50:,.1f} | {'' if p99 is None else f'{p99:,.1f}'} |")
    # Ratios against DuckDB in the same run.
    out += ["", "Ratios (DuckDB time / Iris time, same run, same files; > 1 means Iris is faster):", ""]
    by = {(l, q, e): (p50, p99) for l, q, e, p50, p99 in rows}
    for layout in ("daily", "compacted"):
        for kind in keys:
            q = f"trace by {kind}"
            i = by.get((layout, q, "Iris + index (warm server, HTTP)"))
            d = by.get((layout, q, "DuckDB (warm, in-process)"))
            if i and d:
                out.append(f"- {layout}, {q}, warm: p50 {d[0] / i[0]:.1f}×, p99 {d[1] / i[1]:.1f}×")
        for q in sorted({q for l, q, _ in by if l == layout and q.startswith("heaviest")}):
            i = by.get((layout, q, "Iris + index (warm server, HTTP)"))
            d = by.get((layout, q, "DuckDB (warm, in-process)"))
            if i and d:
                out.append(f"- {layout}, {q}, warm: p50 {d[0] / i[0]:.1f}×, p99 {d[1] / i[1]:.1f}×")
        for name in ("events per institution per month", "NOK rate per message type"):
            i = by.get((layout, name, "Iris (new process)"))
            d = by.get((layout, name, "DuckDB (in-process)"))
            if i and d:
                out.append(f"- {layout}, {name}: {d[0] / i[0]:.2f}× (Iris includes process start)")
    results = ROOT / "benches" / "RESULTS.md"
    # Keep the Criterion figures (`## Hot paths`, from `cargo bench --bench hot_paths`) of the last run.
    kept = ""
    if results.exists():
        old = results.read_text()
        if "\n## Hot paths" in old:
            kept = old[old.index("\n## Hot paths"):]
    results.write_text("\n".join(out) + "\n" + kept)
    print("\n".join(out))


def ingest(iris, work, events, n, figures):
    """HTTP ingest: one collector per source, batches of 1,000 events, each acknowledged once durable."""
    log(f"HTTP ingest of {n:,} events")
    data = work / "ingest"
    sh([iris, "--data", str(data), "keygen"])
    per_source = defaultdict(list)
    with open(events) as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            per_source[json.loads(line)["source"]].append(line)
    tokens = {s: sh([iris, "--data", str(data), "token", "--role", "collector", "--source", s]).stdout.strip()
              for s in per_source}
    server = Server(iris, data)
    lat = []
    lock = threading.Lock()

    def collector(source):
        conn = server.conn()
        lines = per_source[source]
        mine = []
        for b in range(0, len(lines), 1000):
            body = "".join(lines[b:b + 1000]).encode()
            t = time.perf_counter()
            conn.request("POST", "/v1/events", body=body, headers={"Authorization": f"Bearer {tokens[source]}"})
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                sys.exit(f"ingest: {r.status}")
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=collector, args=(s,)) for s in per_source]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    took = time.perf_counter() - t
    server.stop()
    figures.append((f"HTTP ingest, {len(threads)} concurrent collectors, batches of 1,000, durable ack", n / took, "events/s"))
    figures.append(("HTTP ingest ack latency p50 (per batch)", pct(lat, 50), "ms"))
    figures.append(("HTTP ingest ack latency p99 (per batch)", pct(lat, 99), "ms"))


if __name__ == "__main__":
    main()
