//! The labour-market tables: quarterly wage and working-time declarations, employment relations and
//! each person's socio-economic position per quarter. Researchers only ever see anonymised aggregates
//! of them (the `iris-research` crate); this crate knows their schemas, checks imported records and
//! generates realistic synthetic data.

pub mod codes;
pub mod generate;
pub mod records;
pub mod tables;

pub use records::{LabourError, Parsed, RejectedRow, parse_csv};
pub use tables::{ColumnRole, LabourColumn, LabourTable, TABLES, table};
