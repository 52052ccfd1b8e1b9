//! The statement guard: what any SQL text must pass before it is planned.
//!
//! - at most [`StatementLimits::max_bytes`] of text;
//! - one statement, parsed with a bounded parser recursion ([`StatementLimits::parser_recursion`]);
//! - at most [`StatementLimits::max_nodes`] expression nodes and [`StatementLimits::max_depth`]
//!   levels of nested expressions and subqueries — a chain `a OR b OR …` or `1 + 1 + …` is as deep
//!   as it is long, and a tree that deep would exhaust the stack of whatever walks it next (the
//!   planner, the optimizer, the evaluator, even its `Drop`); every nested expression counts, of
//!   whatever kind (casts, function arguments, `CASE`, subscripts, field access), and a flat chain
//!   that the planner turns into nested calls (`a[1][2]…`, `a.b.c…`, `j -> 'k' -> …`) counts one
//!   level per link: planning `make_array(1)[1:3]…` is cubic in the length of the chain;
//! - at most [`StatementLimits::max_relations`] table references (tables, views, common table
//!   expressions, subqueries in `FROM`, table functions) and set operations (`UNION`, `INTERSECT`,
//!   `EXCEPT`) in all: the planner's time grows faster than linearly with the inputs of a plan
//!   (300 comma-joined tables took more than a minute);
//! - `EXPLAIN` in any form (`ANALYZE`, `VERBOSE`, `FORMAT …`) only for the unscoped operator: a plan
//!   shows file names, index hit counts and Parquet statistics of the whole warehouse, not of a
//!   principal's rows.
//!
//! [`check`] parses and walks on a thread of its own with a large stack ([`GUARD_STACK_BYTES`]), so
//! no text within the size limit can overflow the stack of a request thread, and a refused tree is
//! dropped there too.

use datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{
    Expr, Query, SetExpr, Statement, TableFactor, Visit, Visitor,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::ParserError;
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
    /// Deepest nesting of expressions and subqueries (a link of a subscript or field-access chain
    /// counts one level).
    pub max_depth: usize,
    /// Most table references and set operations in one statement.
    pub max_relations: usize,
    /// The parser's own recursion limit (nested parentheses, subqueries).
    pub parser_recursion: usize,
}

impl Default for StatementLimits {
    fn default() -> Self {
        StatementLimits {
            max_bytes: 64 << 10,
            max_nodes: 10_000,
            max_depth: 128,
            max_relations: 32,
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
        "the statement nests expressions or subqueries more than {max} levels deep (a chain `a OR b OR …` counts one level per term, and so does each link of `a[1][2].b…`); use `IN (…)` or split it"
    )]
    TooDeep { max: usize },
    /// Too many tables, joins or set operations.
    #[error(
        "the statement has more than {max} table references and set operations (UNION, INTERSECT, EXCEPT) in all; split it into smaller statements"
    )]
    TooManyRelations { max: usize },
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
    /// Table references and set operations counted.
    pub relations: usize,
}

/// Checks `sql` on a thread with a large stack. `explain_allowed`: the unscoped operator's session.
pub async fn check(
    sql: &str,
    limits: &StatementLimits,
    explain_allowed: bool,
) -> Result<Checked, StatementError> {
    within_size(sql, limits)?;
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
    within_size(sql, limits)?;
    let dialect = GenericDialect {};
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(&dialect)
        .with_recursion_limit(limits.parser_recursion)
        .build()
        .and_then(|mut p| p.parse_statements())
        // The parser's error may come wrapped (a diagnostic, a context): its root says what it is.
        .map_err(|e| match e.find_root() {
            datafusion::error::DataFusionError::SQL(p, _) => match p.as_ref() {
                ParserError::RecursionLimitExceeded => StatementError::TooDeep {
                    max: limits.parser_recursion,
                },
                ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                    StatementError::Parse(syntax_message(m))
                }
            },
            other => StatementError::Parse(clean(&other.to_string())),
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
        relations: 0,
        weights: Vec::new(),
        explain_allowed,
    };
    walk.statement(&statement)?;
    Ok(Checked {
        statement,
        nodes: walk.nodes,
        depth: walk.deepest,
        relations: walk.relations,
    })
}

