//! Iris query: DataFusion SQL over the sealed Parquet partitions.
//!
//! Tables: `events` (the audit events: daily partitions by `day` and `source`, and compacted monthly
//! files) and `rejections` (the rejection log), both restricted to the files the chain says are live
//! ([`live_files`], [`sealed_table`]). Filters on `day` or `ts` prune directories, Parquet statistics
//! prune row groups, and filters on `subject_id`, `actor_id` or `ticket` go through the lookup indexes.

pub mod barrier;
pub mod bounded;
pub mod direct_trace;
pub mod engine;
pub mod heavy_executor;
pub mod index_cache;
pub mod limits;
pub mod live_files;
pub mod output;
pub mod scope;
pub mod sealed_parquet;
pub mod sealed_table;
pub mod statement;
pub mod trace;
pub mod trace_cursor;

pub use engine::{QueryEngine, QueryError};
pub use limits::QueryLimits;
pub use output::{OutputFormat, json_array, render, to_json_rows};
pub use scope::{EventFacts, RowScope};
pub use statement::{StatementError, StatementLimits};
pub use trace::{TraceKey, TracePage, TraceRequest};
pub use trace_cursor::TraceCursor;
