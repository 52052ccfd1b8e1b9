//! Trust roots in the log and retention (issue 16), through the binary: a key rotation is an entry
//! signed by the outgoing key, so every edit of `keys/keyring.json` is named and a chain re-signed
//! with a fresh key is refused against the published genesis key; a retention run prunes expired
//! files under a signed entry (`PRUNED`, exit 0), a file deleted without one is still `DELETED`,
//! proofs of later records still check, a proof of a pruned one is refused, queries see only what is
//! left, and a dry run changes nothing.

mod support;

use serde_json::Value;
use std::path::Path;
use support::{iris, iris_env, ok, stdout};

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

fn write_json(path: &Path, v: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(v).expect("json")).expect("write");
}

/// `verify` exits 1 and prints a line with `code`.
fn refused(data: &Path, extra: &[&str], code_text: &str, what: &str) -> String {
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    let o = iris(data, &args);
    let out = stdout(&o);
    assert_eq!(code(&o), 1, "{what}: {out}{}", stderr(&o));
    assert!(
        out.lines().any(|l| l.starts_with(code_text)),
        "{what}: {out}"
    );
    out
}

/// The one-column answer of a SQL query, as text.
fn sql_value(data: &Path, query: &str) -> String {
    let out = stdout(&ok(iris(data, &["sql", query, "--format", "csv"]), query));
    out.lines().nth(1).unwrap_or_default().trim().to_owned()
}

#[test]
fn a_rotation_is_a_log_entry_and_every_keyring_forgery_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let secrets = tmp.path().join("secrets");
    let env = [("IRIS_SECRET_DIR", secrets.to_str().expect("utf-8"))];
    let run = |args: &[&str]| iris_env(&data, args, &env);
    ok(run(&["keygen", "--id", "k1"]), "genesis key");
    ok(
        run(&[
            "import",
            "--format",
            "legacy-semicolon",
            "data-samples/legacy-export.txt",
        ]),
        "import",
    );
    let ring_path = data.join("keys/keyring.json");
    let genesis = read_json(&ring_path)["keys"][0]["public_key"]
        .as_str()
        .expect("public key")
        .to_owned();

    // Rotating needs the outgoing key's secret: without it, a clear error and nothing changes.
    let o = iris(&data, &["keygen", "--id", "k2"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("outgoing key") && stderr(&o).contains("IRIS_SECRET_DIR"),
        "{}",
        stderr(&o)
    );
    let o = ok(run(&["keygen", "--id", "k2"]), "rotation");
    assert!(
        stdout(&o).contains("signed by `k1`"),
        "the outgoing key signs the rotation: {}",
        stdout(&o)
    );
    ok(
        run(&[
            "import",
            "--format",
            "portal-csv",
            "data-samples/portal-export.csv",
        ]),
        "import signed by the new key",
    );
    ok(iris(&data, &["verify"]), "verify after a rotation");
    ok(
        iris(&data, &["verify", "--key", &genesis]),
        "verify against the published genesis key",
    );
    assert_eq!(
        sql_value(
            &data,
            "SELECT COUNT(*) FROM audit WHERE message_type = 'iris.key-rotation'"
        ),
        "1",
        "the rotation is an audit event too"
    );

    // Every edit of the keyring is named; the original is restored after each.
    let original = read_json(&ring_path);
    let forge = |edit: &dyn Fn(&mut Value), what: &str| {
        let mut ring = original.clone();
        edit(&mut ring);
        write_json(&ring_path, &ring);
        refused(&data, &[], "KEYRING-MISMATCH", what);
        write_json(&ring_path, &original);
    };
    let k1 = original["keys"][0].clone();
    forge(
        &|r| {
            let mut extra = k1.clone();
            extra["id"] = "k9".into();
            r["keys"].as_array_mut().expect("keys").push(extra);
        },
        "an extra key",
    );
    forge(
        &|r| r["keys"][1]["public_key"] = k1["public_key"].clone(),
        "a swapped key",
    );
    forge(
        &|r| {
            r["keys"][0]
                .as_object_mut()
                .expect("key")
                .remove("valid_until");
        },
        "an edited validity",
    );
    ok(iris(&data, &["verify"]), "the restored keyring");

    // A key added by someone without the secrets, then used to sign: UNTRUSTED-KEY.
    let other = tmp.path().join("other");
    let other_secrets = tmp.path().join("other-secrets");
    ok(
        iris_env(
            &other,
            &["keygen", "--id", "k9"],
            &[("IRIS_SECRET_DIR", other_secrets.to_str().expect("utf-8"))],
        ),
        "the intruder's key",
    );
    std::fs::copy(other_secrets.join("k9.secret"), secrets.join("k9.secret")).expect("copy");
    let mut ring = original.clone();
    let intruder = read_json(&other.join("keys/keyring.json"))["keys"][0].clone();
    ring["keys"][1]["valid_until"] = intruder["valid_from"].clone();
    ring["keys"].as_array_mut().expect("keys").push(intruder);
    write_json(&ring_path, &ring);
    ok(
        run(&["import", "--format", "jsonl", "data-samples/events.jsonl"]),
        "import signed by the intruder's key",
    );
    let out = refused(
        &data,
        &[],
        "UNTRUSTED-KEY",
        "seals signed by a key added by hand",
    );
    assert!(out.contains("k9"), "{out}");
}

