//! The warehouse on a real S3-compatible server (moto, on loopback): import, query, verify, and tamper
//! with objects through the S3 API itself.

mod support;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{assert_finding, iris_env, load_samples, ok, stdout};

/// A moto S3 server on a free loopback port, killed when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    fn start() -> S3Server {
        let has_moto = |py: &str| {
            Command::new(py)
                .args(["-c", "import moto.server, flask_cors"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !has_moto("python3") {
            // `.ci/run` installs it first; installing here keeps `cargo test` working on a fresh machine.
            eprintln!("s3 test: installing moto[server] (the S3-compatible test server) with pip");
            let st = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "moto[server]"])
                .status()
                .expect("python3 runs");
            assert!(
                st.success() && has_moto("python3"),
                "the S3 test needs `pip install 'moto[server]'` (python3 with pip)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = S3Server { child, endpoint };
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::blocking::get(format!("{}/", server.endpoint)).is_err() {
            assert!(Instant::now() < deadline, "moto server did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// Environment for `iris` to reach this server (moto accepts any credentials).
    fn env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "iris-test"),
            ("AWS_SECRET_ACCESS_KEY", "iris-test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ]
    }

    /// A real S3 client (object_store's) for this server, to list and tamper as an intruder would.
    fn client(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_bucket_name(bucket)
            .with_access_key_id("intruder")
            .with_secret_access_key("intruder")
            .with_region("us-east-1")
            .with_allow_http(true)
            .build()
            .expect("s3 client")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn warehouse_on_s3_imports_queries_verifies_and_names_tampered_objects() {
    let s3 = S3Server::start();
    let http = reqwest::blocking::Client::new();
    let r = http
        .put(format!("{}/iris-test", s3.endpoint))
        .send()
        .expect("create bucket");
    assert!(r.status().is_success(), "{}", r.status());
    let env = s3.env();
    let dir = tempfile::tempdir().expect("tempdir");
    load_samples(dir.path(), &["--store", "s3://iris-test/warehouse"], &env);

    // Nothing but the write-ahead log, keys and tokens stays on local disk.
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            assert!(p.extension().is_none_or(|x| x != "parquet"), "local {p:?}");
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let bucket = s3.client("iris-test");
    let list = |prefix: &str| -> Vec<ObjectPath> {
        let mut keys: Vec<ObjectPath> = rt
            .block_on(
                bucket
                    .list(Some(&ObjectPath::from(prefix)))
                    .map_ok(|m| m.location)
                    .try_collect(),
            )
            .expect("list");
        keys.sort();
        keys
    };
    let parts = list("warehouse/events");
    let seals = list("warehouse/chain");
    assert!(parts.len() > 3 && !seals.is_empty(), "{parts:?} {seals:?}");

    // The data directory remembers its store: no --store needed from here on.
    let o = ok(
        iris_env(
            dir.path(),
            &["sql", "SELECT count(*) AS n FROM events", "--format", "csv"],
            &env,
        ),
        "sql",
    );
    assert_eq!(stdout(&o).lines().nth(1), Some("2350"));
    let o = iris_env(dir.path(), &["verify"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));

    // Change one byte of one object and delete another, through S3.
    let mut bytes = rt
        .block_on(async { bucket.get(&parts[0]).await?.bytes().await })
        .expect("get")
        .to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    rt.block_on(bucket.put(&parts[0], bytes.into()))
        .expect("put");
    rt.block_on(bucket.delete(&parts[1])).expect("delete");
    let o = iris_env(dir.path(), &["verify"], &env);
    assert_eq!(o.status.code(), Some(1));
    let report = stdout(&o);
    let name = |key: &ObjectPath| key.filename().expect("file name").to_owned();
    assert_finding(&report, "CHANGED", &name(&parts[0]));
    assert_finding(&report, "DELETED", &name(&parts[1]));
}
