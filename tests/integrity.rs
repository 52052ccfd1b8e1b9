//! Every stored byte sealed or checked, and sequence numbers that cannot be poisoned — done to the real
//! files and through the binary: bits flipped in index blobs (named by `verify`, never changing an
//! answer, repaired and sealed by `reindex`), a wild `source_seq` that no longer jams its source, an
//! audited `iris source reset`, and stray files wherever Iris stores data.

mod support;

use std::path::{Path, PathBuf};
use support::{assert_finding, iris, iris_env, load_samples, ok, repo, stdout};

fn sql(dir: &Path, query: &str, index: bool) -> String {
    let mut args = vec!["sql", query, "--format", "csv"];
    if !index {
        args.push("--no-index");
    }
    stdout(&ok(iris(dir, &args), query))
}

fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_flipped_bit_in_an_index_is_named_never_changes_an_answer_and_reindex_seals_the_repair() {
    let dir = tempfile::tempdir().expect("tempdir");
    load_samples(dir.path(), &[], &[]);
    let store = dir.path().join("store");
    let indexes = files_under(&store.join("index"));
    assert!(indexes.len() >= 12, "{}", indexes.len());
    // Twelve blobs, one bit each, at different depths of the body (past the header).
    let damaged: Vec<&PathBuf> = indexes
        .iter()
        .step_by(indexes.len() / 12)
        .take(12)
        .collect();
    for (i, p) in damaged.iter().enumerate() {
        let mut bytes = std::fs::read(p).expect("blob");
        let at = (bytes.len() / 3 + (i * bytes.len()) / 20).min(bytes.len() - 1);
        bytes[at] ^= 1 << (i % 8);
        std::fs::write(p, &bytes).expect("flip");
    }
    let rel = |p: &Path| {
        p.strip_prefix(&store)
            .expect("under store")
            .to_string_lossy()
            .into_owned()
    };
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let report = stdout(&o);
    for p in &damaged {
        assert_finding(&report, "INDEX-CHANGED", &rel(p));
    }
    assert_eq!(
        report.lines().count(),
        damaged.len(),
        "only the damaged indexes are named:\n{report}"
    );
    // The subjects of every damaged partition: the indexed answer equals the plain scan.
    let mut subjects = Vec::new();
    for p in &damaged {
        let r = rel(p);
        let part = |key: &str| {
            r.split(&format!("{key}="))
                .nth(1)
                .and_then(|s| s.split('/').next())
                .expect("partition value")
                .to_owned()
        };
        let o = sql(
            dir.path(),
            &format!(
                "SELECT DISTINCT subject_id FROM events WHERE day = '{}' AND source = '{}' ORDER BY subject_id LIMIT 3",
                part("day"),
                part("source")
            ),
            false,
        );
        subjects.extend(o.lines().skip(1).map(str::to_owned));
    }
    assert!(subjects.len() >= damaged.len());
    let list: Vec<String> = subjects.iter().map(|s| format!("'{s}'")).collect();
    let q = format!(
        "SELECT * FROM events WHERE subject_id IN ({}) ORDER BY ts, source, source_seq",
        list.join(", ")
    );
    let scanned = sql(dir.path(), &q, false);
    assert!(scanned.lines().count() > subjects.len());
    assert_eq!(sql(dir.path(), &q, true), scanned, "{q}");
    for s in subjects.iter().take(5) {
        let q = format!("SELECT count(*) FROM events WHERE subject_id = '{s}'");
        assert_eq!(sql(dir.path(), &q, true), sql(dir.path(), &q, false), "{q}");
    }
    // Reindex rebuilds exactly the damaged ones and seals their digests; verify holds again.
    let o = ok(iris(dir.path(), &["reindex"]), "reindex");
    assert!(
        stdout(&o).contains(&format!("reindexed {} partitions", damaged.len())),
        "{}",
        stdout(&o)
    );
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(sql(dir.path(), &q, true), scanned);
    // A rebuilt index is held to its new sealed digest like any other.
    let mut bytes = std::fs::read(damaged[0]).expect("blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    std::fs::write(damaged[0], &bytes).expect("flip");
    let o = iris(dir.path(), &["verify"]);
    assert_finding(&stdout(&o), "INDEX-CHANGED", &rel(damaged[0]));
}

/// Events of source `s` with the given numbers, from the committed sample; `bad_niss` breaks the subject.
fn lines(numbers: &[(u64, bool)]) -> String {
    let text = std::fs::read_to_string(repo().join("data-samples/events.jsonl")).expect("sample");
    let base: Vec<serde_json::Value> = text
        .lines()
        .take(50)
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    numbers
        .iter()
        .enumerate()
        .map(|(i, (n, bad_niss))| {
            let mut v = base[i % base.len()].clone();
            v["source"] = serde_json::json!("s");
            v["source_seq"] = serde_json::json!(n);
            if *bad_niss {
                v["subject_id"] = serde_json::json!("12345678900");
                v["subject_kind"] = serde_json::json!("niss");
            }
            v.to_string() + "\n"
        })
        .collect()
}

fn import(dir: &Path, name: &str, text: &str, env: &[(&str, &str)]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    let p = path.to_string_lossy().into_owned();
    let o = ok(
        iris_env(
            dir,
            &["import", "--format", "jsonl", "--all-rejections", &p],
            env,
        ),
        name,
    );
    format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr))
}

