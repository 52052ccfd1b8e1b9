//! The direct trace path: no DataFusion planning, no listing. The chain's manifest (kept by
//! [`crate::live_files`], one `GET` per request when nothing changed) gives the live event files; only
//! those whose days meet the trace's window (and, for a subject, whose compacted bucket can hold it)
//! are considered, oldest first; each one's lookup index turns the key into row numbers, and only the
//! pages holding those rows are decoded.
//!
//! Two passes, so a key with millions of events costs about what a page of it costs: the first reads
//! `ts`, `source`, `source_seq` and the columns the filter needs for the selected rows, keeps the
//! first `limit` events after the cursor in `(ts, source, source_seq)` order, and stops opening files
//! once every remaining file starts after the last kept event; the second reads the shown columns of
//! the kept rows only.
//!
//! The same filter as the DataFusion path runs on every row read — the key, the day window, and the
//! scope's own expression ([`crate::scope`]: [`own_events`] and [`RowScope::filter`]) evaluated by
//! DataFusion's expression engine — so no out-of-scope row is ever kept. Every file is checked against
//! its seal before its pages are read ([`crate::live_files::LiveFiles::check_sealed`]). A file without
//! a usable index, or a path this module does not know, sends the whole trace back to the DataFusion
//! path (`None`).

use crate::engine::{QueryEngine, QueryError};
use crate::scope::{RowScope, own_events};
use crate::sealed_parquet::SealedFileReader;
use crate::sealed_table::{KeyFilter, access_plan};
use crate::trace::{TracePage, TraceRequest, visible_trace_columns};
use crate::trace_cursor::TraceCursor;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::{
    Field, Schema, SchemaRef, TimestampMicrosecondType, UInt64Type,
};
use datafusion::common::DFSchema;
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata;
use datafusion::parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use datafusion::physical_expr::{PhysicalExpr, create_physical_expr};
use datafusion::prelude::{Expr, col, lit};
use futures::{StreamExt, TryStreamExt};
use iris_store::layout::{compacted_bucket, subject_bucket};
use iris_store::manifest::{FileKind, LiveFile};
use iris_store::schema::compacted_file_schema;
use object_store::ObjectStoreExt as _;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;

/// Files looked up and read at once (index blobs, pages).
const FILES_AT_ONCE: usize = 16;

/// Fewer bytes than any shown trace row takes in memory (16 columns): bounds the events kept.
const MIN_ROW_BYTES: usize = 128;

/// Rows decoded per batch.
const BATCH_ROWS: usize = 8192;

/// A live event file a trace may read.
#[derive(Clone, Debug)]
struct Candidate {
    rel: String,
    sha256: String,
    index_sha256: Option<String>,
    /// First and last day it can hold (`YYYY-MM-DD`; a compacted month ends on its "31st").
    first: String,
    last: String,
    /// The daily partition's day and source (their directories); `None` for a compacted file, which
    /// stores both.
    daily: Option<(String, String)>,
}

/// The value of `name=` in a path.
fn segment<'a>(rel: &'a str, name: &str) -> Option<&'a str> {
    rel.split('/').find_map(|s| s.strip_prefix(name))
}

impl Candidate {
    /// The file's place in time; `None` for a file whose path this module does not know.
    fn of(rel: &str, f: &LiveFile) -> Option<Candidate> {
        let (first, last, daily) = match f.kind {
            FileKind::Events => {
                let day = segment(rel, "day=").filter(|d| d.len() == 10)?;
                let source = segment(rel, "source=")?;
                (day.into(), day.into(), Some((day.into(), source.into())))
            }
            FileKind::Compacted => {
                let month = segment(rel, "month=").filter(|m| m.len() == 7)?;
                (format!("{month}-01"), format!("{month}-31"), None)
            }
            _ => return None,
        };
        Some(Candidate {
            rel: rel.to_owned(),
            sha256: f.sha256.clone(),
            index_sha256: f.index_sha256.clone(),
            first,
            last,
            daily,
        })
    }
}

