//! Damage to the write-ahead log, done to the real files after a `kill -9`: a flipped byte in the middle
//! of a segment and the last bytes of a synced segment cut off. Iris must refuse to go on silently, name
//! the segment, the offset and the numbers at risk, and `iris recover` must salvage every intact frame and
//! record exactly what was lost (`LOST` in `verify`, never a collector's `SEQ-GAP`).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{Server, iris, ok, repo, sample_batch as events, stdout, token};

/// A store whose WAL holds `batches` acknowledged batches of 500 events of source `c`, server killed.
fn acknowledged_then_killed(batches: u64) -> tempfile::TempDir {
    acknowledged_then_killed_with(batches, &[])
}

/// The same, with extra `serve` arguments.
fn acknowledged_then_killed_with(batches: u64, extra: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(iris(dir.path(), &["keygen", "--id", "k1"]), "keygen");
    let tok = token(dir.path(), &["--role", "collector", "--source", "c"]);
    let mut server = Server::start(dir.path(), extra);
    let client = reqwest::blocking::Client::new();
    for b in 0..batches {
        let r = client
            .post(format!("{}/v1/events", server.url))
            .bearer_auth(&tok)
            .body(events("c", b * 500 + 1, 500))
            .send()
            .expect("request");
        assert_eq!(r.status(), 200);
        let a: serde_json::Value = r.json().expect("json");
        assert_eq!(a["accepted"], 500, "{a}");
    }
    server.kill();
    dir
}

