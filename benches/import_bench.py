#!/usr/bin/env python3
"""Bulk import and storage size: Iris vs DuckDB on the same JSON-lines file, in one run.

    python3 benches/import_bench.py [--events 5000000] [--days 365] [--iris PATH] [--results]

Generates N events (`iris gen`, fixed seed), then
1. imports them with `iris import` (validated, sealed, indexed Parquet) and converts the same file with
   DuckDB (`COPY (SELECT * FROM read_json(...)) TO '….parquet'`): events/s, CPU seconds, peak RSS of both,
   and the ratio;
2. bytes per event of the daily layout (Parquet + lookup index), per column from the Parquet footers and
   per index blob;
3. compacts every month and measures the compacted layout the same way.
`--results` appends the figures and the command to benches/RESULTS.md.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def timed_run(args):
    """Runs a command; returns (wall s, CPU s, peak RSS MB) of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of children is the largest child so far (KiB): run the biggest last or read /usr/bin/time.
    return wall, cpu, after.ru_maxrss / 1024


def peak_rss(args):
    """Peak RSS (MB) of one run, from GNU time when present."""
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *args], check=True, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    return int(out.stderr.strip().splitlines()[-1]) / 1024


def layout_sizes(store, kind):
    """(rows, parquet bytes, index bytes, per-column compressed bytes) of the live files of a layout."""
    import pyarrow.parquet as pq
    root = store / ("events" if kind == "daily" else "compacted")
    rows, data, cols = 0, 0, defaultdict(int)
    files = list(root.rglob("*.parquet"))
    for p in files:
        data += p.stat().st_size
        md = pq.ParquetFile(p).metadata
        rows += md.num_rows
        for g in range(md.num_row_groups):
            rg = md.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                cols[col.path_in_schema] += col.total_compressed_size
        cols["(footer and page index)"] += p.stat().st_size - sum(
            md.row_group(g).column(c).total_compressed_size
            for g in range(md.num_row_groups) for c in range(md.row_group(g).num_columns))
    ix_root = store / "index" / ("compacted" if kind == "compacted" else "")
    index = sum(p.stat().st_size for p in ix_root.rglob("*.tantivy")
                if (kind == "compacted") == ("/compacted/" in str(p)))
    return rows, data, index, cols, len(files)


