//! The DataFusion session over the store.

use crate::heavy_executor::HeavyExecutor;
use crate::index_cache::IndexCache;
use crate::limits::QueryLimits;
use crate::live_files::LiveFiles;
use crate::scope::{RowScope, own_events};
use crate::sealed_parquet::ParquetFooters;
use crate::sealed_table::SealedTable;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::TreeNode;
use datafusion::dataframe::DataFrame;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::{ViewTable, provider_as_source};
use datafusion::error::DataFusionError;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::prelude::col;
use futures::StreamExt;
use iris_store::StoreLocation;
use iris_store::layout::COMPACTED_PARTITION_COLUMNS;
use iris_store::layout::{COMPACTED, EVENTS, REJECTIONS, TABLES};
use iris_store::schema::{
    PARTITION_COLUMNS, compacted_file_schema, events_file_schema, rejections_file_schema,
};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// Errors of the query layer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("{0}")]
    Output(String),
    /// The query ran past the engine's timeout.
    #[error(
        "the query was stopped after {0} s (the query timeout); narrow the period or the filters"
    )]
    Timeout(u64),
    /// Too many heavy queries were running for this one to start within the timeout.
    #[error(
        "busy: {0} full-scan queries are already running and none finished in time; try again later"
    )]
    Busy(usize),
    /// Refused before planning: too long, too deep, too many expressions, not one statement, or an
    /// `EXPLAIN` by a principal with a scope.
    #[error("{0}")]
    Statement(#[from] crate::statement::StatementError),
    /// The rows to return are more than one answer may hold.
    #[error(
        "the answer is larger than {0} MiB: add a LIMIT, aggregate, or narrow the period or the filters"
    )]
    AnswerTooLarge(usize),
    /// A scoped query failed while running. The engine's message is not shown: it could depend on
    /// rows outside the principal's scope (an error raised while evaluating a filter, say).
    #[error(
        "the query failed while running; the cause is not shown since it could depend on rows outside your scope (common causes: a function's size limit, a division by zero, a value that does not cast)"
    )]
    Withheld,
    /// The query needed more memory than the engine may use, and could not spill enough.
    #[error(
        "the query needs more memory than its budget of {budget_mb} MiB{spill}: narrow the period or the filters, or raise --query-memory ({detail})"
    )]
    Memory {
        budget_mb: usize,
        spill: &'static str,
        detail: String,
    },
}

impl QueryError {
    /// A message for the user: DataFusion's own text, without its internal prefixes.
    pub fn user_message(&self) -> String {
        let text = self.to_string();
        text.trim_start_matches("Error during planning: ")
            .trim_start_matches("SQL error: ")
            .to_owned()
    }
}

/// Runs SQL over one store.
#[derive(Clone, Debug)]
pub struct QueryEngine {
    pub(crate) loc: StoreLocation,
    /// Opened lookup indexes, shared by the queries of this engine.
    pub(crate) cache: Arc<IndexCache>,
    /// The chain's live files, refreshed before each scan.
    pub(crate) live: Arc<LiveFiles>,
    /// Footers of the files read by the direct trace path.
    pub(crate) footers: Arc<ParquetFooters>,
    pub(crate) use_index: bool,
    /// Traces by the direct path (off: through DataFusion, to measure one against the other).
    pub(crate) direct_trace: bool,
    pub(crate) limits: QueryLimits,
    /// Memory pool and spill space shared by every query of the engine.
    runtime: Arc<RuntimeEnv>,
    /// Turns for heavy queries.
    heavy: Arc<Semaphore>,
    /// The threads heavy queries run on.
    heavy_threads: Arc<HeavyExecutor>,
}

