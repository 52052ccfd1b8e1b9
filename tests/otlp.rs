//! `POST /v1/logs` driven by the OpenTelemetry Python SDK's OTLP/HTTP exporter (protobuf, gzip) and by
//! a hand-written OTLP/JSON request: the records become the same audit events as the sample, refusals
//! come back as OTLP partial success, and a resent batch is stored once.

mod support;

use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use support::{Server, iris, sample_events, token};

/// What a source system would run: the SDK's logger, a batch processor and the OTLP/HTTP exporter,
/// with a `requests` session hook that decodes each answer (the exporter itself drops the partial
/// success) with the official protobuf classes.
const EMIT_LOGS: &str = r#"
import json, sys, time, requests
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

job = json.load(sys.stdin)
answers = []
def keep(response, *args, **kwargs):
    answer = {"status": response.status_code}
    try:
        decoded = ExportLogsServiceResponse()
        decoded.ParseFromString(response.content)
        answer["rejected"] = decoded.partial_success.rejected_log_records
        answer["message"] = decoded.partial_success.error_message
    except Exception:
        answer["text"] = response.text
    answers.append(answer)
session = requests.Session()
session.hooks["response"].append(keep)

results = []
class Exporter(OTLPLogExporter):
    def export(self, batch):
        result = super().export(batch)
        results.append([len(batch), result.name])
        return result

exporter = Exporter(
    endpoint=job["url"] + "/v1/logs",
    headers={"Authorization": "Bearer " + job["token"]},
    compression=Compression.Gzip if job["gzip"] else Compression.NoCompression,
    session=session,
)
provider = LoggerProvider(resource=Resource.create({"service.name": "portal-audit"}))
provider.add_log_record_processor(
    BatchLogRecordProcessor(exporter, max_export_batch_size=512, schedule_delay_millis=50)
)
logger = provider.get_logger("portal.audit")
started = time.perf_counter()
for record in job["records"]:
    timestamp = record.pop("@timestamp")
    body = record.pop("@body", None)
    logger.emit(LogRecord(timestamp=timestamp, body=body, attributes=record))
provider.force_flush()
seconds = time.perf_counter() - started
provider.shutdown()
print(json.dumps({"seconds": seconds, "exports": results, "answers": answers}))
"#;

