//! Functions whose output size is set by an argument, bounded.
//!
//! `repeat('x', 2147483647)` asks for 2 GiB in one call, outside any memory pool (a function's
//! result is an Arrow array, not an operator's reservation). Each function below is registered in
//! every session as a wrapper of DataFusion's own, under the same name and aliases: before calling
//! it, the wrapper computes an upper bound of the bytes (or elements) the call would produce for the
//! whole batch, from its arguments, and refuses past [`MAX_CALL_BYTES`]. Constant folding goes
//! through the same wrapper, so a literal call is refused at planning.
//!
//! Bounded: `repeat`, `lpad`, `rpad`, `replace`, `regexp_replace`, `concat`, `concat_ws`,
//! `array_repeat`, `array_resize`, `array_concat` (`array_cat`), and `range` / `generate_series`
//! in a projection. The `||` operator is not a function: [`BoundedConcatOperator`], an analyzer
//! rule run after type coercion, replaces each `a || b` by a call of [`ConcatOperatorUdf`], which
//! bounds the output the same way and then evaluates DataFusion's own operator (same types, same
//! NULL semantics, same column names). Without these, a chain of `s||s||…` over nested common table
//! expressions grows a value eightfold per level, outside the memory pool, until Arrow's 32-bit
//! offsets overflow. Aggregates that concatenate (`string_agg`,
//! `array_agg`) hold their state in the memory pool and stop at its budget; recursive CTEs are off.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::type_coercion::binary::BinaryTypeCoercer;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Documentation, Expr, LogicalPlan, Operator, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr as PhysicalBinaryExpr, Column};
use std::sync::Arc;

/// Most bytes one call of a bounded function may produce over a batch.
pub const MAX_CALL_BYTES: usize = 16 << 20;

/// How a function's output is bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Bound {
    /// `repeat(s, n)`: Σ len(s)·n.
    Repeat,
    /// `lpad|rpad(s, n[, fill])`: Σ 4·n + len(s).
    Pad,
    /// `replace(s, from, to)`: Σ (len(s)+1)·(len(to)+1).
    Replace,
    /// `regexp_replace(s, re, to[, flags])`: Σ (len(s)+1)·(len(to)+1)·(1 + len(s) if `to` refers
    /// to groups).
    RegexpReplace,
    /// `array_repeat(x, n)`, `array_resize(a, n[, v])`: Σ n·(size of one element).
    Elements,
    /// `range|generate_series(start, stop[, step])` as a scalar: Σ 8·(stop-start)/step.
    Range,
    /// `concat(a, b, …)`: Σ len(a) + len(b) + ….
    Concat,
    /// `concat_ws(sep, a, b, …)`: Σ len(a) + len(b) + … + len(sep)·(arguments − 1).
    ConcatWs,
    /// `array_concat(a, b, …)`: the sizes of the arrays (a scalar counted once per row).
    Arrays,
}

const BOUNDED: &[(&str, Bound)] = &[
    ("repeat", Bound::Repeat),
    ("lpad", Bound::Pad),
    ("rpad", Bound::Pad),
    ("replace", Bound::Replace),
    ("regexp_replace", Bound::RegexpReplace),
    ("array_repeat", Bound::Elements),
    ("array_resize", Bound::Elements),
    ("range", Bound::Range),
    ("generate_series", Bound::Range),
    ("concat", Bound::Concat),
    ("concat_ws", Bound::ConcatWs),
    ("array_concat", Bound::Arrays),
];

/// Replaces each bounded function of `ctx` by its bounded wrapper, and has every `||` rewritten
/// to its bounded form ([`BoundedConcatOperator`]).
pub fn register(ctx: &SessionContext) {
    for (name, bound) in BOUNDED {
        if let Some(inner) = ctx.udf(name).ok().filter(|f| f.name() == *name) {
            ctx.register_udf(ScalarUDF::new_from_impl(BoundedUdf {
                inner,
                bound: *bound,
            }));
        }
    }
    ctx.add_analyzer_rule(Arc::new(BoundedConcatOperator));
}

/// The refusal of a call past [`MAX_CALL_BYTES`] (`what`: `repeat()`, `` `||` ``).
fn too_big(what: &str, bytes: usize, rows: usize) -> DataFusionError {
    DataFusionError::Execution(format!(
        "{what} would produce about {} MiB for {rows} row(s); the limit is {} MiB per call: use smaller sizes",
        bytes >> 20,
        MAX_CALL_BYTES >> 20
    ))
}

/// The analyzer rule that replaces each `a || b` (a `StringConcat` binary expression, on strings
/// or binaries, after type coercion) by [`ConcatOperatorUdf`], keeping the expression's name.
/// (`||` on arrays is planned as `array_concat`, bounded above.)
#[derive(Debug, Default)]
pub struct BoundedConcatOperator;

