//! The `events` and `rejections` tables: listing tables narrowed to the files the chain says are live,
//! with the lookup indexes applied to equality and `IN` filters on `subject_id`, `actor_id` and `ticket`.
//!
//! A scan plans the listing of daily partitions (Hive `day`/`source`) and, for `events`, of compacted
//! files (Hive `month`/`bucket`, `day` and `source` stored) and unions them. Files that no seal names
//! (one written a moment before its seal) or that a compaction replaced are dropped. Filters on `ts`
//! and `day` become `day` and `month` bounds, so a period prunes directories. When a filter names an
//! indexed column, compacted files of other subject buckets are skipped, each remaining file's index
//! turns the keys into row numbers, files without a match are dropped and the others get a Parquet row
//! selection, so only the pages holding matches are decoded. Every filter is still applied above the
//! scan (pushed down as `Inexact`), so the answer is the same with or without the index; a file
//! without a usable index is scanned whole. `EXPLAIN` shows an `IrisIndexLookupExec` node when the
//! index was used.

use crate::index_cache::IndexCache;
use crate::live_files::LiveFiles;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::{ListingTable, PartitionedFile};
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown, col, lit};
use datafusion::parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;
use iris_index::INDEXED_COLUMNS;
use iris_store::StoreLocation;
use iris_store::layout::{compacted_bucket, subject_bucket};
use iris_store::manifest::Manifest;
use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// Lookups resolved concurrently (index blobs fetched and opened at once).
const LOOKUP_CONCURRENCY: usize = 16;

/// A table over sealed files: `events` (daily and compacted, with indexes) or `rejections`.
#[derive(Debug)]
pub struct SealedTable {
    daily: Arc<ListingTable>,
    compacted: Option<Arc<ListingTable>>,
    loc: StoreLocation,
    live: Arc<LiveFiles>,
    /// The lookup indexes, when they are to be used.
    index: Option<Arc<IndexCache>>,
}

impl SealedTable {
    /// A table over the daily listing `daily`, plus the compacted listing for `events`.
    pub fn new(
        daily: Arc<ListingTable>,
        compacted: Option<Arc<ListingTable>>,
        loc: StoreLocation,
        live: Arc<LiveFiles>,
        index: Option<Arc<IndexCache>>,
    ) -> Self {
        SealedTable {
            daily,
            compacted,
            loc,
            live,
            index,
        }
    }
}

impl SealedTable {
    /// A listing that failed (a footer that does not parse, say): find which sealed files under it no
    /// longer match their seals and name them, or pass the error on with the way to find out.
    async fn explain(
        &self,
        error: DataFusionError,
        manifest: &Manifest,
        listing: &ListingTable,
    ) -> DataFusionError {
        use object_store::ObjectStoreExt as _;
        let mut damaged = Vec::new();
        for url in listing.table_paths() {
            let prefix = self.loc.relative(url.prefix());
            let prefix = format!("{}/", prefix.trim_end_matches('/'));
            for (rel, sealed) in manifest.files.range(prefix.clone()..) {
                if !rel.starts_with(&prefix) {
                    break;
                }
                let Ok(meta) = self.loc.store.head(&self.loc.path(rel)).await else {
                    damaged.push(format!("{rel}: missing"));
                    continue;
                };
                if let Err(why) = self
                    .live
                    .check_sealed(&self.loc, rel, &sealed.sha256, &meta)
                    .await
                {
                    damaged.push(why);
                }
            }
        }
        if damaged.is_empty() {
            DataFusionError::External(
                format!("{error} (if a sealed file is damaged, `iris verify` names it)").into(),
            )
        } else {
            DataFusionError::External(damaged.join("; ").into())
        }
    }
}

/// An equality or `IN` filter on an indexed column.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyFilter {
    pub column: &'static str,
    pub keys: BTreeSet<String>,
}

fn string_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        Expr::Cast(c) => string_literal(&c.expr),
        _ => None,
    }
}

