//! Prometheus metrics (`GET /metrics` on the separate `--metrics-listen` address, OpenMetrics text).
//!
//! Counters and histograms are recorded where their promise is kept — ingest in
//! [`crate::ingest_api::commit_batch`], request latency and refusals in the audit layer
//! ([`crate::guard`]), seals in [`AppState::seal_now`] — and the state of the WAL, the seal lag, the
//! last verify and the privacy budgets are read when scraped. Labels are bounded: protocol, source
//! (a collector token's), a reason class, the route *pattern*, the method, the role, the status, the
//! research project — never a user, a subject, a ticket or a path.

use crate::server::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use iris_ingest::commit::BatchOutcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type FloatGauge = Gauge<f64, AtomicU64>;
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RecordLabels {
    protocol: &'static str,
    source: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    source: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    route: String,
    role: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectLabels {
    project: String,
}

/// Acknowledgement latency buckets: 0.25 ms … about 8 s.
fn ack_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Request latency buckets: 1 ms … about 65 s.
fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    records: Family<RecordLabels, Counter>,
    rejections: Family<RejectionLabels, Counter>,
    ack: Histograms<ProtocolLabels>,
    requests: Histograms<RouteLabels>,
    refusals: Family<RefusalLabels, Counter>,
    seals: Counter,
    seal_failures: Counter,
    last_seal: FloatGauge,
    wal_bytes: Gauge,
    unsealed_events: Gauge,
    oldest_unsealed: FloatGauge,
    verify_ok: Gauge,
    verify_time: FloatGauge,
    budget_spent: Family<ProjectLabels, FloatGauge>,
    budget_total: Family<ProjectLabels, FloatGauge>,
    /// When the oldest event not yet sealed was made durable (an upper bound on its age).
    unsealed_since: Mutex<Option<Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let m = Metrics {
            records: Family::default(),
            rejections: Family::default(),
            ack: Family::new_with_constructor(ack_histogram),
            requests: Family::new_with_constructor(request_histogram),
            refusals: Family::default(),
            seals: Counter::default(),
            seal_failures: Counter::default(),
            last_seal: FloatGauge::default(),
            wal_bytes: Gauge::default(),
            unsealed_events: Gauge::default(),
            oldest_unsealed: FloatGauge::default(),
            verify_ok: Gauge::default(),
            verify_time: FloatGauge::default(),
            budget_spent: Family::default(),
            budget_total: Family::default(),
            unsealed_since: Mutex::new(None),
            registry: Registry::default(),
        };
        registry.register(
            "iris_ingest_records",
            "Records collectors sent, by protocol (ndjson, otlp), source and outcome (accepted, duplicate, rejected)",
            m.records.clone(),
        );
        registry.register(
            "iris_ingest_rejections",
            "Records refused, by source and reason class",
            m.rejections.clone(),
        );
        registry.register(
            "iris_ingest_ack_seconds",
            "Time from a batch handed to the write-ahead log to its durable acknowledgement (group commit, fsync)",
            m.ack.clone(),
        );
        registry.register(
            "iris_request_duration_seconds",
            "HTTP requests by route pattern, method and role, until the answer (before its audit event)",
            m.requests.clone(),
        );
        registry.register(
            "iris_refusals",
            "HTTP requests answered 4xx (no or bad token, denied, malformed, too large, refused), by route, role and status",
            m.refusals.clone(),
        );
        registry.register("iris_seals", "Seals made", m.seals.clone());
        registry.register(
            "iris_seal_failures",
            "Seals that failed (the events stay in the write-ahead log)",
            m.seal_failures.clone(),
        );
        registry.register(
            "iris_last_seal_timestamp_seconds",
            "When the last seal succeeded (Unix time; 0 = none since start)",
            m.last_seal.clone(),
        );
        registry.register(
            "iris_wal_bytes",
            "Bytes in the write-ahead log directory (segments and acknowledgement records)",
            m.wal_bytes.clone(),
        );
        registry.register(
            "iris_unsealed_events",
            "Events durable in the write-ahead log, not yet sealed",
            m.unsealed_events.clone(),
        );
        registry.register(
            "iris_oldest_unsealed_seconds",
            "Seal lag: age of the oldest event not yet sealed (an upper bound; 0 = none)",
            m.oldest_unsealed.clone(),
        );
        registry.register(
            "iris_last_verify_ok",
            "Result of the last POST /v1/verify: 1 all holds, 0 findings, -1 none since start",
            m.verify_ok.clone(),
        );
        registry.register(
            "iris_last_verify_timestamp_seconds",
            "When the last POST /v1/verify ran (Unix time; 0 = none since start)",
            m.verify_time.clone(),
        );
        registry.register(
            "iris_privacy_budget_spent_rho",
            "Privacy budget spent per research project (rho, zCDP); _reports is the reports' own",
            m.budget_spent.clone(),
        );
        registry.register(
            "iris_privacy_budget_rho",
            "Privacy budget granted per research project (rho, zCDP)",
            m.budget_total.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a committed batch of `source` and how long its acknowledgement took.
    pub fn ingested(
        &self,
        protocol: &'static str,
        source: &str,
        outcome: &BatchOutcome,
        ack: Duration,
    ) {
        let count = |outcome: &'static str, n: u64| {
            self.records
                .get_or_create(&RecordLabels {
                    protocol,
                    source: source.to_owned(),
                    outcome,
                })
                .inc_by(n);
        };
        count("accepted", outcome.accepted);
        count("duplicate", outcome.duplicates);
        count("rejected", outcome.rejected.len() as u64);
        for (_, reason) in &outcome.rejected {
            self.rejections
                .get_or_create(&RejectionLabels {
                    source: source.to_owned(),
                    reason: reason_class(reason),
                })
                .inc();
        }
        self.ack
            .get_or_create(&ProtocolLabels { protocol })
            .observe(ack.as_secs_f64());
        if outcome.accepted > 0 {
            self.durable();
        }
    }

    /// Notes that events were made durable (and so wait for a seal).
    pub fn durable(&self) {
        let mut since = self
            .unsealed_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        since.get_or_insert_with(Instant::now);
    }

    /// Records one answered HTTP request (`route` a pattern, never a raw path).
    pub fn request(&self, route: &str, method: &str, role: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                role: role.to_owned(),
            })
            .observe(took.as_secs_f64());
        if (400..500).contains(&status) {
            self.refusals
                .get_or_create(&RefusalLabels {
                    route: route.to_owned(),
                    role: role.to_owned(),
                    status,
                })
                .inc();
        }
    }

    /// Records a seal that started at `started`; events still pending arrived after it started.
    fn sealed(&self, ok: bool, started: Instant, pending_after: u64) {
        if !ok {
            self.seal_failures.inc();
            return;
        }
        self.seals.inc();
        self.last_seal.set(unix_now());
        let mut since = self
            .unsealed_since
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *since = (pending_after > 0).then_some(started);
    }
}