/// Runs the Python snippet; its JSON report.
fn emit(url: &str, token: &str, records: &[Value], gzip: bool) -> Value {
    let job = json!({ "url": url, "token": token, "records": records, "gzip": gzip });
    let mut child = Command::new("python3")
        .args(["-c", EMIT_LOGS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (see .ci/run for the packages)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(job.to_string().as_bytes())
        .expect("job written");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "the OpenTelemetry snippet failed (pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the snippet's report")
}

/// A sample event as an OTLP log record: the default mapping's `iris.*` attributes, the time in ns.
fn as_log_record(event: &str) -> Value {
    let e: Value = serde_json::from_str(event).expect("sample event");
    let ts = chrono::DateTime::parse_from_rfc3339(e["ts"].as_str().expect("ts")).expect("rfc3339");
    let nanos = ts.timestamp_nanos_opt().expect("in range");
    let mut r = json!({ "@timestamp": nanos });
    for (field, attribute) in [
        ("actor_id", "iris.actor.id"),
        ("actor_kind", "iris.actor.kind"),
        ("actor_org", "iris.actor.org"),
        ("actor_role", "iris.actor.role"),
        ("subject_id", "iris.subject.id"),
        ("subject_kind", "iris.subject.kind"),
        ("ticket", "iris.ticket"),
        ("message_type", "iris.message.type"),
        ("application", "iris.application"),
        ("operation", "iris.operation"),
        ("result", "iris.result"),
        ("error_code", "iris.error.code"),
        ("channel", "iris.channel"),
        ("purpose", "iris.purpose"),
        ("source_seq", "iris.source.seq"),
    ] {
        if !e[field].is_null() {
            r[attribute] = e[field].clone();
        }
    }
    r
}

fn sql(client: &reqwest::blocking::Client, url: &str, admin: &str, text: &str) -> Vec<Value> {
    let r: Value = client
        .post(format!("{url}/v1/sql"))
        .bearer_auth(admin)
        .json(&json!({ "sql": text }))
        .send()
        .expect("sql")
        .json()
        .expect("json");
    r["rows"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{r}"))
}

fn seal(client: &reqwest::blocking::Client, url: &str, admin: &str) {
    let r = client
        .post(format!("{url}/v1/seal"))
        .bearer_auth(admin)
        .send()
        .expect("seal");
    assert_eq!(r.status(), 200);
}

const COLUMNS: &str = "ts, actor_id, actor_kind, actor_org, actor_role, subject_id, subject_kind, \
    ticket, message_type, application, operation, result, error_code, channel, purpose, source, source_seq";

#[test]
fn the_python_exporter_logs_become_audit_events_once_with_reasons_for_refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(iris(dir.path(), &["keygen", "--id", "k1"]).status.success());
    let collector = token(dir.path(), &["--role", "collector", "--source", "portal"]);
    let admin = token(dir.path(), &["--role", "admin"]);
    let server = Server::start(dir.path(), &[]);
    let url = server.url.clone();
    let client = reqwest::blocking::Client::new();

    // 2,000 sample events, gzip-compressed like the Collector's otlphttp exporter sends them.
    let events = sample_events("portal", 1, 2000);
    let records: Vec<Value> = events.iter().map(|e| as_log_record(e)).collect();
    let report = emit(&url, &collector, &records, true);
    let exports = report["exports"].as_array().expect("exports");
    assert!(
        exports.iter().all(|e| e[1] == "SUCCESS"),
        "every export acknowledged: {report}"
    );
    let exported: u64 = exports.iter().map(|e| e[0].as_u64().unwrap_or(0)).sum();
    assert_eq!(exported, 2000, "{report}");
    for a in report["answers"].as_array().expect("answers") {
        assert_eq!(a["status"], 200, "{a}");
        assert_eq!(a["rejected"], 0, "{a}");
    }
    let seconds = report["seconds"].as_f64().unwrap_or(f64::NAN);
    println!(
        "OTLP ingest with the Python exporter: 2000 events in {seconds:.2} s ({:.0} events/s)",
        2000.0 / seconds
    );

    // Stored as the same events the sample holds, field by field.
    seal(&client, &url, &admin);
    let rows = sql(
        &client,
        &url,
        &admin,
        &format!("SELECT {COLUMNS} FROM events WHERE source = 'portal' ORDER BY source_seq"),
    );
    assert_eq!(rows.len(), 2000);
    for (row, event) in rows.iter().zip(&events) {
        let e: Value = serde_json::from_str(event).expect("event");
        for (field, value) in e.as_object().expect("object") {
            let stored = &row[field.as_str()];
            if field == "ts" {
                let a = chrono::DateTime::parse_from_rfc3339(value.as_str().expect("ts"));
                let b = chrono::DateTime::parse_from_rfc3339(
                    &stored.as_str().expect("stored ts").replace(' ', "T"),
                )
                .or_else(|_| {
                    chrono::DateTime::parse_from_rfc3339(&format!(
                        "{}Z",
                        stored.as_str().unwrap_or("").replace(' ', "T")
                    ))
                });
                assert_eq!(a.ok(), b.ok(), "ts of {event}: {stored}");
            } else {
                assert_eq!(stored, value, "{field} of {event}");
            }
        }
    }
    // A ticket's trace finds them too.
    let ticket = serde_json::from_str::<Value>(&events[0]).expect("event")["ticket"].clone();
    let t: Value = client
        .get(format!(
            "{url}/v1/trace?ticket={}",
            ticket.as_str().expect("ticket")
        ))
        .bearer_auth(&admin)
        .send()
        .expect("trace")
        .json()
        .expect("json");
    assert!(
        t["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["source"] == "portal")),
        "{t}"
    );

    // The same batch again: acknowledged, stored once, said in the partial success's warning.
    let again = emit(&url, &collector, &records[..300], false);
    for a in again["answers"].as_array().expect("answers") {
        assert_eq!(a["rejected"], 0, "{a}");
        assert!(
            a["message"]
                .as_str()
                .is_some_and(|m| m.contains("already stored")),
            "{a}"
        );
    }

    // Refusals: a record without its actor, a body with content, an unmapped attribute, another
    // source's name — each counted and explained in the exporter's answer; the good one is stored.
    let mut good = as_log_record(&events[1]);
    good["iris.source.seq"] = json!(2001);
    let mut no_actor = as_log_record(&events[2]);
    no_actor
        .as_object_mut()
        .expect("object")
        .remove("iris.actor.id");
    no_actor["iris.source.seq"] = json!(2002);
    let mut content = as_log_record(&events[3]);
    content["@body"] = json!("Dossier 42: the allowance was cut because …");
    content["iris.source.seq"] = json!(2003);
    let mut unmapped = as_log_record(&events[4]);
    unmapped["wage"] = json!(2400);
    unmapped["iris.source.seq"] = json!(2004);
    let mut other = as_log_record(&events[5]);
    other["iris.source"] = json!("someone-else");
    other["iris.source.seq"] = json!(2005);
    let report = emit(
        &url,
        &collector,
        &[good, no_actor, content, unmapped, other],
        false,
    );
    let answers = report["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 1, "{report}");
    let a = &answers[0];
    assert_eq!(a["status"], 200, "{a}");
    assert_eq!(a["rejected"], 4, "{a}");
    let message = a["message"].as_str().expect("message");
    for needle in [
        "record 2: missing required field `actor_id`",
        "record 3: `@body` is not mapped to the audit schema: content is never logged",
        "record 4: `wage` is not mapped",
        "record 5: source `someone-else` does not match this collector's source `portal`",
    ] {
        assert!(message.contains(needle), "{needle} not in {message}");
    }

    // OTLP/JSON (as a collector configured with `encoding: json` sends it).
    let export = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "portal-audit"}}]},
        "scopeLogs": [{"scope": {"name": "curl"}, "logRecords": [
            {"timeUnixNano": "1741083072000000000", "attributes": [
                {"key": "iris.actor.id", "value": {"stringValue": "U0577002"}},
                {"key": "iris.actor.kind", "value": {"stringValue": "person"}},
                {"key": "iris.actor.org", "value": {"stringValue": "onem0577"}},
                {"key": "iris.subject.id", "value": {"stringValue": "31050600120"}},
                {"key": "iris.subject.kind", "value": {"stringValue": "niss"}},
                {"key": "iris.ticket", "value": {"stringValue": "T-JSON-1"}},
                {"key": "iris.message.type", "value": {"stringValue": "L100"}},
                {"key": "iris.application", "value": {"stringValue": "dossier-social"}},
                {"key": "iris.operation", "value": {"stringValue": "consult"}},
                {"key": "iris.result", "value": {"stringValue": "ok"}},
                {"key": "iris.channel", "value": {"stringValue": "portal"}},
                {"key": "iris.source.seq", "value": {"intValue": "2006"}}
            ]},
            {"timeUnixNano": "1741083073000000000", "body": {"stringValue": "free text"}, "attributes": [
                {"key": "iris.source.seq", "value": {"intValue": 2007}}
            ]}
        ]}]
    }]});
    let r = client
        .post(format!("{url}/v1/logs"))
        .bearer_auth(&collector)
        .header("content-type", "application/json")
        .body(export.to_string())
        .send()
        .expect("json export");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let answer: Value = r.json().expect("json answer");
    assert_eq!(
        answer["partialSuccess"]["rejectedLogRecords"], 1,
        "{answer}"
    );
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("record 2: `@body` is not mapped")),
        "{answer}"
    );
    // Not OTLP at all, or no collector: refused before anything is read.
    let r = client
        .post(format!("{url}/v1/logs"))
        .bearer_auth(&collector)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .expect("text");
    assert_eq!(r.status(), 415);
    let r = client
        .post(format!("{url}/v1/logs"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(export.to_string())
        .send()
        .expect("admin");
    assert_eq!(r.status(), 403);
    let r = client
        .post(format!("{url}/v1/logs"))
        .bearer_auth(&collector)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xffu8; 16])
        .send()
        .expect("garbage");
    assert_eq!(r.status(), 400);

    seal(&client, &url, &admin);
    let n = sql(
        &client,
        &url,
        &admin,
        "SELECT count(*) AS n, max(source_seq) AS last FROM events WHERE source = 'portal'",
    );
    assert_eq!(
        n[0]["n"], 2002,
        "2,000 + the good one + the JSON one: {n:?}"
    );
    assert_eq!(n[0]["last"], 2006, "{n:?}");
    let logged = sql(
        &client,
        &url,
        &admin,
        "SELECT count(*) AS n FROM audit WHERE application = 'POST /v1/logs'",
    );
    assert!(
        logged[0]["n"].as_i64().unwrap_or(0) >= 8,
        "every export is an audit event: {logged:?}"
    );
}
