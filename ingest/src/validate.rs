//! Turning an untrusted record into an [`Event`], or into a reason it was refused (DESIGN §2).

use crate::checkdigit::{is_valid_bce, is_valid_niss, is_valid_onss};
use crate::event::{
    ActorKind, Event, Operation, Outcome, SubjectKind, format_micros, parse_rfc3339_micros,
};
use serde::Deserialize;

/// A record as a source sent it: every field optional so that a missing one gets its own reason.
/// Unknown fields are refused at parse time: that is how content is kept out of the log.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub ts: Option<String>,
    pub actor_id: Option<String>,
    pub actor_kind: Option<String>,
    pub actor_org: Option<String>,
    pub actor_role: Option<String>,
    pub subject_id: Option<String>,
    pub subject_kind: Option<String>,
    pub ticket: Option<String>,
    pub message_type: Option<String>,
    pub application: Option<String>,
    pub operation: Option<String>,
    pub result: Option<String>,
    pub error_code: Option<String>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub source: Option<String>,
    pub source_seq: Option<u64>,
}

/// The schema's field names, in order.
pub const FIELDS: [&str; 17] = [
    "ts",
    "actor_id",
    "actor_kind",
    "actor_org",
    "actor_role",
    "subject_id",
    "subject_kind",
    "ticket",
    "message_type",
    "application",
    "operation",
    "result",
    "error_code",
    "channel",
    "purpose",
    "source",
    "source_seq",
];

/// Lenient view of a refused record: enough to account for its sequence number.
#[derive(Deserialize)]
struct KeyProbe {
    source: Option<serde_json::Value>,
    source_seq: Option<serde_json::Value>,
}

/// The idempotency key of a record that could not be parsed strictly, if it can be read at all.
pub fn probe_key(line: &str) -> (Option<String>, Option<u64>) {
    match serde_json::from_str::<KeyProbe>(line) {
        Ok(p) => (
            p.source.and_then(|v| v.as_str().map(str::to_owned)),
            p.source_seq.and_then(|v| v.as_u64()),
        ),
        Err(_) => (None, None),
    }
}

/// Parses one JSON line of the canonical schema. The error is the reason given to the sender.
pub fn parse_json_line(line: &str) -> Result<RawEvent, String> {
    serde_json::from_str::<RawEvent>(line).map_err(|e| {
        let msg = e.to_string();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let field = rest.split('`').next().unwrap_or("?");
            format!("field `{field}` is not part of the audit schema: the content of exchanged data is never logged")
        } else if e.is_data() {
            format!("field of the wrong type: {msg}")
        } else {
            format!("malformed JSON: {msg}")
        }
    })
}

/// Longest value accepted in a field: identifiers and codes, never free text.
pub const MAX_FIELD_LEN: usize = 128;
/// Longest `purpose` (a deliberation reference, possibly with a case number).
pub const MAX_PURPOSE_LEN: usize = 256;

/// Validates records against the schema rules; holds the clock it judges timestamps by.
#[derive(Clone, Debug)]
pub struct Validator {
    /// Timestamps before this (µs) are refused.
    pub min_ts: i64,
    /// Timestamps after this (µs) are refused as in the future.
    pub max_ts: i64,
}

impl Validator {
    /// A validator accepting timestamps from 2000-01-01 to one hour past now (clock skew).
    pub fn now() -> Self {
        let now = chrono::Utc::now().timestamp_micros();
        Validator {
            min_ts: 946_684_800_000_000,
            max_ts: now + 3_600_000_000,
        }
    }

