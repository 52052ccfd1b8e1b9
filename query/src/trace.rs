//! Traces: every event on one person, by one agent, or under one ticket, in time order. Built with the
//! DataFrame API (no SQL text is assembled from user input), so the lookup index and day pruning apply.

use crate::engine::{QueryEngine, QueryError};
use crate::scope::RowScope;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{col, lit};

/// Who or what to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceKey {
    /// A person or enterprise (`subject_id`: NISS, BCE/KBO, ONSS).
    Subject(String),
    /// An agent or application (`actor_id`).
    Actor(String),
    /// A message (`ticket`): its whole path across sources.
    Ticket(String),
}

impl TraceKey {
    fn column(&self) -> &'static str {
        match self {
            TraceKey::Subject(_) => "subject_id",
            TraceKey::Actor(_) => "actor_id",
            TraceKey::Ticket(_) => "ticket",
        }
    }

    fn value(&self) -> &str {
        match self {
            TraceKey::Subject(v) | TraceKey::Actor(v) | TraceKey::Ticket(v) => v,
        }
    }
}

/// A trace request: the key and an optional period of days (inclusive, `YYYY-MM-DD`).
#[derive(Clone, Debug)]
pub struct TraceRequest {
    pub key: TraceKey,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    /// Most events returned (the oldest first).
    pub limit: Option<usize>,
}

/// The columns a trace shows, in order: time, source, then the event's fields as stored (without the
/// collector's sequence number).
pub fn trace_columns() -> Vec<String> {
    let mut cols = vec!["ts".to_owned(), "source".to_owned()];
    cols.extend(
        iris_store::schema::events_file_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| n != "ts" && n != "source_seq"),
    );
    cols
}

impl QueryEngine {
    /// Runs a trace.
    pub async fn trace(&self, req: &TraceRequest) -> Result<Vec<RecordBatch>, QueryError> {
        self.trace_within(req, None).await
    }

    /// A trace within a principal's scope (`None`: everything). Columns the scope hides are left out.
    pub async fn trace_within(
        &self,
        req: &TraceRequest,
        scope: Option<&RowScope>,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let started = std::time::Instant::now();
        let ctx = self.context_within_trusted(scope)?;
        let mut df = ctx
            .table("events")
            .await?
            .filter(col(req.key.column()).eq(lit(req.key.value())))?;
        if let Some(from) = req.from {
            df = df.filter(col("day").gt_eq(lit(from.format("%Y-%m-%d").to_string())))?;
        }
        if let Some(to) = req.to {
            df = df.filter(col("day").lt_eq(lit(to.format("%Y-%m-%d").to_string())))?;
        }
        let df = df
            .select_columns(
                &trace_columns()
                    .iter()
                    .map(String::as_str)
                    .filter(|c| visible(scope, c))
                    .collect::<Vec<_>>(),
            )?
            .sort(vec![
                col("ts").sort(true, false),
                col("source").sort(true, false),
            ])?
            .limit(0, req.limit)?;
        self.collect(df, started).await
    }
}

/// Whether a scope shows a column.
fn visible(scope: Option<&RowScope>, column: &str) -> bool {
    scope
        .and_then(|s| s.columns.as_ref())
        .is_none_or(|cols| cols.iter().any(|c| c == column))
}
