//! Researchers get only anonymised aggregates of the labour-market tables, asked over HTTP as they
//! would: an adversarial suite of disallowed queries, each refused with its reason or answered with
//! safe cells only (checked against the raw rows by the administrator's own SQL); a benign suite of
//! real statistical queries of which at most 5 % may be refused; differencing pairs and trackers;
//! reports in every format, also through the CLI; refusals for other roles; and every request an
//! audit event in the chain, which still verifies.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use support::{Server, install_access, iris, ok, stdout, token};

const PROJECT: &str = "LM-2025-01";
const MIN: f64 = 10.0;
/// The age classes, as the table defines them (written again here, independently).
const AGE_CLASS: &str = "CASE WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 25 THEN '15-24' \
    WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 35 THEN '25-34' \
    WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 45 THEN '35-44' \
    WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 55 THEN '45-54' \
    WHEN CAST(substr(quarter, 1, 4) AS INT) - birth_year < 65 THEN '55-64' ELSE '65+' END";

/// A statistical query whose released cells the test can check: dimensions, a filter, the persons
/// counted first, then other aggregates.
#[derive(Clone)]
struct Stat {
    table: &'static str,
    dims: Vec<&'static str>,
    filter: Option<String>,
    extra: &'static str,
    /// Check sums of wages against the dominance and p % rules too.
    sums: bool,
}

fn unit(table: &str) -> &'static str {
    if table == "positions" {
        "person"
    } else {
        "worker"
    }
}

impl Stat {
    fn new(table: &'static str, dims: &[&'static str], filter: Option<&str>) -> Stat {
        Stat {
            table,
            dims: dims.to_vec(),
            filter: filter.map(str::to_owned),
            extra: "",
            sums: false,
        }
    }

    fn with(mut self, extra: &'static str) -> Stat {
        self.extra = extra;
        self.sums = extra.contains("SUM(wage)") || extra.contains("AVG(wage)");
        self
    }

    fn sql(&self) -> String {
        let dims = self.dims.join(", ");
        let lead = if dims.is_empty() {
            String::new()
        } else {
            format!("{dims}, ")
        };
        let filter = self
            .filter
            .as_ref()
            .map(|f| format!(" WHERE {f}"))
            .unwrap_or_default();
        let group = if dims.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {dims}")
        };
        format!(
            "SELECT {lead}COUNT(DISTINCT {}) AS persons{} FROM {}{filter}{group}",
            unit(self.table),
            self.extra,
            self.table
        )
    }
}

struct Desk {
    url: String,
    client: reqwest::blocking::Client,
    researcher: String,
    admin: String,
    data: PathBuf,
    /// Requests sent to the research endpoints (each must leave one audit event).
    sent: std::cell::Cell<usize>,
}

impl Desk {
    fn ask_as(&self, token: &str, sql: &str) -> (u16, Value) {
        self.sent.set(self.sent.get() + 1);
        let r = self
            .client
            .post(format!("{}/v1/research/sql", self.url))
            .bearer_auth(token)
            .json(&json!({ "sql": sql }))
            .send()
            .expect("research request");
        (r.status().as_u16(), r.json().expect("json answer"))
    }

    fn ask(&self, sql: &str) -> (u16, Value) {
        self.ask_as(&self.researcher, sql)
    }

    fn admin_rows(&self, sql: &str) -> Vec<Value> {
        let r = self
            .client
            .post(format!("{}/v1/sql", self.url))
            .bearer_auth(&self.admin)
            .json(&json!({ "sql": sql }))
            .send()
            .expect("admin sql");
        let status = r.status().as_u16();
        let body: Value = r.json().expect("json");
        assert_eq!(status, 200, "{sql}: {body}");
        body["rows"].as_array().cloned().unwrap_or_default()
    }

    /// Starts the project with no history of released cells.
    fn forget_history(&self) {
        let _ = std::fs::remove_file(
            self.data
                .join("research")
                .join(PROJECT)
                .join("released.jsonl"),
        );
    }