def index_by_file(store, kind):
    """Bytes of the lookup indexes by tantivy file extension (term dictionaries, postings, …)."""
    by = defaultdict(int)
    for p in (store / "index").rglob("*.tantivy"):
        if (kind == "compacted") != ("/compacted/" in str(p)):
            continue
        b = p.read_bytes()
        n = int.from_bytes(b[8:12], "little")
        head = json.loads(b[12:12 + n])
        for name, size in head["files"]:
            by[name.rsplit(".", 1)[-1]] += size
        by["(blob header)"] += 12 + n
    return by


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--iris", default="/work/target/release/iris")
    ap.add_argument("--work", default="/tmp/iris-import-bench")
    ap.add_argument("--no-compact", action="store_true")
    ap.add_argument("--results", action="store_true", help="append to benches/RESULTS.md")
    a = ap.parse_args()
    import duckdb

    iris, work = a.iris, Path(a.work)
    subprocess.run(["rm", "-rf", str(work)], check=True)
    work.mkdir(parents=True)
    events, data = work / "events.jsonl", work / "data"
    store = data / "store"
    log(f"generating {a.events:,} events over {a.days} days")
    subprocess.run([iris, "gen", "--events", str(a.events), "--seed", "42", "--days", str(a.days),
                    "--from", "2025-01-01", "--out", str(events)], check=True)
    size = events.stat().st_size
    # Both readers start from a warm page cache.
    subprocess.run(["cat", str(events)], stdout=subprocess.DEVNULL, check=True)

    log("DuckDB: read_json → Parquet")
    con = duckdb.connect()
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    con.execute(f"COPY (SELECT * FROM read_json('{events}', format='newline_delimited')) "
                f"TO '{work / 'duck.parquet'}' (FORMAT parquet)")
    duck_wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    duck_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    duck_rss = r1.ru_maxrss / 1024
    duck_bytes = (work / "duck.parquet").stat().st_size
    con.close()

    log("Iris: import")
    subprocess.run([iris, "--data", str(data), "keygen"], check=True, stdout=subprocess.DEVNULL)
    iris_wall, iris_cpu, _ = timed_run([iris, "--data", str(data), "import", "--format", "jsonl", str(events)])
    iris_rss = None
    if Path("/usr/bin/time").exists():
        # Peak RSS from a second import of the same file into a fresh directory (GNU time).
        data2 = work / "data-rss"
        subprocess.run([iris, "--data", str(data2), "keygen"], check=True, stdout=subprocess.DEVNULL)
        iris_rss = peak_rss([iris, "--data", str(data2), "import", "--format", "jsonl", str(events)])
        subprocess.run(["rm", "-rf", str(data2)], check=True)

    layouts = {"daily": (layout_sizes(store, "daily"), index_by_file(store, "daily"))}
    if not a.no_compact:
        log("compacting")
        months = sorted({(date(2025, 1, 1).toordinal() + i) for i in range(a.days)})
        months = sorted({f"{date.fromordinal(d).year:04}-{date.fromordinal(d).month:02}" for d in months})
        t = time.perf_counter()
        subprocess.run([iris, "--data", str(data), "compact", *sum([["--month", m] for m in months], [])],
                       check=True, stdout=subprocess.DEVNULL)
        compact_rate = a.events / (time.perf_counter() - t)
        layouts["compacted"] = (layout_sizes(store, "compacted"), index_by_file(store, "compacted"))

    iris_rate, duck_rate = a.events / iris_wall, a.events / duck_wall
    cmd = "python3 benches/import_bench.py " + " ".join(sys.argv[1:])
    lines = [
        f"## Bulk import and storage, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"`{cmd}` — {a.events:,} events over {a.days} days ({size / 1e6:,.0f} MB of JSON lines), "
        f"{os.cpu_count()} cores, release build, DuckDB {duckdb.__version__} ({threads} threads).",
        "",
        "| bulk import, JSON lines → Parquet | events/s | MB/s | CPU s | CPU µs/event | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|",
        f"| Iris `import` (validated, sealed, indexed) | {iris_rate:,.0f} | {size / iris_wall / 1e6:,.0f} | "
        f"{iris_cpu:.1f} | {iris_cpu / a.events * 1e6:.2f} | {iris_rss and f'{iris_rss:,.0f}' or '—'} |",
        f"| DuckDB `COPY (read_json) TO parquet` | {duck_rate:,.0f} | {size / duck_wall / 1e6:,.0f} | "
        f"{duck_cpu:.1f} | {duck_cpu / a.events * 1e6:.2f} | {duck_rss:,.0f} (Python process) |",
        f"| Iris / DuckDB | **{iris_rate / duck_rate:.2f}** | | | | |",
        "",
        "| layout | files | data B/event | index B/event | total B/event |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, ((rows, dbytes, ibytes, _, files), _) in layouts.items():
        lines.append(f"| {kind} | {files:,} | {dbytes / rows:.1f} | {ibytes / rows:.1f} | {(dbytes + ibytes) / rows:.1f} |")
    lines.append(f"| DuckDB's one file (no index) | 1 | {duck_bytes / a.events:.1f} | — | {duck_bytes / a.events:.1f} |")
    if not a.no_compact:
        lines += ["", f"Compaction: {compact_rate:,.0f} events/s."]
    for kind, ((rows, _, _, cols, _), ix) in layouts.items():
        lines += ["", f"Where the bytes go, {kind} (B/event): "
                  + ", ".join(f"{c} {b / rows:.2f}" for c, b in sorted(cols.items(), key=lambda x: -x[1]))
                  + "; index by tantivy file: "
                  + ", ".join(f"{k} {b / rows:.2f}" for k, b in sorted(ix.items(), key=lambda x: -x[1]))]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.results:
        with open(Path(__file__).with_name("RESULTS.md"), "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
