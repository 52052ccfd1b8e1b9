//! `GET /v1/me`: who the token stands for and what it may do. `GET /v1/me/consultations`: for a
//! citizen, which institution consulted their data in the last months, when and why.

use crate::error::ApiError;
use crate::guard::Ask;
use crate::server::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use iris_access::{Action, Request, Role};
use iris_ingest::Operation;
use std::sync::Arc;

/// The citizen view's query (run within the citizen's scope).
pub const CONSULTATIONS_SQL: &str = include_str!("../../sql/citizen/consultations.sql");

/// Who am I: principal, role, institution, and the scope SQL and traces would get.
pub async fn get_me(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let p = state.authenticate(&headers)?;
    let snapshot = state.access.refresh();
    let action = match p.role {
        Role::Citizen => Action::MyConsultations,
        Role::Researcher => Action::Research,
        _ => Action::Sql,
    };
    let d = iris_access::decide(
        &snapshot.directory,
        &snapshot.policies,
        &Request {
            principal: &p,
            action,
            key: None,
            deliberation: None,
            case_ref: None,
            today: chrono::Utc::now().date_naive(),
        },
    );
    // Whether the page offers proofs (`GET /v1/proof`): the decision point's answer for this token
    // (a citizen's depends on the citizen rule; an inspector's on the deliberation asked under).
    let proofs = iris_access::decide(
        &snapshot.directory,
        &snapshot.policies,
        &Request {
            principal: &p,
            action: Action::Prove,
            key: None,
            deliberation: None,
            case_ref: None,
            today: chrono::Utc::now().date_naive(),
        },
    )
    .permit
        || p.role == Role::Inspector;
    let user = snapshot.directory.users.get(&p.id);
    let deliberations: Vec<_> = match user {
        Some(u) if p.role == Role::Inspector => snapshot
            .policies
            .deliberations
            .values()
            .filter(|d| d.grantee == u.institution)
            .map(|d| {
                serde_json::json!({
                    "id": d.id, "title": d.title, "purpose": d.purpose,
                    "period": [d.period.from, d.period.to], "valid": [d.valid.from, d.valid.to],
                    "case_required": d.case_required,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Json(serde_json::json!({
        "id": p.id,
        "role": p.role.as_str(),
        "token": p.token_id,
        "institution": user.map(|u| u.institution.clone()),
        "permitted": d.permit,
        "scope": d.reason,
        "policies": d.policies,
        "deliberations": deliberations,
        "proofs": proofs,
    })))
}

/// The citizen's consultations.
pub async fn get_consultations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let own = state
        .authenticate(&headers)
        .map(|p| p.id)
        .unwrap_or_default();
    let ask = Ask {
        action: Action::MyConsultations,
        kind: "me",
        operation: Operation::List,
        search: own,
        key: None,
        deliberation: None,
        case_ref: None,
    };
    let permit = state.admit(&headers, &ask).await?;
    let answer = async {
        let batches = state
            .query
            .sql_within(CONSULTATIONS_SQL, Some(&permit.decision.scope))
            .await
            .map_err(ApiError::from)?;
        let mut rows = iris_query::to_json_rows(&batches)
            .map_err(|e| ApiError::bad_request(e.user_message()))?;
        crate::citizen_names::name(&mut rows, &state.access.refresh().directory);
        let count = rows.as_array().map(Vec::len).unwrap_or(0);
        Ok((
            serde_json::json!({
                "consultations": rows,
                "count": count,
                "rule": permit.decision.reason,
            }),
            count,
        ))
    }
    .await;
    state.account(&permit, &ask, answer).await.map(Json)
}