    /// Checks an answer against the raw rows: every released cell (and margin) counts at least MIN
    /// persons, and exactly as many as the administrator's own count; released sums of wages pass the
    /// dominance (2, 85 %) and p % (10 %) rules.
    fn check_released(&self, q: &Stat, answer: &Value) {
        let source = format!("(SELECT *, {AGE_CLASS} AS age_class FROM {}) AS t", q.table);
        let filter = q
            .filter
            .as_ref()
            .map(|f| format!(" WHERE {f}"))
            .unwrap_or_default();
        let u = unit(q.table);
        let mut persons: BTreeMap<Vec<String>, f64> = BTreeMap::new();
        if q.dims.is_empty() {
            let rows = self.admin_rows(&format!(
                "SELECT COUNT(DISTINCT {u}) AS n FROM {source}{filter}"
            ));
            persons.insert(Vec::new(), rows[0]["n"].as_f64().unwrap_or(0.0));
        } else {
            let cols: Vec<String> = q
                .dims
                .iter()
                .enumerate()
                .map(|(i, d)| format!("CAST({d} AS VARCHAR) AS d{i}, grouping({d}) AS g{i}"))
                .collect();
            let sql = format!(
                "SELECT {}, COUNT(DISTINCT {u}) AS n FROM {source}{filter} GROUP BY CUBE({})",
                cols.join(", "),
                q.dims.join(", ")
            );
            for r in self.admin_rows(&sql) {
                let key: Vec<String> = (0..q.dims.len())
                    .map(|i| {
                        if r[format!("g{i}")].as_i64() == Some(1) {
                            "Total".to_owned()
                        } else {
                            r[format!("d{i}")].as_str().unwrap_or("(none)").to_owned()
                        }
                    })
                    .collect();
                persons.insert(key, r["n"].as_f64().unwrap_or(0.0));
            }
        }
        // Contributions of each person to each cell's wage total, for the dominance check.
        let mut contributions: BTreeMap<Vec<String>, BTreeMap<String, f64>> = BTreeMap::new();
        if q.sums {
            let dims: Vec<String> = q
                .dims
                .iter()
                .map(|d| format!("COALESCE(CAST({d} AS VARCHAR), '(none)')"))
                .collect();
            let lead = if dims.is_empty() {
                String::new()
            } else {
                format!("{}, ", dims.join(", "))
            };
            let sql = format!(
                "SELECT {lead}{u} AS who, SUM(LEAST(GREATEST(wage, 0.0), 60000.0)) AS c FROM {source}{filter} GROUP BY {lead}{u}"
            );
            for r in self.admin_rows(&sql) {
                let values: Vec<String> = r
                    .as_object()
                    .map(|o| {
                        o.values()
                            .take(q.dims.len())
                            .map(|v| v.as_str().unwrap_or("").to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let who = r["who"].as_str().unwrap_or("").to_owned();
                let c = r["c"].as_f64().unwrap_or(0.0);
                // Add the contribution to the cell and to each of its margins.
                for mask in 0..(1u32 << q.dims.len()) {
                    let key: Vec<String> = values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| {
                            if mask & (1 << i) == 0 {
                                v.clone()
                            } else {
                                "Total".into()
                            }
                        })
                        .collect();
                    *contributions
                        .entry(key)
                        .or_default()
                        .entry(who.clone())
                        .or_default() += c;
                }
            }
        }
        let rows = answer["rows"].as_array().expect("rows");
        if rows.is_empty() {
            let all = persons
                .get(&vec!["Total".to_owned(); q.dims.len()])
                .copied()
                .unwrap_or(0.0);
            assert_eq!(all, 0.0, "{}: no cell released for {all} persons", q.sql());
        }
        let d = q.dims.len();
        for row in rows {
            let key: Vec<String> = (0..d)
                .map(|i| row[i].as_str().unwrap_or("").to_owned())
                .collect();
            let released = &row[d];
            for v in row
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let id_like = (10..=11).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit());
                assert!(!id_like, "an identifier in a released row: {row}");
            }
            if released == ":c" {
                assert!(
                    row.as_array()
                        .map(|r| r[d..].iter().all(|v| v == ":c"))
                        .unwrap_or(false),
                    "a suppressed cell shows a figure: {row}"
                );
                continue;
            }
            let n = persons.get(&key).copied().unwrap_or(0.0);
            assert!(
                n >= MIN,
                "{}: cell {key:?} released with {n} persons: {answer}",
                q.sql()
            );
            assert_eq!(released.as_f64(), Some(n), "{}: cell {key:?}", q.sql());
            if q.sums {
                let mut c: Vec<f64> = contributions
                    .get(&key)
                    .map(|m| m.values().copied().collect())
                    .unwrap_or_default();
                c.sort_by(|a, b| b.total_cmp(a));
                let total: f64 = c.iter().sum();
                let (x1, x2) = (
                    c.first().copied().unwrap_or(0.0),
                    c.get(1).copied().unwrap_or(0.0),
                );
                if total > 0.0 {
                    assert!(
                        x1 + x2 <= 0.85 * total + 1e-6,
                        "{}: cell {key:?} dominated yet released",
                        q.sql()
                    );
                    assert!(
                        total - x1 - x2 >= 0.10 * x1 - 1e-6,
                        "{}: cell {key:?} fails p % yet released",
                        q.sql()
                    );
                }
            }
        }
    }

