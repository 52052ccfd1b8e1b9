//! Proofs anyone can check (issue 16), through the binary: C2SP checkpoints, an inclusion bundle
//! checked offline (`verify-proof` without the store), every changed byte refused, proofs by ticket
//! and of compacted events, consistency between checkpoints, and the tamper classes `verify` alone
//! misses (a rolled-back store, a chain rewritten and re-signed with a fresh key).

mod support;

use std::path::Path;
use std::process::Command;
use support::{iris, load_samples, ok, stdout};

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
}

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn copy_dir(from: &Path, to: &Path) {
    let s = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .expect("cp");
    assert!(s.success(), "cp -a");
}

#[test]
fn checkpoint_note_and_verifier_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    load_samples(&data, &[], &[]);
    let note = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "note"]),
        "note",
    ));
    let lines: Vec<&str> = note.lines().collect();
    assert_eq!(lines[0], "iris.local/log", "origin line");
    let seals: u64 = lines[1].parse().expect("tree size");
    assert!(seals > 200, "one leaf per seal: {seals}");
    assert_eq!(lines[2].len(), 44, "base64 of 32 bytes");
    assert_eq!(lines[3], "", "blank line");
    assert!(
        lines[4].starts_with("\u{2014} iris.local/log "),
        "{}",
        lines[4]
    );
    let vkey = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    assert!(vkey.starts_with("iris.local/log+"), "{vkey}");
    // Same store, same head: a second checkpoint signs the same text.
    let again = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "note"]),
        "note",
    ));
    assert_eq!(
        again, note,
        "Ed25519 is deterministic and the head unchanged"
    );
    // The JSON checkpoint `verify --checkpoint` reads is unchanged.
    let json = stdout(&ok(iris(&data, &["checkpoint"]), "json"));
    assert!(json.trim_start().starts_with('{') && json.contains("\"seals\""));
}

