//! The shape a researcher's SQL must have: one `SELECT` of aggregates over one granted table, grouped by
//! released dimension columns. Anything else is refused with the reason. The text never reaches the
//! engine: it becomes a [`StatQuery`], from which Iris writes the SQL it runs.

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, ObjectNamePart, OrderByKind, SelectItem, SetExpr, Statement, TableFactor,
    UnaryOperator, Value,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use iris_labour::{ColumnRole, LabourTable};

/// The parser's recursion limit (nested parentheses): the statement guard's, so that no text can
/// overflow the stack of the thread that checks it.
pub const PARSER_RECURSION: usize = 64;

/// Most dimensions one query may group by (the answer carries every margin of them).
pub const MAX_DIMENSIONS: usize = 3;

/// Why a query is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(why: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(why.into()))
}

/// An aggregate Iris computes and releases.
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregate {
    /// `COUNT(*)`: rows (each person's rows bounded).
    Rows,
    /// `COUNT(DISTINCT id)`: distinct persons or enterprises.
    Distinct(String),
    Sum(String),
    Avg(String),
    Median(String),
    /// `QUANTILE(measure, p)`.
    Quantile(String, f64),
}

impl Aggregate {
    /// The measure it reads, if any.
    pub fn measure(&self) -> Option<&str> {
        match self {
            Aggregate::Sum(m)
            | Aggregate::Avg(m)
            | Aggregate::Median(m)
            | Aggregate::Quantile(m, _) => Some(m),
            _ => None,
        }
    }

    /// Whether it is a count (rounded when the project rounds).
    pub fn is_count(&self) -> bool {
        matches!(self, Aggregate::Rows | Aggregate::Distinct(_))
    }
}

/// One column of the answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Dimension(String),
    Aggregate { agg: Aggregate, name: String },
}

impl Output {
    /// The column's name in the answer.
    pub fn name(&self) -> &str {
        match self {
            Output::Dimension(d) => d,
            Output::Aggregate { name, .. } => name,
        }
    }
}

/// A condition on released values (HAVING).
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    Compare {
        column: usize,
        op: BinaryOperator,
        value: f64,
    },
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
}

/// A researcher's query, checked.
#[derive(Clone, Debug)]
pub struct StatQuery {
    pub table: &'static LabourTable,
    /// GROUP BY, in order.
    pub dimensions: Vec<String>,
    pub outputs: Vec<Output>,
    /// WHERE, re-rendered from the checked expression (columns, literals and operators only).
    pub filter: Option<String>,
    pub having: Option<Condition>,
    /// (output column, descending).
    pub order_by: Vec<(usize, bool)>,
    pub limit: Option<usize>,
    /// Dimensions the WHERE clause pins to a list of values (`d = 'v'`, `d IN (…)` under top-level
    /// ANDs): their cells are only those values. Read from the text, never from the data.
    pub pinned: std::collections::BTreeMap<String, Vec<String>>,
}

/// Names of the released columns of `table`: dimensions (stored and derived), measures.
fn role_of(table: &LabourTable, name: &str) -> Option<ColumnRole> {
    if table.derived.iter().any(|d| d.0 == name) {
        return Some(ColumnRole::Dimension);
    }
    table.column(name).map(|c| c.role)
}

fn column_name(e: &Expr) -> Result<Option<String>, Refusal> {
    match e {
        Expr::Identifier(i) => Ok(Some(i.value.to_lowercase())),
        Expr::CompoundIdentifier(_) => {
            refuse("qualified column names are not needed: the query reads one table")
        }
        _ => Ok(None),
    }
}