    /// Sends a checked statistical query: refused (with a reason) or released safe; returns whether
    /// it was answered.
    fn stat(&self, q: &Stat) -> bool {
        let sql = q.sql();
        let (status, body) = self.ask(&sql);
        match status {
            200 => {
                self.check_released(q, &body);
                true
            }
            422 => {
                let why = body["error"].as_str().unwrap_or("");
                assert!(why.starts_with("refused"), "{sql}: {body}");
                eprintln!("refused: {sql}\n  {why}");
                false
            }
            _ => panic!("{sql}: {status} {body}"),
        }
    }
}

fn start() -> (tempfile::TempDir, Server, Desk) {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    ok(iris(&data, &["keygen", "--id", "k1"]), "keygen");
    ok(
        iris(&data, &["labour", "import", "data-samples/labour"]),
        "labour import",
    );
    install_access(&data);
    let researcher = token(&data, &["--role", "researcher", "--principal", PROJECT]);
    let admin = token(&data, &["--role", "admin"]);
    let server = Server::start(&data, &[]);
    let desk = Desk {
        url: server.url.clone(),
        client: reqwest::blocking::Client::new(),
        researcher,
        admin,
        data,
        sent: std::cell::Cell::new(0),
    };
    (dir, server, desk)
}

/// Queries that must be refused, each with a word its reason must contain.
fn refused_queries() -> Vec<(String, &'static str)> {
    let mut q: Vec<(String, &'static str)> = Vec::new();
    let mut add = |sql: String, why: &'static str| q.push((sql, why));
    for t in ["declarations", "relations", "positions"] {
        let u = unit(t);
        add(format!("SELECT * FROM {t}"), "*");
        add(format!("SELECT {u} FROM {t}"), "identifier");
        add(
            format!("SELECT {u}, COUNT(*) FROM {t} GROUP BY {u}"),
            "identifier",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} WHERE {u} = '85073003328'"),
            "identifier",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} WHERE {u} IN ('85073003328', '30010100124')"),
            "identifier",
        );
        add(format!("SELECT COUNT(*) FROM {t} WHERE {u} LIKE '85%'"), "");
        add(
            format!("SELECT COUNT(*) FROM {t} WHERE length({u}) = 11"),
            "",
        );
        add(format!("SELECT COUNT(*) FROM {t} ORDER BY {u}"), "");
        add(
            format!("SELECT birth_year, COUNT(*) FROM {t} GROUP BY birth_year"),
            "age_class",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} WHERE birth_year = 1985"),
            "not released",
        );
        add(format!("SELECT AVG(birth_year) FROM {t}"), "not released");
        add(format!("SELECT DISTINCT region FROM {t}"), "DISTINCT");
        add(
            format!("SELECT COUNT(*) FROM {t} a JOIN {t} b ON a.region = b.region"),
            "joins",
        );
        add(format!("SELECT COUNT(*) FROM {t}, positions"), "joins");
        add(
            format!("SELECT COUNT(*) FROM (SELECT * FROM {t}) s"),
            "FROM must name a table",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} WHERE region IN (SELECT region FROM {t})"),
            "",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} WHERE EXISTS (SELECT 1 FROM {t})"),
            "",
        );
        add(format!("SELECT (SELECT COUNT(*) FROM {t})"), "");
        add(
            format!("SELECT COUNT(*) FROM {t} UNION SELECT COUNT(*) FROM {t}"),
            "UNION",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} INTERSECT SELECT COUNT(*) FROM {t}"),
            "UNION",
        );
        add(
            format!("WITH x AS (SELECT * FROM {t}) SELECT COUNT(*) FROM x"),
            "WITH",
        );
        add(
            format!("SELECT ROW_NUMBER() OVER (ORDER BY region) FROM {t}"),
            "window",
        );
        add(
            format!("SELECT COUNT(*) OVER (PARTITION BY region) FROM {t}"),
            "window",
        );
        add(
            format!("SELECT region, COUNT(*) FROM {t} GROUP BY ROLLUP(region)"),
            "",
        );
        add(
            format!("SELECT region, COUNT(*) FROM {t} GROUP BY CUBE(region)"),
            "",
        );
        add(
            format!("SELECT region, COUNT(*) FROM {t} GROUP BY GROUPING SETS ((region), ())"),
            "",
        );
        add(format!("SELECT region, COUNT(*) FROM {t} GROUP BY ALL"), "");
        add(
            format!(
                "SELECT region, quarter, gender, age_class, COUNT(*) FROM {t} GROUP BY region, quarter, gender, age_class"
            ),
            "at most",
        );
        add(
            format!("SELECT COUNT(DISTINCT region) FROM {t}"),
            "COUNT(DISTINCT",
        );
        add(
            format!("SELECT array_agg({u}) FROM {t}"),
            "allowed aggregates",
        );
        add(
            format!("SELECT string_agg({u}, ',') FROM {t}"),
            "allowed aggregates",
        );
        add(
            format!("SELECT approx_distinct({u}) FROM {t}"),
            "allowed aggregates",
        );
        add(
            format!("SELECT region FROM {t} GROUP BY region"),
            "aggregate",
        );
        add(
            format!("SELECT gender, COUNT(*) FROM {t} GROUP BY region"),
            "GROUP BY",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} LIMIT 1 OFFSET 3"),
            "LIMIT",
        );
        add(
            format!("SELECT COUNT(*) FROM {t}; SELECT COUNT(*) FROM {t}"),
            "exactly one",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} WHERE lower(region) = 'bru'"),
            "",
        );
        add(
            format!("SELECT COUNT(*) FROM {t} WHERE region = gender"),
            "compare a column with a value",
        );
    }
    for m in ["wage", "days", "fte"] {
        add(format!("SELECT MIN({m}) FROM declarations"), "MIN and MAX");
        add(format!("SELECT MAX({m}) FROM declarations"), "MIN and MAX");
        add(
            format!("SELECT {m}, COUNT(*) FROM declarations GROUP BY {m}"),
            "measure",
        );
        add(format!("SELECT {m} FROM declarations"), "individual values");
        add(
            format!("SELECT SUM(CASE WHEN gender = 'F' THEN {m} END) FROM declarations"),
            "expression",
        );
        add(
            format!("SELECT AVG({m} * 1) FROM declarations"),
            "expression",
        );
    }
    add(
        "SELECT QUANTILE(wage, 1.5) FROM declarations".into(),
        "from 0 to 1",
    );
    add(
        "SELECT region, COUNT(*) AS n FROM declarations GROUP BY region HAVING MAX(wage) > 50000"
            .into(),
        "",
    );
    add(
        "SELECT region, COUNT(*) AS n FROM declarations GROUP BY region HAVING SUM(wage) > 1"
            .into(),
        "releases",
    );
    add(
        "SELECT region, COUNT(*) AS n FROM declarations GROUP BY region ORDER BY SUM(wage)".into(),
        "releases",
    );
    add(
        "SELECT COUNT(*) FROM relations WHERE start > '2025-01-01'".into(),
        "not released",
    );
    add("SELECT COUNT(*) FROM events".into(), "unknown table");
    add("SELECT COUNT(*) FROM audit".into(), "unknown table");
    add("SELECT COUNT(*) FROM rejections".into(), "unknown table");
    add("SELECT COUNT(*) FROM information_schema.tables".into(), "");
    add("SELECT COUNT(*) FROM generate_series(1, 10)".into(), "");
    add(
        "SELECT COUNT(*) FROM read_parquet('/etc/passwd')".into(),
        "",
    );
    add(
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/tmp'".into(),
        "SELECT",
    );
    add("COPY declarations TO '/tmp/out.csv'".into(), "SELECT");
    add("SET datafusion.execution.batch_size = 1".into(), "SELECT");
    add("DROP TABLE declarations".into(), "SELECT");
    add("INSERT INTO declarations VALUES (1)".into(), "SELECT");
    add("EXPLAIN SELECT COUNT(*) FROM declarations".into(), "SELECT");
    add("SELECT".into(), "");
    q
}

