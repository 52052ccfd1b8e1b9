//! Accountability: every HTTP request — whatever its route and outcome — becomes an event of Iris's
//! own source in the same sealed chain (written by the layer in [`crate::guard`]), and so does every
//! change of an access file.
//! An auditor traces the tracers with the same tools: `actor_id` is the principal.
//!
//! Field use for these events: `actor_id` the principal, `actor_org` the institution (or the role),
//! `actor_role` the role, `subject_id` what was searched for (a NISS/BCE/ONSS with its kind, or the
//! search itself with kind `query`), `ticket` the request id, `message_type` `iris.<kind>` (`sql`,
//! `trace`, `me`, `research`, `report`, `chain`, `ingest`, `seal`, `patterns`, `ui`, `health`,
//! `http` for an unknown route, `policy`), `application` the route (`POST /v1/sql`), `purpose` the
//! deliberation and case reference (or the deciding policies), `result` ok or nok, `error_code` the
//! outcome: `rows=N`, `status=200`, or the reason of the refusal or failure — followed, when a client
//! certificate was presented, by ` | certificate subject=…; issuer=…`; `channel` the transport and
//! sign-in method (`http-token`, `https-token`, `https-certificate`, `https-none`, `http-none`;
//! `internal` for Iris's own events).

use crate::error::ApiError;
use iris_access::Principal;
use iris_ingest::checkdigit::{is_valid_bce, is_valid_niss, is_valid_onss};
use iris_ingest::commit::{Batch, Committer};
use iris_ingest::validate::OWN_SOURCE;
use iris_ingest::{ActorKind, Event, Operation, Outcome, SubjectKind};
use sha2::Digest as _;

/// Longest search text kept in `subject_id`.
const MAX_SEARCH_CHARS: usize = 2000;

/// Longest certificate description (subject and issuer) kept in `error_code`.
const MAX_CERTIFICATE_CHARS: usize = 1000;

/// Who a record is about.
#[derive(Clone, Copy, Debug)]
pub enum Actor<'a> {
    /// A principal with a valid token.
    Principal(&'a Principal),
    /// A request without a valid token.
    Unauthenticated,
    /// Iris itself (a policy file changed).
    System,
}

/// One request to account for.
#[derive(Clone, Debug)]
pub struct AuditRecord<'a> {
    /// Who asked.
    pub actor: Actor<'a>,
    /// Their institution, when the directory knows it.
    pub institution: Option<String>,
    /// `sql`, `trace`, `me`, `policy`.
    pub kind: &'static str,
    pub operation: Operation,
    /// What was searched for.
    pub search: String,
    pub purpose: Option<String>,
    /// The route asked (`GET /v1/trace`, or the path of an unknown one).
    pub route: String,
    /// The HTTP status answered.
    pub status: u16,
    /// `Ok(rows returned, when rows were)` or `Err(reason)`.
    pub outcome: Result<Option<usize>, String>,
    /// How the request came and who it said it was (default: nothing known, as for Iris's own
    /// events).
    pub sign_in: SignIn,
}

/// The channel and sign-in of a request.
#[derive(Clone, Debug, Default)]
pub struct SignIn {
    /// `Some(tls)` for an HTTP request (`None`: an event of Iris itself).
    pub tls: Option<bool>,
    /// The method that named the principal: `token`, `certificate` (`None`: no one signed in).
    pub method: Option<&'static str>,
    /// The client certificate presented, verified or not.
    pub certificate: Option<crate::tls::ClientCertificate>,
}

impl SignIn {
    /// The event's `channel`.
    pub fn channel(&self) -> String {
        match self.tls {
            None => "internal".to_owned(),
            Some(tls) => format!(
                "{}-{}",
                if tls { "https" } else { "http" },
                self.method.unwrap_or("none")
            ),
        }
    }
}