impl QueryEngine {
    /// An engine over the partitions of `loc`, using the lookup indexes.
    pub fn new(loc: StoreLocation) -> QueryEngine {
        let limits = QueryLimits::default();
        let runtime = limits.runtime().unwrap_or_else(|e| {
            // Only a broken temporary directory gets here; queries still run, without a memory bound.
            tracing::warn!("query memory limits not applied: {e}");
            Arc::new(RuntimeEnv::default())
        });
        QueryEngine {
            loc,
            cache: Arc::new(IndexCache::new()),
            live: Arc::new(LiveFiles::new()),
            footers: Arc::new(ParquetFooters::default()),
            use_index: true,
            // `IRIS_TRACE_DIRECT=0` plans traces through DataFusion as before (benches compare both).
            direct_trace: std::env::var("IRIS_TRACE_DIRECT")
                .ok()
                .is_none_or(|v| v != "0"),
            runtime,
            heavy: Arc::new(Semaphore::new(limits.heavy_queries.max(1))),
            heavy_threads: Arc::new(HeavyExecutor::new()),
            limits,
        }
    }

    /// The same engine under other limits (a new memory pool and turn counter).
    pub fn with_limits(mut self, limits: QueryLimits) -> Result<QueryEngine, QueryError> {
        self.runtime = limits.runtime()?;
        self.heavy = Arc::new(Semaphore::new(limits.heavy_queries.max(1)));
        self.limits = limits;
        Ok(self)
    }

    /// The store the engine reads.
    pub fn location(&self) -> &StoreLocation {
        &self.loc
    }

    /// The limits queries run under.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// The same engine with the lookup indexes on or off (off: plain DataFusion, for comparison).
    pub fn with_index(mut self, on: bool) -> QueryEngine {
        self.use_index = on;
        self
    }

    /// A fresh session with `events` (the network's), `audit` (Iris's own: who asked what) and
    /// `rejections` registered (it lists the current partitions,
    /// so every query sees everything sealed before it started).
    pub fn context(&self) -> Result<SessionContext, QueryError> {
        self.context_within(None)
    }

    /// A session for a principal: with a scope, `events` is a view holding only the rows (and
    /// columns) of the scope, the unscoped table has no name, and there is no `rejections` table and
    /// no `information_schema`.
    ///
    /// The scoped view holds a [`crate::barrier::ScopeBarrier`] above the scope's filter, so nothing
    /// the statement computes is evaluated on a row outside the scope.
    pub fn context_within(&self, scope: Option<&RowScope>) -> Result<SessionContext, QueryError> {
        self.session(scope, true)
    }

    /// [`QueryEngine::context_within`] without the barrier: for plans Iris writes itself (a trace's
    /// key and days, which cannot fail on any row), so their filters reach the scan and the index.
    pub fn context_within_trusted(
        &self,
        scope: Option<&RowScope>,
    ) -> Result<SessionContext, QueryError> {
        self.session(scope, false)
    }