fn indexed_column(e: &Expr) -> Option<&'static str> {
    match e {
        Expr::Column(c) => INDEXED_COLUMNS.iter().copied().find(|n| *n == c.name),
        _ => None,
    }
}

/// The indexed-column filter of one conjunct, if it is `col = 'k'`, `'k' = col` or `col IN ('a', …)`.
pub fn key_filter(e: &Expr) -> Option<KeyFilter> {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            let (column, key) = match (indexed_column(left), indexed_column(right)) {
                (Some(c), None) => (c, string_literal(right)?),
                (None, Some(c)) => (c, string_literal(left)?),
                _ => return None,
            };
            Some(KeyFilter {
                column,
                keys: BTreeSet::from([key]),
            })
        }
        Expr::InList(list) if !list.negated => {
            let column = indexed_column(&list.expr)?;
            let keys = list
                .list
                .iter()
                .map(string_literal)
                .collect::<Option<BTreeSet<_>>>()?;
            Some(KeyFilter { column, keys })
        }
        _ => None,
    }
}

/// Turns sorted row numbers into an access plan over row groups of the given sizes.
pub fn access_plan(rows: &[u32], row_groups: &[u64]) -> ParquetAccessPlan {
    let mut plan = ParquetAccessPlan::new_none(row_groups.len());
    let mut next = 0usize;
    let mut start = 0u64;
    for (g, &len) in row_groups.iter().enumerate() {
        let end = start + len;
        let mut selectors = Vec::new();
        let mut pos = start;
        while next < rows.len() && u64::from(rows[next]) < end {
            let row = u64::from(rows[next]);
            if row > pos {
                selectors.push(RowSelector::skip((row - pos) as usize));
            }
            // Coalesce a run of consecutive rows into one selector.
            let mut run = 1u64;
            while next + 1 < rows.len() && u64::from(rows[next + 1]) == row + run {
                run += 1;
                next += 1;
            }
            next += 1;
            selectors.push(RowSelector::select(run as usize));
            pos = row + run;
        }
        if !selectors.is_empty() {
            if pos < end {
                selectors.push(RowSelector::skip((end - pos) as usize));
            }
            plan.set(g, RowGroupAccess::Selection(RowSelection::from(selectors)));
        }
        start = end;
    }
    plan
}

/// What the index did for one scan, shown by `EXPLAIN`.
#[derive(Clone, Debug, Default)]
struct LookupStats {
    filters: Vec<String>,
    files_listed: usize,
    files_other_bucket: usize,
    files_matched: usize,
    files_unindexed: usize,
    rows_selected: u64,
}

/// The day bounds (`YYYY-MM-DD`, inclusive) implied by the filters on `ts` and `day`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DayBounds {
    pub from: Option<String>,
    pub to: Option<String>,
}

fn column_name(e: &Expr) -> Option<&str> {
    match e {
        Expr::Column(c) => Some(c.name.as_str()),
        _ => None,
    }
}

/// The UTC day of a timestamp or string literal.
fn literal_day(e: &Expr) -> Option<String> {
    let micros = match e {
        Expr::Literal(ScalarValue::TimestampMicrosecond(Some(v), _), _) => *v,
        Expr::Literal(ScalarValue::TimestampNanosecond(Some(v), _), _) => v.div_euclid(1000),
        Expr::Literal(ScalarValue::TimestampMillisecond(Some(v), _), _) => *v * 1000,
        Expr::Literal(ScalarValue::TimestampSecond(Some(v), _), _) => *v * 1_000_000,
        Expr::Cast(c) => return literal_day(&c.expr),
        other => {
            let s = string_literal(other)?;
            let day = s.get(..10)?;
            chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
            return Some(day.to_owned());
        }
    };
    chrono::DateTime::from_timestamp_micros(micros).map(|t| t.format("%Y-%m-%d").to_string())
}