/// The size limit, checked before any thread is spawned or any byte parsed.
fn within_size(sql: &str, limits: &StatementLimits) -> Result<(), StatementError> {
    if sql.len() > limits.max_bytes {
        return Err(StatementError::TooLong {
            bytes: sql.len(),
            max: limits.max_bytes,
        });
    }
    Ok(())
}

/// The parser's `Expected: X, found: Y at Line: L, Column: C` as a sentence a user can act on:
/// `syntax error near `Y` at line L, column C: expected X`.
pub fn syntax_message(m: &str) -> String {
    let (body, position) = match m.rsplit_once(" at Line: ") {
        Some((b, p)) => match p.split_once(", Column: ") {
            Some((l, c)) => (b, format!(" at line {l}, column {}", c.trim())),
            None => (m, String::new()),
        },
        None => (m, String::new()),
    };
    match body
        .strip_prefix("Expected: ")
        .and_then(|r| r.split_once(", found: "))
    {
        Some((expected, "EOF")) => {
            format!("syntax error: the statement ends too early: expected {expected}")
        }
        Some((expected, found)) => {
            format!("syntax error near `{found}`{position}: expected {expected}")
        }
        None => format!("syntax error{position}: {body}"),
    }
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
    relations: usize,
    /// The levels each expression being walked added (popped when it is left).
    weights: Vec<usize>,
    explain_allowed: bool,
}

/// Levels an expression adds to the nesting: one, plus one per link of a chain that the planner
/// turns into nested calls (each subscript or field access of `a[1][2].b`, each step of a JSON
/// path, each part past the first of a compound identifier).
fn weight(expr: &Expr) -> usize {
    let links = match expr {
        Expr::CompoundFieldAccess { access_chain, .. } => access_chain.len(),
        Expr::JsonAccess { path, .. } => path.path.len(),
        Expr::CompoundIdentifier(parts) => parts.len().saturating_sub(1),
        _ => 0,
    };
    links.saturating_add(1)
}

