//! `GET /v1/trace?subject=X|actor=A|ticket=T[&from=DAY&to=DAY&limit=N&deliberation=D&case=C]`: the
//! events in time order, as JSON rows, within the caller's scope.

use crate::error::ApiError;
use crate::guard::Ask;
use crate::server::AppState;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use iris_access::{Action, TraceBy};
use iris_ingest::Operation;
use iris_query::{TraceKey, TraceRequest};
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
    pub deliberation: Option<String>,
    pub case: Option<String>,
}

/// Runs the trace.
pub async fn get_trace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<TraceParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "bad query string (subject|actor|ticket, from, to as YYYY-MM-DD, limit, deliberation, case): {}",
            e.body_text()
        ))
    })?;
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
    // A subject that no event could carry is a typo: say so, not "0 events".
    if let TraceKey::Subject(s) = &key
        && let Some(why) = iris_ingest::checkdigit::subject_problem(s)
    {
        return Err(ApiError::bad_request(why));
    }
        case_ref: p.case.as_deref(),
    };
    let permit = state.admit(&headers, &ask).await?;
    let scope = &permit.decision.scope;
    let scope = (!scope.is_everything()).then_some(scope);
    let limit = p.limit.unwrap_or(1000).min(MAX_LIMIT);
    let req = TraceRequest {
        key,
        from: p.from,
        to: p.to,
        limit: Some(limit + 1),
    };
    let answer = async {
        let batches = state
            .query
            .trace_within(&req, scope)
            .await
            .map_err(ApiError::from)?;
        let rows = iris_query::to_json_rows(&batches)
            .map_err(|e| ApiError::bad_request(e.user_message()))?;
        let mut rows = rows.as_array().cloned().unwrap_or_default();
        let truncated = rows.len() > limit;
        rows.truncate(limit);
        let count = rows.len();
        Ok((
            serde_json::json!({
                "events": rows,
                "count": count,
                "truncated": truncated,
                "scope": permit.decision.reason,
                "policies": permit.decision.policies,
            }),
            count,
        ))
    }
    .await;
    state.account(&permit, &ask, answer).await.map(Json)
}