impl DayBounds {
    /// Bounds from conjuncts `ts|day (=, <, <=, >, >=) literal` and `ts|day BETWEEN a AND b`.
    /// Only ever a superset of the matching days (a bound is rounded outward to its whole day).
    pub fn of(filters: &[Expr]) -> DayBounds {
        let mut b = DayBounds::default();
        let lower = |d: String, b: &mut DayBounds| {
            if b.from.as_ref().is_none_or(|f| d > *f) {
                b.from = Some(d);
            }
        };
        let upper = |d: String, b: &mut DayBounds| {
            if b.to.as_ref().is_none_or(|t| d < *t) {
                b.to = Some(d);
            }
        };
        for f in filters {
            match f {
                Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                    let (op, day) = match (column_name(left), column_name(right)) {
                        (Some("ts" | "day"), None) => (*op, literal_day(right)),
                        (None, Some("ts" | "day")) => match op.swap() {
                            Some(op) => (op, literal_day(left)),
                            None => continue,
                        },
                        _ => continue,
                    };
                    let Some(day) = day else { continue };
                    match op {
                        Operator::Eq => {
                            lower(day.clone(), &mut b);
                            upper(day, &mut b);
                        }
                        Operator::Gt | Operator::GtEq => lower(day, &mut b),
                        Operator::Lt | Operator::LtEq => upper(day, &mut b),
                        _ => {}
                    }
                }
                Expr::Between(between) if !between.negated => {
                    if matches!(column_name(&between.expr), Some("ts" | "day")) {
                        if let Some(d) = literal_day(&between.low) {
                            lower(d, &mut b);
                        }
                        if let Some(d) = literal_day(&between.high) {
                            upper(d, &mut b);
                        }
                    }
                }
                _ => {}
            }
        }
        b
    }

    /// The same bounds as filters on a partition column holding the first `len` characters of a day
    /// (`day`: 10, `month`: 7).
    fn as_filters(&self, column: &str, len: usize) -> Vec<Expr> {
        let cut = |d: &String| lit(d.get(..len).unwrap_or(d).to_owned());
        let mut out = Vec::new();
        if let Some(from) = &self.from {
            out.push(col(column).gt_eq(cut(from)));
        }
        if let Some(to) = &self.to {
            out.push(col(column).lt_eq(cut(to)));
        }
        out
    }
}