    fn session(
        &self,
        scope: Option<&RowScope>,
        barrier: bool,
    ) -> Result<SessionContext, QueryError> {
        let mut config = SessionConfig::new().with_information_schema(scope.is_none());
        // A recursive CTE can grow rows (and strings) without bound: not available.
        config.options_mut().execution.enable_recursive_ctes = false;
        // Evaluate filters while decoding, so only matching rows of a page are materialised.
        config.options_mut().execution.parquet.pushdown_filters = true;
        config.options_mut().execution.parquet.reorder_filters = true;
        // A sort keeps this much aside to merge its spill files; DataFusion's 10 MiB default would not
        // fit a small memory budget at all, so scale it down with the budget.
        config.options_mut().execution.sort_spill_reservation_bytes =
            (self.limits.memory_bytes / 16).min(10 << 20);
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_default_features()
            .with_query_planner(Arc::new(crate::barrier::IrisQueryPlanner))
            .build();
        let ctx = SessionContext::new_with_state(state);
        crate::bounded::register(&ctx);
        ctx.register_object_store(&self.loc.root_url, self.loc.store.clone());
        let events = SealedTable::new(
            self.listing(EVENTS, events_file_schema(), &PARTITION_COLUMNS)?,
            Some(self.listing(
                COMPACTED,
                compacted_file_schema(),
                &COMPACTED_PARTITION_COLUMNS,
            )?),
            self.loc.clone(),
            self.live.clone(),
            self.use_index.then(|| self.cache.clone()),
        );
        let events: Arc<dyn TableProvider> = Arc::new(events);
        if let Some(scope) = scope {
            ctx.register_table("events", scoped_view(events, scope, barrier)?)?;
            return Ok(ctx);
        }
        // The administrator sees the network's events in `events`, Iris's own in `audit`.
        ctx.register_table(
            "events",
            scoped_view(events.clone(), &RowScope::default(), false)?,
        )?;
        let own = RowScope {
            own_events: true,
            ..RowScope::default()
        };
        ctx.register_table("audit", scoped_view(events, &own, false)?)?;
        let rejections = SealedTable::new(
            self.listing(REJECTIONS, rejections_file_schema(), &PARTITION_COLUMNS)?,
            None,
            self.loc.clone(),
            self.live.clone(),
            None,
        );
        ctx.register_table("rejections", Arc::new(rejections))?;
        // The labour-market tables, whole: for the operator and for the research desk, which reads
        // them to compute protected aggregates (researchers never reach this session).
        for table in iris_labour::TABLES {
            let listing = self.listing(&format!("{TABLES}/{}", table.name), table.schema(), &[])?;
            let sealed = SealedTable::new(listing, None, self.loc.clone(), self.live.clone(), None);
            ctx.register_table(table.name, Arc::new(sealed))?;
        }
        Ok(ctx)
    }

    /// A Hive-partitioned listing of the Parquet files under `dir`.
    fn listing(
        &self,
        dir: &str,
        schema: datafusion::arrow::datatypes::SchemaRef,
        partition_columns: &[&str],
    ) -> Result<Arc<ListingTable>, QueryError> {
        let url = ListingTableUrl::parse(self.loc.dir_url(dir))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(
                partition_columns
                    .iter()
                    .map(|c| (c.to_string(), DataType::Utf8))
                    .collect(),
            );
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }

    /// Runs one read-only statement (no DDL, no DML, no `SET`) and collects the answer.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        self.sql_within(sql, None).await
    }

    /// [`QueryEngine::sql`] within a principal's scope (`None`: everything, the operator's).
    ///
    /// The text passes the statement guard first ([`crate::statement`]: size, expression count and
    /// depth, one statement, `EXPLAIN` only without a scope), on a thread of its own; then it is
    /// planned, checked read-only, and run within the limits. With a scope, an error raised while
    /// running is not shown (see [`QueryError::Withheld`]).
    pub async fn sql_within(
        &self,
        sql: &str,
        scope: Option<&RowScope>,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let started = Instant::now();
        let checked = crate::statement::check(sql, &self.limits.statement, scope.is_none()).await?;
        let ctx = self.context_within(scope)?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let state = ctx.state();
        let plan = tokio::time::timeout(
            self.limits.timeout,
            state.statement_to_plan(checked.statement),
        )
        .await
        .map_err(|_| QueryError::Timeout(self.limits.timeout.as_secs()))??;
        options.verify_plan(&plan)?;
        // Belt and braces: whatever the text, no plan of a plan for a principal with a scope.
        if scope.is_some()
            && plan.exists(|p| {
                Ok(matches!(
                    p,
                    LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)
                ))
            })?
        {
            return Err(crate::statement::StatementError::Explain.into());
        }
        let df = ctx.execute_logical_plan(plan).await?;
        match self.collect(df, started).await {
            Err(QueryError::DataFusion(_) | QueryError::Arrow(_) | QueryError::Output(_))
                if scope.is_some() =>
            {
                Err(QueryError::Withheld)
            }
            other => other,
        }
    }

    /// Plans and runs a DataFrame within the limits: a heavy plan (one the lookup index does not narrow)
    /// waits for its turn; the whole query, waiting included, stops at the timeout — and its work
    /// with it: the light path's stream is dropped, the heavy path's task aborted. The answer is
    /// bounded by [`QueryLimits::answer_bytes`].
    pub async fn collect(
        &self,
        df: DataFrame,
        started: Instant,
    ) -> Result<Vec<RecordBatch>, QueryError> {
        let timeout = self.limits.timeout;
        let max = self.limits.answer_bytes;
        let run = async {
            let task = Arc::new(df.task_ctx());
            let plan = df.create_physical_plan().await?;
            if uses_index(&plan) {
                return collect_bounded(plan, task, max)
                    .await
                    .map_err(|e| e.explain(&self.limits));
            }
            let left = timeout.saturating_sub(started.elapsed());
            let turn = tokio::time::timeout(left, self.heavy.clone().acquire_owned()).await;
            let Ok(Ok(turn)) = turn else {
                return Err(QueryError::Busy(self.limits.heavy_queries));
            };
            let running = self.heavy_threads.spawn(async move {
                let _turn = turn;
                collect_bounded(plan, task, max).await
            });
            match running.join().await {
                Ok(result) => result.map_err(|e| e.explain(&self.limits)),
                Err(e) => Err(QueryError::DataFusion(DataFusionError::External(Box::new(
                    e,
                )))),
            }
        };
        match tokio::time::timeout(timeout.saturating_sub(started.elapsed()), run).await {
            Ok(result) => result,
            Err(_) => Err(QueryError::Timeout(timeout.as_secs())),
        }
    }
}

