//! Compaction end to end: a month of daily partitions becomes a few files sorted by subject under one
//! signed compaction seal; every answer stays the same (with and without the index), traces skip the
//! other subject buckets, `verify` checks the new files, and neither an interrupted compaction nor a
//! stray file changes what queries read.

mod support;

use std::path::{Path, PathBuf};
use support::{assert_finding, iris, load_samples, ok, stdout};

fn sql(dir: &Path, query: &str, index: bool) -> String {
    let mut args = vec!["sql", query, "--format", "csv"];
    if !index {
        args.push("--no-index");
    }
    stdout(&ok(iris(dir, &args), query))
}

fn files_under(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p, ext));
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// A sample of ids of each indexed column, frequent and rare.
fn keys(dir: &Path, column: &str) -> Vec<String> {
    let q = format!(
        "(SELECT {column} FROM events GROUP BY {column} ORDER BY count(*) DESC, {column} LIMIT 4) \
         UNION ALL (SELECT {column} FROM events GROUP BY {column} ORDER BY count(*), {column} LIMIT 4)"
    );
    sql(dir, &q, true)
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn compaction_keeps_every_answer_and_the_chain_verifiable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    load_samples(dir, &[], &[]);
    let store = dir.join("store");
    let order = "ORDER BY ts, source, source_seq";
    let mut queries = vec![
        format!("SELECT * FROM events {order}"),
        "SELECT day, source, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2".to_owned(),
        "SELECT count(*) FROM events WHERE ts >= '2025-03-10T00:00:00Z' AND ts < '2025-03-12T00:00:00Z'"
            .to_owned(),
        "SELECT count(*) FROM rejections".to_owned(),
    ];
    for column in ["subject_id", "actor_id", "ticket"] {
        for k in keys(dir, column) {
            queries.push(format!(
                "SELECT * FROM events WHERE {column} = '{k}' {order}"
            ));
        }
    }
    assert!(queries.len() >= 20, "{queries:?}");
    let before: Vec<String> = queries.iter().map(|q| sql(dir, q, true)).collect();
    let total = |dir: &Path| -> u64 {
        let out = sql(dir, "SELECT count(*) AS n FROM events", true);
        out.lines()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("a count")
    };
    let rows = total(dir);
    assert!(rows > 2000, "{rows}");
    let daily = files_under(&store.join("events"), "parquet");
    assert!(daily.len() > 100, "{} daily partitions", daily.len());
    let kept_copy = std::fs::read(&daily[0]).expect("read a daily partition");

    let out = stdout(&ok(
        iris(
            dir,
            &["compact", "--month", "2025-03", "--target-rows", "600"],
        ),
        "compact",
    ));
    assert!(out.contains(&format!("2025-03: {rows} rows")), "{out}");
    assert!(out.contains("-> 4 files"), "{out}");
    assert!(files_under(&store.join("events"), "parquet").is_empty());
    let compacted = files_under(&store.join("compacted"), "parquet");
    assert_eq!(compacted.len(), 4, "{compacted:?}");

    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(&sql(dir, q, true), want, "with the index: {q}");
        assert_eq!(&sql(dir, q, false), want, "without the index: {q}");
    }
    // A subject lives in one bucket: the other three files are never opened.
    let subject = keys(dir, "subject_id").remove(0);
    let plan = sql(
        dir,
        &format!("EXPLAIN SELECT * FROM events WHERE subject_id = '{subject}'"),
        true,
    );
    assert!(
        plan.contains("files 1 of 4 live (3 skipped by subject bucket, 0 without index)"),
        "{plan}"
    );
    let v = stdout(&ok(iris(dir, &["verify"]), "verify after compaction"));
    assert!(v.starts_with("OK"), "{v}");

    // Interrupted after its seal: a replaced partition is still there. Queries do not read it twice,
    // verify knows it is replaced, the next compaction removes it.
    std::fs::write(&daily[0], &kept_copy).expect("put back");
    assert_eq!(sql(dir, &queries[0], true), before[0]);
    let v = stdout(&ok(iris(dir, &["verify"]), "verify with a leftover"));
    assert!(v.starts_with("OK"), "{v}");
    let out = iris(dir, &["compact"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("removed 1 files replaced"),
        "{out:?}"
    );
    assert!(!daily[0].exists());

    // A stray copy of a compacted file is no part of the log: not read, and named by verify.
    let stray = compacted[0].with_file_name("part-stray.parquet");
    std::fs::copy(&compacted[0], &stray).expect("copy");
    assert_eq!(sql(dir, &queries[0], false), before[0]);
    let v = stdout(&iris(dir, &["verify"]));
    assert_finding(&v, "UNSEALED", "part-stray.parquet");
    std::fs::remove_file(&stray).expect("remove stray");

    // Tampering with a compacted file, or losing its index, is named.
    let mut bytes = std::fs::read(&compacted[1]).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&compacted[1], &bytes).expect("tamper");
    let name = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned()
    };
    let index = files_under(&store.join("index").join("compacted"), "tantivy");
    assert_eq!(index.len(), 4);
    std::fs::remove_file(&index[2]).expect("drop an index");
    let v = stdout(&iris(dir, &["verify"]));
    assert_finding(&v, "CHANGED", &name(&compacted[1]));
    assert_finding(
        &v,
        "INDEX-MISSING",
        name(&index[2]).trim_end_matches(".tantivy"),
    );
    bytes[mid] ^= 0x55;
    std::fs::write(&compacted[1], &bytes).expect("restore");
    ok(iris(dir, &["reindex"]), "reindex");

    // A late event for the compacted month: a new daily partition, compacted again with the rest.
    let late = tmp.path().join("late.jsonl");
    let sample =
        std::fs::read_to_string(support::repo().join("data-samples/events.jsonl")).expect("sample");
    let mut event: serde_json::Value =
        serde_json::from_str(sample.lines().next().expect("a line")).expect("json");
    event["source"] = "late-source".into();
    event["source_seq"] = 1.into();
    std::fs::write(&late, format!("{event}\n")).expect("write");
    ok(
        iris(
            dir,
            &["import", "--format", "jsonl", late.to_str().expect("utf-8")],
        ),
        "late import",
    );
    assert_eq!(total(dir), rows + 1);
    let out = stdout(&ok(
        iris(
            dir,
            &["compact", "--month", "2025-03", "--target-rows", "600"],
        ),
        "compact again",
    ));
    assert!(
        out.contains(&format!("2025-03: {} rows, 5 files", rows + 1)),
        "{out}"
    );
    assert_eq!(total(dir), rows + 1);
    let v = stdout(&ok(iris(dir, &["verify"]), "verify after recompaction"));
    assert!(v.starts_with("OK"), "{v}");
}

#[test]
fn compaction_refuses_a_tampered_partition() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    load_samples(dir, &[], &[]);
    let daily = files_under(&dir.join("store").join("events"), "parquet");
    let mut bytes = std::fs::read(&daily[3]).expect("read");
    let last = bytes.len() - 20;
    bytes[last] ^= 0x01;
    std::fs::write(&daily[3], &bytes).expect("tamper");
    let out = iris(dir, &["compact", "--month", "2025-03"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bytes differ from seal") && err.contains("compaction refused"),
        "{err}"
    );
    // Nothing was replaced: the daily partitions are all still there and live.
    assert_eq!(
        files_under(&dir.join("store").join("events"), "parquet").len(),
        daily.len()
    );
}
