//! Helpers shared by the integration tests: run the `iris` binary, start a server, load the samples.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The repository root, where `data-samples/` lives. Read at run time: a test binary built from another
/// clone sharing the same `CARGO_TARGET_DIR` must still read this clone's files.
pub fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Runs `iris --data DATA ARGS…` from the repository root with extra environment variables.
pub fn iris_env(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iris"))
        .arg("--data")
        .arg(data)
        .args(args)
        .current_dir(repo())
        .env("IRIS_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("iris runs")
}

/// Runs `iris --data DATA ARGS…` from the repository root.
pub fn iris(data: &Path, args: &[&str]) -> Output {
    iris_env(data, args, &[])
}

/// What a run printed on stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a run succeeded, showing its stderr otherwise.
pub fn ok(o: Output, what: &str) -> Output {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stderr),
        stdout(&o)
    );
    o
}

/// Creates a bearer token and returns it.
pub fn token(data: &Path, args: &[&str]) -> String {
    let mut a = vec!["token"];
    a.extend_from_slice(args);
    stdout(&ok(iris(data, &a), "token")).trim().to_owned()
}

/// The three committed sample files with their format names.
pub const SAMPLES: [(&str, &str); 3] = [
    ("jsonl", "data-samples/events.jsonl"),
    ("portal-csv", "data-samples/portal-export.csv"),
    ("legacy-semicolon", "data-samples/legacy-export.txt"),
];

/// Makes a key and imports the three samples into `data` (with `extra` arguments and environment).
pub fn load_samples(data: &Path, extra: &[&str], env: &[(&str, &str)]) {
    let mut args = extra.to_vec();
    args.extend(["keygen", "--id", "k1"]);
    ok(iris_env(data, &args, env), "keygen");
    for (format, file) in SAMPLES {
        let mut args = extra.to_vec();
        args.extend(["import", "--format", format, file]);
        ok(iris_env(data, &args, env), file);
    }
}

/// A running server, killed (SIGKILL, like `kill -9`) when dropped so a failed test leaves no process behind.
pub struct Server {
    child: Child,
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
}

impl Server {
    /// Starts `iris serve` on a free loopback port with a long seal interval, plus `extra` arguments.
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_iris"))
            .arg("--data")
            .arg(data)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--seal-interval",
                "3600",
            ])
            .args(extra)
            .current_dir(repo())
            .env("IRIS_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("serve starts");
        let out = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(out).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("server printed its address")
                .expect("line");
            if let Some(rest) = line.strip_prefix("Iris listening on ") {
                break rest.trim().to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server { child, url }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the server to exit by itself; its exit status, if it did.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Asserts that a `verify` report has a finding `CODE …` whose line mentions `needle`.
pub fn assert_finding(report: &str, code: &str, needle: &str) {
    assert!(
        report
            .lines()
            .any(|l| l.starts_with(code) && l.contains(needle)),
        "no {code} finding naming {needle} in:\n{report}"
    );
}

/// Copies the sample access files into DATA/access.
pub fn install_access(data: &Path) {
    for (dir, files) in [
        (
            "directory",
            ["institutions.csv", "users.csv", "supervision.csv"],
        ),
        (
            "policies",
            ["deliberations.toml", "citizen.toml", "projects.toml"],
        ),
    ] {
        let to = data.join("access").join(dir);
        std::fs::create_dir_all(&to).expect("mkdir");
        for f in files {
            std::fs::copy(
                repo().join("data-samples/access").join(dir).join(f),
                to.join(f),
            )
            .expect("copy access file");
        }
    }
}

/// Every Parquet file under `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(parquet_files(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// `n` valid events for `source`, numbered from `first`, taken from the committed sample.
pub fn sample_events(source: &str, first: u64, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("data-samples/events.jsonl")).expect("sample");
    text.lines()
        .take(2000)
        .cycle()
        .take(n)
        .enumerate()
        .map(|(i, l)| {
            let mut v: serde_json::Value = serde_json::from_str(l).expect("json");
            v["source"] = serde_json::json!(source);
            v["source_seq"] = serde_json::json!(first + i as u64);
            v.to_string()
        })
        .collect()
}

/// The same events as one NDJSON batch.
pub fn sample_batch(source: &str, first: u64, n: usize) -> String {
    sample_events(source, first, n).join("\n")
}