#[test]
fn a_chain_re_signed_with_a_fresh_key_is_refused_with_the_published_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let forged = tmp.path().join("forged");
    for d in [&data, &forged] {
        ok(iris(d, &["keygen", "--id", "k1"]), "keygen");
        ok(
            iris(
                d,
                &[
                    "import",
                    "--format",
                    "legacy-semicolon",
                    "data-samples/legacy-export.txt",
                ],
            ),
            "import",
        );
    }
    let published = read_json(&data.join("keys/keyring.json"))["keys"][0]["public_key"]
        .as_str()
        .expect("key")
        .to_owned();
    let vkey = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    ok(
        iris(&data, &["verify", "--key", vkey.trim()]),
        "the genuine store, verifier key",
    );
    ok(
        iris(&forged, &["verify"]),
        "the forged store verifies against its own keyring",
    );
    let out = refused(
        &forged,
        &["--key", &published],
        "UNTRUSTED-KEY",
        "against the published key",
    );
    assert!(out.contains("published key"), "{out}");
    let o = iris(&data, &["verify", "--key", "not-a-key"]);
    assert_eq!(code(&o), 2, "a malformed key is an error");
}

#[test]
fn retention_prunes_under_a_signed_entry_and_the_log_still_verifies() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    ok(iris(&data, &["keygen", "--id", "k1"]), "keygen");
    ok(
        iris(
            &data,
            &["import", "--format", "jsonl", "data-samples/events.jsonl"],
        ),
        "import",
    );
    let p = |name: &str| tmp.path().join(name).to_str().expect("utf-8").to_owned();
    let cut = "2025-03-15";
    let first = |q: &str| {
        let v = sql_value(&data, q);
        let (s, n) = v.split_once(',').expect("source,seq");
        format!("{s}:{n}")
    };
    let early =
        first("SELECT source, source_seq FROM events WHERE ts < '2025-03-10' ORDER BY ts LIMIT 1");
    let late =
        first("SELECT source, source_seq FROM events WHERE ts >= '2025-03-20' ORDER BY ts LIMIT 1");
    let kept = sql_value(
        &data,
        &format!("SELECT COUNT(*) FROM events WHERE ts >= '{cut}'"),
    );
    let subject = sql_value(
        &data,
        &format!(
            "SELECT subject_id FROM events GROUP BY subject_id HAVING MIN(ts) < '{cut}' AND MAX(ts) >= '{cut}' ORDER BY COUNT(*) DESC LIMIT 1"
        ),
    );
    let subject_kept = sql_value(
        &data,
        &format!("SELECT COUNT(*) FROM events WHERE subject_id = '{subject}' AND ts >= '{cut}'"),
    );
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("old.note")],
        ),
        "checkpoint before",
    );
    let vkey = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    let vkey = vkey.trim();

    // A dry run changes nothing.
    let listing = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = walk(&d.join("store"));
        v.sort();
        v
    };
    let before_files = listing(&data);
    let o = ok(
        iris(&data, &["retention", "--before", cut, "--dry-run"]),
        "dry run",
    );
    assert!(
        stdout(&o).contains("would delete events/day=2025-03-0"),
        "{}",
        stdout(&o)
    );
    assert_eq!(listing(&data), before_files, "a dry run changes nothing");

    // Red team: an expired file deleted or changed by hand is tampering, and a retention run must not
    // cover it as PRUNED — the run is refused naming the file, nothing is deleted, verify still fails.
    let victim = walk(&data.join("store"))
        .into_iter()
        .find(|f| f.starts_with("events/day=2025-03-02/") && f.ends_with(".parquet"))
        .expect("a partition of 2 March");
    let victim_path = data.join("store").join(&victim);
    let original = std::fs::read(&victim_path).expect("read");
    for damage in ["flip", "delete"] {
        if damage == "flip" {
            let mut bytes = original.clone();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x20;
            std::fs::write(&victim_path, bytes).expect("flip");
        } else {
            std::fs::remove_file(&victim_path).expect("delete");
        }
        let before_run = listing(&data);
        let o = iris(&data, &["retention", "--before", cut]);
        assert_ne!(o.status.code(), Some(0), "{damage}: retention ran");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("retention refused") && err.contains(&victim),
            "{damage}: {err}"
        );
        assert_eq!(listing(&data), before_run, "{damage}: nothing deleted");
        let v = iris(&data, &["verify"]);
        assert_eq!(v.status.code(), Some(1), "{damage}: verify must still fail");
        assert!(!stdout(&v).contains("PRUNED"), "{}", stdout(&v));
    }
    std::fs::write(&victim_path, &original).expect("restore");

    let o = ok(iris(&data, &["retention", "--before", cut]), "retention");
    assert!(stdout(&o).contains("retention seal #"), "{}", stdout(&o));
    let o = ok(iris(&data, &["verify"]), "verify after retention");
    let out = stdout(&o);
    assert!(out.contains("PRUNED events/day=2025-03-0"), "{out}");
    assert!(!out.contains("DELETED") && out.contains("OK:"), "{out}");
    assert!(
        !out.contains("PRUNED events/day=2025-03-15/"),
        "the cut-off day is kept: {out}"
    );

    // Queries see exactly the rows left; the run is an audit event.
    assert_eq!(
        sql_value(&data, "SELECT COUNT(*) FROM events WHERE source <> 'iris'"),
        kept
    );
    assert_eq!(
        sql_value(
            &data,
            "SELECT COUNT(*) FROM audit WHERE message_type = 'iris.retention'"
        ),
        "1"
    );
    let trace = stdout(&ok(
        iris(&data, &["trace", "--subject", &subject, "--format", "csv"]),
        "trace",
    ));
    assert_eq!(
        trace
            .lines()
            .filter(|l| l.contains(subject.as_str()))
            .count()
            .to_string(),
        subject_kept,
        "{trace}"
    );

    // Proofs: a later record still proves and the log still extends the old checkpoint; a pruned
    // record is refused, saying so.
    ok(
        iris(
            &data,
            &["prove", "--event", &late, "--out", &p("late.json")],
        ),
        "prove a later record",
    );
    let checked = ok(
        iris(
            &tmp.path().join("nowhere"),
            &["verify-proof", &p("late.json"), "--key", vkey],
        ),
        "verify the proof offline",
    );
    assert!(stdout(&checked).contains("PROVEN"), "{}", stdout(&checked));
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("new.note")],
        ),
        "checkpoint after",
    );
    ok(
        iris(
            &data,
            &["consistency", &p("old.note"), &p("new.note"), "--key", vkey],
        ),
        "the log after retention extends the log before",
    );
    let o = iris(&data, &["prove", "--event", &early]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("pruned by the retention run"),
        "{}",
        stderr(&o)
    );

    // A file deleted without a retention entry is still DELETED (and the pruned ones still PRUNED).
    let victim = walk(&data.join("store"))
        .into_iter()
        .find(|f| f.starts_with("events/day=2025-03-2"))
        .expect("a later partition");
    std::fs::remove_file(data.join("store").join(&victim)).expect("rm");
    let out = refused(&data, &[], "DELETED", "a file deleted by hand");
    assert!(out.contains(&format!("DELETED {victim}")), "{out}");
    assert!(out.contains("PRUNED events/day=2025-03-0"), "{out}");
}

/// Every file under `root`, relative, with `/` separators.
fn walk(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}
