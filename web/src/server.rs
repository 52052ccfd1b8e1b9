//! The HTTP server: router, shared state, the background sealer and graceful shutdown.

use crate::audit::{self, Actor, AuditRecord};
use crate::error::ApiError;
use crate::tls::{ClientCertificate, ConnectionInfo};
use crate::{
    chain_api, guard, ingest_api, me_api, patterns, proof_api, research_api, sql_api, trace_api, ui,
};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use iris_access::{AccessControl, AuthError, Principal, Role, TokenStore};
use iris_ingest::commit::Committer;
use iris_query::QueryEngine;
use iris_store::warehouse::Warehouse;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How long requests in flight may still run after Ctrl-C or SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Most connections open at once: past it a new connection is closed at once. Well under the file
/// descriptors the process may open (raised to its hard limit at start), so that idle clients can
/// never starve the write-ahead log, the store or the indexes of descriptors.
pub const MAX_CONNECTIONS: usize = 512;

/// A request's headers must arrive within this (also the idle limit of a kept-alive connection).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A request body that sends nothing for this long ends its request (400, audited).
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A TLS handshake must end within this, or the connection is closed (a client that opens a
/// connection and sends nothing holds a slot no longer than one that sends no headers).
pub const HANDSHAKE_TIMEOUT: Duration = HEADER_TIMEOUT;

/// Shared by every request.
pub struct AppState {
    pub tokens: TokenStore,
    /// Directory and policies (information and administration points) and the decision point.
    pub access: AccessControl,
    pub query: QueryEngine,
    pub warehouse: Arc<Warehouse>,
    pub committer: Option<Committer>,
    /// Poked when events arrive, so the sealer can seal early under load.
    pub sealer_wakeup: Notify,
    pub seal_threshold: u64,
    /// Researchers' anonymised aggregates.
    pub research: iris_research::ResearchDesk,
    /// The result of the last `POST /v1/verify`, for the chain status.
    pub last_verify: tokio::sync::Mutex<Option<serde_json::Value>>,
    /// Requests being answered, so that those still running when shutdown abandons them are logged.
    pub in_flight: guard::InFlight,
    /// Counters and histograms for `GET /metrics` (on `--metrics-listen`).
    pub metrics: crate::metrics::Metrics,
    /// How an OTLP log record becomes an audit event (`POST /v1/logs`).
    pub otlp_mapping: Arc<iris_ingest::formats::otlp::LogMapping>,
}

impl AppState {
    /// The principal of the request's bearer token.
    /// Within a request the layer has signed in, that principal (token or certificate).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        if let Some(p) = guard::signed_in() {
            return Ok(p);
        }
        let value = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized("missing `Authorization: Bearer <token>` header")
            })?;
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer <token>`"))?;
        self.tokens.authenticate(token.trim()).map_err(|e| match e {
            AuthError::Unknown => ApiError::unauthorized("unknown token"),
            other => ApiError::unauthorized(other.to_string()),
        })
    }
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Seal at least this often when events are waiting.
    pub seal_interval: Duration,
    /// Seal early once this many events are waiting.
    pub seal_threshold: u64,
    /// Memory, spill, timeout and concurrency bounds of queries.
    pub query_limits: iris_query::QueryLimits,
    /// Answer without the lookup indexes (plain DataFusion; for comparisons only).
    pub no_index: bool,
    /// The access files: `directory/*.csv` and `policies/*.toml`.
    pub access_dir: std::path::PathBuf,
    /// TLS certificate, key, client CAs and CRLs (`None`: plain HTTP).
    pub tls: Option<crate::tls::TlsFiles>,
    /// Where `GET /metrics` answers, apart from the API (`None`: no metrics listener).
    pub metrics_listen: Option<SocketAddr>,
    /// The OTLP logs mapping file (`None`: the built-in `iris.*` mapping).
    pub otlp_mapping: Option<std::path::PathBuf>,
}

/// Builds the router. Every route and the fallback sit behind one layer,
/// [`guard::audit_every_request`]: a token is required outside [`guard::OPEN_ROUTES`], and every
/// request is one audit event.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(ui::index))
        .route("/ui/app.js", get(ui::app_js))
        .route("/ui/app.css", get(ui::app_css))
        .route("/v1/patterns", get(patterns::get_patterns))
        .route("/v1/chain", get(chain_api::get_chain))
        .route("/v1/verify", post(chain_api::post_verify))
        .route("/v1/checkpoint", get(chain_api::get_checkpoint))
        .route("/v1/health", get(health))
        .route("/v1/status", get(chain_api::get_status))
        .route("/v1/events", post(ingest_api::post_events))
        .route("/v1/logs", post(crate::otlp_api::post_logs))
        .route("/v1/sql", post(sql_api::post_sql))
        .route("/v1/trace", get(trace_api::get_trace))
        .route("/v1/proof", get(proof_api::get_proof))
        .route("/v1/me", get(me_api::get_me))
        .route("/v1/me/consultations", get(me_api::get_consultations))
        .route("/v1/research/sql", post(research_api::post_research))
        .route("/v1/research/budget", get(research_api::get_budget))
        .route("/v1/reports", get(research_api::get_reports))
        .route("/v1/reports/{name}", get(research_api::get_report))
        .route("/v1/seal", post(seal))
        .fallback(guard::not_found)
        // `/v1/events` reads its body itself (limit, JSON reason); this bounds the other routes.
        .layer(DefaultBodyLimit::max(1 << 20))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            BODY_IDLE_TIMEOUT,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::audit_every_request,
        ))
        .with_state(state)
}

/// Raises the soft limit of open files to the hard one (a server holds many sockets and files).
fn raise_file_limit() {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls on a local struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && limit.rlim_cur < limit.rlim_max
            {
                limit.rlim_cur = limit.rlim_max;
                let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes: at most [`MAX_CONNECTIONS`] at once, the
/// TLS handshake (with `tls`) within [`HANDSHAKE_TIMEOUT`], each request's headers within
/// [`HEADER_TIMEOUT`]. Every request carries its connection's [`ConnectionInfo`]. Then stops
/// accepting and lets the connections end (the caller bounds how long).
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_full: Option<tokio::time::Instant> = None;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a network error: wait a little rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: closing is the answer (nothing was read, so there is no request to log). Said
            // at most once a second, so that a flood cannot flood the log too.
            let now = tokio::time::Instant::now();
            if last_full.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
                tracing::warn!("{MAX_CONNECTIONS} connections open: new ones are closed");
                last_full = Some(now);
            }
            drop(stream);
            continue;
        };
        let app = app.clone();
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                serve_one(stream, app, ConnectionInfo::default(), watcher).await;
                return;
            };
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return handshake_failed(&e.to_string()),
                    Err(_) => return handshake_failed("timed out"),
                };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|c| match ClientCertificate::parse(c) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        // Verified by WebPKI yet unreadable here: signs in no one.
                        tracing::warn!("client certificate not readable: {e}");
                        None
                    }
                });
            let info = ConnectionInfo {
                tls: true,
                certificate,
            };
            serve_one(stream, app, info, watcher).await;
        });
    }
    graceful.shutdown().await;
}

/// TLS handshakes that failed since the start (refused certificates, timeouts, other protocols).
static HANDSHAKE_FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// When a failed handshake was last logged (seconds since the epoch).
static HANDSHAKE_LOGGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a failed handshake and logs it, at most once a second (a refused certificate is also an
/// audit event, written by [`guard::log_rejected_certificates`]).
fn handshake_failed(why: &str) {
    use std::sync::atomic::Ordering::Relaxed;
    let n = HANDSHAKE_FAILURES.fetch_add(1, Relaxed) + 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if HANDSHAKE_LOGGED.swap(now, Relaxed) != now {
        tracing::warn!("TLS handshake failed: {why} ({n} failed since start)");
    }
}

/// Serves one connection's requests over `io`, each with `info` in its extensions.
async fn serve_one<I>(
    io: I,
    app: Router,
    info: ConnectionInfo,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let inner = hyper_util::service::TowerToHyperService::new(app);
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(info.clone());
            hyper::service::Service::call(&inner, req)
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!("connection ended: {e}");
    }
}

/// Adds `Strict-Transport-Security` to every answer of a TLS listener.
async fn add_hsts(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static(crate::tls::HSTS),
    );
    response
}

/// The router of a listener: with TLS, every answer says so with HSTS.
pub fn with_hsts(app: Router, tls: bool) -> Router {
    if tls {
        app.layer(axum::middleware::map_response(add_hsts))
    } else {
        app
    }
}

/// The liveness probe, open to anyone: it says the process answers, nothing about data or
/// configuration (the chain's counts and access-file errors are in the guarded `GET /v1/status`).
async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn seal(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let who = state.authenticate(&headers)?;
    if who.role != Role::Admin {
        return Err(ApiError::denied(
            format!("a {} may not seal: only an admin token may", who.role),
            vec![format!("role:{}", who.role)],
        ));
    }
    let s = state
        .seal_now()
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    guard::note(|d| d.outcome = Some(Ok(Some(s.events as usize))));
    Ok(Json(
        serde_json::json!({ "partitions": s.partitions, "events": s.events, "rejections": s.rejections, "bytes": s.bytes }),
    ))
}

/// Serves until Ctrl-C or SIGTERM, then seals what is pending. `ready` is told the bound address.
pub async fn serve(
    mut warehouse: Warehouse,
    config: ServerConfig,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let committer = warehouse.start_committer().await?;
    let warehouse = Arc::new(warehouse);
    let access = match AccessControl::open(&config.access_dir) {
        Ok(a) => a,
        Err(e) if !config.access_dir.exists() => {
            tracing::warn!(
                "no access files in {} ({e}): only admin, auditor and collector tokens can act until they appear",
                config.access_dir.display()
            );
            AccessControl::empty(&config.access_dir)
        }
        Err(e) => return Err(format!("access files: {e}").into()),
    };
    let otlp_mapping = match &config.otlp_mapping {
        Some(path) => iris_ingest::formats::otlp::LogMapping::from_file(path)?,
        None => iris_ingest::formats::otlp::LogMapping::builtin(),
    };
    let state = Arc::new(AppState {
        tokens: TokenStore::new(&warehouse.dir.tokens_path()),
        access,
        query: QueryEngine::new(warehouse.loc.clone())
            .with_index(!config.no_index)
            .with_limits(config.query_limits.clone())?,
        warehouse: warehouse.clone(),
        committer: Some(committer.clone()),
        sealer_wakeup: Notify::new(),
        seal_threshold: config.seal_threshold,
        // Project keys (`keys/projects/`) and released cells (`research/`) live in the data directory.
        last_verify: tokio::sync::Mutex::new(None),
        in_flight: guard::InFlight::default(),
        metrics: crate::metrics::Metrics::new(),
        otlp_mapping: Arc::new(otlp_mapping),
        research: iris_research::ResearchDesk::new(
            QueryEngine::new(warehouse.loc.clone()).with_limits(config.query_limits.clone())?,
            warehouse.dir.root.clone(),
        ),
    });
    // Certificates are read before binding: a wrong file stops the start, with its name.
    let tls = match &config.tls {
        Some(files) => Some(crate::tls::load(files)?),
        None => None,
    };
    let (tls_config, rejected) = match tls {
        Some(t) => (Some(t.config), t.rejected),
        None => (None, None),
    };
    let rejected_logger =
        rejected.map(|r| tokio::spawn(guard::log_rejected_certificates(state.clone(), r)));
    let metrics_server = match config.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("metrics listener {addr}: {e}"))?;
            tracing::info!("metrics on http://{}/metrics", listener.local_addr()?);
            Some(tokio::spawn(crate::metrics::serve_metrics(
                listener,
                state.clone(),
            )))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    ready(listener.local_addr()?);
    let sealer_state = state.clone();
    let sealer = tokio::spawn(async move {
        // Seal when the interval has passed since the last seal, or early once enough is waiting:
        // sealing on every batch would make tiny partitions.
        let mut last = tokio::time::Instant::now();
        loop {
            let deadline = last + config.seal_interval;
            let _ = tokio::time::timeout_at(deadline, sealer_state.sealer_wakeup.notified()).await;
            let pending = committer.pending_events();
            // A segment closed for its size is sealed at once, and so is the log when collectors
            // are being refused for backlog: the backlog stays small.
            let closed = committer.closed_segments();
            let full = committer.over_backlog().is_some();
            let due = tokio::time::Instant::now() >= deadline;
            if !due && pending < sealer_state.seal_threshold && closed == 0 && !full {
                continue;
            }
            last = tokio::time::Instant::now();
            if pending == 0 && closed == 0 && !full {
                continue;
            }
            if let Err(e) = sealer_state.seal_now().await {
                tracing::error!("sealing failed (events stay in the write-ahead log): {e}");
            }
        }
    });
    let watcher_state = state.clone();
    let watcher = tokio::spawn(async move {
        // A change to a policy or directory file is itself an event of the chain.
        // The versions in force at start are logged first.
        loop {
            watcher_state.access.refresh();
            for change in watcher_state.access.take_changes() {
                log_policy_change(&watcher_state, &change).await;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    // On Ctrl-C or SIGTERM stop accepting, let requests in flight finish for a few seconds, then
    // abandon them (a runaway query must not hold the shutdown up to its timeout).
    let signalled = Arc::new(Notify::new());
    let tell = signalled.clone();
    raise_file_limit();
    let app = with_hsts(router(state.clone()), tls_config.is_some());
    let serving = serve_connections(listener, app, tls_config, async move {
        shutdown_signal().await;
        tell.notify_one();
    });
    tokio::select! {
        () = serving => {},
        () = async {
            signalled.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!(
            "requests still running {} s after the signal were abandoned",
            SHUTDOWN_GRACE.as_secs()
        ),
    }
    // Requests abandoned after the grace period never reach their own audit event: log them here.
    guard::log_abandoned(&state).await;
    sealer.abort();
    if let Some(m) = metrics_server {
        m.abort();
    }
    watcher.abort();
    if let Some(l) = rejected_logger {
        l.abort();
    }
    let s = warehouse.seal_now().await?;
    tracing::info!(
        "sealed {} events in {} partitions at shutdown",
        s.events,
        s.partitions
    );
    Ok(())
}

async fn log_policy_change(state: &AppState, change: &iris_access::FileChange) {
    let Some(committer) = &state.committer else {
        return;
    };
    let record = AuditRecord {
        actor: Actor::System,
        institution: None,
        kind: "policy",
        operation: iris_ingest::Operation::Modify,
        search: format!("{} sha256={}", change.file, change.sha256),
        purpose: None,
        route: "policy watcher".to_owned(),
        status: 200,
        outcome: Ok(Some(0)),
        sign_in: audit::SignIn::default(),
    };
    match audit::log(committer, record).await {
        Ok(_) => tracing::info!("access file changed: {} (logged)", change.file),
        Err(e) => tracing::error!("access file change not logged: {}", e.message),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
