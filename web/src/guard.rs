//! The enforcement point's front door: one layer ([`audit_every_request`]) wraps every route and the
//! fallback. It authenticates every request outside [`OPEN_ROUTES`], lets the handler run, and records
//! exactly one audit event for the request, whatever its outcome — unauthenticated, unknown route,
//! wrong method, malformed or oversized body, refused, failed, answered. The answer leaves only once the
//! event is durable; if it cannot be logged, the answer is withheld (503).
//!
//! Handlers add detail — what was searched for, the decision, the rows returned — through
//! [`AppState::admit`] / [`AppState::account`] or [`note`]; they cannot forget the event, since the
//! layer writes it.

use crate::audit::{self, Actor, AuditRecord, SignIn};
use crate::error::{ApiError, ErrorNote};
use crate::server::AppState;
use crate::tls::{ConnectionInfo, Rejected};
use axum::extract::{MatchedPath, Request as HttpRequest, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use iris_access::{Action, Decision, Principal, Request};
use iris_ingest::Operation;
use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// The only routes that answer without a token: the web page's static files (the same for
/// everyone, no data in them) and a bare liveness probe that says nothing but `ok`. Every other
/// path — including unknown ones — needs a valid bearer token, and every request, open or not, is
/// an audit event.
pub const OPEN_ROUTES: &[(Method, &str)] = &[
    (Method::GET, "/"),
    (Method::GET, "/ui/app.js"),
    (Method::GET, "/ui/app.css"),
    (Method::GET, "/v1/health"),
];

/// The audit kind (`message_type` `iris.<kind>`) of each route; a handler may refine it.
const ROUTE_KINDS: &[(&str, &str)] = &[
    ("/", "ui"),
    ("/ui/app.js", "ui"),
    ("/ui/app.css", "ui"),
    ("/v1/health", "health"),
    ("/v1/status", "chain"),
    ("/v1/patterns", "patterns"),
    ("/v1/chain", "chain"),
    ("/v1/verify", "chain"),
    ("/v1/checkpoint", "chain"),
    ("/v1/events", "ingest"),
    ("/v1/logs", "ingest"),
    ("/v1/sql", "sql"),
    ("/v1/trace", "trace"),
    ("/v1/proof", "proof"),
    ("/v1/me", "me"),
    ("/v1/me/consultations", "me"),
    ("/v1/research/sql", "research"),
    ("/v1/research/budget", "research"),
    ("/v1/reports", "report"),
    ("/v1/reports/{name}", "report"),
    ("/v1/seal", "seal"),
];

/// The answer's header naming its audit event (the event's `ticket`), to tie a complaint to the log.
pub const REQUEST_ID_HEADER: &str = "x-iris-request";

/// Longest part of an unknown path or query string kept in the event.
const MAX_PATH_CHARS: usize = 300;

/// Whether `method path` answers without a token.
pub fn is_open(method: &Method, path: &str) -> bool {
    OPEN_ROUTES.iter().any(|(m, p)| m == method && *p == path)
}

/// What a handler adds to its request's audit event.
#[derive(Debug, Default)]
pub struct Detail {
    /// The principal, once authenticated.
    pub principal: Option<Principal>,
    /// `sql`, `trace`, `me`, … (default: the route's kind).
    pub kind: Option<&'static str>,
    pub operation: Option<Operation>,
    /// What was searched for (default: the path and query string).
    pub search: Option<String>,
    /// The deliberation and case, or the deciding policies.
    pub purpose: Option<String>,
    /// `Ok(rows)` or `Err(reason)` (default: from the answer's status and error).
    pub outcome: Option<Result<Option<usize>, String>>,
}

tokio::task_local! {
    static DETAIL: RefCell<Detail>;
}

/// Adds detail to the current request's audit event (no effect outside a request).
pub fn note(f: impl FnOnce(&mut Detail)) {
    let _ = DETAIL.try_with(|d| f(&mut d.borrow_mut()));
}

/// The principal the layer signed the current request in as (by token or certificate), if any.
pub fn signed_in() -> Option<Principal> {
    DETAIL
        .try_with(|d| d.borrow().principal.clone())
        .ok()
        .flatten()
}

/// The layer: authenticate (unless open), run the handler, log one event, answer. The work runs as
/// a task of its own, so a client that hangs up does not cancel its request's audit event; a handler
/// that panics becomes a logged 500.
pub async fn audit_every_request(
    State(state): State<Arc<AppState>>,
    req: HttpRequest,
    next: Next,
) -> Response {
    match tokio::spawn(handle(state, req, next)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!("request task failed: {e}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request failed inside Iris",
            )
            .into_response()
        }
    }
}