/// Parses and checks `sql` for a project granted `tables`.
pub fn check(sql: &str, tables: &[String]) -> Result<StatQuery, Refusal> {
    let statements = Parser::new(&GenericDialect {})
        .with_recursion_limit(PARSER_RECURSION)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| Refusal(format!("not valid SQL: {e}")))?;
    let [statement] = statements.as_slice() else {
        return refuse("send exactly one SELECT statement");
    };
    let Statement::Query(query) = statement else {
        return refuse("only a SELECT of aggregates is allowed (no DDL, DML, COPY or settings)");
    };
    if query.with.is_some() {
        return refuse("WITH (common table expressions) is not allowed: one SELECT over one table");
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return refuse(match query.body.as_ref() {
            SetExpr::SetOperation { .. } => {
                "UNION, INTERSECT and EXCEPT are not allowed: they combine answers the rules check one at a time"
            }
            SetExpr::Query(_) => "subqueries are not allowed",
            SetExpr::Values(_) => "VALUES is not allowed",
            _ => "only a plain SELECT is allowed",
        });
    };
    if select.distinct.is_some() {
        return refuse("SELECT DISTINCT is not allowed: it lists values, use GROUP BY");
    }
    if select.into.is_some()
        || select.top.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.connect_by.is_empty()
        || select.qualify.is_some()
        || !select.named_window.is_empty()
    {
        return refuse(
            "only SELECT … FROM … WHERE … GROUP BY … HAVING … ORDER BY … LIMIT is allowed",
        );
    }
    // FROM: one granted table.
    let [from] = select.from.as_slice() else {
        return refuse(if select.from.is_empty() {
            "name one table in FROM"
        } else {
            "joins are not allowed: query one table at a time"
        });
    };
    if !from.joins.is_empty() {
        return refuse("joins are not allowed: query one table at a time");
    }
    let TableFactor::Table { name, args, .. } = &from.relation else {
        return refuse("FROM must name a table (no subquery, no table function)");
    };
    if args.is_some() {
        return refuse("table functions are not allowed");
    }
    let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() else {
        return refuse(format!("unknown table `{name}`"));
    };
    let table_name = ident.value.to_lowercase();
    let Some(table) = iris_labour::table(&table_name) else {
        return refuse(format!(
            "unknown table `{table_name}`: the tables are declarations, relations and positions"
        ));
    };
    if !tables.iter().any(|t| t == table.name) {
        return refuse(format!(
            "the project is not granted table `{}` (granted: {})",
            table.name,
            tables.join(", ")
        ));
    }
    // GROUP BY: released dimensions only.
    let GroupByExpr::Expressions(groups, modifiers) = &select.group_by else {
        return refuse("GROUP BY ALL is not allowed: name the dimensions");
    };
    if !modifiers.is_empty() {
        return refuse(
            "ROLLUP, CUBE and GROUPING SETS are not needed: every answer carries its margins",
        );
    }
    let mut dimensions = Vec::new();
    for g in groups {
        let Some(name) = column_name(g)? else {
            return refuse(format!(
                "GROUP BY `{g}`: group by dimension columns only, not by expressions"
            ));
        };
        match role_of(table, &name) {
            Some(ColumnRole::Dimension) => {}
            Some(ColumnRole::Identifier) => {
                return refuse(format!(
                    "GROUP BY `{name}`: an identifier (pseudonymised) may only be counted, never grouped by"
                ));
            }
            Some(ColumnRole::Measure { .. }) => {
                return refuse(format!(
                    "GROUP BY `{name}`: a measure is not a dimension (it would list individual values)"
                ));
            }
            Some(ColumnRole::Hidden) => return refuse(hidden(table, &name)),
            None => return refuse(unknown(table, &name)),
        }
        if !dimensions.contains(&name) {
            dimensions.push(name);
        }
    }
    if dimensions.len() > MAX_DIMENSIONS {
        return refuse(format!(
            "at most {MAX_DIMENSIONS} dimensions per query (the answer carries every margin of them)"
        ));
    }
    // SELECT: dimensions of the GROUP BY and aggregates.
    let mut outputs = Vec::new();
    for item in &select.projection {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias.value.to_lowercase())),
            _ => return refuse("* is not allowed: it would list rows; select aggregates"),
        };
        if let Some(name) = column_name(expr)? {
            match role_of(table, &name) {
                Some(ColumnRole::Dimension) if dimensions.contains(&name) => {
                    outputs.push(Output::Dimension(name));
                    continue;
                }
                Some(ColumnRole::Dimension) => {
                    return refuse(format!("`{name}` is selected but not in GROUP BY"));
                }
                Some(ColumnRole::Identifier) => {
                    return refuse(format!(
                        "`{name}` is an identifier: it may only be counted, COUNT(DISTINCT {name})"
                    ));
                }
                Some(ColumnRole::Hidden) => return refuse(hidden(table, &name)),
                Some(ColumnRole::Measure { .. }) => {
                    return refuse(format!(
                        "`{name}` alone would list individual values: aggregate it (SUM, AVG, MEDIAN, QUANTILE)"
                    ));
                }
                None => return refuse(unknown(table, &name)),
            }
        }
        let agg = aggregate(table, expr)?;
        let name = alias.unwrap_or_else(|| default_name(&agg));
        if outputs.iter().any(|o| o.name() == name) {
            return refuse(format!(
                "two columns are called `{name}`: give them aliases"
            ));
        }
        outputs.push(Output::Aggregate { agg, name });
    }
    if !outputs
        .iter()
        .any(|o| matches!(o, Output::Aggregate { .. }))
    {
        return refuse("select at least one aggregate (COUNT, SUM, AVG, MEDIAN, QUANTILE)");
    }
    for d in &dimensions {
        if !outputs.contains(&Output::Dimension(d.clone())) {
            return refuse(format!("GROUP BY `{d}` must also be in the SELECT list"));
        }
    }
    let mut pinned = std::collections::BTreeMap::new();
    let filter = match &select.selection {
        Some(e) => {
            check_filter(table, e)?;
            pins(e, &mut pinned);
            Some(e.to_string())
        }
        None => None,
    };
    let having = match &select.having {
        Some(e) => Some(condition(table, e, &outputs)?),
        None => None,
    };
    let mut order_by = Vec::new();
    if let Some(o) = &query.order_by {
        let OrderByKind::Expressions(items) = &o.kind else {
            return refuse("ORDER BY ALL is not allowed");
        };
        for item in items {
            let column = output_ref(table, &item.expr, &outputs)?;
            order_by.push((column, item.options.asc == Some(false)));
        }
    }
    let limit = match &query.limit_clause {
        None => None,
        Some(l) => Some(limit_of(l)?),
    };
    if query.fetch.is_some() || !query.locks.is_empty() || query.for_clause.is_some() {
        return refuse("FETCH, FOR and locks are not allowed");
    }
    Ok(StatQuery {
        table,
        dimensions,
        outputs,
        filter,
        having,
        order_by,
        limit,
        pinned,
    })
}

