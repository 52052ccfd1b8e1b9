//! A small crash matrix: `kill -9` at seeded random moments of HTTP ingest, bulk import, compaction,
//! index rebuilding, labour-market import and checkpoint, each followed by recovery (`iris seal`) and a check that every acknowledged event is
//! stored exactly once and `verify` holds. `IRIS_CRASH_ROUNDS` (default 3 per phase) runs more — the long
//! mode: `IRIS_CRASH_ROUNDS=250 cargo test --release --test crash_matrix -- --nocapture` runs ≥ 1,000.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Server, iris, ok, repo, sample_batch as events, stdout, token};

/// A tiny deterministic generator (xorshift), so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn rounds() -> u64 {
    std::env::var("IRIS_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

fn spawn(data: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_iris"))
        .arg("--data")
        .arg(data)
        .args(args)
        .current_dir(repo())
        .env("IRIS_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iris runs")
}

/// Kills `child` with SIGKILL after `ms` (or lets it finish first); whether it was killed mid-way.
fn kill_after(mut child: Child, ms: u64) -> bool {
    let until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < until {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    true
}

/// Recovery after a crash: `iris seal`, timed.
fn recover(data: &Path) -> Duration {
    let started = Instant::now();
    ok(iris(data, &["seal"]), "seal after a crash");
    started.elapsed()
}

fn count(data: &Path, sql: &str) -> Vec<u64> {
    stdout(&ok(iris(data, &["sql", sql, "--format", "csv"]), sql))
        .lines()
        .nth(1)
        .expect("row")
        .split(',')
        .map(|v| v.parse().expect("number"))
        .collect()
}

fn verify_holds(data: &Path, after: &str) {
    let o = iris(data, &["verify"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "verify after {after}:\n{}",
        stdout(&o)
    );
}

#[test]
fn kill_9_anywhere_loses_and_duplicates_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(iris(d, &["keygen", "--id", "k1"]), "keygen");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0u64;
    let mut killed = 0u64;
    let mut worst = Duration::ZERO;

    // 1. HTTP ingest: two collectors, the server killed at a random moment.
    let sources = ["k1", "k2"];
    let tokens: Vec<String> = sources
        .iter()
        .map(|s| token(d, &["--role", "collector", "--source", s]))
        .collect();
    let mut acked = [0u64; 2];
    for _ in 0..rounds() {
        let mut server = Server::start(d, &[]);
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let url = server.url.clone();
                let tok = tokens[i].clone();
                let source = sources[i];
                let from = acked[i];
                std::thread::spawn(move || {
                    let client = reqwest::blocking::Client::new();
                    let mut done = from;
                    for _ in 0..200 {
                        let r = client
                            .post(format!("{url}/v1/events"))
                            .bearer_auth(&tok)
                            .body(events(source, done + 1, 100))
                            .send();
                        match r {
                            Ok(r) if r.status() == 200 => done += 100,
                            _ => break,
                        }
                    }
                    done
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        server.kill();
        killed += 1;
        for (i, h) in handles.into_iter().enumerate() {
            acked[i] = h.join().expect("collector");
        }
        worst = worst.max(recover(d));
        runs += 1;
        for (i, s) in sources.iter().enumerate() {
            let row = count(
                d,
                &format!(
                    "SELECT count(*), count(DISTINCT source_seq) FROM events WHERE source = '{s}'"
                ),
            );
            assert!(
                row[0] >= acked[i],
                "{s}: {} stored, {} acked",
                row[0],
                acked[i]
            );
            assert_eq!(row[0], row[1], "{s}: stored once");
            // A collector resumes after its last stored number.
            acked[i] = row[0];
        }
        verify_holds(d, "an ingest crash");
    }

    // 2. Bulk import killed at random moments, then completed: every record once.
    let file = d.join("gen.jsonl");
    let f = file.to_string_lossy().into_owned();
    ok(
        iris(
            d,
            &[
                "gen",
                "--events",
                "60000",
                "--seed",
                "3",
                "--from",
                "2025-01-01",
                "--days",
                "40",
                "--out",
                &f,
            ],
        ),
        "gen",
    );
    let before = count(d, "SELECT count(*) FROM events")[0];
    for _ in 0..rounds() {
        killed += u64::from(kill_after(
            spawn(d, &["import", "--format", "jsonl", &f]),
            200 + rng.below(3000),
        ));
        worst = worst.max(recover(d));
        runs += 1;
        verify_holds(d, "an import crash");
    }
    ok(iris(d, &["import", "--format", "jsonl", &f]), "import");
    assert_eq!(count(d, "SELECT count(*) FROM events")[0], before + 60_000);

    // 3. Compaction killed at random moments: answers unchanged, verify holds after recovery.
    let q =
        "SELECT count(*), count(DISTINCT source || '/' || CAST(source_seq AS VARCHAR)) FROM events";
    let reference = count(d, q);
    for _ in 0..rounds() {
        killed += u64::from(kill_after(
            spawn(d, &["compact", "--month", "2025-01"]),
            100 + rng.below(4000),
        ));
        worst = worst.max(recover(d));
        runs += 1;
        verify_holds(d, "a compaction crash");
        assert_eq!(count(d, q), reference, "after a compaction crash");
    }

    // 4. Index rebuild killed at random moments: `reindex` then repairs, verify holds.
    for _ in 0..rounds() {
        killed += u64::from(kill_after(
            spawn(d, &["reindex", "--all"]),
            50 + rng.below(1500),
        ));
        runs += 1;
        ok(iris(d, &["reindex"]), "reindex after a crash");
        verify_holds(d, "a reindex crash");
        assert_eq!(count(d, q), reference, "after a reindex crash");
    }
    // 5. Labour-market import killed at random moments: nothing half-sealed, verify holds.
    let labour = d.join("labour");
    let l = labour.to_string_lossy().into_owned();
    ok(
        iris(
            d,
            &[
                "labour",
                "gen",
                "--persons",
                "400",
                "--seed",
                "5",
                "--quarters",
                "4",
                "--out",
                &l,
            ],
        ),
        "labour gen",
    );
    for _ in 0..rounds() {
        killed += u64::from(kill_after(
            spawn(d, &["labour", "import", &l]),
            50 + rng.below(1500),
        ));
        worst = worst.max(recover(d));
        runs += 1;
        verify_holds(d, "a labour import crash");
        assert_eq!(count(d, q), reference, "after a labour import crash");
    }

    // 6. Checkpoint killed: the chain is untouched, a later checkpoint verifies.
    let cp = d.join("cp.json");
    let c = cp.to_string_lossy().into_owned();
    for _ in 0..rounds() {
        killed += u64::from(kill_after(
            spawn(d, &["checkpoint", "--out", &c]),
            rng.below(30),
        ));
        runs += 1;
        ok(iris(d, &["checkpoint", "--out", &c]), "checkpoint");
        let o = iris(d, &["verify", "--checkpoint", &c]);
        assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    }
    eprintln!(
        "crash matrix: {runs} runs ({killed} killed mid-way), 0 acknowledged events lost or duplicated, verify held after each, slowest recovery {:.2}s",
        worst.as_secs_f64()
    );
}