fn count_s(dir: &Path) -> u64 {
    sql(dir, "SELECT count(*) FROM events WHERE source = 's'", false)
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("count")
}

#[test]
fn a_wild_sequence_number_never_jams_its_source_and_a_reset_is_sealed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(iris(d, &["keygen", "--id", "k1"]), "keygen");
    let max = u64::MAX;
    // 1–5, a wild number (refused as implausible), 6–10, a bad record with a wild number, 11–15.
    let mut nums: Vec<(u64, bool)> = (1..=5).map(|n| (n, false)).collect();
    nums.push((max, false));
    nums.extend((6..=10).map(|n| (n, false)));
    nums.push((max, true));
    nums.extend((11..=15).map(|n| (n, false)));
    let out = import(d, "a.jsonl", &lines(&nums), &[]);
    assert!(out.contains("15 accepted"), "{out}");
    assert!(
        out.contains(&format!("source_seq {max} is implausible")),
        "{out}"
    );
    assert_eq!(count_s(d), 15);
    let o = iris(d, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // Under a limit that lets it through, a wild number does jam the source…
    let loose = [("IRIS_MAX_SEQ_JUMP", "18446744073709551615")];
    let out = import(d, "b.jsonl", &lines(&[(max - 1, false)]), &loose);
    assert!(out.contains("1 accepted"), "{out}");
    let out = import(d, "c.jsonl", &lines(&[(16, false), (17, false)]), &[]);
    assert!(out.contains("goes backwards"), "{out}");
    // …until an administrator resets it: sealed, with who and why.
    let o = ok(
        iris(
            d,
            &[
                "source",
                "reset",
                "s",
                "--next",
                "16",
                "--reason",
                "wild number",
                "--by",
                "ops",
            ],
        ),
        "reset",
    );
    assert!(stdout(&o).contains("sealed as seal #"), "{}", stdout(&o));
    let reset = files_under(&d.join("store/chain"))
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("seal"))
        .find(|s| s.contains("\"kind\":\"reset\""))
        .expect("a reset seal");
    assert!(reset.contains("by ops: wild number"), "{reset}");
    // …and an audit event of Iris's own source, found by SQL.
    let audit = sql(
        d,
        "SELECT actor_id, error_code, purpose FROM audit WHERE message_type = 'iris.source-reset'",
        false,
    );
    assert!(
        audit.contains("ops,seal=") && audit.contains("wild number"),
        "{audit}"
    );
    let out = import(d, "d.jsonl", &lines(&[(16, false), (17, false)]), &[]);
    assert!(out.contains("2 accepted"), "{out}");
    assert_eq!(count_s(d), 18);
    // `verify` takes the reset into account: no gap blamed between 17 and the wild number.
    let o = iris(d, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // A reset forward declares the skipped numbers: still no gap.
    ok(iris(d, &["source", "reset", "s", "--next", "100"]), "reset");
    let out = import(d, "e.jsonl", &lines(&[(50, false), (100, false)]), &[]);
    assert!(
        out.contains("1 accepted") && out.contains("goes backwards"),
        "{out}"
    );
    let o = iris(d, &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // A real gap is still a gap.
    import(d, "f.jsonl", &lines(&[(105, false)]), &[]);
    let o = iris(d, &["verify"]);
    assert_finding(&stdout(&o), "SEQ-GAP", "101–104");
}

#[test]
fn stray_files_are_named_wherever_iris_stores_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    load_samples(dir.path(), &[], &[]);
    let store = dir.path().join("store");
    let strays = [
        "tables/declarations/quarter=2025-Q1/part-stray.parquet",
        "index/day=2025-03-01/source=hub/part-stray.tantivy",
        "compacted/month=2025-03/bucket=0-of-1/part-stray.parquet",
        "elsewhere/notes.txt",
    ];
    for s in strays {
        let p = store.join(s);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"stray").expect("write");
    }
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let report = stdout(&o);
    for s in strays {
        assert_finding(&report, "UNSEALED", s);
    }
    assert_eq!(report.lines().count(), strays.len(), "{report}");
}