/// The UTC day of an instant.
fn day_of(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Microseconds at the start of a `YYYY-MM-DD` day (UTC).
fn day_start(day: &str) -> i64 {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or(i64::MIN)
}

/// The days a trace may read: the request's and the scope's, inclusive.
#[derive(Debug, Default)]
struct Window {
    from: Option<String>,
    to: Option<String>,
}

impl Window {
    fn of(req: &TraceRequest, scope: &RowScope) -> Window {
        let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        let from = [req.from.map(day), scope.from_micros.map(day_of)]
            .into_iter()
            .flatten()
            .max();
        // The scope's end is exclusive.
        let to = [
            req.to.map(day),
            scope.until_micros.map(|u| day_of(u.saturating_sub(1))),
        ]
        .into_iter()
        .flatten()
        .min();
        Window { from, to }
    }

    fn meets(&self, c: &Candidate) -> bool {
        self.from.as_ref().is_none_or(|f| c.last >= *f)
            && self.to.as_ref().is_none_or(|t| c.first <= *t)
    }
}

/// One event kept by the first pass: its place in the order, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Hit {
    ts: i64,
    source: Arc<str>,
    seq: u64,
    file: usize,
    row: u32,
}

/// A file opened for reading: checked against its seal, footer at hand.
#[derive(Clone)]
struct Opened {
    candidate: Candidate,
    reader: SealedFileReader,
    meta: ArrowReaderMetadata,
}

