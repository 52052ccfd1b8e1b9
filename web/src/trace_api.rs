//! `GET /v1/trace?subject=X|actor=A|ticket=T[&from=DAY&to=DAY&limit=N&after=CURSOR&deliberation=D&case=C]`:
//! one page of the events in time order, as JSON rows, within the caller's scope; `next` is the cursor
//! of the following page (pass it as `after`), `null` after the last. The rows are written straight
//! from the query's batches into the answer.

use crate::error::ApiError;
use crate::guard::Ask;
use crate::server::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use iris_access::{Action, TraceBy};
use iris_ingest::Operation;
use iris_query::{TraceCursor, TraceKey, TraceRequest};
use serde::Deserialize;
use std::sync::Arc;

/// Most events one answer carries.
const MAX_LIMIT: usize = 10_000;

/// The query string.
#[derive(Deserialize)]
pub struct TraceParams {
    pub subject: Option<String>,
    pub actor: Option<String>,
    pub ticket: Option<String>,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub after: Option<String>,
    pub deliberation: Option<String>,
    pub case: Option<String>,
}

/// Runs the trace.
pub async fn get_trace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<TraceParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "bad query string (subject|actor|ticket, from, to as YYYY-MM-DD, limit, after, deliberation, case): {}",
            e.body_text()
        ))
    })?;
    let after = p
        .after
        .as_deref()
        .map(str::parse::<TraceCursor>)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (key, by, search) = match (p.subject, p.actor, p.ticket) {
        (Some(s), None, None) => (TraceKey::Subject(s.clone()), TraceBy::Subject, s),
        (None, Some(a), None) => (
            TraceKey::Actor(a.clone()),
            TraceBy::Actor,
            format!("actor:{a}"),
        ),
        (None, None, Some(t)) => (
            TraceKey::Ticket(t.clone()),
            TraceBy::Ticket,
            format!("ticket:{t}"),
        ),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of subject, actor or ticket",
            ));
        }
    };
    // A subject that no event could carry is a typo: say so, not "0 events".
    if let TraceKey::Subject(s) = &key
        && let Some(why) = iris_ingest::checkdigit::subject_problem(s)
    {
        return Err(ApiError::bad_request(why));
    }
    let value = match &key {
        TraceKey::Subject(v) | TraceKey::Actor(v) | TraceKey::Ticket(v) => v.clone(),
    };
    let ask = Ask {
        action: Action::Trace(by),
        kind: "trace",
        operation: Operation::Consult,
        search,
        key: Some(&value),
        deliberation: p.deliberation.as_deref(),
        case_ref: p.case.as_deref(),
    };
    let permit = state.admit(&headers, &ask).await?;
    let scope = &permit.decision.scope;
    let scope = (!scope.is_everything()).then_some(scope);
    let limit = p.limit.unwrap_or(1000).clamp(1, MAX_LIMIT);
    let req = TraceRequest {
        key,
        from: p.from,
        to: p.to,
        limit: Some(limit),
        after,
    };
    let answer = async {
        let page = state
            .query
            .trace_page_within(&req, scope)
            .await
            .map_err(ApiError::from)?;
        let events = iris_query::json_array(&page.batches)
            .map_err(|e| ApiError::bad_request(e.user_message()))?;
        let count: usize = page.batches.iter().map(|b| b.num_rows()).sum();
        let tail = serde_json::json!({
            "count": count,
            "truncated": page.more,
            "next": page.next.map(|c| c.to_string()),
            "scope": permit.decision.reason,
            "policies": permit.decision.policies,
        });
        Ok((envelope(&events, &tail), count))
    }
    .await;
    let body = state.account(&permit, &ask, answer).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `{"events": <rows>, …tail}`: the rows' JSON text embedded as it was written.
fn envelope(events: &[u8], tail: &serde_json::Value) -> Vec<u8> {
    let tail = tail.to_string();
    let mut body = Vec::with_capacity(events.len() + tail.len() + 16);
    body.extend_from_slice(b"{\"events\":");
    body.extend_from_slice(events);
    match tail.strip_prefix('{').filter(|t| t.len() > 1) {
        Some(rest) => {
            body.push(b',');
            body.extend_from_slice(rest.as_bytes());
        }
        None => body.push(b'}'),
    }
    body
}