impl AnalyzerRule for BoundedConcatOperator {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let udf = Arc::new(ScalarUDF::new_from_impl(ConcatOperatorUdf::new()));
        plan.transform_up_with_subqueries(|plan| {
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let saved = names.save(&expr);
                let rewritten = expr.transform_up(|e| match e {
                    Expr::BinaryExpr(BinaryExpr {
                        left,
                        op: Operator::StringConcat,
                        right,
                    }) => Ok(Transformed::yes(Expr::ScalarFunction(
                        ScalarFunction::new_udf(udf.clone(), vec![*left, *right]),
                    ))),
                    other => Ok(Transformed::no(other)),
                })?;
                Ok(rewritten.update_data(|e| saved.restore(e)))
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "iris_bounded_concat_operator"
    }
}

/// `a || b` with its output bounded: the size check of `concat`, then DataFusion's own operator.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ConcatOperatorUdf {
    signature: Signature,
}

impl ConcatOperatorUdf {
    /// The function (two arguments, already coerced to the operator's types).
    pub fn new() -> Self {
        ConcatOperatorUdf {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl Default for ConcatOperatorUdf {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ConcatOperatorUdf {
    fn name(&self) -> &str {
        "iris_concat_operator"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [l, r] => BinaryTypeCoercer::new(l, &Operator::StringConcat, r).get_result_type(),
            _ => Err(DataFusionError::Plan("`||` takes two operands".to_owned())),
        }
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        Ok(Arc::new(Field::new(
            self.name(),
            self.return_type(&types)?,
            nullable,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows.max(1);
        let bytes = estimate(Bound::Concat, &args.args, rows)?;
        if bytes > MAX_CALL_BYTES {
            return Err(too_big("`||`", bytes, args.number_rows));
        }
        let [l, r] = args.args.as_slice() else {
            return Err(DataFusionError::Execution(
                "`||` takes two operands".to_owned(),
            ));
        };
        let (l, r) = (l.to_array(rows)?, r.to_array(rows)?);
        let schema = Arc::new(Schema::new(vec![
            Field::new("l", l.data_type().clone(), true),
            Field::new("r", r.data_type().clone(), true),
        ]));
        let batch = RecordBatch::try_new(schema, vec![l, r])?;
        PhysicalBinaryExpr::new(
            Arc::new(Column::new("l", 0)),
            Operator::StringConcat,
            Arc::new(Column::new("r", 1)),
        )
        .evaluate(&batch)
    }
}

/// A DataFusion function with its output bounded.
#[derive(Debug, PartialEq, Eq, Hash)]
struct BoundedUdf {
    inner: Arc<ScalarUDF>,
    bound: Bound,
}

impl ScalarUDFImpl for BoundedUdf {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = estimate(self.bound, &args.args, args.number_rows)?;
        if bytes > MAX_CALL_BYTES {
            return Err(too_big(
                &format!("{}()", self.inner.name()),
                bytes,
                args.number_rows,
            ));
        }
        self.inner.invoke_with_args(args)
    }
}

/// An upper bound of the bytes a call produces (saturating).
fn estimate(bound: Bound, args: &[ColumnarValue], rows: usize) -> Result<usize> {
    let rows = rows.max(1);
    let arg = |i: usize| args.get(i);
    let total = match bound {
        Bound::Repeat => {
            let (s, n) = (lengths(arg(0), rows)?, ints(arg(1), rows)?);
            sum(s.iter().zip(&n).map(|(l, n)| l.saturating_mul(clamp(*n))))
        }
        Bound::Pad => {
            let (s, n) = (lengths(arg(0), rows)?, ints(arg(1), rows)?);
            sum(s
                .iter()
                .zip(&n)
                .map(|(l, n)| clamp(*n).saturating_mul(4).saturating_add(*l)))
        }
        Bound::Replace | Bound::RegexpReplace => {
            let s = lengths(arg(0), rows)?;
            let to = lengths(arg(2), rows)?;
            let groups = bound == Bound::RegexpReplace && refers_to_groups(arg(2));
            sum(s.iter().zip(&to).map(|(l, t)| {
                let base = l.saturating_add(1).saturating_mul(t.saturating_add(1));
                if groups {
                    base.saturating_mul(l.saturating_add(1))
                } else {
                    base
                }
            }))
        }
        Bound::Elements => {
            let each = element_bytes(arg(0));
            let n = ints(arg(1), rows)?;
            sum(n.iter().map(|n| clamp(*n).saturating_mul(each)))
        }
        Bound::Range => {
            let ints = |i| ints(arg(i), rows);
            let (start, stop, step) = match args.len() {
                1 => (vec![0; rows], ints(0)?, vec![1; rows]),
                2 => (ints(0)?, ints(1)?, vec![1; rows]),
                _ => (ints(0)?, ints(1)?, ints(2)?),
            };
            sum((0..rows).map(|i| {
                let span = (i128::from(stop[i]) - i128::from(start[i])).unsigned_abs();
                let step = i128::from(step[i]).unsigned_abs().max(1);
                usize::try_from((span / step + 1).saturating_mul(8)).unwrap_or(usize::MAX)
            }))
        }
        Bound::Concat => {
            let mut total = 0usize;
            for a in args {
                total = total.saturating_add(sum(lengths(Some(a), rows)?.into_iter()));
            }
            total
        }
        Bound::ConcatWs => {
            let sep = sum(lengths(arg(0), rows)?.into_iter());
            let mut total = sep.saturating_mul(args.len().saturating_sub(2));
            for a in args.iter().skip(1) {
                total = total.saturating_add(sum(lengths(Some(a), rows)?.into_iter()));
            }
            total
        }
        Bound::Arrays => sum(args.iter().map(|a| match a {
            ColumnarValue::Array(a) => a.get_array_memory_size(),
            ColumnarValue::Scalar(s) => s.size().saturating_mul(rows),
        })),
    };
    Ok(total)
}

fn sum(it: impl Iterator<Item = usize>) -> usize {
    it.fold(0usize, usize::saturating_add)
}

fn clamp(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

/// The argument as an array: one value per row, or one value for every row (a scalar).
fn values(arg: Option<&ColumnarValue>) -> Result<Option<ArrayRef>> {
    match arg {
        None => Ok(None),
        Some(ColumnarValue::Array(a)) => Ok(Some(a.clone())),
        Some(ColumnarValue::Scalar(s)) => Ok(Some(s.to_array_of_size(1)?)),
    }
}

/// Byte lengths of a string or binary argument, one per row (0 for null or a non-string type).
fn lengths(arg: Option<&ColumnarValue>, rows: usize) -> Result<Vec<usize>> {
    let Some(a) = values(arg)? else {
        return Ok(vec![0; rows]);
    };
    let one: Vec<usize> = match a.data_type() {
        DataType::Utf8 => a
            .as_string::<i32>()
            .iter()
            .map(|v| v.map_or(0, str::len))
            .collect(),
        DataType::LargeUtf8 => a
            .as_string::<i64>()
            .iter()
            .map(|v| v.map_or(0, str::len))
            .collect(),
        DataType::Utf8View => a
            .as_string_view()
            .iter()
            .map(|v| v.map_or(0, str::len))
            .collect(),
        DataType::Binary => a
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map_or(0, <[u8]>::len))
            .collect(),
        DataType::LargeBinary => a
            .as_binary::<i64>()
            .iter()
            .map(|v| v.map_or(0, <[u8]>::len))
            .collect(),
        DataType::BinaryView => a
            .as_binary_view()
            .iter()
            .map(|v| v.map_or(0, <[u8]>::len))
            .collect(),
        // Anything else is cast to text by the function: bound it by its display width.
        _ => {
            let text = cast(&a, &DataType::Utf8)?;
            text.as_string::<i32>()
                .iter()
                .map(|v| v.map_or(0, str::len))
                .collect()
        }
    };
    Ok(broadcast(one, rows))
}

/// Integer argument values, one per row (0 for null).
fn ints(arg: Option<&ColumnarValue>, rows: usize) -> Result<Vec<i64>> {
    let Some(a) = values(arg)? else {
        return Ok(vec![0; rows]);
    };
    if !a.data_type().is_integer() {
        return Err(DataFusionError::Execution(format!(
            "a size or bound of type {} is not accepted here: give an integer",
            a.data_type()
        )));
    }
    let a = cast(&a, &DataType::Int64)?;
    let one: Vec<i64> = a
        .as_primitive::<Int64Type>()
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    Ok(broadcast(one, rows))
}

fn broadcast<T: Copy + Default>(mut one: Vec<T>, rows: usize) -> Vec<T> {
    if one.len() == 1 && rows > 1 {
        let v = one[0];
        one = vec![v; rows];
    }
    one.resize(rows, T::default());
    one
}

/// Bytes of one element of an array argument (at least 8).
fn element_bytes(arg: Option<&ColumnarValue>) -> usize {
    let size = match arg {
        Some(ColumnarValue::Array(a)) => a.get_array_memory_size() / a.len().max(1),
        Some(ColumnarValue::Scalar(s)) => s.size(),
        None => 0,
    };
    size.max(8)
}

/// Whether a replacement text refers to capture groups (`\1`, `$1`, `${name}`).
fn refers_to_groups(arg: Option<&ColumnarValue>) -> bool {
    match arg {
        Some(ColumnarValue::Scalar(s)) => {
            let t = s.to_string();
            t.contains('\\') || t.contains('$')
        }
        Some(ColumnarValue::Array(_)) => true,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(sql: &str) -> Result<usize> {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    }

    #[tokio::test]
    async fn huge_calls_are_refused_and_small_ones_answer() {
        for sql in [
            "SELECT repeat('x', 2147483647)",
            "SELECT lpad('x', 2147483647)",
            "SELECT rpad('x', 2000000000, 'y')",
            "SELECT array_repeat(1, 2000000000)",
            "SELECT range(0, 9000000000)",
            "SELECT generate_series(1, 9000000000)",
            "SELECT replace(repeat('a', 5000), 'a', repeat('b', 5000))",
            "SELECT repeat(v, 100000000) FROM (VALUES ('ab'), ('cd')) t(v)",
            "SELECT list_repeat('x', 2000000000)",
        ] {
            let e = run(sql).await.expect_err(sql).to_string();
            assert!(e.contains("the limit is 16 MiB"), "{sql}: {e}");
        }
        for sql in [
            "SELECT repeat('x', 10)",
            "SELECT lpad('7', 5, '0')",
            "SELECT replace('abc', 'b', 'xyz')",
            "SELECT array_repeat(1, 3)",
            "SELECT range(1, 100)",
            "SELECT repeat(v, 3) FROM (VALUES ('ab'), ('cd')) t(v)",
        ] {
            assert!(run(sql).await.is_ok(), "{sql}");
        }
    }

    async fn rows(sql: &str) -> Result<Vec<String>> {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx.sql(sql).await?.collect().await?;
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
        Ok(text.lines().map(str::to_owned).collect())
    }

    /// The red team's query: each level multiplies a 15 MiB value by eight (2.4 GB of RSS with a
    /// 1 GiB pool, one level more an offset overflow). Every concatenation is bounded.
    #[tokio::test]
    async fn concatenations_are_bounded() {
        let attack = |op: &str| {
            let cat = |s: &str| match op {
                "||" => [s; 8].join("||"),
                f => format!("{f}({})", [s; 8].join(",")),
            };
            format!(
                "WITH a AS (SELECT repeat('x',16000000) s), b AS (SELECT {} s FROM a), c AS (SELECT {} s FROM b) SELECT length(s) FROM c",
                cat("s"),
                cat("s")
            )
        };
        for sql in [
            attack("||"),
            attack("concat"),
            attack("concat_ws"),
            "SELECT concat(repeat('x', 9000000), repeat('y', 9000000))".to_owned(),
            "SELECT repeat('x', 9000000) || repeat('y', 9000000)".to_owned(),
            "SELECT v || repeat('y', 9000000) FROM (VALUES ('a'), ('b')) t(v)".to_owned(),
            "SELECT concat_ws(repeat('-', 9000000), 'a', 'b', 'c')".to_owned(),
            "WITH a AS (SELECT array_repeat(1, 1500000) x) SELECT cardinality(array_concat(x, x, x, x)) FROM a".to_owned(),
            "WITH a AS (SELECT array_repeat(1, 1500000) x) SELECT cardinality(array_cat(x, x, x, x)) FROM a".to_owned(),
            "WITH a AS (SELECT array_repeat(1, 1500000) x) SELECT cardinality(x || x || x || x) FROM a".to_owned(),
        ] {
            let e = run(&sql).await.expect_err(&sql).to_string();
            assert!(e.contains("the limit is 16 MiB"), "{sql}: {e}");
            if sql.contains("||") && !sql.contains("array") {
                assert!(e.contains("`||` would produce"), "{sql}: {e}");
            }
        }
        // Small ones answer as before: `||` keeps its NULL semantics and its column name.
        let got = rows(
            "SELECT v || '/' || CAST(n AS VARCHAR), concat(v, NULL), concat_ws('-', v, 'z') FROM (VALUES ('a', 1), (NULL, 2)) t(v, n) ORDER BY n",
        )
        .await
        .expect("answers");
        let text = got.join("\n");
        assert!(text.contains("t.v || Utf8(\"/\") || t.n"), "{text}");
        assert!(
            got[3].contains("| a/1 ") && got[3].contains("| a-z "),
            "{text}"
        );
        assert!(got[4].starts_with("|    "), "NULL || … is NULL: {text}");
        for sql in [
            "SELECT 'a' || 'b'",
            "SELECT concat('a', 1, NULL)",
            "SELECT make_array(1) || make_array(2)",
            "SELECT array_concat(make_array(1), make_array(2, 3))",
            "SELECT count(*) FROM (VALUES ('a'), ('b')) t(v) WHERE v || 'x' = 'ax'",
            "SELECT (SELECT max(v || 'x') FROM (VALUES ('a')) u(v)) || 'y'",
            "SELECT v || 'x' AS k, count(*) FROM (VALUES ('a'), ('a')) t(v) GROUP BY v || 'x'",
        ] {
            assert!(run(sql).await.is_ok(), "{sql}: {:?}", run(sql).await);
        }
    }
}
