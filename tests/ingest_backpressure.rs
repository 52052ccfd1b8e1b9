//! Bounded ingest memory (issue 17 §7), driven as collectors would: many concurrent collectors push to
//! a server whose write-ahead log segments are tiny and whose unsealed backlog limit is small. They
//! see 503 with `Retry-After` and a JSON reason, send the same batch again, and in the end every
//! acknowledged event is sealed exactly once (count and per-source numbers) — while the server's peak
//! memory does not grow with the number of events sent.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use support::{Server, iris, ok, stdout, token};

const COLLECTORS: usize = 12;
const BATCH: usize = 200;

/// What one run saw.
struct Run {
    /// Peak resident memory of the server (VmHWM), KiB.
    hwm_kib: u64,
    /// 503 answers with a Retry-After header.
    refused: u64,
}

/// `n` events of `source` numbered from `first`, all on one day (one partition per source per seal).
fn batch(source: &str, first: u64, n: usize) -> String {
    support::sample_events(source, first, n)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let mut v: serde_json::Value = serde_json::from_str(&line).expect("json");
            v["ts"] =
                serde_json::json!(format!("2025-03-01T10:{:02}:{:02}Z", (i / 60) % 60, i % 60));
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Runs `batches` batches per collector against a fresh server and checks what was sealed.
fn run(batches: usize) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(iris(dir.path(), &["keygen", "--id", "k1"]), "keygen");
    let admin = token(dir.path(), &["--role", "admin"]);
    let tokens: Vec<(String, String)> = (0..COLLECTORS)
        .map(|c| {
            let source = format!("c{c}");
            let t = token(dir.path(), &["--role", "collector", "--source", &source]);
            (source, t)
        })
        .collect();
    let server = Server::start(
        dir.path(),
        &[
            "--wal-segment-bytes",
            "256KiB",
            "--ingest-backlog-bytes",
            "1MiB",
            "--seal-chunk-events",
            "2000",
        ],
    );
    let refused = AtomicU64::new(0);
    std::thread::scope(|s| {
        for (source, t) in &tokens {
            let (url, refused) = (&server.url, &refused);
            s.spawn(move || {
                let client = reqwest::blocking::Client::new();
                for b in 0..batches {
                    let body = batch(source, (b * BATCH) as u64 + 1, BATCH);
                    loop {
                        let r = client
                            .post(format!("{url}/v1/events"))
                            .bearer_auth(t)
                            .body(body.clone())
                            .send()
                            .expect("request");
                        let status = r.status().as_u16();
                        let retry = r.headers().get("retry-after").cloned();
                        let answer: serde_json::Value = r.json().expect("JSON answer");
                        if status == 503 {
                            let secs: u64 = retry
                                .and_then(|v| v.to_str().ok()?.parse().ok())
                                .expect("503 carries Retry-After in seconds");
                            assert!(secs >= 1);
                            let why = answer["error"].as_str().unwrap_or_default();
                            assert!(why.contains("not yet sealed"), "{answer}");
                            refused.fetch_add(1, Ordering::Relaxed);
                            // Sooner than asked, to keep the test short: refused again if still full.
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            continue;
                        }
                        assert_eq!(status, 200, "{answer}");
                        // A refused batch stored nothing: its resend is new, never a duplicate.
                        assert_eq!(answer["accepted"], BATCH as u64, "{answer}");
                        assert_eq!(answer["duplicates"], 0, "{answer}");
                        break;
                    }
                }
            });
        }
    });
    let hwm_kib = vm_hwm_kib(server.pid());
    let client = reqwest::blocking::Client::new();
    let sealed = client
        .post(format!("{}/v1/seal", server.url))
        .bearer_auth(&admin)
        .send()
        .expect("seal");
    assert!(sealed.status().is_success(), "{:?}", sealed.text());
    drop(server);
    let out = stdout(&ok(
        iris(
            dir.path(),
            &[
                "sql",
                "SELECT source, count(*) AS n, count(DISTINCT source_seq) AS d, min(source_seq) AS lo, max(source_seq) AS hi FROM events WHERE source LIKE 'c%' GROUP BY source ORDER BY source",
                "--format",
                "csv",
            ],
        ),
        "sql",
    ));
    let rows: Vec<&str> = out.lines().skip(1).filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), COLLECTORS, "{out}");
    let sent = batches * BATCH;
    for row in rows {
        let cols: Vec<&str> = row.split(',').collect();
        let want = [sent, sent, 1, sent].map(|n| n.to_string());
        assert_eq!(cols[1..], want, "count, distinct, lowest, highest of {row}");
    }
    // Exactly once, by the chain too: no SEQ-DUPLICATE, no SEQ-GAP, nothing unsealed or damaged.
    let report = iris(dir.path(), &["verify"]);
    assert!(report.status.success(), "{}", stdout(&report));
    Run {
        hwm_kib,
        refused: refused.load(Ordering::Relaxed),
    }
}

#[test]
fn collectors_are_held_back_with_503_and_memory_does_not_follow_the_volume() {
    let small = run(4);
    let large = run(16);
    eprintln!(
        "peak RSS: {} MiB for {} events, {} MiB for {} events; 503s: {} and {}",
        small.hwm_kib >> 10,
        COLLECTORS * 4 * BATCH,
        large.hwm_kib >> 10,
        COLLECTORS * 16 * BATCH,
        small.refused,
        large.refused
    );
    assert!(
        large.refused > 0,
        "the backlog limit never held anyone back"
    );
    // Four times the events, not four times the memory (nor twice).
    assert!(
        large.hwm_kib < small.hwm_kib * 3 / 2,
        "peak RSS {} KiB for 4× the events vs {} KiB",
        large.hwm_kib,
        small.hwm_kib
    );
}