/// Set operations (`UNION`, `INTERSECT`, `EXCEPT`) at the top of a query body, counted without
/// recursion (a chain of them is as deep as it is long).
fn set_operations(body: &SetExpr) -> usize {
    let mut count = 0usize;
    let mut pending = vec![body];
    while let Some(e) = pending.pop() {
        if let SetExpr::SetOperation { left, right, .. } = e {
            count = count.saturating_add(1);
            pending.push(left);
            pending.push(right);
        }
    }
    count
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

    /// Enters a node that adds `levels` of nesting (and as many nodes).
    fn enter(&mut self, levels: usize) -> ControlFlow<StatementError> {
        self.weights.push(levels);
        self.depth = self.depth.saturating_add(levels);
        self.nodes = self.nodes.saturating_add(levels);
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
        let levels = self.weights.pop().unwrap_or(1);
        self.depth = self.depth.saturating_sub(levels);
        ControlFlow::Continue(())
    }

    /// Counts `n` more table references or set operations.
    fn relate(&mut self, n: usize) -> ControlFlow<StatementError> {
        self.relations = self.relations.saturating_add(n);
        if self.relations > self.limits.max_relations {
            return ControlFlow::Break(StatementError::TooManyRelations {
                max: self.limits.max_relations,
            });
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for Walk<'_> {
    type Break = StatementError;

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<StatementError> {
        self.enter(weight(expr))
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<StatementError> {
        self.leave()
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<StatementError> {
        self.relate(set_operations(&query.body))?;
        self.enter(1)
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<StatementError> {
        self.leave()
    }

    fn pre_visit_table_factor(&mut self, _factor: &TableFactor) -> ControlFlow<StatementError> {
        self.relate(1)
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
    fn a_typo_is_a_syntax_error_with_its_position() {
        for (sql, want) in [
            (
                "SELEC 1",
                "syntax error near `SELEC` at line 1, column 1: expected an SQL statement",
            ),
            (
                "SELECT * FORM events",
                "syntax error near `FORM` at line 1, column 10",
            ),
            (
                "SELECT * FROM",
                "syntax error: the statement ends too early",
            ),
        ] {
            match run(sql, false) {
                Err(StatementError::Parse(m)) => {
                    assert!(m.starts_with(want), "{sql}: {m}");
                    assert!(!m.contains("ParserError"), "{m}");
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
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
    fn subscript_and_field_access_chains_count_one_level_per_link() {
        // 2 KB, 400 links: the planner's time is cubic in the chain's length.
        let slices = format!("SELECT make_array(1,2,3){}", "[1:3]".repeat(400));
        assert!(matches!(
            run(&slices, false),
            Err(StatementError::TooDeep { max: 128 })
        ));
        let fields = format!("SELECT named_struct('a', 1){}", "['a']".repeat(200));
        assert!(matches!(
            run(&fields, true),
            Err(StatementError::TooDeep { .. })
        ));
        let path = format!("SELECT s{} FROM t", ".f".repeat(200));
        assert!(matches!(
            run(&path, false),
            Err(StatementError::TooDeep { .. })
        ));
        // Every kind of nested expression counts: casts, function arguments, CASE.
        let casts = format!("SELECT {}1{}", "CAST(".repeat(60), " AS BIGINT)".repeat(60));
        let nested_calls = format!("SELECT {}1{}", "abs(".repeat(60), ")".repeat(60));
        let cases = format!(
            "SELECT {}1{}",
            "CASE WHEN true THEN ".repeat(60),
            " END".repeat(60)
        );
        for sql in [casts, nested_calls, cases] {
            let c = run(&sql, false).expect("within the limits");
            assert!(c.depth > 60, "{sql}: {c:?}");
        }
        // A short chain is an ordinary query.
        let short = run("SELECT make_array(1,2,3)[1:3][2], s['a'].b FROM t", false).expect("ok");
        assert!(short.depth >= 4, "{short:?}");
    }

    #[test]
    fn tables_joins_and_set_operations_are_capped() {
        let max = limits().max_relations;
        let comma = |n: usize| {
            let from = (0..n)
                .map(|i| format!("events e{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT 1 FROM {from} LIMIT 1")
        };
        assert!(matches!(
            run(&comma(300), false),
            Err(StatementError::TooManyRelations { max: 32 })
        ));
        assert!(matches!(
            run(&comma(max + 1), true),
            Err(StatementError::TooManyRelations { .. })
        ));
        assert_eq!(run(&comma(max), false).expect("ok").relations, max);
        let joins = (1..=max)
            .map(|i| format!(" JOIN events e{i} ON e{i}.ticket = e0.ticket"))
            .collect::<String>();
        assert!(matches!(
            run(&format!("SELECT 1 FROM events e0{joins}"), false),
            Err(StatementError::TooManyRelations { .. })
        ));
        let unions = |n: usize| {
            (0..n)
                .map(|i| format!("SELECT {i}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ")
        };
        assert!(run(&unions(max + 1), false).is_ok());
        assert!(matches!(
            run(&unions(max + 2), false),
            Err(StatementError::TooManyRelations { .. })
        ));
        // Each reference to a common table expression is one more input to plan.
        let cte = format!(
            "WITH a AS (SELECT 1 AS x) SELECT 1 FROM {}",
            (0..40)
                .map(|i| format!("a a{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(matches!(
            run(&cte, false),
            Err(StatementError::TooManyRelations { .. })
        ));
        // A self-join, a union of two subqueries and an IN subquery are ordinary.
        assert!(
            run(
                "SELECT a.ticket FROM events a JOIN events b ON a.ticket = b.ticket WHERE a.subject_id IN (SELECT subject_id FROM events) UNION SELECT ticket FROM (SELECT ticket FROM events)",
                false
            )
            .is_ok()
        );
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