#[test]
fn inclusion_bundles_verify_offline_and_fail_on_any_changed_byte() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    load_samples(&data, &[], &[]);
    let vkey = tmp.path().join("log.vkey");
    write(
        &vkey,
        &stdout(&ok(
            iris(&data, &["checkpoint", "--format", "vkey"]),
            "vkey",
        )),
    );
    let bundle = tmp.path().join("proof.json");
    let b = bundle.to_str().expect("utf-8");
    let k = vkey.to_str().expect("utf-8");
    ok(
        iris(&data, &["prove", "--event", "unemployment:1", "--out", b]),
        "prove",
    );
    // Checked with no store at all: another, empty data directory.
    let nowhere = tmp.path().join("nowhere");
    let v = ok(
        iris(&nowhere, &["verify-proof", b, "--key", k]),
        "verify-proof",
    );
    let out = stdout(&v);
    assert!(out.contains("PROVEN unemployment:1 "), "{out}");
    assert!(out.contains("OK: 1 event(s)"), "{out}");
    assert!(
        !nowhere.exists(),
        "verify-proof never touches a data directory"
    );

    // The keyring's hex key works as well; another log's key does not.
    let ring: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("keys/keyring.json")).expect("keyring"))
            .expect("json");
    let hex = ring["keys"][0]["public_key"].as_str().expect("hex key");
    ok(
        iris(&nowhere, &["verify-proof", b, "--key", hex]),
        "hex key",
    );
    let other = tmp.path().join("other");
    load_samples(&other, &[], &[]);
    let other_key = stdout(&ok(
        iris(&other, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    let o = iris(&nowhere, &["verify-proof", b, "--key", other_key.trim()]);
    assert_eq!(code(&o), 1, "another key: {}", stdout(&o));

    // Changed bytes of every class: event fields, the leaf, paths, row, file, the seal, the file
    // heads, the checkpoint's text and signature, key names, punctuation. Each must fail (1).
    let original = std::fs::read(&bundle).expect("bundle");
    let text = String::from_utf8(original.clone()).expect("utf-8");
    let mut positions: Vec<usize> = (0..original.len()).step_by(53).collect();
    for needle in [
        "\"ts_us\": 1",
        "\"subject_id\": \"",
        "\"ticket\": \"T",
        "\"leaf\": \"69",
        "\"row\": ",
        "\"file_path\": [\n        \"",
        "\"log_path\": [\n        \"",
        "\"file_index\": ",
        "\"rows\": ",
        "\\\"sha256\\\":\\\"",
        "\\\"signature\\\":\\\"",
        "iris.local/log\\n",
        "\u{2014} iris.local/log ",
        "\"format\": \"iris",
    ] {
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} in the bundle"));
        positions.push(at + needle.len());
    }
    let flipped = tmp.path().join("flipped.json");
    let f = flipped.to_str().expect("utf-8");
    for &i in &positions {
        let mut bad = original.clone();
        bad[i] ^= 0x01;
        std::fs::write(&flipped, &bad).expect("write");
        let o = iris(&nowhere, &["verify-proof", f, "--key", k]);
        assert_eq!(
            code(&o),
            1,
            "byte {i} ({:?}) changed, still: {}",
            String::from_utf8_lossy(&original[i.saturating_sub(20)..(i + 20).min(original.len())]),
            stdout(&o)
        );
        assert!(stdout(&o).starts_with("INVALID"), "{}", stdout(&o));
    }
    // Unreadable: exit 2.
    let missing = tmp.path().join("missing.json");
    let o = iris(
        &nowhere,
        &["verify-proof", missing.to_str().expect("utf-8"), "--key", k],
    );
    assert_eq!(code(&o), 2);
}

#[test]
fn ticket_proofs_compacted_events_and_consistency() {
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
    let vkey = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    let vkey = vkey.trim();
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("old.note")],
        ),
        "old checkpoint",
    );
    // A rolled-back copy of the store, kept aside.
    copy_dir(&data, &tmp.path().join("rolled-back"));

    // A ticket's whole path: every event under it, each proven.
    let ticket = "T000000079E3779B9";
    let trace = stdout(&ok(
        iris(
            &data,
            &[
                "sql",
                &format!("SELECT COUNT(*) AS n FROM events WHERE ticket = '{ticket}'"),
                "--format",
                "csv",
            ],
        ),
        "count",
    ));
    let n: usize = trace
        .lines()
        .nth(1)
        .expect("row")
        .trim()
        .parse()
        .expect("count");
    assert!(n >= 2, "a ticket across sources: {n}");
    ok(
        iris(
            &data,
            &["prove", "--ticket", ticket, "--out", &p("ticket.json")],
        ),
        "prove ticket",
    );
    let out = stdout(&ok(
        iris(&data, &["verify-proof", &p("ticket.json"), "--key", vkey]),
        "verify ticket",
    ));
    assert_eq!(out.matches("PROVEN ").count(), n, "{out}");
    assert!(
        out.lines()
            .filter(|l| l.starts_with("PROVEN"))
            .all(|l| l.contains(ticket))
    );

    // The log grows (more events, then a compaction): NEW extends OLD.
    ok(
        iris(
            &data,
            &[
                "import",
                "--format",
                "portal-csv",
                "data-samples/portal-export.csv",
            ],
        ),
        "import more",
    );
    ok(iris(&data, &["compact", "--month", "2025-03"]), "compact");
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("new.note")],
        ),
        "new checkpoint",
    );
    let c = ok(
        iris(
            &data,
            &["consistency", &p("old.note"), &p("new.note"), "--key", vkey],
        ),
        "consistency",
    );
    std::fs::write(p("consistency.json"), &c.stdout).expect("write");
    // …checked again offline from the proof alone.
    ok(
        iris(
            &tmp.path().join("nowhere"),
            &[
                "consistency",
                &p("old.note"),
                &p("new.note"),
                "--key",
                vkey,
                "--proof",
                &p("consistency.json"),
            ],
        ),
        "offline consistency",
    );
    // Backwards it does not hold.
    let o = iris(
        &data,
        &["consistency", &p("new.note"), &p("old.note"), "--key", vkey],
    );
    assert_eq!(code(&o), 1, "{}", stdout(&o));

    // An event now in a compacted file is still proven (through the compaction's seal).
    ok(
        iris(
            &data,
            &[
                "prove",
                "--event",
                "unemployment:1",
                "--out",
                &p("compacted.json"),
            ],
        ),
        "prove compacted",
    );
    let bundle = std::fs::read_to_string(p("compacted.json")).expect("bundle");
    assert!(
        bundle.contains("\"file\": \"compacted/"),
        "proven in its compacted file"
    );
    ok(
        iris(
            &data,
            &["verify-proof", &p("compacted.json"), "--key", vkey],
        ),
        "verify compacted",
    );

    // Rolled back: the copy does not hold NEW (its log is shorter), and says so (exit 1).
    let o = iris(
        &tmp.path().join("rolled-back"),
        &["consistency", &p("old.note"), &p("new.note"), "--key", vkey],
    );
    assert_eq!(code(&o), 1, "rolled back: {}", stdout(&o));
    assert!(stdout(&o).contains("INCONSISTENT"), "{}", stdout(&o));
}

