//! The lookup index end to end: same answers with and without it, `EXPLAIN` shows which path a query
//! took, traces over the CLI and HTTP, and `verify`/`reindex` tell a missing or stale index from a
//! tampered partition.

mod support;

use std::collections::BTreeMap;
use support::{Server, assert_finding, iris, load_samples, ok, repo, stdout, token};

fn loaded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    load_samples(dir.path(), &[], &[]);
    dir
}

/// Valid events of the canonical sample.
fn canonical() -> Vec<serde_json::Value> {
    std::fs::read_to_string(repo().join("data-samples/events.jsonl"))
        .expect("sample")
        .lines()
        .take(2000)
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

/// Distinct values of `field` in the sample, most frequent first, `n` of them.
fn keys(events: &[serde_json::Value], field: &str, n: usize) -> Vec<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        *counts
            .entry(e[field].as_str().expect("string").to_owned())
            .or_default() += 1;
    }
    let mut v: Vec<(usize, String)> = counts.into_iter().map(|(k, c)| (c, k)).collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    // Frequent keys and rare ones alike.
    let mut out: Vec<String> = v.iter().take(n / 2).map(|x| x.1.clone()).collect();
    out.extend(v.iter().rev().take(n - n / 2).map(|x| x.1.clone()));
    out
}

fn sql(dir: &std::path::Path, query: &str, index: bool) -> String {
    let mut args = vec!["sql", query, "--format", "csv"];
    if !index {
        args.push("--no-index");
    }
    stdout(&ok(iris(dir, &args), query))
}

#[test]
fn index_and_scan_give_the_same_answers_and_explain_tells_which_ran() {
    let dir = loaded();
    let events = canonical();
    let order = "ORDER BY ts, source, source_seq";
    let mut checked = 0;
    for field in ["subject_id", "actor_id", "ticket"] {
        for key in keys(&events, field, 10) {
            let q = format!("SELECT * FROM events WHERE {field} = '{key}' {order}");
            let with = sql(dir.path(), &q, true);
            assert_eq!(with, sql(dir.path(), &q, false), "{q}");
            // At least the canonical sample's own events (the other samples may add more).
            let own = events.iter().filter(|e| e[field] == key.as_str()).count();
            assert!(with.lines().count() > own, "{q}: {with}");
            checked += 1;
        }
    }
    assert_eq!(checked, 30);
    // IN lists, combined with time, partition and other filters.
    let subjects = keys(&events, "subject_id", 6);
    let list = subjects
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    for q in [
        format!("SELECT * FROM events WHERE subject_id IN ({list}) {order}"),
        format!(
            "SELECT * FROM events WHERE subject_id IN ({list}) AND day BETWEEN '2025-03-05' AND '2025-03-20' AND result = 'ok' {order}"
        ),
        format!(
            "SELECT source, count(*) AS n FROM events WHERE actor_id = '{}' AND ts >= '2025-03-10T00:00:00Z' GROUP BY source ORDER BY source",
            keys(&events, "actor_id", 1)[0]
        ),
        format!(
            "SELECT * FROM events WHERE ticket = '{}' AND subject_id = '{}' {order}",
            events[0]["ticket"].as_str().expect("ticket"),
            events[0]["subject_id"].as_str().expect("subject")
        ),
        "SELECT * FROM events WHERE subject_id = 'nobody-at-all' ORDER BY ts".to_owned(),
    ] {
        assert_eq!(sql(dir.path(), &q, true), sql(dir.path(), &q, false), "{q}");
    }
    // EXPLAIN names the index path, and only when an indexed column is filtered.
    let explain = |q: &str| sql(dir.path(), &format!("EXPLAIN {q}"), true);
    let e = explain(&format!(
        "SELECT * FROM events WHERE subject_id IN ({list})"
    ));
    assert!(
        e.contains("IrisIndexLookupExec: subject_id IN 6 key(s)"),
        "{e}"
    );
    let e = explain("SELECT * FROM events WHERE purpose = 'CSSS/07/077'");
    assert!(!e.contains("IrisIndexLookupExec"), "{e}");
    let e = explain("SELECT * FROM events WHERE subject_id LIKE '85%'");
    assert!(!e.contains("IrisIndexLookupExec"), "{e}");
}

