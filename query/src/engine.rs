//! The DataFusion session over the store.

use crate::index_cache::IndexCache;
use crate::indexed_table::IndexedEventsTable;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use iris_store::StoreLocation;
use iris_store::schema::{PARTITION_COLUMNS, events_file_schema, rejections_file_schema};
use std::sync::Arc;

/// Errors of the query layer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    DataFusion(#[from] datafusion::error::DataFusionError),
    #[error("arrow: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("{0}")]
    Output(String),
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
    loc: StoreLocation,
    /// Opened lookup indexes, shared by the queries of this engine.
    cache: Arc<IndexCache>,
    use_index: bool,
}

impl QueryEngine {
    /// An engine over the partitions of `loc`, using the lookup indexes.
    pub fn new(loc: StoreLocation) -> QueryEngine {
        QueryEngine {
            loc,
            cache: Arc::new(IndexCache::new()),
            use_index: true,
        }
    }

    /// The same engine with the lookup indexes on or off (off: plain DataFusion, for comparison).
    pub fn with_index(mut self, on: bool) -> QueryEngine {
        self.use_index = on;
        self
    }

    /// A fresh session with `events` and `rejections` registered (it lists the current partitions,
    /// so every query sees everything sealed before it started).
    pub fn context(&self) -> Result<SessionContext, QueryError> {
        let mut config = SessionConfig::new().with_information_schema(true);
        // Evaluate filters while decoding, so only matching rows of a page are materialised.
        config.options_mut().execution.parquet.pushdown_filters = true;
        config.options_mut().execution.parquet.reorder_filters = true;
        let ctx = SessionContext::new_with_config(config);
        ctx.register_object_store(&self.loc.root_url, self.loc.store.clone());
        self.register(
            &ctx,
            "events",
            iris_store::layout::EVENTS,
            events_file_schema(),
        )?;
        self.register(
            &ctx,
            "rejections",
            iris_store::layout::REJECTIONS,
            rejections_file_schema(),
        )?;
        Ok(ctx)
    }

    fn register(
        &self,
        ctx: &SessionContext,
        name: &str,
        dir: &str,
        schema: datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<(), QueryError> {
        let url = ListingTableUrl::parse(self.loc.dir_url(dir))?;
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(".parquet")
            .with_table_partition_cols(
                PARTITION_COLUMNS
                    .iter()
                    .map(|c| (c.to_string(), DataType::Utf8))
                    .collect(),
            );
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        let listing = Arc::new(ListingTable::try_new(config)?);
        if self.use_index && dir == iris_store::layout::EVENTS {
            let table = IndexedEventsTable::new(listing, self.loc.clone(), self.cache.clone());
            ctx.register_table(name, Arc::new(table))?;
        } else {
            ctx.register_table(name, listing)?;
        }
        Ok(())
    }

    /// Runs one read-only statement (no DDL, no DML, no `SET`) and collects the answer.
    pub async fn sql(&self, sql: &str) -> Result<Vec<RecordBatch>, QueryError> {
        let ctx = self.context()?;
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let df = ctx.sql_with_options(sql, options).await?;
        Ok(df.collect().await?)
    }
}
