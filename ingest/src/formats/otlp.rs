//! OpenTelemetry logs (OTLP, protobuf or JSON encoding): each log record becomes one record of named
//! values — its attributes by key, its own parts as `@timestamp`, `@body`, `@resource.KEY`… — read
//! through a [`Mapping`] like any delimited export, so a source that already emits OpenTelemetry logs
//! needs a mapping file, not code. The default mapping is `data-samples/otlp/logs-mapping.toml`.

use super::mapping::Mapping;
use super::{FormatError, Refused};
use crate::validate::RawEvent;
use chrono::SecondsFormat;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;

pub use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};

/// The mapping shipped with Iris (`iris.*` attributes), used unless a deployment gives its own.
pub const DEFAULT_MAPPING: &str = include_str!("../../../data-samples/otlp/logs-mapping.toml");

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`
    Protobuf,
    /// `application/json` (OTLP/JSON: lowerCamelCase keys, hex trace ids, 64-bit integers as text).
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names, if OTLP/HTTP has it.
    pub fn of(content_type: &str) -> Option<Encoding> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/x-protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of an answer in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Decodes an export request. The error is the reason given to the sender.
pub fn decode(body: &[u8], encoding: Encoding) -> Result<ExportLogsServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body)
            .map_err(|e| format!("not an OTLP logs export request (protobuf): {e}")),
        Encoding::Json => serde_json::from_slice(body)
            .map_err(|e| format!("not an OTLP logs export request (JSON): {e}")),
    }
}

/// Encodes the answer to an export: how many records were refused and why (OTLP partial success).
pub fn encode_response(rejected: i64, message: String, encoding: Encoding) -> Vec<u8> {
    let partial_success =
        (rejected > 0 || !message.is_empty()).then_some(ExportLogsPartialSuccess {
            rejected_log_records: rejected,
            error_message: message,
        });
    let answer = ExportLogsServiceResponse { partial_success };
    match encoding {
        Encoding::Protobuf => answer.encode_to_vec(),
        // Serialising plain structs and strings cannot fail.
        Encoding::Json => serde_json::to_vec(&answer).unwrap_or_default(),
    }
}

/// The number of log records in a request.
pub fn count(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

/// A checked mapping for OTLP log records.
#[derive(Debug, Clone)]
pub struct LogMapping {
    mapping: Mapping,
}

impl LogMapping {
    /// The mapping shipped with Iris.
    pub fn builtin() -> LogMapping {
        // The shipped file is checked by this module's tests.
        LogMapping::parse(DEFAULT_MAPPING).unwrap_or_else(|e| panic!("built-in OTLP mapping: {e}"))
    }

    /// Parses a mapping file's text; fields must name attributes or parts, not column numbers.
    pub fn parse(text: &str) -> Result<LogMapping, String> {
        let mapping = Mapping::parse(text)?;
        mapping.check_named()?;
        Ok(LogMapping { mapping })
    }

    /// Reads a mapping file.
    pub fn from_file(path: &Path) -> Result<LogMapping, FormatError> {
        let text = std::fs::read_to_string(path).map_err(|source| FormatError::Io {
            path: path.to_owned(),
            source,
        })?;
        LogMapping::parse(&text).map_err(|reason| FormatError::Mapping {
            path: path.to_owned(),
            reason,
        })
    }

    /// What the mapping is for.
    pub fn description(&self) -> &str {
        &self.mapping.description
    }

    /// Maps every log record of `request`, calling `f(record_number, record)` (1-based, in the
    /// order of resources, scopes and records).
    pub fn read(
        &self,
        request: &ExportLogsServiceRequest,
        mut f: impl FnMut(u64, Result<RawEvent, Refused>),
    ) {
        let mut n = 0u64;
        for resource_logs in &request.resource_logs {
            let mut emitter = BTreeMap::new();
            if let Some(resource) = &resource_logs.resource {
                for kv in &resource.attributes {
                    if let Some(Ok(v)) = kv.value.as_ref().map(scalar) {
                        emitter.insert(format!("@resource.{}", kv.key), v);
                    }
                }
            }
            for scope_logs in &resource_logs.scope_logs {
                let mut named = emitter.clone();
                if let Some(scope) = &scope_logs.scope {
                    named.insert("@scope.name".into(), scope.name.clone());
                    named.insert("@scope.version".into(), scope.version.clone());
                }
                for record in &scope_logs.log_records {
                    n += 1;
                    f(n, self.record(record, named.clone()));
                }
            }
        }
    }

    /// One record: its parts and attributes by name, then the mapping.
    fn record(
        &self,
        record: &LogRecord,
        mut named: BTreeMap<String, String>,
    ) -> Result<RawEvent, Refused> {
        let refuse = |reason: String| Refused {
            reason,
            source: None,
            source_seq: None,
        };
        let ts = if record.time_unix_nano != 0 {
            record.time_unix_nano
        } else {
            record.observed_time_unix_nano
        };
        if ts != 0 {
            named.insert("@timestamp".into(), rfc3339(ts));
        }
        if record.observed_time_unix_nano != 0 {
            named.insert(
                "@observed_timestamp".into(),
                rfc3339(record.observed_time_unix_nano),
            );
        }
        named.insert("@severity_text".into(), record.severity_text.clone());
        named.insert(
            "@severity_number".into(),
            record.severity_number.to_string(),
        );
        named.insert("@event_name".into(), record.event_name.clone());
        named.insert("@trace_id".into(), hex(&record.trace_id));
        named.insert("@span_id".into(), hex(&record.span_id));
        let mut checked: Vec<&str> = Vec::with_capacity(record.attributes.len() + 1);
        let body = match record.body.as_ref().map(scalar) {
            None => String::new(),
            Some(Ok(text)) => text,
            Some(Err(kind)) => {
                return Err(refuse(format!(
                    "the body holds {kind}: content is never logged (send identifiers and codes as attributes)"
                )));
            }
        };
        if !body.is_empty() {
            checked.push("@body");
            named.insert("@body".into(), body);
        }
        for KeyValue { key, value, .. } in &record.attributes {
            let text = match value.as_ref().map(scalar) {
                None => String::new(),
                Some(Ok(text)) => text,
                Some(Err(kind)) => {
                    return Err(refuse(format!(
                        "attribute `{key}` holds {kind}: only text, numbers and booleans map to the audit schema"
                    )));
                }
            };
            checked.push(key);
            named.insert(key.clone(), text);
        }
        self.mapping.map_named(&named, checked)
    }
}

/// A scalar value as text, or what kind of structured value it is.
fn scalar(value: &AnyValue) -> Result<String, &'static str> {
    match &value.value {
        None => Ok(String::new()),
        Some(Value::StringValue(s)) => Ok(s.clone()),
        Some(Value::IntValue(i)) => Ok(i.to_string()),
        Some(Value::BoolValue(b)) => Ok(b.to_string()),
        Some(Value::DoubleValue(d)) => Ok(d.to_string()),
        Some(Value::BytesValue(_)) => Err("bytes"),
        Some(Value::ArrayValue(_)) => Err("an array"),
        Some(Value::KvlistValue(_)) => Err("a map"),
        Some(Value::StringValueStrindex(_)) => Err("a string-table reference"),
    }
}

fn rfc3339(nanos: u64) -> String {
    let secs = i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX);
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    chrono::DateTime::from_timestamp(secs, sub)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn text(key: &str, value: &str) -> KeyValue {
        kv(key, Value::StringValue(value.into()))
    }

    fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn read(records: Vec<LogRecord>) -> Vec<Result<RawEvent, Refused>> {
        let mut out = Vec::new();
        LogMapping::builtin().read(&request(records), |_, r| out.push(r));
        out
    }

    fn complete() -> LogRecord {
        LogRecord {
            time_unix_nano: 1_741_083_072_123_456_789,
            attributes: vec![
                text("iris.actor.id", "U0000001"),
                text("iris.subject.id", "85.07.30-033.28"),
                kv("iris.source.seq", Value::IntValue(42)),
                text("code.lineno", "12"),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn maps_attributes_timestamp_and_digits() {
        let out = read(vec![complete()]);
        let raw = out[0].as_ref().expect("mapped");
        assert_eq!(raw.ts.as_deref(), Some("2025-03-04T10:11:12.123456Z"));
        assert_eq!(raw.actor_id.as_deref(), Some("U0000001"));
        assert_eq!(raw.subject_id.as_deref(), Some("85073003328"));
        assert_eq!(raw.source_seq, Some(42));
        assert_eq!(raw.source, None, "left to the collector's token");
    }

    #[test]
    fn refuses_content_unmapped_attributes_and_structures() {
        let mut body = complete();
        body.body = Some(AnyValue {
            value: Some(Value::StringValue("Dossier of M. Dupont: …".into())),
        });
        let mut extra = complete();
        extra.attributes.push(text("note", "anything"));
        let mut map = complete();
        map.attributes
            .push(kv("iris.ticket", Value::KvlistValue(Default::default())));
        let out = read(vec![body, extra, map]);
        let reasons: Vec<String> = out
            .into_iter()
            .map(|r| r.expect_err("refused").reason)
            .collect();
        assert!(
            reasons[0].contains("`@body` is not mapped"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[1].contains("`note` is not mapped"),
            "{}",
            reasons[1]
        );
        assert!(reasons[2].contains("holds a map"), "{}", reasons[2]);
    }

    #[test]
    fn a_refused_record_keeps_its_key() {
        let mut r = complete();
        r.attributes.push(text("iris.source", "portal"));
        r.attributes.push(text("note", "x"));
        let refused = read(vec![r]).remove(0).expect_err("refused");
        assert_eq!(refused.source.as_deref(), Some("portal"));
        assert_eq!(refused.source_seq, Some(42));
    }

    #[test]
    fn column_numbers_are_refused_and_encodings_recognised() {
        let e = LogMapping::parse("[fields]\nts = 1\n").expect_err("numbers");
        assert!(e.contains("name the attribute"), "{e}");
        assert_eq!(
            Encoding::of("application/json; charset=utf-8"),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::of("application/x-protobuf"),
            Some(Encoding::Protobuf)
        );
        assert_eq!(Encoding::of("text/plain"), None);
    }

    #[test]
    fn json_and_protobuf_decode_to_the_same_request() {
        let req = request(vec![complete()]);
        let json = serde_json::to_vec(&req).expect("json");
        let text = String::from_utf8_lossy(&json);
        assert!(text.contains("timeUnixNano"), "{text}");
        assert_eq!(decode(&json, Encoding::Json).expect("json"), req);
        assert_eq!(
            decode(&req.encode_to_vec(), Encoding::Protobuf).expect("protobuf"),
            req
        );
        assert!(decode(b"\xff\xff", Encoding::Protobuf).is_err());
        assert!(decode(b"{", Encoding::Json).is_err());
    }
}