impl QueryEngine {
    /// The trace by the direct path, or `None` when some file it would read has no usable index.
    pub(crate) async fn trace_direct(
        &self,
        req: &TraceRequest,
        scope: Option<&RowScope>,
    ) -> Result<Option<TracePage>, QueryError> {
        let everything = RowScope::default();
        let scope = scope.unwrap_or(&everything);
        let limit = req.limit.unwrap_or(usize::MAX);
        let shown = visible_trace_columns(Some(scope));
        if limit == 0 {
            return Ok(Some(TracePage::default()));
        }
        let (manifest, _) = self
            .live
            .current(&self.loc)
            .await
            .map_err(|e| QueryError::Output(e.to_string()))?;
        let window = Window::of(req, scope);
        let (column, value) = (req.key.column(), req.key.value());
        let mut candidates = Vec::new();
        for (rel, f) in manifest.event_files() {
            let Some(c) = Candidate::of(rel, f) else {
                return Ok(None);
            };
            if !window.meets(&c) {
                continue;
            }
            if let Some(after) = &req.after
                && c.last < day_of(after.ts_micros)
            {
                continue;
            }
            if let Some((_, source)) = &c.daily {
                // Iris's own audit events have their own partitions: only the auditor's scope reads them.
                if (source == crate::scope::OWN_SOURCE) != scope.own_events
                    || scope
                        .sources
                        .as_ref()
                        .is_some_and(|s| !s.iter().any(|x| x == source))
                {
                    continue;
                }
            }
            // A compacted file holds one bucket of subjects.
            if column == "subject_id"
                && let Some((b, n)) = compacted_bucket(rel)
                && subject_bucket(value, n) != b
            {
                continue;
            }
            candidates.push(c);
        }
        drop(manifest);
        candidates.sort_by(|a, b| (&a.first, &a.rel).cmp(&(&b.first, &b.rel)));

        let filter = row_filter(req, scope);
        // The first pass reads what the filter needs and what orders the events.
        let mut first_columns: BTreeSet<String> = filter
            .column_refs()
            .into_iter()
            .map(|c| c.name.clone())
            .collect();
        first_columns.extend(["ts", "source", "source_seq"].map(String::from));
        let first_schema = schema_of(first_columns.iter().map(String::as_str))?;
        let predicate = create_physical_expr(
            &filter,
            &DFSchema::try_from(first_schema.as_ref().clone())?,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )?;

        let lookup = [KeyFilter {
            column,
            keys: BTreeSet::from([value.to_owned()]),
        }];
        let cap = limit.saturating_add(1);
        let mut kept: BinaryHeap<Hit> = BinaryHeap::new();
        let mut opened: Vec<Opened> = Vec::new();
        let mut sources: HashMap<String, Arc<str>> = HashMap::new();
        let mut next = 0;
        while next < candidates.len() {
            // Every file from here on starts after the last event kept: the page is complete.
            if kept.len() >= cap
                && kept
                    .peek()
                    .is_some_and(|h| h.ts < day_start(&candidates[next].first))
            {
                break;
            }
            let chunk = &candidates[next..(next + FILES_AT_ONCE).min(candidates.len())];
            next += chunk.len();
            let lookup = &lookup;
            let found: Vec<Option<(Vec<u32>, Vec<u64>)>> = futures::stream::iter(chunk.to_vec())
                .map(|c: Candidate| async move {
                    self.cache
                        .lookup(
                            &self.loc,
                            &c.rel,
                            &c.sha256,
                            c.index_sha256.as_deref(),
                            lookup,
                        )
                        .await
                })
                .buffered(FILES_AT_ONCE)
                .collect()
                .await;
            let mut reads = Vec::new();
            for (c, found) in chunk.iter().zip(found) {
                match found {
                    None => return Ok(None),
                    Some((rows, _)) if rows.is_empty() => {}
                    Some((rows, _)) => reads.push((c.clone(), rows)),
                }
            }
            let passes: Vec<(Opened, RecordBatch, Vec<u32>)> = futures::stream::iter(reads)
                .map(|(c, rows)| {
                    let (engine, schema, predicate) =
                        (self.clone(), first_schema.clone(), predicate.clone());
                    spawned(async move { engine.first_pass(c, rows, schema, predicate).await })
                })
                .buffered(FILES_AT_ONCE)
                .try_collect()
                .await?;
            for (file, batch, rows) in passes {
                let at = opened.len();
                opened.push(file);
                keep_first(
                    &mut kept,
                    &batch,
                    &rows,
                    at,
                    cap,
                    req.after.as_ref(),
                    &mut sources,
                )?;
            }
            // An unbounded trace (the CLI without --limit) stops before holding more than an answer may.
            if kept.len().saturating_mul(MIN_ROW_BYTES) > self.limits.answer_bytes {
                return Err(QueryError::AnswerTooLarge(self.limits.answer_bytes >> 20));
            }
        }

        let mut hits = kept.into_sorted_vec();
        let more = hits.len() > limit;
        hits.truncate(limit);
        let cursor = hits
            .last()
            .filter(|_| more && cursor_allowed(scope))
            .map(|h| TraceCursor {
                ts_micros: h.ts,
                source: h.source.to_string(),
                source_seq: h.seq,
            });
        let batch = self.second_pass(&opened, &hits, &shown).await?;
        if batch.get_array_memory_size() > self.limits.answer_bytes {
            return Err(QueryError::AnswerTooLarge(self.limits.answer_bytes >> 20));
        }
        Ok(Some(TracePage {
            batches: if batch.num_rows() == 0 {
                Vec::new()
            } else {
                vec![batch]
            },
            next: cursor,
            more,
        }))
    }

    /// Opens a file (after checking it against its seal) and reads the first pass's columns of `rows`,
    /// keeping the rows the filter admits; returns them with their row numbers.
    async fn first_pass(
        &self,
        c: Candidate,
        rows: Vec<u32>,
        schema: SchemaRef,
        predicate: Arc<dyn PhysicalExpr>,
    ) -> Result<(Opened, RecordBatch, Vec<u32>), QueryError> {
        let file = self.open(c).await?;
        let batch = read_rows(&file, &rows, &schema).await?;
        let admitted = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
        let admitted = admitted
            .as_boolean_opt()
            .ok_or_else(|| QueryError::Output("the trace filter is not a condition".into()))?;
        let rows: Vec<u32> = rows
            .iter()
            .zip(admitted.iter())
            .filter(|(_, ok)| *ok == Some(true))
            .map(|(r, _)| *r)
            .collect();
        let batch = filter_record_batch(&batch, admitted)?;
        Ok((file, batch, rows))
    }