#[test]
fn a_chain_re_signed_with_a_fresh_key_is_caught_by_the_old_key() {
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
    let vkey = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("old.note")],
        ),
        "checkpoint",
    );
    // An attacker with write access rebuilds the whole store from altered records under a key of
    // their own (a fresh keyring): `verify` on that directory passes…
    let forged = tmp.path().join("forged");
    let src = std::fs::read_to_string(support::repo().join("data-samples/events.jsonl"))
        .expect("samples")
        .replacen("\"result\":\"ok\"", "\"result\":\"nok\"", 1);
    std::fs::write(p("altered.jsonl"), src).expect("write");
    ok(iris(&forged, &["keygen", "--id", "k1"]), "keygen");
    ok(
        iris(
            &forged,
            &["import", "--format", "jsonl", &p("altered.jsonl")],
        ),
        "import altered",
    );
    ok(
        iris(&forged, &["verify"]),
        "the forged store verifies on its own",
    );
    ok(
        iris(
            &forged,
            &["checkpoint", "--format", "note", "--out", &p("forged.note")],
        ),
        "forged checkpoint",
    );
    // …but against the published key, its checkpoint is refused, and with its own key its log
    // does not extend the one published.
    let o = iris(
        &forged,
        &[
            "consistency",
            &p("old.note"),
            &p("forged.note"),
            "--key",
            vkey.trim(),
        ],
    );
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    let o = iris(&forged, &["consistency", &p("old.note"), &p("forged.note")]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    // A proof made by the forged store does not verify under the published key.
    ok(
        iris(
            &forged,
            &[
                "prove",
                "--event",
                "unemployment:1",
                "--out",
                &p("forged.json"),
            ],
        ),
        "forged proof",
    );
    let o = iris(
        &forged,
        &["verify-proof", &p("forged.json"), "--key", vkey.trim()],
    );
    assert_eq!(code(&o), 1, "{}", stdout(&o));
}

#[test]
fn the_server_serves_the_note_checkpoint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    load_samples(&data, &[], &[]);
    let admin = support::token(&data, &["--role", "admin"]);
    let cli_note = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "note"]),
        "note",
    ));
    let vkey = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    let server = support::Server::start(&data, &[]);
    let body: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("{}/v1/checkpoint", server.url))
        .bearer_auth(&admin)
        .send()
        .expect("GET /v1/checkpoint")
        .json()
        .expect("json");
    assert_eq!(body["note"].as_str(), Some(cli_note.as_str()), "{body}");
    assert_eq!(body["verifier_key"].as_str(), Some(vkey.trim()));
    assert!(
        body["seals"].as_u64().is_some(),
        "the JSON checkpoint is still there"
    );
}