/// The text of a literal as the engine compares it with a text column.
fn literal_text(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// Collects the values each column is pinned to by `e` (an AND of `=`/`IN` terms; anything else
/// pins nothing). Two pins of one column keep the values both allow.
fn pins(e: &Expr, out: &mut std::collections::BTreeMap<String, Vec<String>>) {
    let mut add = |col: String, vals: Vec<String>| {
        let entry = out.entry(col).or_insert_with(|| vals.clone());
        entry.retain(|v| vals.contains(v));
    };
    match e {
        Expr::Nested(x) => pins(x, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            pins(left, out);
            pins(right, out);
        }
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let (c, v) = match (column_name(left), column_name(right)) {
                (Ok(Some(c)), _) => (c, literal_text(right)),
                (_, Ok(Some(c))) => (c, literal_text(left)),
                _ => return,
            };
            if let Some(v) = v {
                add(c, vec![v]);
            }
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } => {
            if let Ok(Some(c)) = column_name(expr) {
                let vals: Option<Vec<String>> = list.iter().map(literal_text).collect();
                if let Some(vals) = vals {
                    add(c, vals);
                }
            }
        }
        _ => {}
    }
}

fn limit_of(l: &datafusion::sql::sqlparser::ast::LimitClause) -> Result<usize, Refusal> {
    use datafusion::sql::sqlparser::ast::LimitClause;
    let LimitClause::LimitOffset {
        limit: Some(Expr::Value(v)),
        offset: None,
        limit_by,
    } = l
    else {
        return refuse("LIMIT takes one number (no OFFSET)");
    };
    if !limit_by.is_empty() {
        return refuse("LIMIT BY is not allowed");
    }
    match &v.value {
        Value::Number(n, _) => n
            .parse()
            .map_err(|_| Refusal("LIMIT takes a whole number".into())),
        _ => refuse("LIMIT takes a whole number"),
    }
}

