//! Iris query: DataFusion SQL over the sealed Parquet partitions.
//!
//! Tables: `events` (the audit events, partitioned by `day` and `source`) and `rejections` (the
//! rejection log). Both are Hive-partitioned listing tables on the store's object store, so a filter on
//! `day` prunes whole directories, and Parquet statistics and bloom filters prune row groups. Filters on
//! `subject_id`, `actor_id` or `ticket` go through the partitions' lookup indexes ([`indexed_table`]).

pub mod engine;
pub mod index_cache;
pub mod indexed_table;
pub mod output;
pub mod trace;

pub use engine::{QueryEngine, QueryError};
pub use output::{OutputFormat, render, to_json_rows};
pub use trace::{TraceKey, TraceRequest};