#[test]
fn verify_checks_a_note_checkpoint_kept_elsewhere() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let p = |name: &str| tmp.path().join(name).to_str().expect("utf-8").to_owned();
    ok(iris(&data, &["keygen", "--id", "k1"]), "keygen");
    ok(
        iris(
            &data,
            &["import", "--format", "jsonl", "data-samples/events.jsonl"],
        ),
        "import",
    );
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("old.note")],
        ),
        "old checkpoint",
    );
    copy_dir(&data, &tmp.path().join("rolled-back"));
    // Rewritten with the genuine secret (it sits in keys/): the same key, an altered record, the
    // whole chain re-signed. `verify` alone passes.
    let resigned = tmp.path().join("resigned");
    copy_dir(&data, &resigned);
    for d in ["store", "wal", "proofs"] {
        let _ = std::fs::remove_dir_all(resigned.join(d));
    }
    let src = std::fs::read_to_string(support::repo().join("data-samples/events.jsonl"))
        .expect("samples")
        .replacen("\"result\":\"ok\"", "\"result\":\"nok\"", 1);
    std::fs::write(p("altered.jsonl"), src).expect("write");
    ok(
        iris(
            &resigned,
            &["import", "--format", "jsonl", &p("altered.jsonl")],
        ),
        "re-import altered",
    );
    ok(
        iris(&resigned, &["verify"]),
        "re-signed store passes plain verify",
    );

    // The genuine store grew: the old note still holds.
    ok(
        iris(
            &data,
            &[
                "import",
                "--format",
                "portal-csv",
                "data-samples/portal-export.csv",
            ],
        ),
        "import more",
    );
    let o = ok(
        iris(&data, &["verify", "--checkpoint", &p("old.note")]),
        "verify with the note",
    );
    assert!(stdout(&o).contains("OK:"), "{}", stdout(&o));
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("new.note")],
        ),
        "new checkpoint",
    );
    // Rolled back: TRUNCATED.
    let o = iris(
        &tmp.path().join("rolled-back"),
        &["verify", "--checkpoint", &p("new.note")],
    );
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("TRUNCATED checkpoint"),
        "{}",
        stdout(&o)
    );
    // Re-signed with the genuine key: DIVERGED.
    let o = iris(&resigned, &["verify", "--checkpoint", &p("old.note")]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("DIVERGED checkpoint"), "{}", stdout(&o));
    // A note signed by no key of the keyring: BAD-SIGNATURE.
    let other = tmp.path().join("other");
    ok(iris(&other, &["keygen", "--id", "k9"]), "keygen");
    let o = iris(&other, &["verify", "--checkpoint", &p("old.note")]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("BAD-SIGNATURE checkpoint"),
        "{}",
        stdout(&o)
    );
}

/// A witness process on a loopback port, killed when dropped.
struct WitnessProc {
    child: std::process::Child,
    url: String,
    key: String,
}