fn hidden(table: &LabourTable, name: &str) -> String {
    let hint = if name == "birth_year" {
        "; use age_class"
    } else {
        ""
    };
    format!("`{name}` of {} is not released{hint}", table.name)
}

fn unknown(table: &LabourTable, name: &str) -> String {
    let released: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| !matches!(c.role, ColumnRole::Hidden))
        .map(|c| c.name)
        .chain(table.derived.iter().map(|d| d.0))
        .collect();
    format!(
        "{} has no column `{name}` (released columns: {})",
        table.name,
        released.join(", ")
    )
}

fn default_name(agg: &Aggregate) -> String {
    match agg {
        Aggregate::Rows => "rows".into(),
        Aggregate::Distinct(c) => format!("distinct_{c}"),
        Aggregate::Sum(m) => format!("sum_{m}"),
        Aggregate::Avg(m) => format!("avg_{m}"),
        Aggregate::Median(m) => format!("median_{m}"),
        Aggregate::Quantile(m, p) => format!("q{}_{m}", (p * 100.0).round()),
    }
}

/// An aggregate call of the allowed kinds, over a bare column.
fn aggregate(table: &LabourTable, e: &Expr) -> Result<Aggregate, Refusal> {
    let Expr::Function(f) = e else {
        return refuse(match e {
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                "subqueries are not allowed".to_string()
            }
            _ => format!(
                "`{e}`: the SELECT list holds dimensions and aggregates of columns only; compute ratios from the released figures"
            ),
        });
    };
    if f.over.is_some() {
        return refuse("window functions are not allowed");
    }
    if f.filter.is_some() || !f.within_group.is_empty() || f.null_treatment.is_some() {
        return refuse(format!(
            "`{e}`: FILTER, WITHIN GROUP and null treatment are not allowed"
        ));
    }
    if !matches!(f.parameters, FunctionArguments::None) {
        return refuse(format!("`{e}`: parameters are not allowed"));
    }
    let name = f.name.to_string().to_lowercase();
    let FunctionArguments::List(list) = &f.args else {
        return refuse(format!("`{e}`: an aggregate takes a column"));
    };
    if !list.clauses.is_empty() {
        return refuse(format!(
            "`{e}`: ORDER BY, LIMIT or SEPARATOR inside an aggregate is not allowed"
        ));
    }
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let args: Vec<&FunctionArgExpr> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(x) => Ok(x),
            _ => refuse("named arguments are not allowed"),
        })
        .collect::<Result<_, _>>()?;
    let column = |a: &FunctionArgExpr| -> Result<(String, ColumnRole), Refusal> {
        let FunctionArgExpr::Expr(x) = a else {
            return refuse(format!("`{e}`: aggregate a column"));
        };
        let Some(name) = column_name(x)? else {
            return refuse(format!(
                "`{e}`: aggregate a column, not an expression (expressions inside aggregates can single out persons)"
            ));
        };
        match role_of(table, &name) {
            Some(ColumnRole::Hidden) => refuse(hidden(table, &name)),
            Some(role) => Ok((name, role)),
            None => refuse(unknown(table, &name)),
        }
    };
    let measure = |a: &FunctionArgExpr| -> Result<String, Refusal> {
        match column(a)? {
            (m, ColumnRole::Measure { .. }) => Ok(m),
            (c, _) => refuse(format!(
                "`{e}`: `{c}` is not a measure (measures: {})",
                measures(table)
            )),
        }
    };
    match (name.as_str(), args.as_slice(), distinct) {
        ("count", [FunctionArgExpr::Wildcard], false) => Ok(Aggregate::Rows),
        ("count", [a], true) => match column(a)? {
            (c, ColumnRole::Identifier) => Ok(Aggregate::Distinct(c)),
            (c, _) => refuse(format!(
                "COUNT(DISTINCT {c}) would list how many values a released column takes; count identifiers or rows"
            )),
        },
        ("count", [_], false) => Ok(Aggregate::Rows),
        (_, _, true) => refuse(format!("`{e}`: DISTINCT only inside COUNT")),
        ("sum", [a], _) => Ok(Aggregate::Sum(measure(a)?)),
        ("avg" | "mean", [a], _) => Ok(Aggregate::Avg(measure(a)?)),
        ("median", [a], _) => Ok(Aggregate::Median(measure(a)?)),
        ("stddev" | "stddev_samp" | "stddev_pop" | "variance" | "var_samp" | "var_pop", _, _) => {
            refuse(format!(
                "`{e}`: standard deviations and variances are not released (no private mechanism for them here); use QUANTILE(column, 0.25) and QUANTILE(column, 0.75)"
            ))
        }
        ("quantile" | "percentile_cont", [a, FunctionArgExpr::Expr(p)], _) => {
            let p = number(p)
                .filter(|p| (0.0..=1.0).contains(p))
                .ok_or_else(|| Refusal(format!("`{e}`: the quantile is a number from 0 to 1")))?;
            Ok(Aggregate::Quantile(measure(a)?, p))
        }
        ("min" | "max", _, _) => refuse(format!(
            "`{e}`: MIN and MAX release one person's value; use QUANTILE(column, 0.1) or QUANTILE(column, 0.9)"
        )),
        _ => refuse(format!(
            "`{e}`: allowed aggregates are COUNT(*), COUNT(DISTINCT identifier), SUM, AVG, MEDIAN, QUANTILE(column, p)"
        )),
    }
}