/// Appends the record to the write-ahead log (sealed with the next seal) and returns once durable,
/// with the event's ticket (the request id).
pub async fn log(committer: &Committer, record: AuditRecord<'_>) -> Result<String, ApiError> {
    let now = chrono::Utc::now().timestamp_micros();
    let mut nonce = [0u8; 4];
    getrandom::fill(&mut nonce).map_err(|e| ApiError::unavailable(e.to_string()))?;
    let ticket = format!("iris-{now}-{}", hex::encode(nonce));
    let (subject_id, subject_kind) = subject(&record.search);
    let (actor_id, role) = match record.actor {
        Actor::Principal(p) => (p.id.clone(), p.role.as_str().to_owned()),
        Actor::Unauthenticated => ("unauthenticated".to_owned(), "none".to_owned()),
        Actor::System => (OWN_SOURCE.to_owned(), "system".to_owned()),
    };
    let event = Event {
        ts: now,
        actor_id,
        actor_kind: match record.actor {
            Actor::System => ActorKind::Application,
            _ => ActorKind::Person,
        },
        actor_org: record.institution.unwrap_or_else(|| role.clone()),
        actor_role: Some(role),
        subject_id,
        subject_kind,
        ticket: ticket.clone(),
        message_type: format!("iris.{}", record.kind),
        application: record.route,
        operation: record.operation,
        result: if record.outcome.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Nok
        },
        error_code: Some({
            let mut code: String = match record.outcome {
                Ok(Some(rows)) => format!("rows={rows}"),
                Ok(None) => format!("status={}", record.status),
                Err(why) => why.chars().take(500).collect(),
            };
            if let Some(c) = &record.sign_in.certificate {
                code.push_str(" | certificate ");
                code.extend(c.describe().chars().take(MAX_CERTIFICATE_CHARS));
            }
            code
        }),
        channel: record.sign_in.channel(),
        purpose: record.purpose,
        source: OWN_SOURCE.into(),
        source_seq: 0,
    };
    let batch = Batch {
        received_at: now,
        events: vec![(1, event)],
        rejections: Vec::new(),
        assign_seq: true,
    };
    committer
        .commit(batch)
        .await
        .map_err(|e| ApiError::unavailable(format!("the request could not be logged: {e}")))?;
    Ok(ticket)
}

/// A searched number keeps its kind (so it can be traced like any subject); anything else is kept as
/// the search text.
fn subject(search: &str) -> (String, SubjectKind) {
    let s = search.trim();
    let digits = s.chars().all(|c| c.is_ascii_digit());
    if digits && is_valid_niss(s) {
        (s.to_owned(), SubjectKind::Niss)
    } else if digits && is_valid_bce(s) {
        (s.to_owned(), SubjectKind::Bce)
    } else if digits && s.len() >= 5 && is_valid_onss(s) {
        (s.to_owned(), SubjectKind::Onss)
    } else {
        (clip(s), SubjectKind::Query)
    }
}

/// The search text as kept: whole when it fits; otherwise its head, then every NISS, BCE/KBO and ONSS
/// number written anywhere in it and the SHA-256 of the whole text — so that a long comment cannot
/// push the person looked up out of the record.
fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_SEARCH_CHARS {
        return s.to_owned();
    }
    let mut named: Vec<&str> = Vec::new();
    for run in s.split(|c: char| !c.is_ascii_digit()) {
        let valid =
            is_valid_niss(run) || is_valid_bce(run) || (run.len() >= 5 && is_valid_onss(run));
        if valid && !named.contains(&run) {
            named.push(run);
        }
    }
    let mut tail = format!(
        " …[cut; {} chars; sha256 {}",
        s.chars().count(),
        hex::encode(sha2::Sha256::digest(s.as_bytes()))
    );
    if !named.is_empty() {
        tail.push_str("; numbers in it: ");
        let mut first = true;
        for n in named {
            // The list itself is bounded: past half the field, the digest stands for the rest.
            if tail.len() + n.len() + 2 > MAX_SEARCH_CHARS / 2 {
                tail.push_str(", …");
                break;
            }
            if !first {
                tail.push_str(", ");
            }
            tail.push_str(n);
            first = false;
        }
    }
    tail.push(']');
    let head: String = s
        .chars()
        .take(MAX_SEARCH_CHARS.saturating_sub(tail.chars().count()))
        .collect();
    head + &tail
}

#[cfg(test)]
mod clip_tests {
    use super::*;

    #[test]
    fn a_long_search_keeps_the_numbers_written_in_it() {
        let text = format!(
            "/*{}*/ SELECT count(*) FROM events WHERE subject_id = '30010100124'",
            "p".repeat(2100)
        );
        let kept = clip(&text);
        assert!(kept.chars().count() <= MAX_SEARCH_CHARS, "{}", kept.len());
        assert!(kept.contains("30010100124"), "{kept}");
        assert!(kept.contains(&hex::encode(sha2::Sha256::digest(text.as_bytes()))));
        // A short text is kept whole.
        assert_eq!(clip("SELECT 1"), "SELECT 1");
    }
}