impl WitnessProc {
    fn start(dir: &Path, name: &str, log_key: &str) -> WitnessProc {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_iris"))
            .args([
                "witness",
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--name",
                name,
            ])
            .arg("--dir")
            .arg(dir)
            .args(["--log", log_key])
            .env("IRIS_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("witness starts");
        let out = child.stdout.take().expect("stdout");
        let mut lines = std::io::BufReader::new(out).lines();
        let mut key = String::new();
        let url = loop {
            let line = lines.next().expect("witness printed").expect("line");
            if let Some(k) = line.strip_prefix("witness key: ") {
                key = k.trim().to_owned();
            }
            if let Some(u) = line.strip_prefix("witness listening on ") {
                break u.trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        WitnessProc { child, url, key }
    }
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn witnesses_on_loopback_cosign_growth_and_refuse_rollback_and_forks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let p = |name: &str| tmp.path().join(name).to_str().expect("utf-8").to_owned();
    ok(iris(&data, &["keygen", "--id", "k1"]), "keygen");
    ok(
        iris(
            &data,
            &["import", "--format", "jsonl", "data-samples/events.jsonl"],
        ),
        "import",
    );
    let vkey = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    let vkey = vkey.trim().to_owned();
    let w1 = WitnessProc::start(&tmp.path().join("w1"), "w1.test", &vkey);
    let w2 = WitnessProc::start(&tmp.path().join("w2"), "w2.test", &vkey);
    // A witness that knows another key for this origin: it refuses (403).
    let other = tmp.path().join("other");
    ok(iris(&other, &["keygen", "--id", "k1"]), "keygen");
    let other_key = stdout(&ok(
        iris(&other, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    let w3 = WitnessProc::start(&tmp.path().join("w3"), "w3.test", other_key.trim());

    copy_dir(&data, &tmp.path().join("rolled-back"));
    let resigned = tmp.path().join("resigned");
    copy_dir(&data, &resigned);

    // The log grows, then is cosigned by w1 and w2.
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("n1.note")],
        ),
        "n1",
    );
    ok(
        iris(
            &data,
            &[
                "witness",
                "add",
                "--checkpoint",
                &p("n1.note"),
                "--witness",
                &w1.url,
                "--out",
                &p("c1.note"),
            ],
        ),
        "w1 cosigns n1",
    );
    ok(
        iris(
            &data,
            &[
                "import",
                "--format",
                "portal-csv",
                "data-samples/portal-export.csv",
            ],
        ),
        "import more",
    );
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("n2.note")],
        ),
        "n2",
    );
    // w1 knew n1 (409, then a consistency proof from there); w2 knew nothing.
    ok(
        iris(
            &data,
            &[
                "witness",
                "add",
                "--checkpoint",
                &p("n2.note"),
                "--witness",
                &w1.url,
                "--witness",
                &w2.url,
                "--out",
                &p("c2.note"),
            ],
        ),
        "w1 and w2 cosign n2",
    );
    let cosigned = std::fs::read_to_string(p("c2.note")).expect("cosigned");
    assert_eq!(cosigned.matches("\u{2014} ").count(), 3, "{cosigned}");

