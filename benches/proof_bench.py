#!/usr/bin/env python3
"""Proof benchmark (issue 16): what the Merkle trees cost on import, and what proofs, checkpoints and a
witness cost, on generated events, through the `iris` binary as an operator runs it.

1. import (JSON lines -> sealed Parquet) alone, then the first tree build (`iris checkpoint --format note`
   computes and remembers the head of every sealed file): import events/s with and without the trees;
2. checkpoint (heads cached): time and size of a signed note;
3. proofs of random events on the daily layout: bundle size, `iris prove` time, `iris verify-proof` time,
   and `GET /v1/proof` on a warm server;
4. the same events after `iris compact` (a compacted file holds a month of a bucket of subjects);
5. witness round trip: `iris witness add` to an `iris witness serve` on loopback (checks consistency,
   cosigns, persists its state before answering).

Prints the figures; `--results` appends them to benches/RESULTS.md with the command. See benches/README.md."""

import argparse, http.client, json, os, platform, random, re, shutil, subprocess, sys, tempfile, time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def run(args, **kw):
    t = time.perf_counter()
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    took = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{r.stderr}{r.stdout}")
    return r, took


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=28, help="spread over this many days (one month: one compaction)")
    ap.add_argument("--proofs", type=int, default=20, help="random events proven per layout")
    ap.add_argument("--iris", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/iris"))
    ap.add_argument("--work", help="working directory (default: a temporary one, removed)")
    ap.add_argument("--results", action="store_true", help="append to benches/RESULTS.md")
    a = ap.parse_args()
    iris = a.iris
    if not Path(iris).exists():
        sys.exit(f"{iris}: build it first (cargo build --release --bin iris)")
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="iris-proof-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    data, events = work / "data", work / "events.jsonl"
    env = dict(os.environ, IRIS_LOG="warn")
    figures = []  # (measure, value, unit)

    def fig(measure, value, unit):
        figures.append((measure, value, unit))
        log(f"{measure}: {value:,.1f} {unit}")

    try:
        log(f"generating {a.events:,} events over {a.days} days")
        run([iris, "gen", "--events", a.events, "--seed", "42", "--days", a.days, "--from", "2025-02-01",
             "--out", events], env=env)
        run([iris, "--data", data, "keygen"], env=env)
        log("importing")
        _, t_import = run([iris, "--data", data, "import", "--format", "jsonl", events], env=env)
        seals = len(list((data / "store" / "chain").glob("seal-*.json")))
        log("first tree build (every file's head)")
        _, t_trees = run([iris, "--data", data, "checkpoint", "--format", "note", "--out", work / "cp0.note"], env=env)
        fig("import without the trees", a.events / t_import, "events/s")
        fig("import with the trees (import + first head of every file)", a.events / (t_import + t_trees), "events/s")
        fig("trees: first head of every sealed file", a.events / t_trees, "events/s")
        fig("trees: share of import + trees time", 100 * t_trees / (t_import + t_trees), "%")
        fig("log size (seals)", seals, "")

        times = []
        for i in range(5):
            _, t = run([iris, "--data", data, "checkpoint", "--format", "note", "--out", work / "cp.note"], env=env)
            times.append(t)
        fig("checkpoint (signed note, heads cached; process included)", 1000 * median(times), "ms")
        fig("checkpoint size", (work / "cp.note").stat().st_size, "B")
        vkey = work / "log.vkey"
        vkey.write_text(run([iris, "--data", data, "checkpoint", "--format", "vkey"], env=env)[0].stdout)

        rng = random.Random(7)
        picked = []
        with open(events) as f:
            for i, line in enumerate(f):
                if len(picked) < a.proofs:
                    picked.append(line)
                else:
                    j = rng.randrange(i + 1)
                    if j < a.proofs:
                        picked[j] = line
        picked = [json.loads(l) for l in picked]
        ids = [f"{e['source']}:{e['source_seq']}" for e in picked]
        admin = run([iris, "--data", data, "token", "--role", "admin"], env=env)[0].stdout.strip()

        def proofs(layout):
            sizes, t_prove, t_verify, t_http = [], [], [], []
            out = work / "proof.json"
            for ev in ids:
                _, t = run([iris, "--data", data, "prove", "--event", ev, "--out", out], env=env)
                t_prove.append(t)
                sizes.append(out.stat().st_size)
                _, t = run([iris, "--data", work / "nowhere", "verify-proof", out, "--key", vkey], env=env)
                t_verify.append(t)
            srv = subprocess.Popen([iris, "--data", str(data), "serve", "--listen", "127.0.0.1:0",
                                    "--seal-interval", "3600"], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True, env=env)
            try:
                addr = None
                for line in srv.stdout:
                    m = re.match(r"Iris listening on https?://(\S+)", line)
                    if m:
                        addr = m.group(1)
                        break
                host, port = addr.split(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=600)
                for ev in [ids[0]] + ids:  # the first request warms the server up
                    t = time.perf_counter()
                    conn.request("GET", f"/v1/proof?event={ev}", headers={"Authorization": f"Bearer {admin}"})
                    r = conn.getresponse()
                    body = r.read()
                    if r.status == 404 and b"no such route" in body:
                        log("this binary has no GET /v1/proof: HTTP figures left out")
                        break
                    if r.status != 200:
                        sys.exit(f"GET /v1/proof?event={ev}: {r.status} {body[:300]!r}")
                    t_http.append(time.perf_counter() - t)
                t_http = t_http[1:]
            finally:
                srv.terminate()
                srv.wait()
            fig(f"{layout}: proof size (one event)", median(sizes), "B")
            fig(f"{layout}: iris prove, p50 (process included)", 1000 * median(t_prove), "ms")
            fig(f"{layout}: iris prove, max", 1000 * max(t_prove), "ms")
            if t_http:
                fig(f"{layout}: GET /v1/proof, p50 (warm server)", 1000 * median(t_http), "ms")
            fig(f"{layout}: iris verify-proof, p50 (process included)", 1000 * median(t_verify), "ms")

        log("proofs, daily layout")
        proofs("daily")
        months = sorted({e["ts"][:7] for e in picked} | {f"2025-0{m}" for m in (2, 3)})
        log(f"compacting {', '.join(months)}")
        args = [iris, "--data", data, "compact"]
        for m in months:
            args += ["--month", m]
        run(args, env=env)
        log("proofs, compacted layout")
        proofs("compacted")

        log("witness round trip")
        wdir = work / "witness"
        w = subprocess.Popen([iris, "witness", "serve", "--dir", str(wdir), "--name", "bench-witness",
                              "--log", vkey.read_text().strip(), "--listen", "127.0.0.1:0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        try:
            url = None
            for line in w.stdout:
                if line.startswith("witness listening on "):
                    url = line.split("witness listening on ", 1)[1].strip()
                    break
            run([iris, "--data", data, "checkpoint", "--format", "note", "--out", work / "cp1.note"], env=env)
            times = []
            for i in range(5):
                _, t = run([iris, "--data", data, "witness", "add", "--checkpoint", work / "cp1.note",
                            "--witness", url, "--out", work / "cosigned.note"], env=env)
                times.append(t)
            fig("witness round trip (iris witness add, process included), p50", 1000 * median(times), "ms")
            fig("cosigned checkpoint size", (work / "cosigned.note").stat().st_size, "B")
        finally:
            w.terminate()
            w.wait()
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)

    cmd = f"python3 benches/proof_bench.py --events {a.events} --days {a.days} --proofs {a.proofs} --iris {iris} --results"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"## Proofs (issue 16), {when}", "",
             f"Command: `{cmd}` ({'release' if '/release/' in iris else 'debug'} build `{iris}`). Machine: {platform.machine()}, {os.cpu_count()} cores, "
             f"{platform.system()} {platform.release()}.", "",
             f"{a.events:,} events over {a.days} days; {a.proofs} random events proven per layout; times are "
             "wall clock of one `iris` process unless said otherwise.", "",
             "| measure | value | unit |", "|---|---:|---|"]
    lines += [f"| {m} | {v:,.1f} | {u} |" for m, v, u in figures]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.results:
        with open(ROOT / "benches" / "RESULTS.md", "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