async fn handle(state: Arc<AppState>, mut req: HttpRequest, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let label = format!(
        "{method} {}",
        route
            .clone()
            .unwrap_or_else(|| path.chars().take(MAX_PATH_CHARS).collect())
    );
    let default_kind = route
        .as_deref()
        .and_then(|r| ROUTE_KINDS.iter().find(|(p, _)| *p == r))
        .map_or("http", |(_, k)| *k);
    let search = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    }
    .chars()
    .take(MAX_PATH_CHARS)
    .collect::<String>();

    let pending = state.in_flight.enter(Pending {
        principal: None,
        route: label.clone(),
        search: search.clone(),
        read: method == Method::GET,
    });
    let connection = req
        .extensions()
        .get::<ConnectionInfo>()
        .cloned()
        .unwrap_or_default();
    let mut sign_in = SignIn {
        tls: Some(connection.tls),
        method: None,
        certificate: connection.certificate.clone(),
    };
    let mut detail = Detail::default();
    let response = if is_open(&method, &path) {
        let (response, d) = run(req, next, detail).await;
        detail = d;
        response
    } else {
        match state.sign_in(req.headers(), &connection) {
            Ok((p, how)) => {
                sign_in.method = Some(how);
                req.extensions_mut().insert(p.clone());
                state.in_flight.set_principal(pending.id, &p);
                detail.principal = Some(p);
                let (response, d) = run(req, next, detail).await;
                detail = d;
                response
            }
            Err(e) => e.into_response(),
        }
    };
    let (response, reason) = error_reason(response).await;
    let status = response.status();
    state.metrics.request(
        route.as_deref().unwrap_or("unmatched"),
        metric_method(&method),
        &detail
            .principal
            .as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.role.to_string()),
        status.as_u16(),
        started.elapsed(),
    );
    let outcome = match detail.outcome.take() {
        Some(o) => o,
        None if status.is_success() || status.is_redirection() => Ok(None),
        None => Err(format!(
            "{}: {}",
            status.as_u16(),
            reason.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned())
        )),
    };
    let actor = match &detail.principal {
        Some(p) => Actor::Principal(p),
        None => Actor::Unauthenticated,
    };
    let institution = detail
        .principal
        .as_ref()
        .and_then(|p| state.institution_of(p));
    let record = AuditRecord {
        actor,
        institution,
        kind: detail.kind.unwrap_or(default_kind),
        operation: detail.operation.unwrap_or(if method == Method::GET {
            Operation::Consult
        } else {
            Operation::Modify
        }),
        search: detail.search.take().unwrap_or(search),
        purpose: detail.purpose.take(),
        route: label,
        status: status.as_u16(),
        outcome,
        sign_in,
    };
    let Some(committer) = &state.committer else {
        return ApiError::unavailable("this server cannot log requests, so it answers none")
            .into_response();
    };
    if !pending.leave() {
        // Shutdown logged it as abandoned already.
        return response;
    }
    match audit::log(committer, record).await {
        Ok(ticket) => {
            state.sealer_wakeup.notify_one();
            state.metrics.durable();
            let mut response = response;
            if let Ok(v) = HeaderValue::from_str(&ticket) {
                response.headers_mut().insert(REQUEST_ID_HEADER, v);
            }
            response
        }
        Err(e) => {
            tracing::error!("request not logged, answer withheld: {}", e.message);
            e.into_response()
        }
    }
}

/// A request's method as a metrics label: the standard ones, anything else as `other`.
fn metric_method(method: &Method) -> &'static str {
    [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
    ]
    .into_iter()
    .find(|(m, _)| m == method)
    .map_or("other", |(_, name)| name)
}