/// A bounded class of a rejection reason (the reason itself names values).
pub fn reason_class(reason: &str) -> &'static str {
    const CLASSES: &[(&str, &str)] = &[
        ("is not mapped to the audit schema", "content"),
        ("is not part of the audit schema", "content"),
        ("the body holds", "content"),
        ("missing required field", "missing_field"),
        ("timestamp", "timestamp"),
        ("is not a valid", "check_digit"),
        ("goes backwards", "seq_backwards"),
        ("is implausible", "seq_implausible"),
        ("does not match this collector's source", "source_mismatch"),
        ("is reserved", "reserved"),
        ("is not one of", "bad_code"),
        ("code `", "bad_code"),
        ("longer than", "too_long"),
        ("malformed", "malformed"),
        ("wrong type", "malformed"),
        ("holds", "malformed"),
    ];
    CLASSES
        .iter()
        .find(|(needle, _)| reason.contains(needle))
        .map_or("other", |(_, class)| class)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl AppState {
    /// Seals what the write-ahead log holds now, and records it in the metrics. Every seal of the
    /// server (background, `POST /v1/seal`) goes through here.
    pub async fn seal_now(
        &self,
    ) -> Result<iris_store::sealer::SealSummary, iris_store::StoreError> {
        let started = Instant::now();
        let result = self.warehouse.seal_now().await;
        let pending = self.committer.as_ref().map_or(0, |c| c.pending_events());
        self.metrics.sealed(result.is_ok(), started, pending);
        result
    }

    /// The exposition: counters as they are, gauges read now.
    pub async fn render_metrics(&self) -> String {
        let m = &self.metrics;
        m.wal_bytes
            .set(dir_bytes(&self.warehouse.dir.wal_dir()).min(i64::MAX as u64) as i64);
        let pending = self.committer.as_ref().map_or(0, |c| c.pending_events());
        m.unsealed_events.set(pending.min(i64::MAX as u64) as i64);
        let since = *m.unsealed_since.lock().unwrap_or_else(|e| e.into_inner());
        m.oldest_unsealed.set(match since {
            Some(t) if pending > 0 => t.elapsed().as_secs_f64(),
            _ => 0.0,
        });
        let verify = self.last_verify.lock().await.clone();
        match verify {
            None => {
                m.verify_ok.set(-1);
            }
            Some(v) => {
                m.verify_ok
                    .set(i64::from(v["ok"].as_bool().unwrap_or(false)));
                let at = v["at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map_or(0.0, |t| t.timestamp() as f64);
                m.verify_time.set(at);
            }
        }
        let snapshot = self.access.refresh();
        let mut rules: Vec<iris_research::ProjectRules> = snapshot
            .policies
            .projects
            .values()
            .map(iris_research::ProjectRules::from)
            .collect();
        rules.push(iris_research::ProjectRules::reports(
            &snapshot.policies.reports,
        ));
        for r in &rules {
            match self.research.budget(r) {
                Ok(status) => {
                    let labels = ProjectLabels {
                        project: status.project.clone(),
                    };
                    m.budget_spent.get_or_create(&labels).set(status.rho_spent);
                    m.budget_total.get_or_create(&labels).set(status.rho_total);
                }
                Err(e) => tracing::warn!("metrics: budget of {}: {e}", r.id),
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &m.registry) {
            tracing::error!("metrics: encoding failed: {e}");
        }
        out
    }
}

/// Total size of the files directly in `dir` (0 if it cannot be listed).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(std::fs::Metadata::is_file)
            .map(|m| m.len())
            .sum()
    })
}