    /// Checks every rule and builds the event, or says what is wrong (the first problem found).
    pub fn validate(&self, raw: RawEvent) -> Result<Event, String> {
        let ts_text = required("ts", raw.ts)?;
        let ts = parse_rfc3339_micros(&ts_text).ok_or_else(|| {
            format!("bad timestamp `{ts_text}`: expected RFC 3339, e.g. 2025-03-04T10:11:12Z")
        })?;
        if ts < self.min_ts {
            return Err(format!("timestamp {ts_text} is before 2000-01-01"));
        }
        if ts > self.max_ts {
            return Err(format!(
                "timestamp {ts_text} is in the future (now is {})",
                format_micros(self.max_ts - 3_600_000_000)
            ));
        }
        let actor_kind = code(
            "actor_kind",
            raw.actor_kind,
            ActorKind::parse,
            ActorKind::choices,
        )?;
        let subject_kind = code(
            "subject_kind",
            raw.subject_kind,
            SubjectKind::parse,
            SubjectKind::choices,
        )?;
        let operation = code(
            "operation",
            raw.operation,
            Operation::parse,
            Operation::choices,
        )?;
        let result = code("result", raw.result, Outcome::parse, Outcome::choices)?;
        let subject_id = text("subject_id", raw.subject_id)?;
        if subject_kind == SubjectKind::Query {
            return Err(format!(
                "subject_kind `query` is reserved for Iris's own audit events (use {})",
                SubjectKind::ALL[..3]
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        let valid = match subject_kind {
            SubjectKind::Niss => is_valid_niss(&subject_id),
            SubjectKind::Bce => is_valid_bce(&subject_id),
            SubjectKind::Onss => is_valid_onss(&subject_id),
            SubjectKind::Query => false,
        };
        if !valid {
            let rule = match subject_kind {
                SubjectKind::Niss => "11 digits with check digits 97 − (YYMMDDnnn mod 97)",
                SubjectKind::Bce => {
                    "10 digits starting with 0 or 1, check digits 97 − (first eight mod 97)"
                }
                SubjectKind::Onss | SubjectKind::Query => "5 to 10 digits",
            };
            return Err(format!(
                "subject_id `{subject_id}` is not a valid {} number ({rule})",
                subject_kind.as_str()
            ));
        }
        let error_code = optional("error_code", raw.error_code, MAX_FIELD_LEN)?;
        if error_code.is_some() && result == Outcome::Ok {
            return Err("error_code is only allowed when result is nok".into());
        }
        let channel = text("channel", raw.channel)?;
        if !is_token(&channel) {
            return Err(format!(
                "channel `{channel}` must be a lowercase code (portal, webservice, batch, mq, …)"
            ));
        }
        let source = text("source", raw.source)?;
        if !is_token(&source) {
            return Err(format!(
                "source `{source}` must be a lowercase code of letters, digits, `-` or `_`"
            ));
        }
        if source == OWN_SOURCE {
            return Err(format!(
                "source `{OWN_SOURCE}` is reserved for Iris's own audit events"
            ));
        }
        let source_seq = raw.source_seq.ok_or_else(|| missing("source_seq"))?;
        let message_type = text("message_type", raw.message_type)?;
        // A network event dressed as one of Iris's own (`iris.sql`, `iris.proof`…) would mislead
        // whoever reads the log.
        if message_type
            .get(..OWN_MESSAGE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(OWN_MESSAGE_PREFIX))
        {
            return Err(format!(
                "message_type `{message_type}`: the prefix `{OWN_MESSAGE_PREFIX}` is reserved for Iris's own audit events"
            ));
        }
        Ok(Event {
            ts,
            actor_id: text("actor_id", raw.actor_id)?,
            actor_kind,
            actor_org: text("actor_org", raw.actor_org)?,
            actor_role: optional("actor_role", raw.actor_role, MAX_FIELD_LEN)?,
            subject_id,
            subject_kind,
            ticket: text("ticket", raw.ticket)?,
            message_type,
            application: text("application", raw.application)?,
            operation,
            result,
            error_code,
            channel,
            purpose: optional("purpose", raw.purpose, MAX_PURPOSE_LEN)?,
            source,
            source_seq,
        })
    }
}

/// The source of Iris's own audit events (who queried what): no collector may use it.
pub const OWN_SOURCE: &str = "iris";

/// The prefix of Iris's own audit events' message types, refused from any source.
pub const OWN_MESSAGE_PREFIX: &str = "iris.";

/// Whether `q` names a quarter, `YYYY-Qn` with n from 1 to 4.
pub fn is_quarter(q: &str) -> bool {
    let b = q.as_bytes();
    b.len() == 7
        && b[..4].iter().all(u8::is_ascii_digit)
        && &b[4..6] == b"-Q"
        && (b'1'..=b'4').contains(&b[6])
}

/// A lowercase code usable in a path: `[a-z0-9_-]{1,64}`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

fn missing(field: &str) -> String {
    format!("missing required field `{field}`")
}

fn required(field: &str, v: Option<String>) -> Result<String, String> {
    match v {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(missing(field)),
    }
}

fn text(field: &str, v: Option<String>) -> Result<String, String> {
    let s = required(field, v)?;
    check_text(field, &s, MAX_FIELD_LEN)?;
    Ok(s)
}

fn optional(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, String> {
    match v {
        Some(s) if !s.trim().is_empty() => {
            check_text(field, &s, max)?;
            Ok(Some(s))
        }
        _ => Ok(None),
    }
}

fn check_text(field: &str, s: &str, max: usize) -> Result<(), String> {
    let n = s.chars().count();
    if n > max {
        return Err(format!(
            "field `{field}` is {n} characters long (at most {max}): free text is never logged"
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("field `{field}` contains control characters"));
    }
    Ok(())
}

fn code<T>(
    field: &str,
    v: Option<String>,
    parse: fn(&str) -> Option<T>,
    choices: fn() -> String,
) -> Result<T, String> {
    let s = required(field, v)?;
    parse(&s).ok_or_else(|| format!("{field} `{s}` is not one of {}", choices()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"ts":"2025-03-04T10:11:12Z","actor_id":"u123","actor_kind":"person","actor_org":"inst0001","subject_id":"85073003328","subject_kind":"niss","ticket":"T-1","message_type":"A001","application":"dossier","operation":"consult","result":"ok","channel":"portal","source":"hub","source_seq":1}"#;

    fn check(line: &str) -> Result<Event, String> {
        let raw = parse_json_line(line)?;
        Validator::now().validate(raw)
    }

    #[test]
    fn accepts_a_good_record() {
        let e = check(GOOD).expect("valid");
        assert_eq!(e.subject_id, "85073003328");
        assert_eq!(e.operation, Operation::Consult);
    }

    #[test]
    fn refuses_content_fields_by_name() {
        let line = GOOD.replace(
            "\"source_seq\":1",
            "\"source_seq\":1,\"payload\":\"secret\"",
        );
        let err = check(&line).unwrap_err();
        assert!(
            err.contains("`payload`") && err.contains("never logged"),
            "{err}"
        );
        assert_eq!(probe_key(&line), (Some("hub".into()), Some(1)));
    }

    #[test]
    fn names_each_problem() {
        let cases = [
            (
                GOOD.replace("85073003328", "85073003329"),
                "not a valid niss",
            ),
            (
                GOOD.replace("\"ticket\":\"T-1\",", ""),
                "missing required field `ticket`",
            ),
            (
                GOOD.replace("2025-03-04T10:11:12Z", "04/03/2025"),
                "bad timestamp",
            ),
            (
                GOOD.replace("2025-03-04T10:11:12Z", "2999-03-04T10:11:12Z"),
                "in the future",
            ),
            (GOOD.replace("2025-03-04", "1999-03-04"), "before 2000"),
            (
                GOOD.replace("consult", "peek"),
                "operation `peek` is not one of",
            ),
            (
                GOOD.replace("\"source_seq\":1", "\"source_seq\":\"x\""),
                "wrong type",
            ),
            (GOOD[..40].to_string(), "malformed JSON"),
            (GOOD.replace("\"hub\"", "\"../etc\""), "source `../etc`"),
            (GOOD.replace("\"hub\"", "\"iris\""), "reserved for Iris"),
            (GOOD.replace("\"niss\"", "\"query\""), "reserved for Iris"),
            (
                GOOD.replace("\"A001\"", "\"iris.sql\""),
                "reserved for Iris",
            ),
            (
                GOOD.replace("\"A001\"", "\"IRIS.proof\""),
                "reserved for Iris",
            ),
            (
                GOOD.replace("\"ok\"", "\"ok\",\"error_code\":\"E1\""),
                "only allowed when result is nok",
            ),
            (
                GOOD.replace("\"T-1\"", &format!("\"{}\"", "x".repeat(300))),
                "free text is never logged",
            ),
        ];
        for (line, want) in cases {
            let err = check(&line).expect_err(&line);
            assert!(
                err.contains(want),
                "{line}\n  gave: {err}\n  wanted: {want}"
            );
        }
    }
}