#[test]
fn adversarial_queries_are_refused_or_get_only_safe_cells() {
    let (_dir, _server, desk) = start();
    let refused = refused_queries();
    for (sql, why) in &refused {
        let (status, body) = desk.ask(sql);
        assert_eq!(status, 422, "{sql} was not refused: {body}");
        let reason = body["error"].as_str().unwrap_or("");
        assert!(
            reason.starts_with("refused: ") && reason.len() > 20,
            "{sql}: no reason: {body}"
        );
        assert!(
            reason.contains(why),
            "{sql}: reason `{reason}` does not say `{why}`"
        );
    }
    // Small cells, dominance: answered, but only with cells that pass the rules.
    let small = vec![
        Stat::new(
            "declarations",
            &["arrondissement", "nace", "gender"],
            Some("quarter = '2025-Q4'"),
        ),
        Stat::new(
            "declarations",
            &["joint_committee", "age_class", "worker_class"],
            None,
        ),
        Stat::new(
            "declarations",
            &["sector", "arrondissement", "quarter"],
            None,
        ),
        Stat::new(
            "declarations",
            &["gender", "age_class"],
            Some("wage > 40000"),
        ),
        Stat::new(
            "declarations",
            &["region"],
            Some("arrondissement = '81000' AND gender = 'X'"),
        ),
        Stat::new("declarations", &["age_class"], Some("age_class = '65+'")),
        Stat::new(
            "declarations",
            &["nace", "region"],
            Some("quarter = '2025-Q3'"),
        )
        .with(", SUM(wage) AS wages, AVG(wage) AS mean_wage"),
        Stat::new(
            "declarations",
            &["arrondissement", "worker_class"],
            Some("quarter = '2025-Q1'"),
        )
        .with(", SUM(wage) AS wages"),
        Stat::new("declarations", &["sector"], Some("wage > 20000")).with(", SUM(wage) AS wages"),
        Stat::new("relations", &["kind", "sector", "region"], None),
        Stat::new("relations", &["end_quarter", "kind", "gender"], None),
        Stat::new(
            "positions",
            &["position", "arrondissement", "age_class"],
            Some("quarter = '2025-Q4'"),
        ),
        Stat::new(
            "positions",
            &["position", "gender", "age_class"],
            Some("arrondissement = '81000'"),
        ),
        Stat::new("positions", &["quarter", "position"], Some("gender = 'X'")),
    ];
    let mut answered = 0;
    for q in &small {
        answered += usize::from(desk.stat(q));
    }
    assert!(
        answered >= small.len() / 2,
        "only {answered} of {} small-cell queries answered",
        small.len()
    );
    let total = refused.len() + small.len();
    assert!(total >= 100, "the suite has {total} queries");
    eprintln!(
        "adversarial suite: {} refused as expected, {} answered with safe cells only ({answered} answered)",
        refused.len(),
        small.len()
    );
}