/// Runs the rest of the stack with `detail` as the request's audit detail, and gives it back.
async fn run(req: HttpRequest, next: Next, detail: Detail) -> (Response, Detail) {
    DETAIL
        .scope(RefCell::new(detail), async move {
            let response = match AssertUnwindSafe(next.run(req)).catch_unwind().await {
                Ok(response) => response,
                Err(_) => ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request failed inside Iris (a panic, in the server's log)",
                )
                .into_response(),
            };
            let detail = DETAIL.with(|d| std::mem::take(&mut *d.borrow_mut()));
            (response, detail)
        })
        .await
}

/// The reason of an error answer: the [`ErrorNote`] an [`ApiError`] leaves, or else the body of a
/// framework rejection (404, 405, 413, a bad path or query…), which is turned into the same JSON
/// error shape. A success passes through untouched.
async fn error_reason(response: Response) -> (Response, Option<String>) {
    let status = response.status();
    if status.is_success() || status.is_redirection() {
        return (response, None);
    }
    if let Some(note) = response.extensions().get::<ErrorNote>() {
        let reason = note.0.clone();
        return (response, Some(reason));
    }
    let (_, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let reason = if !text.is_empty() {
        text
    } else if status == StatusCode::NOT_FOUND {
        "no such route".to_owned()
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        "this route does not take this method".to_owned()
    } else {
        status.canonical_reason().unwrap_or("error").to_owned()
    };
    let e = ApiError::new(status, reason.clone());
    (e.into_response(), Some(reason))
}

/// `404` for any path no route matches (still behind the layer: authenticated, then logged).
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

/// What a guarded request is about, for the decision and the log.
pub struct Ask<'a> {
    pub action: Action,
    /// `sql`, `trace`, `me`.
    pub kind: &'static str,
    pub operation: Operation,
    /// What is searched for (trace key, SQL text, own NISS).
    pub search: String,
    pub key: Option<&'a str>,
    pub deliberation: Option<&'a str>,
    pub case_ref: Option<&'a str>,
}

/// A permitted request: who, and within which scope.
pub struct Permit {
    pub principal: Principal,
    pub decision: Decision,
}

impl AppState {
    /// Who sends a request, and how they signed in: a bearer token if the request has an
    /// `Authorization` header (machines, scripts, the demo's tokens), else a verified client
    /// certificate mapped through the directory (people).
    pub fn sign_in(
        &self,
        headers: &HeaderMap,
        connection: &ConnectionInfo,
    ) -> Result<(Principal, &'static str), ApiError> {
        match &connection.certificate {
            Some(c) if !headers.contains_key(axum::http::header::AUTHORIZATION) => {
                let snapshot = self.access.refresh();
                iris_access::principal_of_certificate(
                    &snapshot.directory,
                    c.serial_number.as_deref(),
                    &c.subject,
                )
                .map(|p| (p, "certificate"))
                .map_err(|e| ApiError::unauthorized(e.to_string()))
            }
            _ => self.authenticate(headers).map(|p| (p, "token")),
        }
    }

    /// Authenticates and decides, noting the request's detail for its audit event (written by
    /// [`audit_every_request`]). A permit is closed with [`AppState::account`] once the answer is
    /// known.
    pub async fn admit(&self, headers: &HeaderMap, ask: &Ask<'_>) -> Result<Permit, ApiError> {
        note(|d| {
            d.kind = Some(ask.kind);
            d.operation = Some(ask.operation);
            d.search = Some(ask.search.clone());
            d.purpose = ask.deliberation.map(str::to_owned);
        });
        let principal = match self.authenticate(headers) {
            Ok(p) => p,
            Err(e) => {
                note(|d| d.outcome = Some(Err(e.message.clone())));
                return Err(e);
            }
        };
        note(|d| d.principal = Some(principal.clone()));
        let decision = self.access.decide(&Request {
            principal: &principal,
            action: ask.action.clone(),
            key: ask.key,
            deliberation: ask.deliberation,
            case_ref: ask.case_ref,
            today: chrono::Utc::now().date_naive(),
        });
        if !decision.permit {
            note(|d| {
                d.purpose = purpose_of(ask.deliberation.map(str::to_owned), &decision);
                d.outcome = Some(Err(format!("denied: {}", decision.reason)));
            });
            return Err(ApiError::denied(decision.reason, decision.policies));
        }
        note(|d| d.purpose = purpose_of(decision.purpose.clone(), &decision));
        Ok(Permit {
            principal,
            decision,
        })
    }