impl SealedTable {
    /// Keeps the live files of a planned scan, narrowed by the index; `None` when no file is left.
    async fn narrow(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        manifest: &Manifest,
        lookups: &[KeyFilter],
        stats: &mut LookupStats,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let any: &dyn Any = plan.as_ref();
        let Some(exec) = any.downcast_ref::<DataSourceExec>() else {
            return Ok(None); // no file listed at all
        };
        let source: &dyn Any = exec.data_source().as_ref();
        let Some(config) = source.downcast_ref::<FileScanConfig>() else {
            return Ok(Some(plan));
        };
        let index = self.index.as_ref().filter(|_| !lookups.is_empty());
        let subjects: Option<&BTreeSet<String>> = lookups
            .iter()
            .find(|l| l.column == "subject_id")
            .map(|l| &l.keys);
        let mut groups = Vec::with_capacity(config.file_groups.len());
        let mut any_file = false;
        for group in &config.file_groups {
            let mut live = Vec::new();
            for file in group.files() {
                let rel = self.loc.relative(&file.object_meta.location);
                let Some(sealed) = manifest.files.get(&rel) else {
                    continue; // not sealed yet, or replaced by a compaction
                };
                if index.is_some() {
                    stats.files_listed += 1;
                    // A compacted file holds one bucket of subjects: skip the other buckets.
                    if let (Some(keys), Some((b, n))) = (subjects, compacted_bucket(&rel))
                        && !keys.iter().any(|k| subject_bucket(k, n) == b)
                    {
                        stats.files_other_bucket += 1;
                        continue;
                    }
                }
                live.push((file.clone(), rel, sealed.clone()));
            }
            // Every file is checked against its seal before it is read (once per engine).
            // Only files not yet hashed by this engine go to the (async) check; the others are a
            // look-up.
            let to_check: Vec<(object_store::ObjectMeta, String, String)> = live
                .iter()
                .filter(|(f, rel, sealed)| {
                    !self.live.is_verified(rel, &sealed.sha256, &f.object_meta)
                })
                .map(|(f, rel, sealed)| (f.object_meta.clone(), rel.clone(), sealed.sha256.clone()))
                .collect();
            let (files, loc) = (&self.live, &self.loc);
            let checks: Vec<Result<(), String>> =
                futures::stream::iter(to_check)
                    .map(|(meta, rel, sha)| async move {
                        files.check_sealed(loc, &rel, &sha, &meta).await
                    })
                    .buffer_unordered(LOOKUP_CONCURRENCY)
                    .collect()
                    .await;
            if let Some(Err(why)) = checks.into_iter().find(Result::is_err) {
                return Err(DataFusionError::External(why.into()));
            }
            let kept: Vec<PartitionedFile> = match index {
                None => live.into_iter().map(|(f, _, _)| f).collect(),
                Some(cache) => {
                    let found: Vec<_> = futures::stream::iter(live)
                        .map(|(file, rel, sealed)| async move {
                            let found = cache
                                .lookup(
                                    &self.loc,
                                    &rel,
                                    &sealed.sha256,
                                    sealed.index_sha256.as_deref(),
                                    lookups,
                                )
                                .await;
                            (file, found)
                        })
                        .buffered(LOOKUP_CONCURRENCY)
                        .collect()
                        .await;
                    let mut kept = Vec::new();
                    for (file, found) in found {
                        match found {
                            // No usable index: read the file whole, the filters still apply.
                            None => {
                                stats.files_unindexed += 1;
                                kept.push(file);
                            }
                            Some((rows, _)) if rows.is_empty() => {}
                            Some((rows, row_groups)) => {
                                stats.files_matched += 1;
                                stats.rows_selected += rows.len() as u64;
                                kept.push(file.with_extension(access_plan(&rows, &row_groups)));
                            }
                        }
                    }
                    kept
                }
            };
            any_file |= !kept.is_empty();
            groups.push(FileGroup::new(kept));
        }
        if !any_file {
            return Ok(None);
        }
        let narrowed = FileScanConfigBuilder::from(config.clone())
            .with_file_groups(groups)
            .build();
        Ok(Some(DataSourceExec::from_data_source(narrowed)))
    }
}