/// How collecting an answer failed.
enum Collect {
    Engine(DataFusionError),
    TooLarge(usize),
}

impl From<DataFusionError> for Collect {
    fn from(e: DataFusionError) -> Collect {
        Collect::Engine(e)
    }
}

impl Collect {
    /// A memory error in words a user can act on; other errors as they are.
    fn explain(self, limits: &QueryLimits) -> QueryError {
        let e = match self {
            Collect::TooLarge(max) => return QueryError::AnswerTooLarge(max >> 20),
            Collect::Engine(e) => e,
        };
        match e.find_root() {
            DataFusionError::ResourcesExhausted(detail) => QueryError::Memory {
                budget_mb: limits.memory_bytes >> 20,
                spill: if limits.spill_bytes == 0 {
                    " (spilling to disk is off)"
                } else {
                    ""
                },
                detail: detail
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(400)
                    .collect(),
            },
            _ => QueryError::DataFusion(e),
        }
    }
}

/// Runs a plan and gathers its batches, stopping once they hold more than `max` bytes.
async fn collect_bounded(
    plan: Arc<dyn ExecutionPlan>,
    task: Arc<datafusion::execution::TaskContext>,
    max: usize,
) -> Result<Vec<RecordBatch>, Collect> {
    let mut stream = execute_stream(plan, task)?;
    let mut batches = Vec::new();
    let mut bytes = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        bytes = bytes.saturating_add(batch.get_array_memory_size());
        if bytes > max {
            return Err(Collect::TooLarge(max));
        }
        batches.push(batch);
    }
    Ok(batches)
}

/// `events` restricted to a scope: a view over the sealed table that the optimizer inlines, so the
/// scope's filter is pushed into the scan (and served by the lookup index) like the query's own.
fn scoped_view(
    events: Arc<dyn TableProvider>,
    scope: &RowScope,
    barrier: bool,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    let mut plan = LogicalPlanBuilder::scan("events", provider_as_source(events), None)?
        .filter(own_events(scope.own_events))?;
    if let Some(filter) = scope.filter() {
        plan = plan.filter(filter)?;
    }
    if let Some(columns) = &scope.columns {
        plan = plan.project(columns.iter().map(|c| col(c.as_str())))?;
    }
    let mut plan = plan.build()?;
    if barrier {
        plan = LogicalPlan::Extension(datafusion::logical_expr::Extension {
            node: Arc::new(crate::barrier::ScopeBarrier { input: plan }),
        });
    }
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// Whether the lookup index narrows some scan of the plan (then it reads little and is not heavy).
fn uses_index(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.name() == "IrisIndexLookupExec" || plan.children().into_iter().any(uses_index)
}