    // No file kept by hand (red team): `verify --witness-url` fetches what the witness last cosigned.
    // The live store extends it; the copy rolled back to before n1 is caught as TRUNCATED.
    let witnessed = ["verify", "--witness-url", &w1.url, "--witness", &w1.key];
    let o = iris(&data, &witnessed);
    assert_eq!(
        code(&o),
        0,
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let o = iris(&tmp.path().join("rolled-back"), &witnessed);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(stdout(&o).contains("TRUNCATED"), "{}", stdout(&o));
    // A witness that never cosigned this log has nothing to compare: an error, never a silent OK.
    let o = iris(&data, &["verify", "--witness-url", &w3.url]);
    assert_eq!(code(&o), 2, "{}", stdout(&o));

    // A proof against the cosigned checkpoint: 2 of 2 witnesses.
    ok(
        iris(
            &data,
            &[
                "prove",
                "--event",
                "unemployment:1",
                "--checkpoint",
                &p("c2.note"),
                "--out",
                &p("proof.json"),
            ],
        ),
        "prove",
    );
    let out = stdout(&ok(
        iris(
            &data,
            &[
                "verify-proof",
                &p("proof.json"),
                "--key",
                &vkey,
                "--witness",
                &w1.key,
                "--witness",
                &w2.key,
            ],
        ),
        "witnessed proof",
    ));
    assert!(out.contains("WITNESSED by w1.test, w2.test"), "{out}");
    // Without their cosignatures (a fresh checkpoint): refused when witnesses are required.
    ok(
        iris(
            &data,
            &[
                "prove",
                "--event",
                "unemployment:1",
                "--out",
                &p("bare.json"),
            ],
        ),
        "prove bare",
    );
    let o = iris(
        &data,
        &[
            "verify-proof",
            &p("bare.json"),
            "--key",
            &vkey,
            "--witness",
            &w1.key,
            "--quorum",
            "1",
        ],
    );
    assert_eq!(code(&o), 1, "{}", stdout(&o));

    // The refusing witness (403): `witness add` fails (2) but keeps the others' cosignatures; quorum 2 of 3.
    ok(
        iris(
            &data,
            &["checkpoint", "--format", "note", "--out", &p("n2b.note")],
        ),
        "n2b",
    );
    let o = iris(
        &data,
        &[
            "witness",
            "add",
            "--checkpoint",
            &p("n2b.note"),
            "--witness",
            &w3.url,
            "--witness",
            &w2.url,
            "--out",
            &p("c2b.note"),
        ],
    );
    assert_eq!(code(&o), 2, "w3 refuses");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused (403)"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(
        iris(
            &data,
            &[
                "prove",
                "--event",
                "unemployment:1",
                "--checkpoint",
                &p("c2b.note"),
                "--out",
                &p("p2b.json"),
            ],
        ),
        "prove c2b",
    );
    let keys = [
        "--witness",
        w1.key.as_str(),
        "--witness",
        w2.key.as_str(),
        "--witness",
        w3.key.as_str(),
    ];
    let p2b = p("p2b.json");
    let p2b_note = p("c2b.note");
    let mut args = vec!["verify-proof", &p2b, "--key", &vkey, "--quorum", "2"];
    args.extend(keys);
    let o = iris(&data, &args);
    assert_eq!(
        code(&o),
        1,
        "one cosignature of three, two required: {}",
        stdout(&o)
    );
    let mut args = vec!["verify-proof", &p2b, "--key", &vkey, "--quorum", "1"];
    args.extend(keys);
    ok(iris(&data, &args), "quorum 1");

    // `verify --checkpoint` with witnesses: 2 of 2 holds; 1 of 3 where 2 are required is named.
    let o = ok(
        iris(
            &data,
            &[
                "verify",
                "--checkpoint",
                &p("c2.note"),
                "--witness",
                &w1.key,
                "--witness",
                &w2.key,
            ],
        ),
        "verify with witnesses",
    );
    assert!(stdout(&o).contains("OK:"), "{}", stdout(&o));
    let mut args = vec!["verify", "--checkpoint", p2b_note.as_str(), "--quorum", "2"];
    args.extend(keys);
    let o = iris(&data, &args);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("BAD-SIGNATURE checkpoint") && stdout(&o).contains("2 required"),
        "{}",
        stdout(&o)
    );

    // Rolled back: the witness has cosigned a longer log and refuses the shorter one.
    let rb = tmp.path().join("rolled-back");
    ok(
        iris(
            &rb,
            &["checkpoint", "--format", "note", "--out", &p("rb.note")],
        ),
        "rb note",
    );
    let o = iris(
        &rb,
        &[
            "witness",
            "add",
            "--checkpoint",
            &p("rb.note"),
            "--witness",
            &w1.url,
        ],
    );
    assert_eq!(code(&o), 2, "rollback refused");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rolled back or stale"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // Re-signed with the genuine key after an altered record (a fork of n1's size): refused (422).
    for d in ["store", "wal", "proofs"] {
        let _ = std::fs::remove_dir_all(resigned.join(d));
    }
    let src = std::fs::read_to_string(support::repo().join("data-samples/events.jsonl"))
        .expect("samples")
        .replacen("\"result\":\"ok\"", "\"result\":\"nok\"", 1);
    std::fs::write(p("altered.jsonl"), src).expect("write");
    ok(
        iris(
            &resigned,
            &["import", "--format", "jsonl", &p("altered.jsonl")],
        ),
        "forge",
    );
    ok(
        iris(
            &resigned,
            &["checkpoint", "--format", "note", "--out", &p("forged.note")],
        ),
        "forged note",
    );
    let w4 = WitnessProc::start(&tmp.path().join("w1-copy"), "w4.test", &vkey);
    // w4 first cosigns the genuine n1, then is offered the fork of the same size.
    ok(
        iris(
            &data,
            &[
                "witness",
                "add",
                "--checkpoint",
                &p("n1.note"),
                "--witness",
                &w4.url,
            ],
        ),
        "w4 cosigns n1",
    );
    let o = iris(
        &resigned,
        &[
            "witness",
            "add",
            "--checkpoint",
            &p("forged.note"),
            "--witness",
            &w4.url,
        ],
    );
    assert_eq!(code(&o), 2, "fork refused");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("refused (422)"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn compaction_remembers_the_heads_of_the_files_it_deletes() {
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
    // No checkpoint before: the compaction itself computes the heads of the daily files.
    ok(iris(&data, &["compact", "--month", "2025-03"]), "compact");
    let cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("proofs/roots.json")).expect("cache"))
            .expect("json");
    let seals = cache["seals"].as_object().expect("seals");
    let with_head = seals
        .values()
        .filter(|e| e["roots"].as_array().is_some_and(|r| r.len() == 1))
        .count();
    assert!(with_head > 200, "daily seals keep their heads: {with_head}");
    // The event, now in the compacted file, is still proven.
    ok(
        iris(
            &data,
            &[
                "prove",
                "--event",
                "unemployment:1",
                "--out",
                &tmp.path().join("p.json").to_string_lossy(),
            ],
        ),
        "prove after compaction",
    );
}