/// `GET /metrics` on the metrics listener.
pub async fn get_metrics(State(state): State<Arc<AppState>>) -> Response {
    let body = state.render_metrics().await;
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Serves `GET /metrics` (and nothing else) on its own listener until the process ends. Apart from
/// the API: no token, no audit event per scrape, and it answers even when the audit log cannot be
/// written (when the API withholds every answer) — which is when an operator needs it most.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", axum::routing::get(get_metrics))
        .with_state(state);
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fall_in_a_few_classes() {
        assert_eq!(reason_class("missing required field `ts`"), "missing_field");
        assert_eq!(
            reason_class("subject_id `1` is not a valid niss number (…)"),
            "check_digit"
        );
        assert_eq!(
            reason_class("`note` is not mapped to the audit schema: content is never logged"),
            "content"
        );
        assert_eq!(reason_class("whatever else"), "other");
    }

    #[test]
    fn the_exposition_names_every_metric() {
        let m = Metrics::new();
        m.ingested(
            "otlp",
            "portal",
            &BatchOutcome {
                accepted: 3,
                duplicates: 1,
                rejected: vec![(2, "missing required field `ts`".into())],
            },
            Duration::from_millis(2),
        );
        m.request("/v1/sql", "POST", "admin", 403, Duration::from_millis(5));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.registry).expect("encode");
        for needle in [
            "iris_ingest_records_total{protocol=\"otlp\",source=\"portal\",outcome=\"accepted\"} 3",
            "iris_ingest_rejections_total{source=\"portal\",reason=\"missing_field\"} 1",
            "iris_ingest_ack_seconds_count{protocol=\"otlp\"} 1",
            "iris_refusals_total{route=\"/v1/sql\",role=\"admin\",status=\"403\"} 1",
            "# EOF",
        ] {
            assert!(out.contains(needle), "{needle} missing in\n{out}");
        }
    }
}
