//! Traces: every event on one person, by one agent, or under one ticket, in time order, a page at a
//! time. Served by the direct path ([`crate::direct_trace`]: manifest → index → pages); the DataFusion
//! plan (the DataFrame API, no SQL text assembled from user input) is the reference and the fallback.

use crate::engine::{QueryEngine, QueryError};
use crate::scope::RowScope;
use crate::trace_cursor::TraceCursor;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
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
    pub(crate) fn column(&self) -> &'static str {
        match self {
            TraceKey::Subject(_) => "subject_id",
            TraceKey::Actor(_) => "actor_id",
            TraceKey::Ticket(_) => "ticket",
        }
    }

    pub(crate) fn value(&self) -> &str {
        match self {
            TraceKey::Subject(v) | TraceKey::Actor(v) | TraceKey::Ticket(v) => v,
        }
    }
}

/// A trace request: the key, an optional period of days (inclusive, `YYYY-MM-DD`), a page size and
/// where the page starts.
#[derive(Clone, Debug)]
pub struct TraceRequest {
    pub key: TraceKey,
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    /// Most events returned (the oldest first); `None`: all.
    pub limit: Option<usize>,
    /// Only events after this one (the `next` of the previous page).
    pub after: Option<TraceCursor>,
}

/// One page of a trace.
#[derive(Clone, Debug, Default)]
pub struct TracePage {
    /// The events, in `(ts, source, source_seq)` order, with the columns the scope shows.
    pub batches: Vec<RecordBatch>,
    /// Where the next page starts, when there is one and the scope may see it (a cursor names a
    /// `source_seq`).
    pub next: Option<TraceCursor>,
    /// Whether more events follow this page.
    pub more: bool,
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

/// The trace columns a scope shows.
pub(crate) fn visible_trace_columns(scope: Option<&RowScope>) -> Vec<String> {
    trace_columns()
        .into_iter()
        .filter(|c| visible(scope, c))
        .collect()
}

impl QueryEngine {
    /// Runs a trace.
    pub async fn trace(&self, req: &TraceRequest) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(self.trace_page_within(req, None).await?.batches)
    }

    /// A trace within a principal's scope (`None`: everything). Columns the scope hides are left out.
    pub async fn trace_within(
        &self,
        req: &TraceRequest,
        scope: Option<&RowScope>,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        Ok(self.trace_page_within(req, scope).await?.batches)
    }

    /// One page of a trace within a scope: by the direct path ([`crate::direct_trace`]) when the
    /// indexes are on and every file it reads has one, else through DataFusion
    /// ([`QueryEngine::trace_sql_page_within`]). Both give the same rows in the same order.
    pub async fn trace_page_within(
        &self,
        req: &TraceRequest,
        scope: Option<&RowScope>,
    ) -> Result<TracePage, QueryError> {
        if self.use_index && self.direct_trace {
            let started = std::time::Instant::now();
            let direct = tokio::time::timeout(self.limits.timeout, self.trace_direct(req, scope))
                .await
                .map_err(|_| QueryError::Timeout(self.limits.timeout.as_secs()))??;
            if let Some(page) = direct {
                tracing::debug!("trace by the direct path in {:?}", started.elapsed());
                return Ok(page);
            }
            tracing::debug!("a file without a usable index: trace through DataFusion");
        }
        self.trace_sql_page_within(req, scope).await
    }

    /// The same page planned by DataFusion over the `events` table (with the lookup index when the
    /// engine uses it): the reference the direct path is tested against, and its fallback.
    pub async fn trace_sql_page_within(
        &self,
        req: &TraceRequest,
        scope: Option<&RowScope>,
    ) -> Result<TracePage, QueryError> {
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
        // The order is total with `source_seq`, which a scope hiding it cannot sort on (no cursor then).
        let with_seq = visible(scope, "source_seq");
        if let Some(after) = &req.after {
            if !with_seq {
                return Err(QueryError::Output(
                    "this scope has no cursor: narrow the period instead".into(),
                ));
            }
            let ts = lit(ScalarValue::TimestampMicrosecond(
                Some(after.ts_micros),
                Some("UTC".into()),
            ));
            let source = lit(after.source.as_str());
            df = df.filter(
                col("ts").gt(ts.clone()).or(col("ts").eq(ts).and(
                    col("source").gt(source.clone()).or(col("source")
                        .eq(source)
                        .and(col("source_seq").gt(lit(after.source_seq)))),
                )),
            )?;
        }
        let shown = visible_trace_columns(scope);
        let mut columns: Vec<&str> = shown.iter().map(String::as_str).collect();
        let mut order = vec![col("ts").sort(true, false), col("source").sort(true, false)];
        if with_seq {
            columns.push("source_seq");
            order.push(col("source_seq").sort(true, false));
        }
        let df = df
            .select_columns(&columns)?
            .sort(order)?
            .limit(0, req.limit.map(|l| l.saturating_add(1)))?;
        let batches = self.collect(df, started).await?;
        let schema = match batches.first() {
            Some(b) => b.schema(),
            None => return Ok(TracePage::default()),
        };
        let mut all = concat_batches(&schema, &batches)?;
        let limit = req.limit.unwrap_or(usize::MAX);
        let more = all.num_rows() > limit;
        let mut next = None;
        if more {
            all = all.slice(0, limit);
            if with_seq && limit > 0 {
                next = cursor_at(&all, limit - 1);
            }
        }
        if with_seq {
            all = all.project(&(0..shown.len()).collect::<Vec<_>>())?;
        }
        Ok(TracePage {
            batches: if all.num_rows() == 0 {
                Vec::new()
            } else {
                vec![all]
            },
            next,
            more,
        })
    }
}

/// The cursor of row `i` of a batch holding `ts`, `source` and `source_seq`.
fn cursor_at(batch: &RecordBatch, i: usize) -> Option<TraceCursor> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{TimestampMicrosecondType, UInt64Type};
    let ts = batch
        .column_by_name("ts")?
        .as_primitive_opt::<TimestampMicrosecondType>()?;
    let source = batch.column_by_name("source")?;
    let source =
        datafusion::arrow::compute::cast(source, &datafusion::arrow::datatypes::DataType::Utf8)
            .ok()?;
    let seq = batch
        .column_by_name("source_seq")?
        .as_primitive_opt::<UInt64Type>()?;
    Some(TraceCursor {
        ts_micros: ts.value(i),
        source: source.as_string_opt::<i32>()?.value(i).to_owned(),
        source_seq: seq.value(i),
    })
}

/// Whether a scope shows a column.
fn visible(scope: Option<&RowScope>, column: &str) -> bool {
    scope
        .and_then(|s| s.columns.as_ref())
        .is_none_or(|cols| cols.iter().any(|c| c == column))
}