fn measures(table: &LabourTable) -> String {
    let m: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| matches!(c.role, ColumnRole::Measure { .. }))
        .map(|c| c.name)
        .collect();
    if m.is_empty() {
        "none, count rows or persons".into()
    } else {
        m.join(", ")
    }
}

fn number(e: &Expr) -> Option<f64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => number(expr).map(|n| -n),
        _ => None,
    }
}

fn is_comparison(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    )
}

fn is_literal(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => matches!(
            v.value,
            Value::Number(..) | Value::SingleQuotedString(_) | Value::Boolean(_) | Value::Null
        ),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => matches!(expr.as_ref(), Expr::Value(_)),
        _ => false,
    }
}

/// Whether `value` has the type of `column`: text for a dimension, a number for a measure (or NULL).
/// Checked here, from the text, because a value the engine must convert row by row could fail on
/// some rows and not others — an error that would tell the researcher whether such a row exists.
fn fits(table: &LabourTable, column: &Expr, value: &Expr) -> Result<(), Refusal> {
    let Some(name) = column_name(column)? else {
        return refuse(format!("WHERE `{column}`: compare a column with a value"));
    };
    let text = matches!(value, Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)));
    let null = matches!(value, Expr::Value(v) if matches!(v.value, Value::Null));
    let number = number(value).is_some();
    match role_of(table, &name) {
        Some(ColumnRole::Dimension) if text || null => Ok(()),
        Some(ColumnRole::Dimension) => refuse(format!(
            "WHERE `{name}` compared with `{value}`: `{name}` is text; quote the value ('…')"
        )),
        Some(ColumnRole::Measure { .. }) if number || null => Ok(()),
        Some(ColumnRole::Measure { .. }) => refuse(format!(
            "WHERE `{name}` compared with `{value}`: `{name}` is a number; compare it with a number"
        )),
        _ => refuse(format!("WHERE `{name}`: not a released column")),
    }
}