#[test]
fn a_reset_only_moves_a_source_forward_and_never_hides_a_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    ok(iris(d, &["keygen", "--id", "k1"]), "keygen");
    let nums: Vec<(u64, bool)> = (1..=10).chain(15..=20).map(|n| (n, false)).collect();
    let out = import(d, "a.jsonl", &lines(&nums), &[]);
    assert!(out.contains("16 accepted"), "{out}");
    assert_finding(&stdout(&iris(d, &["verify"])), "SEQ-GAP", "11–14");
    let refused = |args: &[&str], why: &str| {
        let o = iris(d, args);
        assert_ne!(o.status.code(), Some(0), "{args:?} accepted");
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(err.contains(why), "{args:?}: {err}");
    };
    // At or below the high-water mark (numbers stored there are not wild): refused, the gap stays.
    refused(
        &["source", "reset", "s", "--next", "12"],
        "only moves a source forward",
    );
    refused(
        &["source", "reset", "s", "--next", "20"],
        "only moves a source forward",
    );
    // Past the jump bound: it would jam the source itself.
    refused(
        &["source", "reset", "s", "--next", "18446744073709551615"],
        "--max-seq-jump",
    );
    // A source Iris has never seen is likely a typo.
    refused(&["source", "reset", "nosuch", "--next", "5"], "--new");
    ok(
        iris(d, &["source", "reset", "nosuch", "--next", "5", "--new"]),
        "reset of a new source",
    );
    let o = iris(d, &["verify"]);
    assert_finding(&stdout(&o), "SEQ-GAP", "11–14");
    // Forward: the numbers skipped are accounted for, the old gap is still a gap.
    ok(iris(d, &["source", "reset", "s", "--next", "30"]), "reset");
    let out = import(d, "b.jsonl", &lines(&[(30, false)]), &[]);
    assert!(out.contains("1 accepted"), "{out}");
    let v = stdout(&iris(d, &["verify"]));
    assert_finding(&v, "SEQ-GAP", "11–14");
    assert!(!v.contains("21–29"), "{v}");
}

#[test]
fn a_damaged_partition_is_refused_to_queries_never_served() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    load_samples(dir, &[], &[]);
    let whole = sql(dir, "SELECT COUNT(*) AS n FROM events", true);
    // Every partition, one at a time: a flipped byte anywhere in it makes every query that reads it
    // fail with the file named, never answer from the changed bytes.
    let parts: Vec<PathBuf> = files_under(&dir.join("store/events"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(!parts.is_empty());
    for (i, part) in parts.iter().enumerate() {
        let original = std::fs::read(part).expect("read");
        let mut bytes = original.clone();
        let at = (bytes.len() / (i + 2)).max(4);
        bytes[at] ^= 1 << (i % 8);
        std::fs::write(part, &bytes).expect("write");
        let rel = part
            .strip_prefix(dir.join("store"))
            .expect("rel")
            .to_string_lossy()
            .into_owned();
        for index in [true, false] {
            let mut args = vec!["sql", "SELECT COUNT(*) AS n FROM events", "--format", "csv"];
            if !index {
                args.push("--no-index");
            }
            let out = iris(dir, &args);
            assert!(!out.status.success(), "{rel}: answered from changed bytes");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(&rel) && err.contains("seal"), "{rel}: {err}");
        }
        std::fs::write(part, &original).expect("restore");
    }
    // Restored, the answers are whole again.
    assert_eq!(sql(dir, "SELECT COUNT(*) AS n FROM events", true), whole);
}
