//! Bounded queries: a year-wide sort under a small memory budget spills and answers (or fails with a
//! clear error when spilling is off), a runaway query stops at the timeout, and a second full scan waits
//! for its turn while index-served traces go through.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};
use support::{Server, iris, ok, stdout, token};

/// `events` synthetic events over `days` days, imported.
fn generated(events: &str, days: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("events.jsonl");
    let file = file.to_str().expect("utf-8");
    ok(
        iris(
            tmp.path(),
            &["gen", "--events", events, "--days", days, "--out", file],
        ),
        "gen",
    );
    ok(iris(tmp.path(), &["keygen", "--id", "k1"]), "keygen");
    ok(
        iris(tmp.path(), &["import", "--format", "jsonl", file]),
        "import",
    );
    tmp
}

fn run(dir: &Path, limits: &[&str], query: &str) -> std::process::Output {
    let mut args = vec!["sql", query, "--format", "csv"];
    args.extend_from_slice(limits);
    iris(dir, &args)
}

#[test]
fn memory_budget_spills_or_fails_clearly_and_runaway_queries_stop() {
    // A year of events, every day.
    let tmp = generated("100000", "365");
    let dir = tmp.path();
    let sort = "SELECT subject_id, ts, ticket, actor_id FROM events ORDER BY subject_id, ts";
    let reference = stdout(&ok(run(dir, &[], sort), "unbounded sort"));
    assert_eq!(reference.trim_end().lines().count(), 100_001);

    // 10 MiB does not hold the year: the sort spills to disk and gives the same answer.
    let spilled = stdout(&ok(
        run(dir, &["--query-memory", "10"], sort),
        "sort in 10 MiB",
    ));
    assert!(spilled == reference, "the spilled sort differs");

    // The same budget without spilling: a clear error, no crash, no partial answer.
    let out = run(dir, &["--query-memory", "10", "--query-spill", "0"], sort);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs more memory than its budget of 10 MiB (spilling to disk is off)"),
        "{err}"
    );

    // A year-wide group over every ticket under a small budget: an answer equal to the unbounded one,
    // or the clear error — never a crash.
    let group = "SELECT subject_id, count(DISTINCT ticket) AS n, min(ts), max(ts) FROM events \
                 GROUP BY subject_id ORDER BY n DESC, subject_id";
    let full = stdout(&ok(run(dir, &[], group), "unbounded group"));
    let out = run(dir, &["--query-memory", "12"], group);
    if out.status.success() {
        assert!(stdout(&out) == full, "the bounded group differs");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("needs more memory than its budget"), "{err}");
    }

    // A query that would run for hours stops at the timeout.
    let started = Instant::now();
    let out = run(
        dir,
        &["--query-timeout", "2"],
        "SELECT count(*) FROM events a JOIN events b ON a.subject_id < b.subject_id",
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stopped after 2 s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn heavy_queries_take_turns_and_traces_do_not_wait() {
    let tmp = generated("20000", "30");
    let dir = tmp.path();
    let admin = token(dir, &["--role", "admin"]);
    let server = Server::start(dir, &["--heavy-queries", "1", "--query-timeout", "8"]);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    // Each request answers with its status, body, and the instant it was answered.
    let sql = |q: &str| {
        let r = client
            .post(format!("{}/v1/sql", server.url))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "sql": q }))
            .send()
            .expect("request");
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().expect("json");
        (status, body, Instant::now())
    };
    let subject =
        sql("SELECT subject_id FROM events ORDER BY subject_id LIMIT 1").1["rows"][0]["subject_id"]
            .as_str()
            .expect("a subject")
            .to_owned();

    std::thread::scope(|s| {
        // A runaway full scan holds the only heavy turn until the timeout: 400 M edit distances
        // take minutes even in release, so it cannot finish first on a fast machine.
        let runaway = s.spawn(|| {
            sql("SELECT count(*) FROM events a JOIN events b ON levenshtein(a.ticket, b.ticket) < 3")
        });
        std::thread::sleep(Duration::from_millis(700));
        // A trace goes through the index: it does not wait for the turn (it answers while the
        // runaway still holds it).
        let r = client
            .get(format!("{}/v1/trace?subject={subject}", server.url))
            .bearer_auth(&admin)
            .send()
            .expect("trace");
        assert_eq!(r.status(), 200, "{:?}", r.text());
        let trace_done_while_runaway_runs = !runaway.is_finished();
        // A second, quick full scan waits for the runaway to give its turn back.
        let (status, body, scan_end) = sql("SELECT count(*) AS n FROM events");
        let (runaway_status, runaway_body, runaway_end) = runaway.join().expect("runaway");
        assert_eq!(runaway_status, 504, "{runaway_body}");
        assert!(
            runaway_body["error"]
                .as_str()
                .is_some_and(|e| e.contains("stopped after 8 s")),
            "{runaway_body}"
        );
        assert!(trace_done_while_runaway_runs);
        assert!(
            scan_end >= runaway_end,
            "the second full scan did not wait for its turn ({status}: {body})"
        );
        assert!([200, 503, 504].contains(&status), "{status}: {body}");
    });
}