    /// Notes how a permitted request ended (rows returned, or why it failed) and passes its result
    /// on.
    pub async fn account<T>(
        &self,
        _permit: &Permit,
        _ask: &Ask<'_>,
        result: Result<(T, usize), ApiError>,
    ) -> Result<T, ApiError> {
        let outcome = match &result {
            Ok((_, rows)) => Ok(Some(*rows)),
            Err(e) => Err(format!("failed: {}", e.message)),
        };
        note(|d| d.outcome = Some(outcome));
        result.map(|(t, _)| t)
    }

    /// The institution of a principal, when the directory knows the user.
    pub fn institution_of(&self, p: &Principal) -> Option<String> {
        let snapshot = self.access.refresh();
        snapshot
            .directory
            .users
            .get(&p.id)
            .map(|u| u.institution.clone())
    }
}

/// The purpose kept with a decided request: the deliberation and case, else the deciding policies.
fn purpose_of(purpose: Option<String>, decision: &Decision) -> Option<String> {
    match purpose {
        Some(p) => Some(p),
        None if !decision.policies.is_empty() => Some(decision.policies.join(" ")),
        None => None,
    }
}

/// A request being answered, as shutdown would log it.
#[derive(Clone, Debug)]
pub struct Pending {
    pub principal: Option<Principal>,
    pub route: String,
    pub search: String,
    pub read: bool,
}

/// The requests being answered.
#[derive(Debug, Default)]
pub struct InFlight {
    next: std::sync::atomic::AtomicU64,
    open: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, Pending>>>,
}

/// A request's place in [`InFlight`]; leaving it (or dropping it) takes it out.
pub struct Entry {
    id: u64,
    open: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, Pending>>>,
}

impl Entry {
    /// Takes the request out; `false` if shutdown took it first (and logged it).
    fn leave(&self) -> bool {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id)
            .is_some()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.leave();
    }
}

impl InFlight {
    fn enter(&self, p: Pending) -> Entry {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, p);
        Entry {
            id,
            open: self.open.clone(),
        }
    }

    fn set_principal(&self, id: u64, principal: &Principal) {
        if let Some(p) = self
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            p.principal = Some(principal.clone());
        }
    }

    /// Takes every request still open.
    fn drain(&self) -> Vec<Pending> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, p)| p)
            .collect()
    }
}

/// Logs each request still running (abandoned by shutdown) as one failed audit event.
pub async fn log_abandoned(state: &AppState) {
    let Some(committer) = &state.committer else {
        return;
    };
    for p in state.in_flight.drain() {
        let institution = p.principal.as_ref().and_then(|x| state.institution_of(x));
        let record = AuditRecord {
            actor: match &p.principal {
                Some(x) => Actor::Principal(x),
                None => Actor::Unauthenticated,
            },
            institution,
            kind: "http",
            operation: if p.read {
                Operation::Consult
            } else {
                Operation::Modify
            },
            search: p.search.clone(),
            purpose: None,
            route: p.route.clone(),
            status: 503,
            outcome: Err("abandoned at shutdown: still running after the grace period".into()),
            sign_in: SignIn::default(),
        };
        if let Err(e) = audit::log(committer, record).await {
            tracing::error!("abandoned request not logged: {}", e.message);
        }
    }
}

/// Writes each client certificate the TLS handshake refused as a failed sign-in (`iris.signin`,
/// unauthenticated, status 495 as no HTTP answer was sent), until the listener's verifier is gone.
pub async fn log_rejected_certificates(
    state: Arc<AppState>,
    mut rejected: tokio::sync::mpsc::Receiver<Rejected>,
) {
    let Some(committer) = &state.committer else {
        return;
    };
    while let Some(r) = rejected.recv().await {
        let record = AuditRecord {
            actor: Actor::Unauthenticated,
            institution: None,
            kind: "signin",
            operation: Operation::Consult,
            search: "TLS handshake".to_owned(),
            purpose: None,
            route: "TLS handshake".to_owned(),
            status: 495,
            outcome: Err(format!("client certificate refused: {}", r.reason)),
            sign_in: SignIn {
                tls: Some(true),
                method: None,
                certificate: r.certificate,
            },
        };
        if let Err(e) = audit::log(committer, record).await {
            tracing::error!("refused client certificate not logged: {}", e.message);
        }
    }
}