fn benign_queries() -> Vec<Stat> {
    let mut q = Vec::new();
    let q4 = Some("quarter = '2025-Q4'");
    for dims in [
        vec!["region"],
        vec!["sector"],
        vec!["gender"],
        vec!["age_class"],
        vec!["worker_class"],
        vec!["quarter"],
        vec!["region", "gender"],
        vec!["sector", "gender"],
        vec!["age_class", "gender"],
        vec!["region", "worker_class"],
        vec!["quarter", "region"],
        vec!["quarter", "gender"],
        vec!["joint_committee"],
        vec!["region", "age_class"],
    ] {
        q.push(Stat::new(
            "declarations",
            &dims,
            if dims.contains(&"quarter") { None } else { q4 },
        ));
    }
    for (dims, extra) in [
        (
            vec!["region"],
            ", AVG(wage) AS mean_wage, MEDIAN(wage) AS median_wage",
        ),
        (
            vec!["gender"],
            ", QUANTILE(wage, 0.25) AS q1, MEDIAN(wage) AS q2, QUANTILE(wage, 0.75) AS q3",
        ),
        (
            vec!["age_class"],
            ", MEDIAN(wage) AS median_wage, STDDEV(wage) AS sd",
        ),
        (vec!["sector"], ", SUM(fte) AS fte, AVG(days) AS days"),
        (vec!["worker_class"], ", AVG(fte) AS mean_fte"),
        (vec!["region", "gender"], ", MEDIAN(wage) AS median_wage"),
        (vec!["quarter"], ", SUM(wage) AS wage_bill"),
        (vec!["joint_committee"], ", SUM(fte) AS fte"),
        (vec!["age_class", "gender"], ", AVG(wage) AS mean_wage"),
        (vec!["region"], ", COUNT(DISTINCT employer) AS employers"),
        (vec!["sector"], ", COUNT(*) AS declarations"),
        (vec!["quarter", "region"], ", SUM(fte) AS fte"),
    ] {
        let filter = if dims.contains(&"quarter") { None } else { q4 };
        q.push(Stat::new("declarations", &dims, filter).with(extra));
    }
    for (dims, filter) in [
        (vec!["quarter"], Some("fte >= 1")),
        (vec!["gender"], Some("quarter = '2025-Q4' AND fte < 1")),
        (
            vec!["region"],
            Some("quarter = '2025-Q3' AND worker_class = 'student'"),
        ),
        (vec!["age_class"], Some("quarter = '2024-Q4'")),
        (vec!["sector", "region"], Some("quarter = '2024-Q4'")),
    ] {
        q.push(Stat::new("declarations", &dims, filter));
    }
    for dims in [
        vec!["quarter"],
        vec!["kind"],
        vec!["quarter", "kind"],
        vec!["region"],
        vec!["sector"],
        vec!["gender", "kind"],
        vec!["age_class"],
        vec!["end_quarter"],
        vec!["end_quarter", "region"],
        vec!["quarter", "region"],
    ] {
        q.push(Stat::new("relations", &dims, None));
    }
    for dims in [
        vec!["position"],
        vec!["position", "region"],
        vec!["position", "gender"],
        vec!["position", "age_class"],
        vec!["region", "gender"],
        vec!["quarter", "position"],
        vec!["arrondissement"],
        vec!["age_class", "gender"],
        vec!["quarter", "region"],
    ] {
        let filter = if dims.contains(&"quarter") { None } else { q4 };
        q.push(Stat::new("positions", &dims, filter));
    }
    q
}