    /// Checks a file against its seal (hashing it the first time) and gets its footer.
    async fn open(&self, c: Candidate) -> Result<Opened, QueryError> {
        let path = self.loc.path(&c.rel);
        let meta = self
            .loc
            .store
            .head(&path)
            .await
            .map_err(|e| QueryError::Output(format!("{}: cannot be read ({e})", c.rel)))?;
        self.live
            .check_sealed(&self.loc, &c.rel, &c.sha256, &meta)
            .await
            .map_err(QueryError::Output)?;
        let mut reader = SealedFileReader::new(self.loc.store.clone(), path, meta.size);
        let footer = self
            .footers
            .get(&c.rel, &c.sha256, &mut reader)
            .await
            .map_err(|e| QueryError::Output(format!("{}: {e}", c.rel)))?;
        Ok(Opened {
            candidate: c,
            reader,
            meta: footer,
        })
    }

    /// The shown columns of the kept events, in their order.
    async fn second_pass(
        &self,
        opened: &[Opened],
        hits: &[Hit],
        shown: &[String],
    ) -> Result<RecordBatch, QueryError> {
        let schema = schema_of(shown.iter().map(String::as_str))?;
        let mut by_file: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for h in hits {
            by_file.entry(h.file).or_default().push(h.row);
        }
        for rows in by_file.values_mut() {
            rows.sort_unstable();
        }
        let reads: Vec<(usize, RecordBatch)> = futures::stream::iter(by_file.clone())
            .map(|(f, rows): (usize, Vec<u32>)| {
                let (file, schema) = (opened[f].clone(), schema.clone());
                spawned(async move { Ok((f, read_rows(&file, &rows, &schema).await?)) })
            })
            .buffered(FILES_AT_ONCE)
            .try_collect()
            .await?;
        // Where each file's rows start in the concatenation.
        let mut start = HashMap::new();
        let mut offset = 0usize;
        for (f, batch) in &reads {
            start.insert(*f, offset);
            offset += batch.num_rows();
        }
        let all = concat_batches(&schema, reads.iter().map(|(_, b)| b))?;
        let order: Vec<u32> = hits
            .iter()
            .map(|h| {
                let rows = &by_file[&h.file];
                let within = rows.binary_search(&h.row).unwrap_or_default();
                (start[&h.file] + within) as u32
            })
            .collect();
        Ok(take_record_batch(&all, &UInt32Array::from(order))?)
    }
}

/// Runs a read on a task of its own, so files decode on every core.
async fn spawned<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, QueryError>> + Send + 'static,
) -> Result<T, QueryError> {
    tokio::spawn(f)
        .await
        .map_err(|e| QueryError::Output(format!("a trace read failed: {e}")))?
}

/// Whether a cursor may be shown: it names an event's `source_seq`, which a scope hiding columns may
/// not show.
fn cursor_allowed(scope: &RowScope) -> bool {
    scope
        .columns
        .as_ref()
        .is_none_or(|c| c.iter().any(|c| c == "source_seq"))
}

/// The filter every row read must pass: the key, the day window, and the scope.
fn row_filter(req: &TraceRequest, scope: &RowScope) -> Expr {
    let mut f = col(req.key.column())
        .eq(lit(req.key.value()))
        .and(own_events(scope.own_events));
    if let Some(scoped) = scope.filter() {
        f = f.and(scoped);
    }
    if let Some(from) = req.from {
        f = f.and(col("day").gt_eq(lit(from.format("%Y-%m-%d").to_string())));
    }
    if let Some(to) = req.to {
        f = f.and(col("day").lt_eq(lit(to.format("%Y-%m-%d").to_string())));
    }
    f
}

