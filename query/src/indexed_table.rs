//! The `events` table: a listing table over the sealed partitions that answers equality and `IN` filters
//! on `subject_id`, `actor_id` and `ticket` through the partitions' lookup indexes.
//!
//! The listing table plans the scan first (so `day`/`source` filters prune directories as usual); when a
//! filter names an indexed column, each file's index turns the keys into row numbers, files without a
//! match are dropped, and the others get a Parquet row selection, so only the pages holding matches are
//! decoded. The filters themselves still run above the scan (they are pushed down as `Inexact`), so the
//! answer is the same with or without the index; a file without a usable index is scanned whole.
//! `EXPLAIN` shows an `IrisIndexLookupExec` node when the index was used.

use crate::index_cache::IndexCache;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    ReplaceChildrenOptions,
};
use futures::StreamExt;
use iris_index::INDEXED_COLUMNS;
use iris_store::StoreLocation;
use std::any::Any;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// Lookups resolved concurrently (index blobs fetched and opened at once).
const LOOKUP_CONCURRENCY: usize = 16;

/// The `events` table with index lookups.
#[derive(Debug)]
pub struct IndexedEventsTable {
    listing: Arc<ListingTable>,
    loc: StoreLocation,
    cache: Arc<IndexCache>,
}

impl IndexedEventsTable {
    /// Wraps the listing table of `events`.
    pub fn new(listing: Arc<ListingTable>, loc: StoreLocation, cache: Arc<IndexCache>) -> Self {
        IndexedEventsTable {
            listing,
            loc,
            cache,
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
    files_matched: usize,
    files_unindexed: usize,
    rows_selected: u64,
}

#[async_trait]
impl TableProvider for IndexedEventsTable {
    fn schema(&self) -> SchemaRef {
        self.listing.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.listing.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.listing.scan(state, projection, filters, limit).await?;
        let lookups: Vec<KeyFilter> = filters.iter().filter_map(key_filter).collect();
        if lookups.is_empty() {
            return Ok(plan);
        }
        let any: &dyn Any = plan.as_ref();
        let Some(exec) = any.downcast_ref::<DataSourceExec>() else {
            return Ok(plan); // e.g. no file at all: nothing to narrow
        };
        let source: &dyn Any = exec.data_source().as_ref();
        let Some(config) = source.downcast_ref::<FileScanConfig>() else {
            return Ok(plan);
        };
        let mut stats = LookupStats {
            filters: lookups
                .iter()
                .map(|l| format!("{} IN {} key(s)", l.column, l.keys.len()))
                .collect(),
            ..LookupStats::default()
        };
        let mut groups = Vec::with_capacity(config.file_groups.len());
        for group in &config.file_groups {
            let files = group.files().to_vec();
            stats.files_listed += files.len();
            let narrowed: Vec<_> = futures::stream::iter(files)
                .map(|file| {
                    let rel = self.loc.relative(&file.object_meta.location);
                    let lookups = &lookups;
                    async move {
                        let found = self.cache.lookup(&self.loc, &rel, lookups).await;
                        (file, found)
                    }
                })
                .buffered(LOOKUP_CONCURRENCY)
                .collect()
                .await;
            let mut kept = Vec::new();
            for (file, found) in narrowed {
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
                        let plan = access_plan(&rows, &row_groups);
                        kept.push(file.with_extension(plan));
                    }
                }
            }
            groups.push(FileGroup::new(kept));
        }
        let narrowed = FileScanConfigBuilder::from(config.clone())
            .with_file_groups(groups)
            .build();
        Ok(Arc::new(IndexLookupExec {
            input: DataSourceExec::from_data_source(narrowed),
            stats,
        }))
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
            "IrisIndexLookupExec: {}; files {} of {} listed ({} without index), {} rows selected",
            s.filters.join(" AND "),
            s.files_matched + s.files_unindexed,
            s.files_listed,
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
