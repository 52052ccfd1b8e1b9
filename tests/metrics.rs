//! `GET /metrics` on the separate metrics listener, scraped and parsed with the Prometheus project's
//! own Python parser (`prometheus_client`, OpenMetrics) before and after ingest, queries, refusals, a
//! seal and a verify: each metric moves as it should.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use support::{Server, install_access, iris, sample_events, token};

/// Parses an exposition with `prometheus_client`'s OpenMetrics parser (which refuses a malformed
/// one) into `name{label="v",…}` → value, labels sorted.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        out[f"{s.name}{{{labels}}}"] = s.value
print(json.dumps(out))
"#;

type Samples = BTreeMap<String, f64>;

fn scrape(metrics: &str) -> Samples {
    let r = reqwest::blocking::get(format!("{metrics}/metrics")).expect("scrape");
    assert_eq!(r.status(), 200);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let text = r.text().expect("body");
    let mut child = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("written");
    let out = child.wait_with_output().expect("parser ends");
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition (pip install prometheus_client):\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("parsed samples")
}

fn value(samples: &Samples, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn metrics_move_with_ingest_queries_refusals_seals_and_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(iris(dir.path(), &["keygen", "--id", "k1"]).status.success());
    install_access(dir.path());
    let collector = token(dir.path(), &["--role", "collector", "--source", "c1"]);
    let admin = token(dir.path(), &["--role", "admin"]);
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start(dir.path(), &["--metrics-listen", &metrics_addr]);
    let url = server.url.clone();
    let metrics = format!("http://{metrics_addr}");
    let client = reqwest::blocking::Client::new();

    let before = scrape(&metrics);
    assert_eq!(value(&before, "iris_last_verify_ok{}"), -1.0, "{before:?}");
    assert_eq!(
        value(
            &before,
            r#"iris_ingest_records_total{outcome="accepted",protocol="ndjson",source="c1"}"#
        ),
        0.0
    );
    assert!(
        before.contains_key(r#"iris_privacy_budget_rho{project="LM-2025-01"}"#),
        "each project's budget: {before:?}"
    );

    // Ingest: three good events and one bad NISS over NDJSON, one over OTLP/JSON.
    let mut batch = sample_events("c1", 1, 3);
    let mut bad: Value = serde_json::from_str(&batch[0]).expect("event");
    bad["subject_kind"] = json!("niss");
    bad["subject_id"] = json!("85073003329");
    bad["source_seq"] = json!(4);
    batch.push(bad.to_string());
    let r = client
        .post(format!("{url}/v1/events"))
        .bearer_auth(&collector)
        .body(batch.join("\n"))
        .send()
        .expect("events");
    assert_eq!(r.status(), 200);
    let export = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1741083072000000000", "attributes": [
            {"key": "iris.actor.id", "value": {"stringValue": "U0577002"}},
            {"key": "iris.actor.kind", "value": {"stringValue": "person"}},
            {"key": "iris.actor.org", "value": {"stringValue": "onem0577"}},
            {"key": "iris.subject.id", "value": {"stringValue": "31050600120"}},
            {"key": "iris.subject.kind", "value": {"stringValue": "niss"}},
            {"key": "iris.ticket", "value": {"stringValue": "T-1"}},
            {"key": "iris.message.type", "value": {"stringValue": "L100"}},
            {"key": "iris.application", "value": {"stringValue": "dossier-social"}},
            {"key": "iris.operation", "value": {"stringValue": "consult"}},
            {"key": "iris.result", "value": {"stringValue": "ok"}},
            {"key": "iris.channel", "value": {"stringValue": "portal"}},
            {"key": "iris.source.seq", "value": {"intValue": "5"}}
        ]}
    ]}]}]});
    let r = client
        .post(format!("{url}/v1/logs"))
        .bearer_auth(&collector)
        .header("content-type", "application/json")
        .body(export.to_string())
        .send()
        .expect("logs");
    assert_eq!(r.status(), 200);

    // Queries and refusals: an admin's SQL, a collector's refused SQL, no token at all.
    let r = client
        .post(format!("{url}/v1/sql"))
        .bearer_auth(&admin)
        .json(&json!({"sql": "SELECT count(*) AS n FROM events"}))
        .send()
        .expect("sql");
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{url}/v1/sql"))
        .bearer_auth(&collector)
        .json(&json!({"sql": "SELECT 1"}))
        .send()
        .expect("sql");
    assert_eq!(r.status(), 403);
    let r = client
        .post(format!("{url}/v1/sql"))
        .json(&json!({"sql": "SELECT 1"}))
        .send()
        .expect("sql");
    assert_eq!(r.status(), 401);
    // The metrics are not on the API's port (where every path needs a token).
    assert_eq!(
        client
            .get(format!("{url}/metrics"))
            .send()
            .expect("api")
            .status(),
        401
    );

    let during = scrape(&metrics);
    for (key, expected) in [
        (
            r#"iris_ingest_records_total{outcome="accepted",protocol="ndjson",source="c1"}"#,
            3.0,
        ),
        (
            r#"iris_ingest_records_total{outcome="rejected",protocol="ndjson",source="c1"}"#,
            1.0,
        ),
        (
            r#"iris_ingest_records_total{outcome="accepted",protocol="otlp",source="c1"}"#,
            1.0,
        ),
        (
            r#"iris_ingest_rejections_total{reason="check_digit",source="c1"}"#,
            1.0,
        ),
        (r#"iris_ingest_ack_seconds_count{protocol="ndjson"}"#, 1.0),
        (r#"iris_ingest_ack_seconds_count{protocol="otlp"}"#, 1.0),
        (
            r#"iris_request_duration_seconds_count{method="POST",role="admin",route="/v1/sql"}"#,
            1.0,
        ),
        (
            r#"iris_refusals_total{role="collector",route="/v1/sql",status="403"}"#,
            1.0,
        ),
        (
            r#"iris_refusals_total{role="none",route="/v1/sql",status="401"}"#,
            1.0,
        ),
        (
            r#"iris_refusals_total{role="none",route="unmatched",status="401"}"#,
            1.0,
        ),
    ] {
        assert_eq!(value(&during, key), expected, "{key} in {during:?}");
    }
    assert!(value(&during, "iris_wal_bytes{}") > 0.0, "{during:?}");
    assert!(
        value(&during, "iris_unsealed_events{}") >= 4.0,
        "{during:?}"
    );
    assert!(
        value(&during, "iris_oldest_unsealed_seconds{}") > 0.0,
        "{during:?}"
    );
    assert_eq!(value(&during, "iris_seals_total{}"), 0.0);

    // A seal and a verify.
    let r = client
        .post(format!("{url}/v1/seal"))
        .bearer_auth(&admin)
        .send()
        .expect("seal");
    assert_eq!(r.status(), 200);
    let r = client
        .post(format!("{url}/v1/verify"))
        .bearer_auth(&admin)
        .send()
        .expect("verify");
    assert_eq!(r.status(), 200);
    let after = scrape(&metrics);
    assert_eq!(value(&after, "iris_seals_total{}"), 1.0, "{after:?}");
    assert!(value(&after, "iris_last_seal_timestamp_seconds{}") > 1.7e9);
    assert_eq!(value(&after, "iris_last_verify_ok{}"), 1.0, "{after:?}");
    assert!(value(&after, "iris_last_verify_timestamp_seconds{}") > 1.7e9);
    // Only the requests since the seal wait for the next one (each is an audit event).
    assert!(
        value(&after, "iris_unsealed_events{}") < value(&during, "iris_unsealed_events{}") + 3.0
            && value(&after, "iris_unsealed_events{}") <= 3.0,
        "{after:?}"
    );
    // Bounded labels: no principal, subject, ticket or raw path anywhere.
    for key in after.keys() {
        assert!(
            !key.contains("T-1") && !key.contains("31050600120") && !key.contains("/metrics"),
            "{key}"
        );
    }
}
