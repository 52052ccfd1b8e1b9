//! The sealed Parquet is readable as it is by other engines: DuckDB and Apache Arrow's own dataset
//! reader (pyarrow), both from Python, read the store's Hive-style partitions and find the same rows,
//! per source and per day, as Iris's own SQL — for the events and for a labour-market table.
//! `.ci/run` installs `duckdb` and `pyarrow` with pip.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use support::{iris, load_samples, ok, stdout};

/// Runs a Python program that prints JSON, with the store's path as its argument.
fn python(program: &str, store: &Path) -> Value {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(program)
        .arg(store)
        .output()
        .expect("python3 (the tests need it; .ci/run installs duckdb and pyarrow)");
    assert!(
        out.status.success(),
        "python failed (is `pip install duckdb pyarrow` done? .ci/run does it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json from python")
}

/// The rows of `iris sql --format json`.
fn sql_rows(data: &Path, sql: &str) -> Vec<Value> {
    let out = ok(iris(data, &["sql", "--format", "json", sql]), "iris sql");
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    v.get("rows")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| v.as_array().cloned())
        .expect("rows")
}

fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .expect("an object")
        .iter()
        .map(|(k, n)| (k.clone(), n.as_u64().expect("a count")))
        .collect()
}

#[test]
fn duckdb_and_pyarrow_read_the_sealed_parquet_as_iris_does() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    load_samples(&data, &[], &[]);
    ok(
        iris(&data, &["labour", "import", "data-samples/labour"]),
        "labour import",
    );
    let store = data.join("store");
    // Iris's own answer.
    let iris_counts: BTreeMap<String, u64> = sql_rows(
        &data,
        "SELECT source || '/' || CAST(day AS VARCHAR) AS k, COUNT(*) AS n FROM events GROUP BY 1",
    )
    .iter()
    .map(|r| {
        (
            r["k"].as_str().expect("k").to_owned(),
            r["n"].as_u64().expect("n"),
        )
    })
    .collect();
    assert!(iris_counts.values().sum::<u64>() > 0);
    let declarations = sql_rows(&data, "SELECT COUNT(*) AS n FROM declarations")[0]["n"]
        .as_u64()
        .expect("a count");
    // DuckDB over the files, with Hive partitioning; Iris's own audit partitions (source `iris`, if
    // any) are not network events and are left out on both sides.
    let duck = python(
        r#"
import duckdb, json, sys
store = sys.argv[1]
con = duckdb.connect()
rows = con.execute(f"""
  SELECT source || '/' || CAST(day AS VARCHAR) AS k, COUNT(*) AS n
  FROM read_parquet('{store}/events/**/*.parquet', hive_partitioning = true)
  WHERE source <> 'iris'
  GROUP BY 1""").fetchall()
decl = con.execute(f"SELECT COUNT(*) FROM read_parquet('{store}/tables/declarations/**/*.parquet', hive_partitioning = true)").fetchone()[0]
print(json.dumps({"events": {k: n for k, n in rows}, "declarations": decl}))
"#,
        &store,
    );
    assert_eq!(counts(&duck["events"]), iris_counts, "DuckDB disagrees");
    assert_eq!(duck["declarations"].as_u64(), Some(declarations));
    // Apache Arrow's dataset reader.
    let arrow = python(
        r#"
import json, sys, collections
import pyarrow.dataset as ds
store = sys.argv[1]
t = ds.dataset(f"{store}/events", format="parquet", partitioning="hive").to_table(columns=["source", "day"])
c = collections.Counter()
for s, d in zip(t.column("source").to_pylist(), t.column("day").to_pylist()):
    if s != "iris":
        c[f"{s}/{d}"] += 1
decl = ds.dataset(f"{store}/tables/declarations", format="parquet", partitioning="hive").count_rows()
print(json.dumps({"events": dict(c), "declarations": decl}))
"#,
        &store,
    );
    assert_eq!(counts(&arrow["events"]), iris_counts, "pyarrow disagrees");
    assert_eq!(arrow["declarations"].as_u64(), Some(declarations));
}
