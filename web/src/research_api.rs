//! The researcher endpoints: `POST /v1/research/sql` (a free aggregate query, paid from the project's
//! privacy budget), `GET /v1/research/budget` (what the project has spent; an admin sees every
//! project), `GET /v1/reports` (the published reports) and
//! `GET /v1/reports/{name}?format=json|csv|table|parquet` (released once per data version from the
//! reports' own budget and served to every project alike). Each request, released or refused, is an
//! audit event in the chain.

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
    report: bool,
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
        // A report is one release for everyone, from the reports' own budget.
        // A project reads a report only over the tables it is granted.
        let rules = if report {
            ProjectRules {
                tables: ProjectRules::from(project).tables,
                ..ProjectRules::reports(&snapshot.policies.reports)
            }
        } else {
            ProjectRules::from(project)
        };
        let answer = state
            .research
            .answer(&rules, sql)
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
    run(&state, &headers, "research", &req.sql, format, false).await
}

/// The privacy budget: a researcher's own project, or (admin) every project and the reports'.
pub async fn get_budget(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ask = Ask {
        action: Action::ResearchBudget,
        kind: "research-budget",
        operation: Operation::Consult,
        search: String::new(),
        key: None,
        deliberation: None,
        case_ref: None,
    };
    let permit = state.admit(&headers, &ask).await?;
    let answer = async {
        let snapshot = state.access.refresh();
        let mut rules: Vec<ProjectRules> = Vec::new();
        if permit.principal.role == iris_access::Role::Researcher {
            let project = snapshot
                .policies
                .projects
                .get(&permit.principal.id)
                .ok_or_else(|| ApiError::forbidden("the project is no longer in the policies"))?;
            rules.push(ProjectRules::from(project));
        } else {
            rules.extend(snapshot.policies.projects.values().map(ProjectRules::from));
            rules.push(ProjectRules::reports(&snapshot.policies.reports));
        }
        let mut out = Vec::new();
        for r in &rules {
            let status = state.research.budget(r).map_err(api_error)?;
            let mut v = serde_json::to_value(&status)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            v["rho_per_figure"] = r.rho_per_figure.into();
            out.push(v);
        }
        let n = out.len();
        Ok((
            Json(serde_json::json!({ "budgets": out })).into_response(),
            n,
        ))
    }
    .await;
    state.account(&permit, &ask, answer).await
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
    run(&state, &headers, "report", sql, format, true).await
}
