//! The statement guard: what any SQL text must pass before it is planned.
//!
//! - at most [`StatementLimits::max_bytes`] of text;
//! - one statement, parsed with a bounded parser recursion ([`StatementLimits::parser_recursion`]);
//! - at most [`StatementLimits::max_nodes`] expression nodes and [`StatementLimits::max_depth`]
//!   levels of nested expressions and subqueries — a chain `a OR b OR …` or `1 + 1 + …` is as deep
//!   as it is long, and a tree that deep would exhaust the stack of whatever walks it next (the
//!   planner, the optimizer, the evaluator, even its `Drop`);
//! - `EXPLAIN` in any form (`ANALYZE`, `VERBOSE`, `FORMAT …`) only for the unscoped operator: a plan
//!   shows file names, index hit counts and Parquet statistics of the whole warehouse, not of a
//!   principal's rows.
//!
//! [`check`] parses and walks on a thread of its own with a large stack ([`GUARD_STACK_BYTES`]), so
//! no text within the size limit can overflow the stack of a request thread, and a refused tree is
//! dropped there too.

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, Statement, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use std::ops::ControlFlow;

/// Stack of the thread that parses and walks a statement.
pub const GUARD_STACK_BYTES: usize = 256 << 20;

/// Statements checked at once (the others wait their turn; a check takes about a millisecond).
pub const GUARD_THREADS: usize = 16;

/// Bounds on a statement's text and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLimits {
    /// Longest statement text, in bytes.
    pub max_bytes: usize,
    /// Most expression nodes in one statement.
    pub max_nodes: usize,
    /// Deepest nesting of expressions and subqueries.
    pub max_depth: usize,
    /// The parser's own recursion limit (nested parentheses, subqueries).
    pub parser_recursion: usize,
}

impl Default for StatementLimits {
    fn default() -> Self {
        StatementLimits {
            max_bytes: 64 << 10,
            max_nodes: 10_000,
            max_depth: 128,
            parser_recursion: 64,
        }
    }
}

/// Why a statement was refused before planning.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StatementError {
    /// The text is longer than the limit.
    #[error("the statement is {bytes} bytes long; the limit is {max} bytes")]
    TooLong { bytes: usize, max: usize },
    /// Too many expression nodes.
    #[error(
        "the statement has more than {max} expressions; split it or use `IN (…)` lists of values"
    )]
    TooManyNodes { max: usize },
    /// Nested too deeply.
    #[error(
        "the statement nests expressions or subqueries more than {max} levels deep (a chain `a OR b OR …` counts one level per term); use `IN (…)` or split it"
    )]
    TooDeep { max: usize },
    /// Not parsable (including the parser's recursion limit).
    #[error("{0}")]
    Parse(String),
    /// Not exactly one statement.
    #[error("give exactly one statement (found {0})")]
    NotOne(usize),
    /// An `EXPLAIN` by a principal with a scope.
    #[error(
        "EXPLAIN is for the administrator only: a plan shows files, index hits and statistics of the whole warehouse, not of your rows"
    )]
    Explain,
    /// The guard's thread could not run.
    #[error("the statement could not be checked: {0}")]
    Internal(String),
}

/// A statement that passed the guard.
#[derive(Debug)]
pub struct Checked {
    /// The parsed statement, to plan.
    pub statement: DfStatement,
    /// Expression nodes counted.
    pub nodes: usize,
    /// Deepest nesting seen.
    pub depth: usize,
}

/// Checks `sql` on a thread with a large stack. `explain_allowed`: the unscoped operator's session.
pub async fn check(
    sql: &str,
    limits: &StatementLimits,
    explain_allowed: bool,
) -> Result<Checked, StatementError> {
    if sql.len() > limits.max_bytes {
        return Err(StatementError::TooLong {
            bytes: sql.len(),
            max: limits.max_bytes,
        });
    }
    // At most this many guard threads at once: each reserves a large (virtual) stack.
    static TURNS: std::sync::LazyLock<tokio::sync::Semaphore> =
        std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(GUARD_THREADS));
    let _turn = TURNS
        .acquire()
        .await
        .map_err(|e| StatementError::Internal(e.to_string()))?;
    let sql = sql.to_owned();
    let limits = limits.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("iris-sql-guard".into())
        .stack_size(GUARD_STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(check_now(&sql, &limits, explain_allowed));
        })
        .map_err(|e| StatementError::Internal(e.to_string()))?;
    rx.await
        .map_err(|e| StatementError::Internal(e.to_string()))?
}