#[test]
fn the_server_pushes_checkpoints_to_its_witnesses() {
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
    let vkey = stdout(&ok(
        iris(&data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    let w = WitnessProc::start(&tmp.path().join("w"), "w.test", vkey.trim());
    let _server = support::Server::start(&data, &["--witness", &w.url, "--witness-interval", "1"]);
    let note = data.join("proofs/checkpoint.note");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !note.exists() && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(&note).expect("a cosigned checkpoint was written");
    assert!(text.contains("\u{2014} w.test "), "{text}");
    let o = ok(
        iris(
            &data,
            &[
                "verify",
                "--checkpoint",
                &note.to_string_lossy(),
                "--witness",
                &w.key,
            ],
        ),
        "verify the pushed checkpoint",
    );
    assert!(stdout(&o).contains("OK:"), "{}", stdout(&o));
}

#[test]
fn the_signing_secret_can_live_off_the_data_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let secrets = tmp.path().join("secrets");
    let s = secrets.to_str().expect("utf-8");
    let env = [("IRIS_SECRET_DIR", s)];
    ok(
        support::iris_env(&data, &["keygen", "--id", "k1"], &env),
        "keygen",
    );
    assert!(secrets.join("k1.secret").exists(), "the secret is outside");
    let in_keys: Vec<_> = std::fs::read_dir(data.join("keys"))
        .expect("keys")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".secret"))
        .collect();
    assert!(
        in_keys.is_empty(),
        "no secret written into the data directory"
    );
    ok(
        support::iris_env(
            &data,
            &["import", "--format", "jsonl", "data-samples/events.jsonl"],
            &env,
        ),
        "import signs with the secret from outside",
    );
    ok(iris(&data, &["verify"]), "verify needs no secret");
    // Without it: a clear error naming the variable.
    let o = iris(&data, &["checkpoint", "--format", "note"]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("IRIS_SECRET_DIR") && err.contains("missing"),
        "{err}"
    );
    // Inside the data directory: refused.
    let inside = data.join("my-secrets");
    let o = support::iris_env(
        &data,
        &["keygen", "--id", "k2"],
        &[("IRIS_SECRET_DIR", inside.to_str().expect("utf-8"))],
    );
    assert_eq!(code(&o), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("inside the data directory"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
