//! Functions whose output size is set by an argument, bounded.
//!
//! `repeat('x', 2147483647)` asks for 2 GiB in one call, outside any memory pool (a function's
//! result is an Arrow array, not an operator's reservation). Each function below is registered in
//! every session as a wrapper of DataFusion's own, under the same name and aliases: before calling
//! it, the wrapper computes an upper bound of the bytes (or elements) the call would produce for the
//! whole batch, from its arguments, and refuses past [`MAX_CALL_BYTES`]. Constant folding goes
//! through the same wrapper, so a literal call is refused at planning.
//!
//! Bounded: `repeat`, `lpad`, `rpad`, `replace`, `regexp_replace`, `array_repeat`, `array_resize`,
//! and `range` / `generate_series` in a projection. Aggregates that concatenate (`string_agg`,
//! `array_agg`) hold their state in the memory pool and stop at its budget; recursive CTEs are off.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
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
];

/// Replaces each bounded function of `ctx` by its bounded wrapper.
pub fn register(ctx: &SessionContext) {
    for (name, bound) in BOUNDED {
        if let Some(inner) = ctx.udf(name).ok().filter(|f| f.name() == *name) {
            ctx.register_udf(ScalarUDF::new_from_impl(BoundedUdf {
                inner,
                bound: *bound,
            }));
        }
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
            return Err(DataFusionError::Execution(format!(
                "{}() would produce about {} MiB for {} row(s); the limit is {} MiB per call: use smaller sizes",
                self.inner.name(),
                bytes >> 20,
                args.number_rows,
                MAX_CALL_BYTES >> 20
            )));
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
}