/// [`check`] on the current thread (whose stack must be large enough for the parser's recursion
/// limit; a walk stops at the depth limit).
pub fn check_now(
    sql: &str,
    limits: &StatementLimits,
    explain_allowed: bool,
) -> Result<Checked, StatementError> {
    if sql.len() > limits.max_bytes {
        return Err(StatementError::TooLong {
            bytes: sql.len(),
            max: limits.max_bytes,
        });
    }
    let dialect = GenericDialect {};
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .with_recursion_limit(limits.parser_recursion)
        .build()
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| {
            let text = e.to_string();
            if text.contains("RecursionLimitExceeded") {
                StatementError::TooDeep {
                    max: limits.parser_recursion,
                }
            } else {
                StatementError::Parse(clean(&text))
            }
        })?;
    if statements.len() != 1 {
        return Err(StatementError::NotOne(statements.len()));
    }
    let Some(statement) = statements.pop_front() else {
        return Err(StatementError::NotOne(0));
    };
    let mut walk = Walk {
        limits,
        depth: 0,
        deepest: 0,
        nodes: 0,
        explain_allowed,
    };
    walk.statement(&statement)?;
    Ok(Checked {
        statement,
        nodes: walk.nodes,
        depth: walk.deepest,
    })
}

fn clean(message: &str) -> String {
    message
        .trim_start_matches("SQL error: ")
        .trim_start_matches("ParserError(")
        .to_owned()
}

struct Walk<'a> {
    limits: &'a StatementLimits,
    depth: usize,
    deepest: usize,
    nodes: usize,
    explain_allowed: bool,
}

impl Walk<'_> {
    fn statement(&mut self, statement: &DfStatement) -> Result<(), StatementError> {
        match statement {
            DfStatement::Statement(s) => {
                if matches!(
                    **s,
                    Statement::Explain { .. } | Statement::ExplainTable { .. }
                ) && !self.explain_allowed
                {
                    return Err(StatementError::Explain);
                }
                self.visit(s.as_ref())
            }
            DfStatement::Explain(e) => {
                if !self.explain_allowed {
                    return Err(StatementError::Explain);
                }
                self.statement(&e.statement)
            }
            DfStatement::CopyTo(c) => match &c.source {
                datafusion::sql::parser::CopyToSource::Query(q) => self.visit(q.as_ref()),
                datafusion::sql::parser::CopyToSource::Relation(_) => Ok(()),
            },
            // DDL and `RESET`: refused by the engine's statement options; nothing to walk.
            DfStatement::CreateExternalTable(_) | DfStatement::Reset(_) => Ok(()),
        }
    }

    fn visit<V: Visit>(&mut self, node: &V) -> Result<(), StatementError> {
        match node.visit(self) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(e) => Err(e),
        }
    }

    fn enter(&mut self) -> ControlFlow<StatementError> {
        self.depth += 1;
        self.nodes += 1;
        self.deepest = self.deepest.max(self.depth);
        if self.depth > self.limits.max_depth {
            return ControlFlow::Break(StatementError::TooDeep {
                max: self.limits.max_depth,
            });
        }
        if self.nodes > self.limits.max_nodes {
            return ControlFlow::Break(StatementError::TooManyNodes {
                max: self.limits.max_nodes,
            });
        }
        ControlFlow::Continue(())
    }

    fn leave(&mut self) -> ControlFlow<StatementError> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }
}

