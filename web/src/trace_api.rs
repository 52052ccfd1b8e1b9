//! `GET /v1/trace?subject=X|actor=A|ticket=T[&from=DAY&to=DAY&limit=N]`: the events in time order, as
//! JSON rows. Admins only until the access-control layer scopes traces per principal.

use crate::error::ApiError;
use crate::server::AppState;
use crate::tokens::Role;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
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
}

/// Runs the trace.
pub async fn get_trace(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<TraceParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = state.authenticate(&headers)?;
    if who.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin token may trace"));
    }
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "bad query string (subject|actor|ticket, from, to as YYYY-MM-DD, limit): {}",
            e.body_text()
        ))
    })?;
    let key = match (p.subject, p.actor, p.ticket) {
        (Some(s), None, None) => TraceKey::Subject(s),
        (None, Some(a), None) => TraceKey::Actor(a),
        (None, None, Some(t)) => TraceKey::Ticket(t),
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of subject, actor or ticket",
            ));
        }
    };
    let limit = p.limit.unwrap_or(1000).min(MAX_LIMIT);
    let req = TraceRequest {
        key,
        from: p.from,
        to: p.to,
        limit: Some(limit + 1),
    };
    let batches = state.query.trace(&req).await.map_err(ApiError::from)?;
    let rows =
        iris_query::to_json_rows(&batches).map_err(|e| ApiError::bad_request(e.user_message()))?;
    let mut rows = rows.as_array().cloned().unwrap_or_default();
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    Ok(Json(serde_json::json!({
        "events": rows,
        "count": rows.len(),
        "truncated": truncated,
    })))
}
