//! `GET /v1/proof?ticket=T|event=SOURCE:SEQ[&deliberation=D&case=C]`: the self-contained inclusion
//! proof bundle of the events a trace of the caller would show (the same bundle as `iris prove`),
//! to check offline with `iris verify-proof FILE --key KEY`.
//!
//! The decision point grants [`Action::Prove`] with the scope of the caller's trace (a citizen's:
//! their own consultations, where the citizen rule allows proofs); the events are then looked up
//! within that scope before anything else is read ([`iris_proof::request`]), so a ticket outside it
//! and an unknown one get the same 404 with the same body.

use crate::error::ApiError;
use crate::guard::Ask;
use crate::server::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use iris_access::Action;
use iris_ingest::Operation;
use iris_proof::ProofError;
use iris_proof::request::{Head, Target, prove_within};
use serde::Deserialize;
use std::sync::Arc;

/// The answer for an event or ticket that is unknown or outside the caller's scope (one text for both).
pub const NOT_FOUND: &str = "no event to prove under this ticket or number within your scope";

/// Proofs are built one at a time: each reads the log and may add the heads of new sealed files to
/// `DATA/proofs/roots.json`, which two builds must not write at once.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The query string.
#[derive(Deserialize)]
pub struct ProofParams {
    pub ticket: Option<String>,
    pub event: Option<String>,
    pub deliberation: Option<String>,
    pub case: Option<String>,
}

/// A file name made of the safe characters of `what`.
fn file_name(what: &str) -> String {
    let safe: String = what
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("iris-proof-{safe}.json")
}

/// Builds the bundle.
pub async fn get_proof(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Result<Query<ProofParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::bad_request(format!(
            "bad query string (ticket or event=SOURCE:SEQ, deliberation, case): {}",
            e.body_text()
        ))
    })?;
    let (target, search, value) = match (p.ticket, p.event) {
        (Some(t), None) => (Target::Ticket(t.clone()), format!("ticket:{t}"), t),
        (None, Some(e)) => (
            Target::event(&e).map_err(|x| ApiError::bad_request(x.to_string()))?,
            format!("event:{e}"),
            e,
        ),
        _ => return Err(ApiError::bad_request("give exactly one of ticket or event")),
    };
    let ask = Ask {
        action: Action::Prove,
        kind: "proof",
        operation: Operation::Consult,
        search,
        key: Some(&value),
        deliberation: p.deliberation.as_deref(),
        case_ref: p.case.as_deref(),
    };
    let permit = state.admit(&headers, &ask).await?;
    let answer = async {
        let signer = state
            .warehouse
            .dir
            .keys()
            .active_signer()
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let origin = iris_proof::log::origin_from_env();
        let _turn = ONE_AT_A_TIME.lock().await;
        let proven = prove_within(
            &state.query,
            &state.warehouse.loc,
            &state.warehouse.dir.root,
            std::slice::from_ref(&target),
            Some(&permit.decision.scope),
            Head::Sign {
                origin: &origin,
                signer: &signer,
            },
        )
        .await
        .map_err(|e| match e {
            ProofError::Request(m) => ApiError::bad_request(m),
            other => ApiError::unavailable(format!("the proof cannot be made: {other}")),
        })?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, NOT_FOUND))?;
        let n = proven.bundle.proofs.len();
        Ok((proven.json, n))
    }
    .await;
    let json = state.account(&permit, &ask, answer).await?;
    let mut response = (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        json,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file_name(&value)))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}