#[test]
fn benign_statistics_are_answered_and_correct() {
    let (_dir, _server, desk) = start();
    let queries = benign_queries();
    assert!(queries.len() >= 50, "{} benign queries", queries.len());
    let mut refused = Vec::new();
    for q in &queries {
        if !desk.stat(q) {
            refused.push(q.sql());
        }
    }
    eprintln!(
        "benign suite: {} of {} refused: {refused:#?}",
        refused.len(),
        queries.len()
    );
    assert!(
        refused.len() * 20 <= queries.len(),
        "more than 5 % of real statistical queries refused: {refused:#?}"
    );
}

/// The `n`-th smallest wage of 2025-Q4 (0-based), from the raw rows.
fn nth_wage(desk: &Desk, filter: &str, n: usize) -> f64 {
    let rows = desk.admin_rows(&format!(
        "SELECT wage FROM declarations WHERE quarter = '2025-Q4' AND {filter} ORDER BY wage LIMIT {}",
        n + 1
    ));
    rows[n]["wage"].as_f64().expect("wage")
}

#[test]
fn differencing_pairs_and_trackers_are_refused() {
    let (_dir, _server, desk) = start();
    // Five persons fewer by a wage threshold: the difference would be them.
    let t = (nth_wage(&desk, "true", 4) + nth_wage(&desk, "true", 5)) / 2.0;
    // A small group (1 to 9 workers) to exclude, as a tracker does.
    let groups = desk.admin_rows(
        "SELECT arrondissement, gender, COUNT(DISTINCT worker) AS n FROM declarations \
         WHERE quarter = '2025-Q4' GROUP BY arrondissement, gender HAVING COUNT(DISTINCT worker) BETWEEN 1 AND 9 \
         ORDER BY arrondissement, gender LIMIT 1",
    );
    let (arr, gender) = (
        groups[0]["arrondissement"].as_str().expect("a"),
        groups[0]["gender"].as_str().expect("g"),
    );
    let unemployed = desk.admin_rows(
        "SELECT arrondissement, COUNT(DISTINCT person) AS n FROM positions \
         WHERE quarter = '2025-Q4' AND position = 'UNE' GROUP BY arrondissement HAVING COUNT(DISTINCT person) BETWEEN 1 AND 9 \
         ORDER BY arrondissement LIMIT 1",
    );
    let une_arr = unemployed[0]["arrondissement"].as_str().expect("arr");
    let top_c = desk.admin_rows(
        "SELECT wage FROM declarations WHERE quarter = '2025-Q4' AND sector = 'C' ORDER BY wage DESC LIMIT 4",
    );
    let below_top3 =
        (top_c[2]["wage"].as_f64().expect("w") + top_c[3]["wage"].as_f64().expect("w")) / 2.0;
    let base =
        "SELECT COUNT(DISTINCT worker) AS workers FROM declarations WHERE quarter = '2025-Q4'";
    let pairs = vec![
        (base.to_owned(), format!("{base} AND wage > {t}")),
        (format!("{base} AND wage > {t}"), base.to_owned()),
        (
            "SELECT region, COUNT(DISTINCT worker) AS workers FROM declarations WHERE quarter = '2025-Q4' GROUP BY region".to_owned(),
            format!("SELECT region, COUNT(DISTINCT worker) AS workers FROM declarations WHERE quarter = '2025-Q4' AND NOT (arrondissement = '{arr}' AND gender = '{gender}') GROUP BY region"),
        ),
        (
            "SELECT region, COUNT(DISTINCT person) AS persons FROM positions WHERE quarter = '2025-Q4' AND position = 'UNE' GROUP BY region".to_owned(),
            format!("SELECT region, COUNT(DISTINCT person) AS persons FROM positions WHERE quarter = '2025-Q4' AND position = 'UNE' AND arrondissement <> '{une_arr}' GROUP BY region"),
        ),
        (
            "SELECT SUM(wage) AS wages, COUNT(DISTINCT worker) AS workers FROM declarations WHERE quarter = '2025-Q4' AND sector = 'C'".to_owned(),
            format!("SELECT SUM(wage) AS wages, COUNT(DISTINCT worker) AS workers FROM declarations WHERE quarter = '2025-Q4' AND sector = 'C' AND wage < {below_top3}"),
        ),
    ];
    for (first, second) in &pairs {
        desk.forget_history();
        let (status, body) = desk.ask(first);
        assert_eq!(status, 200, "{first}: {body}");
        let (status, body) = desk.ask(second);
        assert_eq!(status, 422, "{second} after {first} was answered: {body}");
        let why = body["error"].as_str().unwrap_or("");
        assert!(why.contains("differencing"), "{second}: {why}");
    }
    // The same question twice discloses nothing new: answered both times.
    desk.forget_history();
    for _ in 0..2 {
        let (status, body) = desk.ask(base);
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn reports_in_every_format_for_the_project_only_and_each_request_logged() {
    let (_dir, _server, desk) = start();
    let list: Value = desk
        .client
        .get(format!("{}/v1/reports", desk.url))
        .send()
        .expect("list")
        .json()
        .expect("json");
    let names: Vec<String> = list["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.len() >= 6, "{list}");
    let mut confidential = 0;
    for name in &names {
        desk.sent.set(desk.sent.get() + 1);
        let r = desk
            .client
            .get(format!("{}/v1/reports/{name}", desk.url))
            .bearer_auth(&desk.researcher)
            .send()
            .expect("report");
        let status = r.status().as_u16();
        let body: Value = r.json().expect("json");
        assert_eq!(status, 200, "{name}: {body}");
        let text = body["rows"].to_string();
        confidential += text.matches(":c").count();
        assert!(text.contains("Total"), "{name}: no margins: {body}");
    }
    assert!(
        confidential > 0,
        "no report suppressed anything on the small sample"
    );
    // CSV and Parquet.
    desk.sent.set(desk.sent.get() + 2);
    let csv = desk
        .client
        .get(format!(
            "{}/v1/reports/positions_by_region?format=csv",
            desk.url
        ))
        .bearer_auth(&desk.researcher)
        .send()
        .expect("csv")
        .text()
        .expect("text");
    assert!(csv.starts_with("position,region,gender,persons"), "{csv}");
    let parquet = desk
        .client
        .get(format!(
            "{}/v1/reports/positions_by_region?format=parquet",
            desk.url
        ))
        .bearer_auth(&desk.researcher)
        .send()
        .expect("parquet")
        .bytes()
        .expect("bytes");
    assert!(
        parquet.starts_with(b"PAR1") && parquet.ends_with(b"PAR1"),
        "not Parquet"
    );
    // Through the CLI, as a researcher would.
    desk.sent.set(desk.sent.get() + 1);
    let out = ok(
        iris(
            &desk.data,
            &[
                "report",
                "job_inflows",
                "--server",
                &desk.url,
                "--token",
                &desk.researcher,
                "--format",
                "csv",
            ],
        ),
        "iris report --server",
    );
    assert!(
        stdout(&out).starts_with("quarter,kind,relations_started,workers"),
        "{}",
        stdout(&out)
    );
    // Other roles are refused, with the reason.
    let citizen = token(
        &desk.data,
        &["--role", "citizen", "--principal", "30010100124"],
    );
    for who in [&desk.admin, &citizen] {
        let (status, body) = desk.ask_as(who, "SELECT COUNT(*) FROM positions");
        assert_eq!(status, 403, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("research project"),
            "{body}"
        );
    }
    let (status, _) = desk.ask_as("not-a-token", "SELECT COUNT(*) FROM positions");
    assert_eq!(status, 401);
    // A refused query, for the log.
    let (status, _) = desk.ask("SELECT * FROM declarations");
    assert_eq!(status, 422);
    // Every request is one audit event in the chain; the chain verifies with the labour partitions.
    let r = desk
        .client
        .post(format!("{}/v1/seal", desk.url))
        .bearer_auth(&desk.admin)
        .send()
        .expect("seal");
    assert_eq!(r.status().as_u16(), 200);
    let rows = desk.admin_rows(
        "SELECT COUNT(*) AS n FROM audit WHERE message_type IN ('iris.research', 'iris.report')",
    );
    assert_eq!(
        rows[0]["n"].as_u64(),
        Some(desk.sent.get() as u64),
        "audit events"
    );
    let refusals = desk.admin_rows(
        "SELECT COUNT(*) AS n FROM audit WHERE message_type = 'iris.research' AND result = 'nok'",
    );
    assert_eq!(
        refusals[0]["n"].as_u64(),
        Some(4),
        "refused and denied requests are NOK events"
    );
}

#[test]
fn the_cli_answers_locally_under_a_named_project_and_the_chain_covers_the_tables() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    ok(iris(&data, &["keygen", "--id", "k1"]), "keygen");
    let generated = dir.path().join("gen");
    ok(
        iris(
            &data,
            &[
                "labour",
                "gen",
                "--persons",
                "400",
                "--out",
                generated.to_str().expect("path"),
            ],
        ),
        "gen",
    );
    ok(
        iris(
            &data,
            &["labour", "import", generated.to_str().expect("path")],
        ),
        "import",
    );
    install_access(&data);
    let out = ok(
        iris(
            &data,
            &[
                "research",
                "--project",
                "LM-2025-02",
                "SELECT gender, COUNT(DISTINCT worker) AS workers FROM declarations GROUP BY gender",
            ],
        ),
        "research",
    );
    let text = stdout(&out);
    assert!(
        text.contains("Total") && text.contains("rounded to 5"),
        "{text}"
    );
    // Counts rounded to 5 in LM-2025-02.
    for line in text
        .lines()
        .filter(|l| l.starts_with("| F") || l.starts_with("| M") || l.starts_with("| Total"))
    {
        let n: Vec<&str> = line.split('|').map(str::trim).collect();
        if let Ok(v) = n[2].parse::<u64>() {
            assert_eq!(v % 5, 0, "{line}");
        }
    }
    // A table the project is not granted.
    let out = iris(
        &data,
        &[
            "research",
            "--project",
            "LM-2025-02",
            "SELECT COUNT(*) FROM positions",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not granted"),
        "{out:?}"
    );
    // A bad row in an import is reported with its line and reason, the others sealed.
    let bad = dir.path().join("positions.csv");
    std::fs::write(&bad, "quarter,person,position,region,arrondissement,gender,birth_year\n2025-Q1,85073003328,SAL,VLA,11000,F,1985\n2025-Q1,85073003329,SAL,VLA,11000,F,1985\n").expect("write");
    let out = iris(&data, &["labour", "import", bad.to_str().expect("path")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":3: rejected") && err.contains("NISS"),
        "{err}"
    );
    // A column carrying content refuses the file.
    std::fs::write(
        &bad,
        "quarter,person,position,region,arrondissement,gender,birth_year,diagnosis\n",
    )
    .expect("write");
    let out = iris(&data, &["labour", "import", bad.to_str().expect("path")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("diagnosis"));
    // verify covers the labour partitions: tamper with one and it is named.
    ok(iris(&data, &["verify"]), "verify");
    let part = support::parquet_files(&data.join("store/tables/positions"))
        .into_iter()
        .next()
        .expect("a positions partition");
    let mut bytes = std::fs::read(&part).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&part, bytes).expect("write");
    let out = iris(&data, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    let rel = part
        .strip_prefix(data.join("store"))
        .expect("rel")
        .to_string_lossy()
        .into_owned();
    assert!(report.contains(&rel), "{report}");
}
