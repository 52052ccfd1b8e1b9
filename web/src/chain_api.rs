//! The chain's status for auditors and administrators: `GET /v1/chain` (seal count, the last seals, the
//! result of the last verify), `POST /v1/verify` (verify now) and `GET /v1/checkpoint` (the signed head,
//! to keep elsewhere). Each request is an audit event like any other.

use crate::error::ApiError;
use crate::guard::Ask;
use crate::server::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use iris_access::Action;
use iris_ingest::Operation;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// How many of the last seals the status shows.
const LAST: usize = 20;

fn ask(action: Action, what: &str) -> Ask<'static> {
    Ask {
        action,
        kind: "chain",
        operation: Operation::Consult,
        search: what.to_owned(),
        key: None,
        deliberation: None,
        case_ref: None,
    }
}

fn failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::unavailable(e.to_string())
}

/// Seal count, the last seals, and the last verify.
pub async fn get_chain(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ask = ask(Action::Verify, "chain status");
    let permit = state.admit(&headers, &ask).await?;
    let answer = async {
        let seals = iris_store::chain::read_chain(&state.warehouse.loc)
            .await
            .map_err(failed)?;
        let last: Vec<_> = seals
            .iter()
            .rev()
            .take(LAST)
            .map(|s| {
                serde_json::json!({
                    "n": s.n, "kind": s.kind, "path": s.path, "rows": s.rows, "bytes": s.bytes,
                    "sealed_at": iris_ingest::event::format_micros(s.sealed_at), "key_id": s.key_id,
                })
            })
            .collect();
        let shown = last.len();
        let body = serde_json::json!({
            "seals": seals.len(),
            "last": last,
            "last_verify": state.last_verify.lock().await.clone(),
        });
        Ok((body, shown))
    }
    .await;
    state.account(&permit, &ask, answer).await.map(Json)
}

/// Verifies the whole store now and keeps the result for the status.
pub async fn post_verify(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ask = ask(Action::Verify, "verify");
    let permit = state.admit(&headers, &ask).await?;
    let answer = async {
        let ring = state.warehouse.dir.keys().keyring().map_err(failed)?;
        let started = std::time::Instant::now();
        let report = iris_store::verify::verify(
            &state.warehouse.loc,
            &ring,
            None,
            Arc::new(AtomicU64::new(0)),
        )
        .await
        .map_err(failed)?;
        let findings: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        let body = serde_json::json!({
            "ok": report.ok(),
            "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "findings": findings,
            "summary": format!(
                "{} seals, {} partitions, {:.1} MB in {:.2} s",
                report.seals,
                report.partitions,
                report.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64()
            ),
        });
        *state.last_verify.lock().await = Some(body.clone());
        let n = findings.len();
        Ok((body, n))
    }
    .await;
    state.account(&permit, &ask, answer).await.map(Json)
}

/// The signed head of the chain.
pub async fn get_checkpoint(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ask = ask(Action::Checkpoint, "checkpoint");
    let permit = state.admit(&headers, &ask).await?;
    let answer = async {
        let seals = iris_store::chain::read_chain(&state.warehouse.loc)
            .await
            .map_err(failed)?;
        let signer = state.warehouse.dir.keys().active_signer().map_err(failed)?;
        let cp = iris_store::checkpoint::Checkpoint::of(&seals, &signer);
        let mut body = serde_json::to_value(&cp).map_err(failed)?;
        // Issue 16: the same head as a C2SP tlog-checkpoint over the Merkle tree of the seals, and
        // the key that checks it (`iris verify-proof --key`, `iris consistency --key`).
        // A file whose bytes differ from its seal cannot give its head: the JSON head is still
        // served, with why the note is not (`verify` names the file).
        match iris_proof::log::note_checkpoint(
            &state.warehouse.loc,
            &state.warehouse.dir.root,
            &iris_proof::log::origin_from_env(),
            &signer,
        )
        .await
        {
            Ok((note, vkey)) => {
                body["note"] = serde_json::Value::String(note);
                body["verifier_key"] = serde_json::Value::String(vkey);
            }
            Err(e) => body["note_error"] = serde_json::Value::String(e.to_string()),
        }
        Ok((body, 1))
    }
    .await;
    state.account(&permit, &ask, answer).await.map(Json)
}

/// `GET /v1/status` (auditors and administrators): seal count, events waiting to be sealed, and the
/// last access-file error — what the open liveness probe no longer says.
pub async fn get_status(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ask = ask(Action::Verify, "status");
    let permit = state.admit(&headers, &ask).await?;
    let seals = state.warehouse.sealer().lock().await.seal_count();
    let pending = state
        .committer
        .as_ref()
        .map(iris_ingest::commit::Committer::pending_events)
        .unwrap_or(0);
    let body = serde_json::json!({
        "status": "ok",
        "seals": seals,
        "pending_events": pending,
        "access_error": state.access.last_error(),
    });
    state.account(&permit, &ask, Ok((body, 1))).await.map(Json)
}
