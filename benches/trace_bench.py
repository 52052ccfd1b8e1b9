#!/usr/bin/env python3
"""Iris trace benchmark: Iris with its lookup index vs plain DataFusion (same binary, --no-index) vs DuckDB,
all over the same sealed Parquet files. Writes benches/RESULTS.md. See benches/README.md."""

import argparse, json, os, random, re, statistics, subprocess, sys, time, urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(args, **kw):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2_000_000, help="events to generate (100M for the full run)")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--keys", type=int, default=200, help="random keys per trace kind")
    ap.add_argument("--work", default="/tmp/iris-bench", help="scratch directory")
    ap.add_argument("--iris", default=None, help="iris binary (default: build --release)")
    a = ap.parse_args()

    try:
        import duckdb  # noqa: F401
    except ImportError:
        print("installing duckdb (the peer) with pip", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "duckdb"], check=True)
    import duckdb

    iris = a.iris
    if iris is None:
        print("building iris --release", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "--bin", "iris"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
        iris = str(Path(target) / "release" / "iris")
    work = Path(a.work)
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    data = work / "data"
    events = work / "events.jsonl"
    results = {}

    sh([iris, "gen", "--events", str(a.events), "--seed", "42", "--days", str(a.days), "--from", "2025-01-01", "--out", str(events)])
    sh([iris, "--data", str(data), "keygen"])
    t = time.perf_counter()
    sh([iris, "--data", str(data), "import", "--format", "jsonl", str(events)])
    results["import events/s"] = a.events / (time.perf_counter() - t)
    parts = list((data / "store" / "events").rglob("*.parquet"))
    size = sum(p.stat().st_size for p in parts)
    idx = sum(p.stat().st_size for p in (data / "store" / "index").rglob("*.tantivy"))
    results["bytes/event (parquet)"] = size / a.events
    results["bytes/event (index)"] = idx / a.events

    rng = random.Random(7)
    lines = events.read_text().splitlines()
    sample = [json.loads(l) for l in rng.sample(lines, min(len(lines), a.keys * 3))]
    keys = {
        "subject": [e["subject_id"] for e in sample[: a.keys]],
        "actor": [e["actor_id"] for e in sample[a.keys : 2 * a.keys]],
        "ticket": [e["ticket"] for e in sample[2 * a.keys :]],
    }
    column = {"subject": "subject_id", "actor": "actor_id", "ticket": "ticket"}

    # Warm Iris: one server, indexes cached after first use.
    admin = sh([iris, "--data", str(data), "token", "--role", "admin"]).stdout.strip()
    server = subprocess.Popen([iris, "--data", str(data), "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
    url = None
    for line in server.stdout:
        m = re.match(r"Iris listening on (\S+)", line)
        if m:
            url = m.group(1)
            break
    glob = str(data / "store" / "events" / "**" / "*.parquet")
    con = duckdb.connect()
    rows = []
    try:
        for kind, ks in keys.items():
            for label in ["iris index (warm, HTTP)", "duckdb (warm, in-process)"]:
                times = []
                for k in ks:
                    t = time.perf_counter()
                    if label.startswith("iris"):
                        req = urllib.request.Request(f"{url}/v1/trace?{kind}={k}&limit=10000", headers={"Authorization": f"Bearer {admin}"})
                        json.load(urllib.request.urlopen(req))
                    else:
                        con.execute(f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true) WHERE {column[kind]} = ? ORDER BY ts", [k]).fetchall()
                    times.append((time.perf_counter() - t) * 1000)
                rows.append((f"trace by {kind}", label, pct(times, 50), pct(times, 99)))
            # Cold: a fresh process per query, with and without the index (fewer keys: process start dominates).
            for label, extra in [("iris index (cold, process)", []), ("plain DataFusion (cold, process)", ["--no-index"])]:
                times = []
                for k in ks[:20]:
                    t = time.perf_counter()
                    sh([iris, "--data", str(data), "trace", f"--{kind}", k, "--format", "csv"] + extra)
                    times.append((time.perf_counter() - t) * 1000)
                rows.append((f"trace by {kind}", label, pct(times, 50), pct(times, 99)))
            times = []
            for k in ks[:20]:
                t = time.perf_counter()
                c = duckdb.connect()
                c.execute(f"SELECT * FROM read_parquet('{glob}', hive_partitioning=true) WHERE {column[kind]} = ? ORDER BY ts", [k]).fetchall()
                c.close()
                times.append((time.perf_counter() - t) * 1000)
            rows.append((f"trace by {kind}", "duckdb (cold, new connection)", pct(times, 50), pct(times, 99)))
    finally:
        server.terminate()

    aggs = {
        "events per institution per month": "SELECT actor_org, date_trunc('month', ts) AS m, count(*) FROM {t} GROUP BY 1, 2",
        "NOK rate per message type": "SELECT message_type, avg(CASE WHEN result = 'nok' THEN 1.0 ELSE 0.0 END) FROM {t} GROUP BY 1",
    }
    for name, q in aggs.items():
        t = time.perf_counter()
        sh([iris, "--data", str(data), "sql", q.format(t="events"), "--format", "csv"])
        rows.append((name, "iris (process)", (time.perf_counter() - t) * 1000, None))
        t = time.perf_counter()
        con.execute(q.format(t=f"read_parquet('{glob}', hive_partitioning=true)")).fetchall()
        rows.append((name, "duckdb (in-process)", (time.perf_counter() - t) * 1000, None))

    v = subprocess.run([iris, "--data", str(data), "verify"], capture_output=True, text=True)
    m = re.search(r"\(([\d.]+) MB/s\)", v.stdout + v.stderr)
    results["verify MB/s"] = float(m.group(1)) if m else float("nan")

    cmd = f"python3 benches/trace_bench.py --events {a.events} --days {a.days} --keys {a.keys}"
    out = [f"# Benchmark results\n", f"Command: `{cmd}` (release build, {os.cpu_count()} cores).\n",
           f"{a.events:,} events over {a.days} days, {len(parts)} partitions.\n", "| measure | value |", "|---|---|"]
    for k, val in results.items():
        out.append(f"| {k} | {val:,.1f} |")
    out += ["", "| query | engine | p50 ms | p99 ms |", "|---|---|---|---|"]
    for q, eng, p50, p99 in rows:
        out.append(f"| {q} | {eng} | {p50:,.1f} | {'' if p99 is None else f'{p99:,.1f}'} |")
    (ROOT / "benches" / "RESULTS.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