#[async_trait]
impl TableProvider for SealedTable {
    fn schema(&self) -> SchemaRef {
        self.daily.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Inexact for all: the filters also run above the scan, which the compacted files (where `day`
        // and `source` are stored columns, not directories) and the index narrowing rely on.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let started = std::time::Instant::now();
        let (manifest, changed) = self
            .live
            .current(&self.loc)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        let manifest_at = started.elapsed();
        // The engine's runtime caches directory listings (and Parquet footers, which never change
        // since files are immutable): a new seal means new files, so list again.
        if changed && let Some(listings) = state.runtime_env().cache_manager.get_list_files_cache()
        {
            listings.clear();
        }
        let bounds = DayBounds::of(filters);
        let lookups: Vec<KeyFilter> = filters.iter().filter_map(key_filter).collect();
        let mut stats = LookupStats {
            filters: lookups
                .iter()
                .map(|l| format!("{} IN {} key(s)", l.column, l.keys.len()))
                .collect(),
            ..LookupStats::default()
        };
        let mut inputs = Vec::new();
        let daily_filters: Vec<Expr> = filters
            .iter()
            .cloned()
            .chain(bounds.as_filters("day", 10))
            .collect();
        let daily = match self
            .daily
            .scan(state, projection, &daily_filters, limit)
            .await
        {
            Ok(plan) => plan,
            Err(e) => return Err(self.explain(e, &manifest, &self.daily).await),
        };
        let listed_at = started.elapsed();
        inputs.extend(self.narrow(daily, &manifest, &lookups, &mut stats).await?);
        let narrowed_at = started.elapsed();
        if let Some(compacted) = &self.compacted {
            // The first columns of a compacted file are the table's, in the same order.
            let width = self.daily.schema().fields().len();
            let all: Vec<usize> = (0..width).collect();
            let projection = projection.unwrap_or(&all);
            let filters: Vec<Expr> = filters
                .iter()
                .cloned()
                .chain(bounds.as_filters("month", 7))
                .collect();
            let plan = match compacted
                .scan(state, Some(projection), &filters, limit)
                .await
            {
                Ok(plan) => plan,
                Err(e) => return Err(self.explain(e, &manifest, compacted).await),
            };
            inputs.extend(self.narrow(plan, &manifest, &lookups, &mut stats).await?);
        }
        tracing::debug!(
            "scan planned in {:?}: manifest {:?}, daily listing {:?}, daily narrowing {:?}, compacted {:?}",
            started.elapsed(),
            manifest_at,
            listed_at - manifest_at,
            narrowed_at - listed_at,
            started.elapsed() - narrowed_at
        );
        let plan: Arc<dyn ExecutionPlan> = if inputs.is_empty() {
            let schema = match projection {
                Some(p) => Arc::new(self.schema().project(p)?),
                None => self.schema(),
            };
            Arc::new(EmptyExec::new(schema))
        } else {
            UnionExec::try_new(inputs)?
        };
        if self.index.is_none() || lookups.is_empty() {
            return Ok(plan);
        }
        Ok(Arc::new(IndexLookupExec { input: plan, stats }))
    }
}

/// A pass-through node over the narrowed scan, so that `EXPLAIN` tells the index was used and how much
/// it skipped.
#[derive(Debug)]
struct IndexLookupExec {
    input: Arc<dyn ExecutionPlan>,
    stats: LookupStats,
}

impl DisplayAs for IndexLookupExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "IrisIndexLookupExec: {}; files {} of {} live ({} skipped by subject bucket, {} without index), {} rows selected",
            s.filters.join(" AND "),
            s.files_matched + s.files_unindexed,
            s.files_listed,
            s.files_other_bucket,
            s.files_unindexed,
            s.rows_selected
        )
    }
}

impl ExecutionPlan for IndexLookupExec {
    fn name(&self) -> &'static str {
        "IrisIndexLookupExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(IndexLookupExec {
            input: children.swap_remove(0),
            stats: self.stats.clone(),
        }))
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn equality_and_in_on_indexed_columns_are_recognised() {
        let f = key_filter(&col("subject_id").eq(lit("85073003328"))).expect("eq");
        assert_eq!(f.column, "subject_id");
        let f = key_filter(&lit("T1").eq(col("ticket"))).expect("reversed");
        assert_eq!(f.column, "ticket");
        let f = key_filter(&col("actor_id").in_list(vec![lit("a"), lit("b")], false)).expect("in");
        assert_eq!(f.keys.len(), 2);
        assert!(key_filter(&col("actor_id").in_list(vec![lit("a")], true)).is_none());
        assert!(key_filter(&col("purpose").eq(lit("x"))).is_none());
        assert!(key_filter(&col("subject_id").like(lit("85%"))).is_none());
    }

    #[test]
    fn rows_become_selections_per_row_group() {
        let plan = access_plan(&[1, 2, 3, 8, 9], &[5, 5, 5]);
        assert_eq!(
            plan.row_group_indexes(),
            [0, 1],
            "the third row group holds no match"
        );
        let selected = |g: usize| match &plan.inner()[g] {
            RowGroupAccess::Selection(s) => {
                s.iter().map(|r| (r.skip, r.row_count)).collect::<Vec<_>>()
            }
            other => panic!("row group {g}: {other:?}"),
        };
        // Rows 1–3 of group 0 (rows 0–4), rows 8–9 are the last two of group 1 (rows 5–9).
        assert_eq!(selected(0), [(true, 1), (false, 3), (true, 1)]);
        assert_eq!(selected(1), [(true, 3), (false, 2)]);
    }
}
