//! The rows a principal may read, as a filter placed inside the query plan.
//!
//! A scoped session registers `events` as a view over the sealed table with this filter (and, for a
//! citizen, only some columns). The base table has no name in the catalog, so no SQL — joins,
//! subqueries, CTEs, `UNION` — can reach a row outside the scope: every path to the data goes
//! through the view. The filter is pushed into the scan like any other, so a scope on subjects
//! uses the lookup index.

use datafusion::prelude::{Expr, col, lit};
use datafusion::scalar::ScalarValue;
pub use iris_ingest::validate::OWN_SOURCE;

/// Only Iris's own audit events (`source = 'iris'`) or only the network's.
pub fn own_events(own: bool) -> Expr {
    if own {
        col("source").eq(lit(OWN_SOURCE))
    } else {
        col("source").not_eq(lit(OWN_SOURCE))
    }
}

/// A conjunction of allowed values and a time window. `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowScope {
    /// `actor_org` must be one of these.
    pub actor_orgs: Option<Vec<String>>,
    /// `subject_id` must be one of these.
    pub subjects: Option<Vec<String>>,
    /// `operation` must be one of these.
    pub operations: Option<Vec<String>>,
    /// `source` must be one of these.
    pub sources: Option<Vec<String>>,
    /// `events` holds Iris's own audit events (source [`OWN_SOURCE`]: who asked what) instead of the
    /// network's: the auditor's view. Everyone else never sees them in `events`.
    pub own_events: bool,
    /// `ts` at or after this instant (µs since the epoch, UTC).
    pub from_micros: Option<i64>,
    /// `ts` before this instant.
    pub until_micros: Option<i64>,
    /// Only these columns are visible (`None`: all).
    pub columns: Option<Vec<String>>,
}

impl RowScope {
    /// Every row, every column.
    pub fn everything() -> RowScope {
        RowScope::default()
    }

    /// The scope as one boolean expression over `events` (`None` when it lets every row through).
    pub fn filter(&self) -> Option<Expr> {
        let mut parts: Vec<Expr> = Vec::new();
        let one_of = |column: &str, values: &[String]| {
            if values.is_empty() {
                // An empty grant allows nothing (and `IN ()` is not valid SQL).
                return lit(false);
            }
            col(column).in_list(values.iter().map(|v| lit(v.as_str())).collect(), false)
        };
        if let Some(v) = &self.actor_orgs {
            parts.push(one_of("actor_org", v));
        }
        if let Some(v) = &self.subjects {
            parts.push(one_of("subject_id", v));
        }
        if let Some(v) = &self.operations {
            parts.push(one_of("operation", v));
        }
        if let Some(v) = &self.sources {
            parts.push(one_of("source", v));
        }
        let ts = |micros: i64| {
            lit(ScalarValue::TimestampMicrosecond(
                Some(micros),
                Some("UTC".into()),
            ))
        };
        if let Some(from) = self.from_micros {
            parts.push(col("ts").gt_eq(ts(from)));
        }
        if let Some(until) = self.until_micros {
            parts.push(col("ts").lt(ts(until)));
        }
        parts.into_iter().reduce(Expr::and)
    }

    /// Whether one event lies in the scope: the same rule as [`RowScope::filter`], evaluated in Rust
    /// (for decision tables and tests; queries use the filter).
    pub fn admits(&self, e: &EventFacts<'_>) -> bool {
        let within = |allowed: &Option<Vec<String>>, v: &str| {
            allowed.as_ref().is_none_or(|a| a.iter().any(|x| x == v))
        };
        (e.source == OWN_SOURCE) == self.own_events
            && within(&self.actor_orgs, e.actor_org)
            && within(&self.subjects, e.subject_id)
            && within(&self.operations, e.operation)
            && within(&self.sources, e.source)
            && self.from_micros.is_none_or(|f| e.ts_micros >= f)
            && self.until_micros.is_none_or(|u| e.ts_micros < u)
    }

    /// Whether the scope restricts nothing (the admin's).
    pub fn is_everything(&self) -> bool {
        self.filter().is_none() && self.columns.is_none() && !self.own_events
    }
}

/// The facts of one event a scope looks at.
#[derive(Clone, Copy, Debug)]
pub struct EventFacts<'a> {
    pub actor_org: &'a str,
    pub subject_id: &'a str,
    pub operation: &'a str,
    pub source: &'a str,
    pub ts_micros: i64,
}