impl Visitor for Walk<'_> {
    type Break = StatementError;

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<StatementError> {
        self.enter()
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<StatementError> {
        self.leave()
    }

    fn pre_visit_query(&mut self, _query: &Query) -> ControlFlow<StatementError> {
        self.enter()
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<StatementError> {
        self.leave()
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<StatementError> {
        if matches!(
            s,
            Statement::Explain { .. } | Statement::ExplainTable { .. }
        ) && !self.explain_allowed
        {
            return ControlFlow::Break(StatementError::Explain);
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> StatementLimits {
        StatementLimits::default()
    }

    fn run(sql: &str, explain: bool) -> Result<Checked, StatementError> {
        // The tests' threads have small stacks: check on a big one, as the engine does.
        let sql = sql.to_owned();
        std::thread::Builder::new()
            .stack_size(GUARD_STACK_BYTES)
            .spawn(move || check_now(&sql, &limits(), explain))
            .expect("thread")
            .join()
            .expect("no panic")
    }

    #[test]
    fn ordinary_statements_pass() {
        let c = run(
            "SELECT actor_org, count(*) FROM events WHERE subject_id IN ('a', 'b') AND (x = 1 OR y = 2) GROUP BY 1",
            false,
        )
        .expect("passes");
        assert!(c.nodes > 5 && c.depth >= 3, "{c:?}");
    }

    #[test]
    fn long_chains_are_refused_by_depth_not_by_the_stack() {
        let or = (0..2000)
            .map(|i| format!("subject_id = '{i}'"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT count(*) FROM events WHERE {or}");
        assert!(sql.len() < limits().max_bytes);
        assert!(matches!(
            run(&sql, false),
            Err(StatementError::TooDeep { .. })
        ));
        let plus = format!("SELECT 1{}", "+1".repeat(4999));
        assert!(matches!(
            run(&plus, true),
            Err(StatementError::TooDeep { .. })
        ));
        // 100 terms is within the limits.
        let short = format!("SELECT 1{}", "+1".repeat(99));
        assert!(run(&short, false).is_ok());
    }

    #[test]
    fn wide_lists_count_nodes() {
        let list = (0..12_000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!("SELECT 1 WHERE 1 IN ({list})");
        assert!(sql.len() < limits().max_bytes);
        assert!(matches!(
            run(&sql, false),
            Err(StatementError::TooManyNodes { .. })
        ));
    }

    #[test]
    fn size_and_parser_recursion_are_bounded() {
        let big = format!("SELECT '{}'", "x".repeat(70_000));
        assert!(matches!(
            run(&big, false),
            Err(StatementError::TooLong { .. })
        ));
        let nested = format!("SELECT {}1{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(
            run(&nested, false),
            Err(StatementError::TooDeep { max: 64 })
        ));
        assert!(matches!(
            run("SELECT 1; SELECT 2", false),
            Err(StatementError::NotOne(2))
        ));
    }

    /// The fuzz target's property (`fuzz/fuzz_targets/statement_guard.rs`) over its committed corpus.
    #[test]
    fn the_fuzz_corpus_holds_the_guards_property() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/statement_guard");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("corpus").flatten() {
            let bytes = std::fs::read(entry.path()).expect("seed");
            let Ok(sql) = String::from_utf8(bytes) else {
                continue;
            };
            let scoped = run(&sql, false);
            let operator = run(&sql, true);
            if let Ok(c) = &scoped {
                assert!(c.depth <= limits().max_depth && c.nodes <= limits().max_nodes);
                assert!(operator.is_ok(), "{sql:?}");
            }
            if operator.is_ok() && scoped.is_err() {
                assert_eq!(scoped.err(), Some(StatementError::Explain), "{sql:?}");
            }
            seen += 1;
        }
        assert!(seen >= 10, "{seen} seeds in {}", dir.display());
    }

    #[test]
    fn explain_in_every_form_only_when_allowed() {
        for sql in [
            "EXPLAIN SELECT * FROM events",
            "EXPLAIN VERBOSE SELECT * FROM events",
            "EXPLAIN ANALYZE SELECT * FROM events",
            "EXPLAIN ANALYZE VERBOSE SELECT * FROM events",
            "EXPLAIN FORMAT TREE SELECT * FROM events",
            "explain   select 1",
            "/* c */ EXPLAIN SELECT 1",
        ] {
            assert_eq!(
                run(sql, false).map(|_| ()),
                Err(StatementError::Explain),
                "{sql}"
            );
            assert!(run(sql, true).is_ok(), "{sql}");
        }
    }
}