/// The WAL segment holding the collector's batches (the largest).
fn data_segment(data: &Path) -> PathBuf {
    let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(data.join("wal"))
        .expect("wal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| (std::fs::metadata(&p).expect("meta").len(), p))
        .collect();
    segs.sort();
    segs.pop().expect("a segment").1
}

/// Runs `iris serve` and expects it to exit by itself (refusing to start) within a minute.
fn serve_refuses(data: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iris"))
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(repo())
        .env("IRIS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve runs");
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert_eq!(status.code(), Some(2), "serve must refuse with exit code 2");
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .expect("stderr")
                .read_to_string(&mut err)
                .expect("read");
            return err;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("serve started on a damaged write-ahead log");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(data: &Path, sql: &str) -> Vec<u64> {
    let o = ok(iris(data, &["sql", sql, "--format", "csv"]), sql);
    stdout(&o)
        .lines()
        .nth(1)
        .expect("row")
        .split(',')
        .map(|v| v.parse().expect("number"))
        .collect()
}

/// `lost: source `S` source_seq a–b (n numbers)` → n, summed over the lines of `source`.
fn lost_numbers(report: &str, source: &str) -> u64 {
    report
        .lines()
        .filter(|l| l.starts_with(&format!("lost: source `{source}`")))
        .map(|l| {
            l.rsplit_once('(')
                .and_then(|(_, r)| r.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .expect("count")
        })
        .sum()
}

#[test]
fn a_flipped_byte_mid_segment_stops_iris_and_recover_salvages_every_other_frame() {
    let dir = acknowledged_then_killed(20);
    let seg = data_segment(dir.path());
    let name = seg
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let mut bytes = std::fs::read(&seg).expect("segment");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&seg, &bytes).expect("flip");

    // The server refuses, naming the segment, the offset and the numbers at risk.
    let err = serve_refuses(dir.path());
    assert!(
        err.contains(&name) && err.contains("offset") && err.contains("source `c` source_seq"),
        "{err}"
    );
    assert!(err.contains("iris recover"), "{err}");
    // Nothing was sealed from the damaged log, and `verify` does not pass.
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    support::assert_finding(&stdout(&o), "WAL-DAMAGED", &name);

    // Recover salvages every intact frame and says exactly what was lost.
    let o = ok(iris(dir.path(), &["recover"]), "recover");
    let report = stdout(&o);
    let lost = lost_numbers(&report, "c");
    assert!(lost > 0 && lost <= 500, "one batch at most:\n{report}");
    let row = count(
        dir.path(),
        "SELECT count(*), count(DISTINCT source_seq), max(source_seq) FROM events WHERE source = 'c'",
    );
    assert_eq!(row[0], 10_000 - lost, "{report}");
    assert_eq!(row[0], row[1], "stored once");
    assert_eq!(row[2], 10_000, "frames after the damage are salvaged");
    eprintln!(
        "flipped byte at {mid} of {name}: {} of 10000 acknowledged events salvaged, {lost} lost",
        row[0]
    );
    assert!(dir.path().join("wal-damaged").join(&name).exists());

    // `verify` names the loss as such, never as the collector's gap.
    let o = iris(dir.path(), &["verify"]);
    let v = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{v}");
    support::assert_finding(&v, "LOST", "source c");
    assert!(!v.contains("SEQ-GAP"), "{v}");
    assert!(!v.contains("WAL-DAMAGED"), "{v}");
    // And the server starts again.
    let server = Server::start(dir.path(), &[]);
    drop(server);
}

#[test]
fn cutting_the_end_of_a_synced_segment_is_named_as_loss() {
    let dir = acknowledged_then_killed(10);
    let seg = data_segment(dir.path());
    let bytes = std::fs::read(&seg).expect("segment");
    std::fs::write(&seg, &bytes[..bytes.len() - 5]).expect("cut");
    let o = iris(dir.path(), &["seal"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains("acknowledged bytes are missing") && err.contains("at risk: source `"),
        "{err}"
    );
    let o = ok(iris(dir.path(), &["recover"]), "recover");
    let report = stdout(&o);
    // The last frame is the collector's last batch (4501–5000) or the audit event of that request.
    let lost_c = lost_numbers(&report, "c");
    let lost_iris = lost_numbers(&report, "iris");
    assert!(lost_c + lost_iris > 0, "the cut frame is named:\n{report}");
    if lost_c > 0 {
        assert!(
            report.contains("lost: source `c` source_seq 4501–5000 (500 numbers)"),
            "{report}"
        );
    }
    let row = count(dir.path(), "SELECT count(*) FROM events WHERE source = 'c'");
    assert_eq!(row[0] + lost_c, 5_000, "{report}");
    let o = iris(dir.path(), &["verify"]);
    let v = stdout(&o);
    support::assert_finding(&v, "LOST", "recorded lost");
    assert!(!v.contains("SEQ-GAP"), "{v}");
}

#[test]
fn a_torn_unacknowledged_tail_is_dropped_without_fuss() {
    let dir = acknowledged_then_killed(4);
    let seg = data_segment(dir.path());
    // Half a frame appended after the acknowledged end: never acknowledged.
    let mut bytes = std::fs::read(&seg).expect("segment");
    bytes.extend_from_slice(b"IWF1\x40\x00\x00\x00\x01\x02");
    std::fs::write(&seg, &bytes).expect("append");
    ok(iris(dir.path(), &["seal"]), "seal");
    assert_eq!(
        count(dir.path(), "SELECT count(*) FROM events WHERE source = 'c'")[0],
        2_000
    );
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn with_a_mirror_on_another_device_a_damaged_segment_loses_nothing() {
    let mirror = tempfile::tempdir().expect("mirror");
    let m = mirror.path().to_string_lossy().into_owned();
    let dir = acknowledged_then_killed_with(20, &["--wal-mirror", &m]);
    let seg = data_segment(dir.path());
    let name = seg.file_name().expect("name").to_owned();
    assert!(
        mirror.path().join(&name).exists(),
        "the mirror holds the same segment"
    );
    let mut bytes = std::fs::read(&seg).expect("segment");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&seg, &bytes).expect("flip");
    // The mirror was remembered: a plain `seal` reads the damaged segment from it.
    ok(iris(dir.path(), &["seal"]), "seal");
    let row = count(
        dir.path(),
        "SELECT count(*), count(DISTINCT source_seq) FROM events WHERE source = 'c'",
    );
    assert_eq!(row, vec![10_000, 10_000]);
    assert!(!seg.exists() && !mirror.path().join(&name).exists());
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// Offsets of the frames of a segment (`[magic][len u32][crc u32][payload]`, walked from the start).
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 12 <= bytes.len() && &bytes[at..at + 4] == b"IWF1" {
        out.push(at);
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        at += 12 + len as usize;
    }
    out
}

#[test]
fn a_segment_cut_at_a_frame_boundary_or_to_nothing_names_its_lost_end() {
    for cut in ["4th-from-last frame", "0 bytes"] {
        let dir = acknowledged_then_killed(10);
        let seg = data_segment(dir.path());
        let bytes = std::fs::read(&seg).expect("segment");
        let frames = frame_offsets(&bytes);
        assert!(frames.len() >= 8, "{} frames", frames.len());
        let at = if cut == "0 bytes" {
            0
        } else {
            frames[frames.len() - 4]
        };
        std::fs::write(&seg, &bytes[..at]).expect("cut");
        let err = serve_refuses(dir.path());
        assert!(err.contains("at risk: source `c`"), "{cut}: {err}");
        let o = ok(iris(dir.path(), &["recover"]), "recover");
        let report = stdout(&o);
        let lost_c = lost_numbers(&report, "c");
        let row = count(dir.path(), "SELECT count(*) FROM events WHERE source = 'c'");
        assert!(lost_c >= 500, "{cut}: the lost end is named:\n{report}");
        assert_eq!(row[0] + lost_c, 5_000, "{cut}: {report}");
        assert!(
            report.contains(&format!("source `c` source_seq {}–5000", row[0] + 1)),
            "{cut}: {report}"
        );
        eprintln!("cut at {cut}: {} stored, {lost_c} named lost", row[0]);
        let o = iris(dir.path(), &["verify"]);
        let v = stdout(&o);
        assert_eq!(o.status.code(), Some(1), "{v}");
        support::assert_finding(&v, "LOST", "source c");
        assert!(!v.contains("SEQ-GAP"), "{v}");
    }
}

#[test]
fn a_loss_that_cannot_be_named_needs_the_operators_word_and_stays_lost_in_verify() {
    let dir = acknowledged_then_killed(4);
    let seg = data_segment(dir.path());
    let name = seg
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    std::fs::write(&seg, b"").expect("cut");
    std::fs::write(seg.with_extension("ack"), b"IWA2 garbage").expect("damage the record");
    let err = serve_refuses(dir.path());
    assert!(err.contains(&name), "{err}");
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    support::assert_finding(&stdout(&o), "WAL-DAMAGED", &name);
    let o = iris(dir.path(), &["recover"]);
    assert_ne!(o.status.code(), Some(0), "recover must not finish silently");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("--accept-unidentified-loss"), "{err}");
    let o = ok(
        iris(dir.path(), &["recover", "--accept-unidentified-loss"]),
        "recover",
    );
    assert!(stdout(&o).contains("UNIDENTIFIED"), "{}", stdout(&o));
    let o = iris(dir.path(), &["verify"]);
    let v = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{v}");
    support::assert_finding(&v, "LOST", &name);
}

#[test]
fn a_deleted_segment_is_named_at_start_and_by_verify() {
    let dir = acknowledged_then_killed(4);
    let seg = data_segment(dir.path());
    let name = seg
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    std::fs::remove_file(&seg).expect("rm log");
    std::fs::remove_file(seg.with_extension("ack")).expect("rm ack");
    let err = serve_refuses(dir.path());
    assert!(err.contains(&name) && err.contains("missing"), "{err}");
    let o = iris(dir.path(), &["verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    support::assert_finding(&stdout(&o), "WAL-DAMAGED", &name);
    let o = iris(dir.path(), &["recover"]);
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    ok(
        iris(dir.path(), &["recover", "--accept-unidentified-loss"]),
        "recover",
    );
    let o = iris(dir.path(), &["verify"]);
    let v = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{v}");
    support::assert_finding(&v, "LOST", &name);
    assert!(!v.contains("WAL-DAMAGED"), "{v}");
    let server = Server::start(dir.path(), &[]);
    drop(server);
}
