#!/usr/bin/env python3
"""Server memory under sustained HTTP ingest (issue 17 §7): N collectors push batches to `iris serve`,
retrying a 503 after its Retry-After, at two volumes; prints events/s, ack p50/p99, the 503s and the
server's peak RSS (VmHWM) for each, so that memory can be compared with the volume.

    python3 benches/ingest_memory.py --iris /work/target/release/iris --events FILE.jsonl \
        --volumes 1000000,3000000 --collectors 16 [-- SERVE FLAGS…]

FILE.jsonl: `iris gen --events N --out FILE.jsonl` (its source and source_seq are rewritten per collector).
"""

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else float("nan")


def hwm_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(iris, lines, n, collectors, batch, serve_flags):
    data = Path(tempfile.mkdtemp(prefix="iris-ingest-mem-"))
    sh = lambda *a: subprocess.run([iris, "--data", str(data), *a], check=True, capture_output=True, text=True).stdout.strip()
    sh("keygen", "--id", "k1")
    tokens = [sh("token", "--role", "collector", "--source", f"c{c}") for c in range(collectors)]
    admin = sh("token", "--role", "admin")
    server = subprocess.Popen(
        [iris, "--data", str(data), "serve", "--listen", "127.0.0.1:0", *serve_flags],
        stdout=subprocess.PIPE, text=True, env={"IRIS_LOG": "warn", "PATH": "/usr/bin:/bin"},
    )
    for line in server.stdout:
        if line.startswith("Iris listening on "):
            host, port = line.split("//")[1].strip().split(":")
            break
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
    per = n // collectors
    lat, refused, lock = [], [0], threading.Lock()

    def collector(c):
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        seq = 0
        while seq < per:
            k = min(batch, per - seq)
            body = "\n".join(
                lines[(c * per + seq + i) % len(lines)] + f',"source":"c{c}","source_seq":{seq + i + 1}}}'
                for i in range(k)
            ).encode()
            while True:
                t = time.perf_counter()
                conn.request("POST", "/v1/events", body, {"Authorization": f"Bearer {tokens[c]}"})
                r = conn.getresponse()
                r.read()
                if r.status == 503 and r.getheader("Retry-After"):
                    with lock:
                        refused[0] += 1
                    time.sleep(float(r.getheader("Retry-After")))
                    continue
                if r.status != 200:
                    sys.exit(f"ingest: {r.status}")
                with lock:
                    lat.append((time.perf_counter() - t) * 1000)
                break
            seq += k

    started = time.perf_counter()
    threads = [threading.Thread(target=collector, args=(c,)) for c in range(collectors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    rss = hwm_mib(server.pid)
    conn = http.client.HTTPConnection(host, int(port), timeout=600)
    conn.request("POST", "/v1/seal", b"", {"Authorization": f"Bearer {admin}"})
    conn.getresponse().read()
    rss_sealed = hwm_mib(server.pid)
    server.terminate()
    server.wait()
    return {
        "events": per * collectors, "events/s": per * collectors / took, "ack p50 ms": pct(lat, 50),
        "ack p99 ms": pct(lat, 99), "503s": refused[0], "peak RSS MiB (ingest)": rss,
        "peak RSS MiB (after final seal)": rss_sealed,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iris", required=True)
    ap.add_argument("--events", required=True, help="JSON lines from `iris gen`")
    ap.add_argument("--volumes", default="1000000,3000000")
    ap.add_argument("--collectors", type=int, default=16)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("serve_flags", nargs="*")
    a = ap.parse_args()
    volumes = [int(v) for v in a.volumes.split(",")]
    lines = []
    with open(a.events) as f:
        for line in f:
            # Drop the generator's source and number: each collector writes its own.
            lines.append(line.rstrip("\n").rsplit(',"source":', 1)[0])
            if len(lines) >= max(volumes):
                break
    for n in volumes:
        print(json.dumps(run(a.iris, lines, n, a.collectors, a.batch, a.serve_flags)), flush=True)


if __name__ == "__main__":
    main()