#[test]
fn trace_over_cli_and_http_returns_the_events_in_time_order() {
    let dir = loaded();
    let events = canonical();
    let ticket = events[0]["ticket"].as_str().expect("ticket").to_owned();
    let want = events
        .iter()
        .filter(|e| e["ticket"] == ticket.as_str())
        .count();
    let o = ok(
        iris(
            dir.path(),
            &["trace", "--ticket", &ticket, "--format", "json"],
        ),
        "trace",
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(rows.len(), want);
    assert!(rows.len() >= 2, "a ticket crosses sources");
    let times: Vec<&str> = rows.iter().map(|r| r["ts"].as_str().expect("ts")).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // A period that excludes every event.
    let o = ok(
        iris(
            dir.path(),
            &[
                "trace",
                "--ticket",
                &ticket,
                "--from",
                "2030-01-01",
                "--format",
                "json",
            ],
        ),
        "trace",
    );
    assert_eq!(stdout(&o).trim(), "[]");
    assert_eq!(
        iris(dir.path(), &["trace", "--from", "2025-03-01"])
            .status
            .code(),
        Some(2),
        "a key is required"
    );

    let admin = token(dir.path(), &["--role", "admin"]);
    let collector = token(dir.path(), &["--role", "collector", "--source", "c1"]);
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::blocking::Client::new();
    let get = |query: &str, tok: &str| {
        client
            .get(format!("{}/v1/trace?{query}", server.url))
            .bearer_auth(tok)
            .send()
            .expect("request")
    };
    let r = get(&format!("ticket={ticket}"), &admin);
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().expect("json");
    assert_eq!(body["count"], want);
    assert_eq!(body["events"], serde_json::Value::Array(rows));
    let subject = events[0]["subject_id"].as_str().expect("subject");
    let r = get(&format!("subject={subject}&limit=1"), &admin);
    let body: serde_json::Value = r.json().expect("json");
    assert_eq!(
        (body["count"].as_u64(), body["truncated"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(get("subject=a&actor=b", &admin).status(), 400);
    assert_eq!(get("subject=a&from=yesterday", &admin).status(), 400);
    assert_eq!(get(&format!("ticket={ticket}"), &collector).status(), 403);
}

#[test]
fn verify_tells_a_missing_or_stale_index_from_a_tampered_partition_and_reindex_repairs() {
    let dir = loaded();
    let index_dir = dir.path().join("store/index");
    let mut indexes: Vec<std::path::PathBuf> = Vec::new();
    let mut stack = vec![index_dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                indexes.push(e.path());
            }
        }
    }
    indexes.sort();
    assert!(indexes.len() > 10);
    let rel = |p: &std::path::Path| {
        p.strip_prefix(dir.path().join("store"))
            .expect("under store")
            .to_string_lossy()
            .into_owned()
    };
    let partition_of = |p: &std::path::Path| {
        dir.path().join("store").join(
            rel(p)
                .replacen("index/", "events/", 1)
                .replace(".tantivy", ".parquet"),
        )
    };
    let q = "SELECT * FROM events ORDER BY source, source_seq";
    let before = sql(dir.path(), q, false);
    // 0: index deleted; 1: index damaged; 2: partition tampered, its index untouched.
    std::fs::remove_file(&indexes[0]).expect("remove");
    std::fs::write(&indexes[1], b"IRISIDX1 garbage").expect("write");
    // Queries through missing or damaged indexes fall back to scanning those partitions.
    let key_query = |p: &std::path::Path| {
        let events = std::fs::read(partition_of(p)).expect("partition");
        assert!(!events.is_empty());
        // Any subject of that day and source: find one through a plain scan.
        let r = rel(p);
        let day = r
            .split("day=")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .expect("day");
        let source = r
            .split("source=")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .expect("source");
        let o = sql(
            dir.path(),
            &format!(
                "SELECT subject_id FROM events WHERE day = '{day}' AND source = '{source}' LIMIT 1"
            ),
            false,
        );
        let subject = o.lines().nth(1).expect("a subject").to_owned();
        format!(
            "SELECT * FROM events WHERE subject_id = '{subject}' ORDER BY ts, source, source_seq"
        )
    };
    for p in &indexes[..2] {
        let q = key_query(p);
        assert_eq!(sql(dir.path(), &q, true), sql(dir.path(), &q, false), "{q}");
    }
    let part = partition_of(&indexes[2]);
    let mut bytes = std::fs::read(&part).expect("partition");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&part, &bytes).expect("write");
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let report = stdout(&o);
    assert_finding(&report, "INDEX-MISSING", &rel(&indexes[0]));
    // The index digest is sealed with its partition: damaged bytes are named as such.
    assert_finding(&report, "INDEX-CHANGED", &rel(&indexes[1]));
    let part_name = part
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_finding(&report, "CHANGED", &part_name);
    assert!(
        !report.contains(&format!("INDEX-STALE {}", rel(&indexes[2]))),
        "an index is judged against the seal, not the tampered file:\n{report}"
    );
    // Reindex rebuilds what is missing or stale; the tampered partition's index still matches its seal.
    let o = ok(iris(dir.path(), &["reindex"]), "reindex");
    assert!(
        stdout(&o).contains("reindexed 2 partitions"),
        "{}",
        stdout(&o)
    );
    // Rebuilding everything refuses to index bytes that differ from their seal.
    let o = iris(dir.path(), &["reindex", "--all"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&part_name) && err.contains("bytes differ from seal"),
        "{err}"
    );
    // Restore the partition: only the index findings were repaired, the data never changed.
    bytes[mid] ^= 0x01;
    std::fs::write(&part, &bytes).expect("write");
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(sql(dir.path(), q, true), before);
}
