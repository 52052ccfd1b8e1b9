//! The researcher endpoints: `POST /v1/research/sql` (a free aggregate query), `GET /v1/reports` (the
//! published reports) and `GET /v1/reports/{name}?format=json|csv|table|parquet`. A research project's
//! token only; the answer is protected by the project's rules, and each request, released or refused,
//! is an audit event in the chain.

use crate::error::ApiError;
use crate::guard::Ask;
use crate::server::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use iris_access::Action;
use iris_ingest::Operation;
use iris_research::answer::AnswerFormat;
use iris_research::reports::{REPORTS, report, title};
use iris_research::{ProjectRules, ResearchError};
use serde::Deserialize;
use std::sync::Arc;

/// The body of a free query.
#[derive(Deserialize)]
pub struct ResearchRequest {
    pub sql: String,
    /// json (default), csv, table or parquet.
    #[serde(default)]
    pub format: Option<String>,
}

/// `?format=` of a report.
#[derive(Deserialize)]
pub struct FormatParam {
    #[serde(default)]
    pub format: Option<String>,
}

/// A research error as an HTTP error: a refusal is the researcher's 422 with the reason.
fn api_error(e: ResearchError) -> ApiError {
    if e.is_refusal() {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
    } else {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

fn format_of(f: Option<&str>) -> Result<AnswerFormat, ApiError> {
    f.unwrap_or("json").parse().map_err(ApiError::bad_request)
}

async fn run(
    state: &AppState,
    headers: &HeaderMap,
    kind: &'static str,
    sql: &str,
    format: AnswerFormat,
) -> Result<Response, ApiError> {
    let ask = Ask {
        action: Action::Research,
        kind,
        operation: Operation::List,
        search: sql.to_owned(),
        key: None,
        deliberation: None,
        case_ref: None,
    };
    let permit = state.admit(headers, &ask).await?;
    let answer = async {
        let snapshot = state.access.refresh();
        let project = snapshot
            .policies
            .projects
            .get(&permit.principal.id)
            .ok_or_else(|| ApiError::forbidden("the project is no longer in the policies"))?;
        let answer = state
            .research
            .answer(&ProjectRules::from(project), sql)
            .await
            .map_err(api_error)?;
        let bytes = answer.render(format).map_err(ApiError::bad_request)?;
        let cells = answer.rows.len();
        Ok((
            ([(header::CONTENT_TYPE, format.content_type())], bytes).into_response(),
            cells,
        ))
    }
    .await;
    state.account(&permit, &ask, answer).await
}

/// A free aggregate query.
pub async fn post_research(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Json<ResearchRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"sql\": \"SELECT …\", \"format\"?: \"json|csv|table|parquet\"}}: {}",
            e.body_text()
        ))
    })?;
    let format = format_of(req.format.as_deref())?;
    run(&state, &headers, "research", &req.sql, format).await
}

/// The published reports: name, title, SQL.
pub async fn get_reports() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "reports": REPORTS.iter().map(|(name, sql)| serde_json::json!({
            "name": name, "title": title(sql), "sql": sql,
        })).collect::<Vec<_>>()
    }))
}

/// One report, protected by the caller's project rules.
pub async fn get_report(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(params): Query<FormatParam>,
) -> Result<Response, ApiError> {
    let Some(sql) = report(&name) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no report `{name}` (reports: {})",
                REPORTS.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let format = format_of(params.format.as_deref())?;
    run(&state, &headers, "report", sql, format).await
}