/// The `events` columns named, in the table's order, with the table's types.
fn schema_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<SchemaRef, QueryError> {
    let table = compacted_file_schema();
    let wanted: BTreeSet<&str> = names.into_iter().collect();
    let mut fields: Vec<Field> = Vec::new();
    for name in &wanted {
        if table.index_of(name).is_err() {
            return Err(QueryError::Output(format!("no column `{name}` in events")));
        }
    }
    for f in table.fields() {
        if wanted.contains(f.name().as_str()) {
            fields.push(f.as_ref().clone());
        }
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Reads `rows` (ascending row numbers) of a file as `schema`: the stored columns from the pages
/// holding them, a daily partition's `day` and `source` from its path.
async fn read_rows(
    file: &Opened,
    rows: &[u32],
    schema: &SchemaRef,
) -> Result<RecordBatch, QueryError> {
    let stored = file.meta.schema();
    let roots: Vec<usize> = schema
        .fields()
        .iter()
        .filter_map(|f| stored.index_of(f.name()).ok())
        .collect();
    let parquet = file.meta.metadata();
    let sizes: Vec<u64> = parquet
        .row_groups()
        .iter()
        .map(|g| g.num_rows().max(0) as u64)
        .collect();
    let plan = access_plan(rows, &sizes);
    let groups = plan.row_group_indexes();
    let selection = plan.into_overall_row_selection(parquet.row_groups())?;
    let mut builder =
        ParquetRecordBatchStreamBuilder::new_with_metadata(file.reader.clone(), file.meta.clone())
            .with_projection(ProjectionMask::roots(file.meta.parquet_schema(), roots))
            .with_row_groups(groups)
            .with_batch_size(BATCH_ROWS);
    if let Some(selection) = selection {
        builder = builder.with_row_selection(selection);
    }
    let unreadable = |e: datafusion::parquet::errors::ParquetError| {
        QueryError::Output(format!("{}: {e}", file.candidate.rel))
    };
    let stream = builder.build().map_err(unreadable)?;
    let read_schema = stream.schema().clone();
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(unreadable)?;
    let batch = concat_batches(&read_schema, &batches)?;
    let n = batch.num_rows();
    if n != rows.len() {
        return Err(QueryError::Output(format!(
            "{}: {} rows read for {} selected; run `iris reindex`",
            file.candidate.rel,
            n,
            rows.len()
        )));
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for f in schema.fields() {
        let array = match (batch.column_by_name(f.name()), &file.candidate.daily) {
            (Some(a), _) if a.data_type() == f.data_type() => a.clone(),
            (Some(a), _) => cast(a, f.data_type())?,
            (None, Some((day, source))) if f.name() == "day" || f.name() == "source" => {
                let v = if f.name() == "day" { day } else { source };
                Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n))) as ArrayRef
            }
            (None, _) => {
                return Err(QueryError::Output(format!(
                    "{}: no column `{}`",
                    file.candidate.rel,
                    f.name()
                )));
            }
        };
        columns.push(array);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Adds the events of a first pass that come after the cursor to the `cap` first kept so far.
fn keep_first(
    kept: &mut BinaryHeap<Hit>,
    batch: &RecordBatch,
    rows: &[u32],
    file: usize,
    cap: usize,
    after: Option<&TraceCursor>,
    sources: &mut HashMap<String, Arc<str>>,
) -> Result<(), QueryError> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .ok_or_else(|| QueryError::Output(format!("first pass without `{name}`")))
    };
    let ts = column("ts")?.as_primitive_opt::<TimestampMicrosecondType>();
    let seq = column("source_seq")?.as_primitive_opt::<UInt64Type>();
    let source = column("source")?.as_string_opt::<i32>();
    let (Some(ts), Some(seq), Some(source)) = (ts, seq, source) else {
        return Err(QueryError::Output(
            "first pass with unexpected types".into(),
        ));
    };
    for (i, &row) in rows.iter().enumerate() {
        let (t, q, s) = (ts.value(i), seq.value(i), source.value(i));
        if let Some(a) = after
            && (t, s, q) <= (a.ts_micros, a.source.as_str(), a.source_seq)
        {
            continue;
        }
        // Past a full page, only an event before the last kept one can enter.
        if kept.len() >= cap
            && let Some(last) = kept.peek()
            && (t, s, q) >= (last.ts, &*last.source, last.seq)
        {
            continue;
        }
        let source = match sources.get(s) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(s);
                sources.insert(s.to_owned(), a.clone());
                a
            }
        };
        kept.push(Hit {
            ts: t,
            source,
            seq: q,
            file,
            row,
        });
        if kept.len() > cap {
            kept.pop();
        }
    }
    Ok(())
}
