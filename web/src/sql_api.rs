//! `POST /v1/sql`: `{"sql": "SELECT …"}` answered with JSON rows. Admins only until the access-control
//! layer scopes queries per principal.

use crate::error::ApiError;
use crate::server::AppState;
use crate::tokens::Role;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use std::sync::Arc;

/// The request body.
#[derive(Deserialize)]
pub struct SqlRequest {
    pub sql: String,
}

/// Runs the query.
pub async fn post_sql(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = state.authenticate(&headers)?;
    if who.role != Role::Admin {
        return Err(ApiError::forbidden("only an admin token may run SQL"));
    }
    let Json(req) = body.map_err(|e| {
        ApiError::bad_request(format!("expected {{\"sql\": \"…\"}}: {}", e.body_text()))
    })?;
    let batches = state.query.sql(&req.sql).await.map_err(ApiError::from)?;
    let columns: Vec<String> = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let rows =
        iris_query::to_json_rows(&batches).map_err(|e| ApiError::bad_request(e.user_message()))?;
    let count = rows.as_array().map(Vec::len).unwrap_or(0);
    Ok(Json(
        serde_json::json!({ "columns": columns, "rows": rows, "row_count": count }),
    ))
}
