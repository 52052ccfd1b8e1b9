//! End-to-end tests of the `iris` binary on the committed samples: import, verify, tamper, query.

use std::path::Path;
use std::process::{Command, Output};

fn iris(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iris"))
        .arg("--data")
        .arg(data)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("IRIS_LOG", "warn")
        .output()
        .expect("iris runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A data directory with a key and the three samples imported.
fn loaded() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(iris(dir.path(), &["keygen", "--id", "k1"]).status.success());
    for (format, file) in [
        ("jsonl", "data-samples/events.jsonl"),
        ("portal-csv", "data-samples/portal-export.csv"),
        ("legacy-semicolon", "data-samples/legacy-export.txt"),
    ] {
        let o = iris(dir.path(), &["import", "--format", format, file]);
        assert!(
            o.status.success(),
            "import {file}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    dir
}

fn sealed_partitions(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("store")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet")
                && p.to_string_lossy().contains("/events/")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn import_reports_each_bad_record_and_sql_counts_match_the_files() {
    let dir = loaded();
    // Independent count: valid lines of the canonical sample per source, read with serde_json only.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data-samples/events.jsonl"),
    )
    .expect("sample");
    let mut expected_hub = 0;
    for line in text.lines().take(2000) {
        let v: serde_json::Value = serde_json::from_str(line).expect("generated lines are JSON");
        if v["source"] == "hub" {
            expected_hub += 1;
        }
    }
    let o = iris(
        dir.path(),
        &[
            "sql",
            "SELECT count(*) AS n FROM events WHERE source = 'hub'",
            "--format",
            "json",
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json rows");
    assert_eq!(rows[0]["n"], expected_hub);
    let o = iris(
        dir.path(),
        &["sql", "SELECT count(*) AS n FROM events", "--format", "csv"],
    );
    assert_eq!(
        stdout(&o).lines().nth(1),
        Some("2350"),
        "2000 + 200 + 150 valid records"
    );
    let o = iris(
        dir.path(),
        &[
            "sql",
            "SELECT reason FROM rejections ORDER BY reason",
            "--format",
            "json",
        ],
    );
    let reasons = stdout(&o);
    for want in [
        "`payload` is not part of the audit schema",
        "not a valid niss",
        "malformed JSON",
        "missing required field `ticket`",
        "bad timestamp",
        "operation code `X`",
        "not a valid bce",
    ] {
        assert!(
            reasons.contains(want),
            "rejection log lacks {want}: {reasons}"
        );
    }
    // Re-importing is idempotent: everything is already stored.
    let o = iris(
        dir.path(),
        &["import", "--format", "jsonl", "data-samples/events.jsonl"],
    );
    assert!(
        stdout(&o).contains("0 accepted, 2000 already stored"),
        "{}",
        stdout(&o)
    );
    assert!(iris(dir.path(), &["verify"]).status.success());
}

#[test]
fn verify_names_a_changed_byte_a_deleted_partition_and_an_unsealed_one() {
    let dir = loaded();
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let parts = sealed_partitions(dir.path());
    assert!(parts.len() > 3);
    // Changed byte.
    let mut bytes = std::fs::read(&parts[0]).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&parts[0], &bytes).expect("write");
    // Deleted partition.
    std::fs::remove_file(&parts[1]).expect("remove");
    // A partition nobody sealed.
    let extra = parts[2].with_file_name("part-999999999999-999999999999-forged.parquet");
    std::fs::copy(&parts[2], &extra).expect("copy");
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1));
    let report = stdout(&o);
    let name = |p: &Path| p.file_name().expect("name").to_string_lossy().into_owned();
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("CHANGED") && l.contains(&name(&parts[0]))),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("DELETED") && l.contains(&name(&parts[1]))),
        "{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("UNSEALED") && l.contains("forged")),
        "{report}"
    );
}

#[test]
fn verify_names_removed_and_reordered_seals_and_a_truncated_chain() {
    let dir = loaded();
    let cp = dir.path().join("head.json");
    assert!(
        iris(
            dir.path(),
            &["checkpoint", "--out", cp.to_str().expect("utf8")]
        )
        .status
        .success()
    );
    let chain = dir.path().join("store/chain");
    let seal = |n: u64| chain.join(format!("seal-{n:010}.json"));
    // Swap two seals.
    let (a, b) = (
        std::fs::read(seal(3)).expect("seal 3"),
        std::fs::read(seal(4)).expect("seal 4"),
    );
    std::fs::write(seal(3), &b).expect("write");
    std::fs::write(seal(4), &a).expect("write");
    // Remove one in the middle and cut the last one.
    std::fs::remove_file(seal(10)).expect("remove");
    let count = std::fs::read_dir(&chain).expect("chain").count() as u64 + 1;
    std::fs::remove_file(seal(count - 1)).expect("remove last");
    let o = iris(
        dir.path(),
        &["verify", "--checkpoint", cp.to_str().expect("utf8")],
    );
    assert_eq!(o.status.code(), Some(1));
    let report = stdout(&o);
    for want in [
        "SEAL-REORDERED seal #3",
        "CHAIN-BROKEN seal #3",
        "SEAL-MISSING seal #10",
        "TRUNCATED chain",
    ] {
        assert!(report.contains(want), "missing `{want}` in:\n{report}");
    }
}

#[test]
fn verify_names_a_bad_signature_and_an_unknown_key() {
    let dir = loaded();
    let chain = dir.path().join("store/chain");
    let path = chain.join("seal-0000000005.json");
    let mut seal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("seal")).expect("json");
    seal["rows"] = serde_json::json!(seal["rows"].as_u64().expect("rows") + 1);
    std::fs::write(&path, serde_json::to_vec(&seal).expect("json")).expect("write");
    let path7 = chain.join("seal-0000000007.json");
    let mut seal7: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path7).expect("seal")).expect("json");
    seal7["key_id"] = serde_json::json!("mallory");
    std::fs::write(&path7, serde_json::to_vec(&seal7).expect("json")).expect("write");
    let o = iris(dir.path(), &["verify"]);
    let report = stdout(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(report.contains("BAD-SIGNATURE seal #5"), "{report}");
    assert!(report.contains("UNKNOWN-KEY seal #7"), "{report}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        iris(dir.path(), &["verify", "--bogus"]).status.code(),
        Some(2)
    );
    let o = iris(
        dir.path(),
        &["import", "--format", "nope", "data-samples/events.jsonl"],
    );
    assert_eq!(o.status.code(), Some(2));
}