/// WHERE: released dimensions and measures compared with literals, combined with AND, OR, NOT.
fn check_filter(table: &LabourTable, e: &Expr) -> Result<(), Refusal> {
    let operand = |x: &Expr| -> Result<(), Refusal> {
        if is_literal(x) {
            return Ok(());
        }
        let Some(name) = column_name(x)? else {
            return refuse(format!(
                "WHERE `{x}`: compare columns with values; functions and expressions are not allowed"
            ));
        };
        match role_of(table, &name) {
            Some(ColumnRole::Dimension | ColumnRole::Measure { .. }) => Ok(()),
            Some(ColumnRole::Identifier) => refuse(format!(
                "WHERE on `{name}`: an identifier (pseudonymised) may not be filtered on"
            )),
            Some(ColumnRole::Hidden) => refuse(hidden(table, &name)),
            None => refuse(unknown(table, &name)),
        }
    };
    match e {
        Expr::Nested(x) => check_filter(table, x),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => check_filter(table, expr),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And | BinaryOperator::Or => {
                check_filter(table, left)?;
                check_filter(table, right)
            }
            op if is_comparison(op) => {
                operand(left)?;
                operand(right)?;
                if is_literal(left) == is_literal(right) {
                    return refuse(format!("WHERE `{e}`: compare a column with a value"));
                }
                let (column, value) = if is_literal(right) {
                    (left, right)
                } else {
                    (right, left)
                };
                fits(table, column, value)
            }
            _ => refuse(format!("WHERE `{e}`: operator {op} is not allowed")),
        },
        Expr::InList { expr, list, .. } => {
            if column_name(expr)?.is_none() || !list.iter().all(is_literal) {
                return refuse(format!(
                    "WHERE `{e}`: IN takes a column and a list of values"
                ));
            }
            operand(expr)?;
            list.iter().try_for_each(|v| fits(table, expr, v))
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            if column_name(expr)?.is_none() || !is_literal(low) || !is_literal(high) {
                return refuse(format!(
                    "WHERE `{e}`: BETWEEN takes a column and two values"
                ));
            }
            operand(expr)?;
            fits(table, expr, low)?;
            fits(table, expr, high)
        }
        Expr::IsNull(x) | Expr::IsNotNull(x) => {
            if column_name(x)?.is_none() {
                return refuse(format!("WHERE `{e}`: IS NULL takes a column"));
            }
            operand(x)
        }
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            refuse("subqueries are not allowed")
        }
        _ => refuse(format!(
            "WHERE `{e}`: only comparisons of columns with values, IN, BETWEEN, IS NULL, AND, OR and NOT are allowed"
        )),
    }
}

