//! `POST /v1/sql`: `{"sql": "SELECT …", "deliberation"?: "…", "case"?: "…"}` answered with JSON rows,
//! within the caller's scope: the decision point's scope is a filter inside the plan.

use crate::error::ApiError;
use crate::guard::Ask;
use crate::server::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use iris_access::Action;
use iris_ingest::Operation;
use serde::Deserialize;
use std::sync::Arc;

/// The request body.
#[derive(Deserialize)]
pub struct SqlRequest {
    pub sql: String,
    /// The deliberation an inspector acts under.
    #[serde(default)]
    pub deliberation: Option<String>,
    /// The inspector's case reference.
    #[serde(default)]
    pub case: Option<String>,
}

/// Runs the query.
pub async fn post_sql(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<SqlRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(req) =
        body.map_err(|e| ApiError::body(e, r#"{"sql": "…", "deliberation"?: "…", "case"?: "…"}"#))?;
    let ask = Ask {
        action: Action::Sql,
        kind: "sql",
        operation: Operation::Consult,
        search: req.sql.clone(),
        key: None,
        deliberation: req.deliberation.as_deref(),
        case_ref: req.case.as_deref(),
    };
    let permit = state.admit(&headers, &ask).await?;
    let scope = &permit.decision.scope;
    let scope = (!scope.is_everything()).then_some(scope);
    let answer = async {
        let batches = state
            .query
            .sql_within(&req.sql, scope)
            .await
            .map_err(ApiError::from)?;
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
        let rows = iris_query::to_json_rows(&batches)
            .map_err(|e| ApiError::bad_request(e.user_message()))?;
        let count = rows.as_array().map(Vec::len).unwrap_or(0);
        Ok((
            serde_json::json!({
                "columns": columns,
                "rows": rows,
                "row_count": count,
                "scope": permit.decision.reason,
                "policies": permit.decision.policies,
            }),
            count,
        ))
    }
    .await;
    state.account(&permit, &ask, answer).await.map(Json)
}
