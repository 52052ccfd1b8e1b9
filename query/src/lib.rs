//! Iris query: DataFusion SQL over the sealed Parquet partitions.
//!
//! Tables: `events` (the audit events, partitioned by `day` and `source`) and `rejections` (the
//! rejection log). Both are Hive-partitioned listing tables on the store's object store, so a filter on
//! `day` prunes whole directories, and Parquet statistics and bloom filters prune row groups.

pub mod engine;
pub mod output;

pub use engine::{QueryEngine, QueryError};
pub use output::{OutputFormat, render, to_json_rows};