/// A column of the answer named in HAVING or ORDER BY: its alias, a dimension, or the same aggregate.
fn output_ref(table: &LabourTable, e: &Expr, outputs: &[Output]) -> Result<usize, Refusal> {
    if let Some(name) = column_name(e)?
        && let Some(i) = outputs.iter().position(|o| o.name() == name)
    {
        return Ok(i);
    }
    if matches!(e, Expr::Function(_)) {
        let agg = aggregate(table, e)?;
        if let Some(i) = outputs
            .iter()
            .position(|o| matches!(o, Output::Aggregate { agg: a, .. } if *a == agg))
        {
            return Ok(i);
        }
        return refuse(format!(
            "`{e}`: HAVING and ORDER BY may only use aggregates that the SELECT list releases"
        ));
    }
    refuse(format!(
        "`{e}`: HAVING and ORDER BY may only name columns of the answer ({})",
        outputs
            .iter()
            .map(Output::name)
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// HAVING: released aggregates compared with numbers.
fn condition(table: &LabourTable, e: &Expr, outputs: &[Output]) -> Result<Condition, Refusal> {
    match e {
        Expr::Nested(x) => condition(table, x, outputs),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Ok(Condition::Not(Box::new(condition(table, expr, outputs)?))),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => Ok(Condition::And(
                Box::new(condition(table, left, outputs)?),
                Box::new(condition(table, right, outputs)?),
            )),
            BinaryOperator::Or => Ok(Condition::Or(
                Box::new(condition(table, left, outputs)?),
                Box::new(condition(table, right, outputs)?),
            )),
            op if is_comparison(op) => {
                let Some(value) = number(right) else {
                    return refuse(format!("HAVING `{e}`: compare an aggregate with a number"));
                };
                let column = output_ref(table, left, outputs)?;
                if !matches!(outputs[column], Output::Aggregate { .. }) {
                    return refuse(format!("HAVING `{e}`: filter dimensions in WHERE"));
                }
                Ok(Condition::Compare {
                    column,
                    op: op.clone(),
                    value,
                })
            }
            _ => refuse(format!("HAVING `{e}`: operator {op} is not allowed")),
        },
        _ => refuse(format!(
            "HAVING `{e}`: compare released aggregates with numbers, with AND, OR, NOT"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        vec![
            "declarations".into(),
            "relations".into(),
            "positions".into(),
        ]
    }

    #[test]
    fn an_aggregate_query_becomes_a_stat_query() {
        let q = check(
            "SELECT region, quarter, COUNT(DISTINCT worker) AS workers, MEDIAN(wage) \
             FROM declarations WHERE sector IN ('C', 'F') AND wage > 1000 \
             GROUP BY region, quarter HAVING workers > 20 ORDER BY workers DESC LIMIT 5",
            &all(),
        )
        .expect("allowed");
        assert_eq!(q.dimensions, ["region", "quarter"]);
        assert_eq!(q.outputs.len(), 4);
        assert_eq!(q.order_by, [(2, true)]);
        assert_eq!(q.limit, Some(5));
        assert!(q.filter.as_deref().unwrap_or("").contains("sector IN"));
    }

    #[test]
    fn escapes_are_refused_with_a_reason() {
        for (sql, why) in [
            ("SELECT * FROM declarations", "*"),
            (
                "SELECT worker, COUNT(*) FROM declarations GROUP BY worker",
                "identifier",
            ),
            (
                "SELECT COUNT(*) FROM declarations WHERE worker = '85073003328'",
                "identifier",
            ),
            ("SELECT MAX(wage) FROM declarations", "MIN and MAX"),
            (
                "SELECT COUNT(*) FROM declarations d JOIN positions p ON true",
                "joins",
            ),
            (
                "SELECT COUNT(*) FROM (SELECT * FROM declarations)",
                "FROM must name a table",
            ),
            (
                "SELECT COUNT(*) FROM declarations UNION SELECT COUNT(*) FROM positions",
                "UNION",
            ),
            ("SELECT SUM(wage) OVER () FROM declarations", "window"),
            (
                "SELECT birth_year, COUNT(*) FROM declarations GROUP BY birth_year",
                "age_class",
            ),
            (
                "SELECT SUM(CASE WHEN gender = 'F' THEN wage END) FROM declarations",
                "expression",
            ),
            ("SELECT COUNT(*) FROM events", "unknown table"),
            ("DROP TABLE declarations", "SELECT"),
        ] {
            let e = check(sql, &all()).expect_err(sql);
            assert!(e.0.contains(why), "{sql}: {e}");
        }
    }
}
