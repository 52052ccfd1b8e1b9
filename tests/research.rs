//! Researchers get only differentially private aggregates of the labour-market tables, asked over HTTP
//! as they would: disallowed shapes refused with a reason that depends on the text alone (the same
//! reasons over other data, nothing spent); real statistical queries answered with noisy figures close
//! to the raw rows (checked by the administrator's own SQL); the same release answered again for
//! free; a budget that holds under concurrency and across a restart; a seeded, statistical attack
//! suite (trackers, differencing, averaging over many texts, quantile extremes) whose estimates miss
//! by the README's margins; reports released once for everyone; every request an audit event.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::{Server, install_access, iris, ok, stdout, token};

const PROJECT: &str = "LM-2025-01";
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
        }
    }

    fn with(mut self, extra: &'static str) -> Stat {
        self.extra = extra;
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

    fn budget_as(&self, token: &str) -> Value {
        let r = self
            .client
            .get(format!("{}/v1/research/budget", self.url))
            .bearer_auth(token)
            .send()
            .expect("budget");
        assert_eq!(r.status().as_u16(), 200);
        r.json().expect("json")
    }

    fn spent(&self) -> f64 {
        self.budget_as(&self.researcher)["budgets"][0]["rho_spent"]
            .as_f64()
            .expect("rho_spent")
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

    /// The true persons of every finest cell, from the raw rows.
    fn truth(&self, q: &Stat) -> BTreeMap<Vec<String>, f64> {
        let source = format!("(SELECT *, {AGE_CLASS} AS age_class FROM {}) AS t", q.table);
        let filter = q
            .filter
            .as_ref()
            .map(|f| format!(" WHERE {f}"))
            .unwrap_or_default();
        let u = unit(q.table);
        let mut persons = BTreeMap::new();
        let cols: Vec<String> = q
            .dims
            .iter()
            .enumerate()
            .map(|(i, d)| format!("COALESCE(CAST({d} AS VARCHAR), '(none)') AS d{i}"))
            .chain(std::iter::once(format!("COUNT(DISTINCT {u}) AS n")))
            .collect();
        let group = if q.dims.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", q.dims.join(", "))
        };
        for r in self.admin_rows(&format!(
            "SELECT {} FROM {source}{filter}{group}",
            cols.join(", ")
        )) {
            let key: Vec<String> = (0..q.dims.len())
                .map(|i| r[format!("d{i}")].as_str().unwrap_or("").to_owned())
                .collect();
            persons.insert(key, r["n"].as_f64().unwrap_or(0.0));
        }
        persons
    }

    /// Checks an answer against the raw rows: no identifier anywhere; every finest cell is `:c` in
    /// all its figures or shows figures; a cell's noisy count of persons is within 6 σ of the truth
    /// (plus the rounding); the answer says what it cost.
    fn check_released(&self, q: &Stat, answer: &Value) {
        let truth = self.truth(q);
        let rows = answer["rows"].as_array().expect("rows");
        let d = q.dims.len();
        let privacy = &answer["privacy"];
        let sigma = privacy["sigma"][d]
            .as_f64()
            .expect("σ of the persons column");
        let round = privacy["round_to"].as_f64().unwrap_or(1.0);
        assert!(sigma > 0.0, "{}: no noise: {answer}", q.sql());
        assert!(privacy["rho_query"].as_f64().is_some());
        for (i, row) in rows.iter().enumerate() {
            for v in row
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let id_like = (10..=11).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit());
                assert!(!id_like, "an identifier in a released row: {row}");
            }
            let released = &row[d];
            if released == ":c" {
                assert!(
                    row.as_array()
                        .map(|r| r[d..].iter().all(|v| v == ":c"))
                        .unwrap_or(false),
                    "a confidential cell shows a figure: {row}"
                );
                continue;
            }
            if answer["margin"][i].as_bool() == Some(true) {
                continue;
            }
            let key: Vec<String> = (0..d)
                .map(|i| row[i].as_str().unwrap_or("").to_owned())
                .collect();
            let n = truth.get(&key).copied().unwrap_or(0.0);
            let got = released.as_f64().expect("a number");
            assert!(
                (got - n).abs() <= 6.0 * sigma + round,
                "{}: cell {key:?} released {got} for {n} persons (σ {sigma})",
                q.sql()
            );
        }
    }

    /// Sends a checked statistical query: refused (with a reason) or released; returns whether it was
    /// answered.
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

/// A store with the sample labour tables, the access files, and `projects` as projects.toml.
fn store(projects: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    ok(iris(&data, &["keygen", "--id", "k1"]), "keygen");
    ok(
        iris(&data, &["labour", "import", "data-samples/labour"]),
        "labour import",
    );
    install_access(&data);
    if let Some(p) = projects {
        std::fs::write(data.join("access/policies/projects.toml"), p).expect("projects");
    }
    (dir, data)
}

fn desk_on(data: &Path, project: &str) -> (Server, Desk) {
    let researcher = token(data, &["--role", "researcher", "--principal", project]);
    let admin = token(data, &["--role", "admin"]);
    let server = Server::start(data, &[]);
    let desk = Desk {
        url: server.url.clone(),
        client: reqwest::blocking::Client::new(),
        researcher,
        admin,
        data: data.to_owned(),
        sent: std::cell::Cell::new(0),
    };
    (server, desk)
}

fn start() -> (tempfile::TempDir, Server, Desk) {
    let (dir, data) = store(None);
    let (server, desk) = desk_on(&data, PROJECT);
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
        "SELECT STDDEV(wage) FROM declarations".into(),
        "not released",
    );
    // Values of the wrong type: the engine would convert them row by row and fail on some rows
    // only — an error that would tell whether such a row exists.
    for (sql, why) in [
        (
            "SELECT COUNT(*) FROM declarations WHERE age_class > 5",
            "quote",
        ),
        (
            "SELECT COUNT(*) FROM declarations WHERE region IN (1, 2)",
            "quote",
        ),
        (
            "SELECT COUNT(*) FROM declarations WHERE joint_committee BETWEEN 1 AND 300",
            "quote",
        ),
        (
            "SELECT COUNT(*) FROM declarations WHERE wage > '40000'",
            "number",
        ),
        (
            "SELECT COUNT(*) FROM declarations WHERE days IN ('1', '2')",
            "number",
        ),
        (
            "SELECT COUNT(*) FROM declarations WHERE region = true",
            "quote",
        ),
    ] {
        add(sql.into(), why);
    }
    // Statements no walk may recurse through: refused by the statement guard, the server alive.
    let chain = (0..3_000)
        .map(|i| format!("days = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    add(
        format!("SELECT COUNT(*) FROM declarations WHERE {chain}"),
        "",
    );
    add(
        format!(
            "SELECT COUNT(*) FROM declarations WHERE region IN ('{}')",
            "x".repeat(70_000)
        ),
        "bytes",
    );
    add(
        format!(
            "SELECT COUNT(*) FROM declarations WHERE {}region = 'BRU'{}",
            "(".repeat(500),
            ")".repeat(500)
        ),
        "",
    );
    add(
        "SELECT VARIANCE(wage) FROM declarations".into(),
        "not released",
    );
    add(
        "SELECT arrondissement, nace, joint_committee, COUNT(*) FROM declarations GROUP BY arrondissement, nace, joint_committee"
            .into(),
        "cells",
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
            ", MEDIAN(wage) AS median_wage, QUANTILE(wage, 0.9) AS p90",
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
fn refusals_depend_on_the_text_alone_and_spend_nothing() {
    let (dir, mut server, desk) = start();
    let refused = refused_queries();
    let mut reasons = Vec::new();
    for (sql, why) in &refused {
        let (status, body) = desk.ask(sql);
        assert_eq!(status, 422, "{sql} was not refused: {body}");
        let reason = body["error"].as_str().unwrap_or("").to_owned();
        assert!(
            reason.starts_with("refused: ") && reason.len() > 20,
            "{sql}: no reason: {body}"
        );
        assert!(
            reason.contains(why),
            "{sql}: reason `{reason}` does not say `{why}`"
        );
        reasons.push(reason);
    }
    assert_eq!(desk.spent(), 0.0, "a refusal spent budget");
    // Small cells: answered, each cell a noisy figure or :c, never a raw one.

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
    assert_eq!(
        answered,
        small.len(),
        "small-cell queries are answered, with noise"
    );
    // Over other data (more quarters of other persons), every refusal reads the same: no refusal
    // depends on a row.
    server.kill();
    let generated = dir.path().join("gen");
    ok(
        iris(
            &desk.data,
            &[
                "labour",
                "gen",
                "--persons",
                "300",
                "--out",
                generated.to_str().expect("path"),
            ],
        ),
        "gen",
    );
    ok(
        iris(
            &desk.data,
            &["labour", "import", generated.to_str().expect("path")],
        ),
        "import",
    );
    let server = Server::start(&desk.data, &[]);
    let desk = Desk {
        url: server.url.clone(),
        ..desk
    };
    for ((sql, _), before) in refused.iter().zip(&reasons) {
        let (status, body) = desk.ask(sql);
        assert_eq!(status, 422);
        assert_eq!(
            body["error"].as_str().unwrap_or(""),
            before,
            "{sql}: the refusal changed with the data"
        );
    }
    eprintln!(
        "adversarial suite: {} refused (the same over other data), {} small-cell queries answered with noise",
        refused.len(),
        small.len()
    );
}

#[test]
fn benign_statistics_are_answered_close_to_the_truth_within_the_budget() {
    let (_dir, _server, desk) = start();
    let queries = benign_queries();
    assert!(queries.len() >= 50, "{} benign queries", queries.len());
    let mut refused = Vec::new();
    for q in &queries {
        if !desk.stat(q) {
            refused.push(q.sql());
        }
    }
    let spent = desk.spent();
    eprintln!(
        "benign suite: {} of {} refused, ρ spent {spent:.4}: {refused:#?}",
        refused.len(),
        queries.len()
    );
    assert!(
        refused.len() * 20 <= queries.len(),
        "more than 5 % of real statistical queries refused: {refused:#?}"
    );
    let budget = desk.budget_as(&desk.researcher)["budgets"][0].clone();
    assert!(spent > 0.0 && spent <= budget["rho_total"].as_f64().expect("total"));
}

#[test]
fn the_same_release_is_answered_again_for_nothing_and_post_processing_is_free() {
    let (_dir, _server, desk) = start();
    let q = "SELECT region, gender, COUNT(DISTINCT worker) AS workers, AVG(wage) AS mean_wage FROM declarations WHERE quarter = '2025-Q4' GROUP BY region, gender";
    let (s1, a1) = desk.ask(q);
    assert_eq!(s1, 200, "{a1}");
    let first = a1["privacy"]["rho_query"].as_f64().expect("rho");
    assert!(first > 0.0);
    // The same text, other spacing, the GROUP BY in another order: the same figures, nothing spent.
    for again in [
        q.to_owned(),
        q.replace(", ", " ,  "),
        "SELECT region, gender, COUNT(DISTINCT worker) AS workers, AVG(wage) AS mean_wage FROM declarations WHERE quarter = '2025-Q4' GROUP BY gender, region".to_owned(),
    ] {
        let (s, a) = desk.ask(&again);
        assert_eq!(s, 200, "{a}");
        assert_eq!(a["privacy"]["rho_query"].as_f64(), Some(0.0), "{again}");
        assert_eq!(a["privacy"]["from_cache"].as_bool(), Some(true));
        assert_eq!(a["rows"], a1["rows"], "{again}: another draw");
    }
    // HAVING, ORDER BY and LIMIT on released figures: post-processing, free.
    let (s, a) = desk.ask(&format!(
        "{q} HAVING workers > 20 ORDER BY workers DESC LIMIT 3"
    ));
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["privacy"]["rho_query"].as_f64(), Some(0.0));
    // A figure already released with other columns is reused: only the new set is paid for.
    let (s, a) = desk.ask("SELECT region, gender, COUNT(DISTINCT worker) AS workers, MEDIAN(wage) AS m FROM declarations WHERE quarter = '2025-Q4' GROUP BY region, gender");
    assert_eq!(s, 200, "{a}");
    let median_cost = a["privacy"]["rho_query"].as_f64().expect("rho");
    assert!(
        median_cost > 0.0 && median_cost < first,
        "{median_cost} vs {first}"
    );
    // Margins are the sums of their cells (consistent by construction).
    let rows = a1["rows"].as_array().expect("rows");
    let total = rows
        .iter()
        .find(|r| r[0] == "Total" && r[1] == "Total")
        .expect("grand total");
    let finest: f64 = rows
        .iter()
        .zip(a1["margin"].as_array().expect("margin"))
        .filter(|(_, m)| m.as_bool() == Some(false))
        .filter_map(|(r, _)| r[2].as_f64())
        .sum();
    let hidden = rows.iter().any(|r| r[2] == ":c");
    if !hidden {
        assert_eq!(total[2].as_f64(), Some(finest), "{a1}");
    }
    // The ledger says what the answers said.
    let spent = desk.spent();
    assert!(
        (spent - first - median_cost).abs() < 1e-9,
        "{spent} vs {first} + {median_cost}"
    );
    // The CLI shows the same budget through the server.
    let out = ok(
        iris(
            &desk.data,
            &["budget", "--server", &desk.url, "--token", &desk.researcher],
        ),
        "iris budget --server",
    );
    assert!(stdout(&out).contains(PROJECT), "{}", stdout(&out));
}

#[test]
fn the_budget_holds_under_concurrency_and_across_a_restart() {
    let projects =
        "[[project]]\nid = \"TIGHT\"\nmin_cell = 10\nbudget_rho = 0.1\nrho_per_figure = 0.01\n";
    let (_dir, data) = store(Some(projects));
    let (mut server, desk) = desk_on(&data, "TIGHT");
    let granted = std::sync::atomic::AtomicUsize::new(0);
    let refusals = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (url, token, granted, refusals) =
                (&desk.url, &desk.researcher, &granted, &refusals);
            s.spawn(move || {
                let client = reqwest::blocking::Client::new();
                for i in 0..8 {
                    // Each text a new release: one figure set (persons), ρ = 0.01.
                    let sql = format!("SELECT COUNT(DISTINCT person) AS n FROM positions WHERE quarter = '2025-Q4' AND birth_year >= 0 OR quarter = 'T{t}-{i}'");
                    let sql = sql.replace("birth_year >= 0", "region <> 'none'");
                    let r = client
                        .post(format!("{url}/v1/research/sql"))
                        .bearer_auth(token)
                        .json(&json!({ "sql": sql }))
                        .send()
                        .expect("send");
                    let status = r.status().as_u16();
                    let body: Value = r.json().expect("json");
                    match status {
                        200 => {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        422 => refusals
                            .lock()
                            .expect("lock")
                            .push(body["error"].as_str().unwrap_or("").to_owned()),
                        _ => panic!("{status}: {body}"),
                    }
                }
            });
        }
    });
    let granted = granted.into_inner();
    assert_eq!(granted, 10, "0.1 / 0.01 answers fit the budget");
    let refusals = refusals.into_inner().expect("lock");
    assert_eq!(refusals.len(), 22);
    for r in &refusals {
        assert!(r.contains("privacy budget"), "{r}");
        // What a budget refusal says is the budget: the same words every time.
        assert_eq!(r, &refusals[0]);
    }
    assert!((desk.spent() - 0.1).abs() < 1e-9);
    // A restart remembers every charge.
    server.kill();
    let server = Server::start(&data, &[]);
    let desk = Desk {
        url: server.url.clone(),
        ..desk
    };
    let (status, body) =
        desk.ask("SELECT COUNT(DISTINCT person) AS n FROM positions WHERE quarter = '2025-Q3'");
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("privacy budget")
    );
    // The ledger on disk is the record: edit it to refund and nothing is released.
    let ledger = data.join("research/TIGHT/budget.log");
    let text = std::fs::read_to_string(&ledger).expect("ledger");
    let at = text.find("\"rho\":").expect("a charge") + 6;
    let end = at + text[at..].find(',').expect("next field");
    std::fs::write(&ledger, format!("{}0.0{}", &text[..at], &text[end..])).expect("write");
    let (status, body) =
        desk.ask("SELECT COUNT(DISTINCT person) AS n FROM positions WHERE quarter = '2025-Q2'");
    assert_eq!(status, 500, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("damaged"),
        "{body}"
    );
}

/// Twenty projects of ρ = 0.5 each: an attack is run once per project (its own noise, its own
/// budget), and its estimates compared with the truth from the raw rows.
fn attack_projects() -> String {
    (1..=20)
        .map(|i| {
            format!(
                "[[project]]\nid = \"ATK-{i:02}\"\nmin_cell = 10\nbudget_rho = 0.5\nrho_per_figure = 0.01\n\n"
            )
        })
        .collect()
}

#[test]
fn attacks_miss_by_the_stated_margins() {
    let (_dir, data) = store(Some(&attack_projects()));
    let tokens: Vec<String> = (1..=20)
        .map(|i| {
            token(
                &data,
                &[
                    "--role",
                    "researcher",
                    "--principal",
                    &format!("ATK-{i:02}"),
                ],
            )
        })
        .collect();
    let (_server, desk) = desk_on(&data, "ATK-01");
    let figure = |b: &Value, col: usize| -> Option<f64> { b["rows"][0][col].as_f64() };
    // The protected values, from the raw rows.
    let top = desk.admin_rows(
        "SELECT LEAST(wage, 60000.0) AS w FROM declarations WHERE quarter = '2025-Q4' AND sector = 'C' ORDER BY wage DESC LIMIT 2",
    );
    let (top1, top2) = (
        top[0]["w"].as_f64().expect("w"),
        top[1]["w"].as_f64().expect("w"),
    );
    let cut = (top1 + top2) / 2.0;
    let small = desk.admin_rows(
        "SELECT arrondissement, region, COUNT(DISTINCT person) AS n FROM positions WHERE quarter = '2025-Q4' AND position = 'UNE' \
         GROUP BY arrondissement, region HAVING COUNT(DISTINCT person) BETWEEN 1 AND 9 ORDER BY n LIMIT 1",
    );
    let (arr, region, count) = (
        small[0]["arrondissement"].as_str().expect("arr").to_owned(),
        small[0]["region"].as_str().expect("region").to_owned(),
        small[0]["n"].as_f64().expect("n"),
    );
    let (mut wage_hits, mut count_hits, mut max_hits) = (0, 0, 0);
    for token in &tokens {
        // The mean difference of the released figures of pairs of queries, as long as the budget
        // answers them.
        let estimate = |pairs: Vec<(String, String)>| -> Option<f64> {
            let mut diffs = Vec::new();
            for (a, b) in pairs {
                let (sa, ba) = desk.ask_as(token, &a);
                let (sb, bb) = desk.ask_as(token, &b);
                if sa != 200 || sb != 200 {
                    break;
                }
                if let (Some(x), Some(y)) = (figure(&ba, 0), figure(&bb, 0)) {
                    diffs.push(x - y);
                }
            }
            (!diffs.is_empty()).then(|| diffs.iter().sum::<f64>() / diffs.len() as f64)
        };
        // 1. A person's wage by differencing (the top earner of a sector), averaged over as many
        //    different pairs of texts as the budget allows.
        let wage = estimate(
            (0..4)
                .map(|i| {
                    let a = format!("SELECT SUM(wage) AS s FROM declarations WHERE quarter = '2025-Q4' AND sector = 'C' AND days >= {i}.0 - {i}.0");
                    let b = format!("{a} AND wage < {cut}");
                    (a, b)
                })
                .collect(),
        );
        if wage.is_some_and(|est| (est - top1).abs() < 1_000.0) {
            wage_hits += 1;
        }
        // 2. A count under the threshold by a tracker: (region) minus (region and not the group).
        let small = estimate(
            (0..5)
                .map(|i| {
                    let a = format!("SELECT COUNT(DISTINCT person) AS n FROM positions WHERE quarter = '2025-Q4' AND region = '{region}' AND gender <> 'Q{i}'");
                    let b = format!("{a} AND NOT (position = 'UNE' AND arrondissement = '{arr}')");
                    (a, b)
                })
                .collect(),
        );
        if small.is_some_and(|est| (est - count).abs() < 0.5) {
            count_hits += 1;
        }
        // 3. The maximum through QUANTILE(wage, 1.0).
        let (s, b) = desk.ask_as(
            token,
            "SELECT QUANTILE(wage, 1.0) AS top FROM declarations WHERE quarter = '2025-Q4' AND sector = 'C'",
        );
        if s == 200
            && let Some(v) = figure(&b, 0)
            && (v - top1).abs() <= 500.0
        {
            max_hits += 1;
        }
        // Whatever the sequence, the project never spends past its budget.
        let b = desk.budget_as(token);
        assert!(b["budgets"][0]["rho_spent"].as_f64().expect("spent") <= 0.5 + 1e-9);
    }
    eprintln!(
        "attacks over 20 projects: wage within 1,000 € {wage_hits}/20, exact small count {count_hits}/20, maximum within 500 € {max_hits}/20"
    );
    // The README's margins: a wage is missed by ≥ 1,000 € and a small count's exact value is not
    // recovered, each with high probability at this budget; the maximum is not released.
    assert!(
        wage_hits <= 2,
        "{wage_hits}/20 wages recovered within 1,000 €"
    );
    assert!(
        count_hits <= 8,
        "{count_hits}/20 small counts recovered exactly"
    );
    assert!(max_hits <= 6, "{max_hits}/20 maxima recovered within 500 €");
}

#[test]
fn reports_are_released_once_for_everyone_in_every_format_and_each_request_logged() {
    let projects = "[[project]]\nid = \"LM-2025-01\"\nmin_cell = 10\n\n[[project]]\nid = \"OTHER\"\nmin_cell = 10\n\n[[project]]\nid = \"DECL\"\nmin_cell = 10\ntables = [\"declarations\"]\n";
    let (_dir, data) = store(Some(projects));
    let (_server, desk) = desk_on(&data, PROJECT);
    let other = token(&data, &["--role", "researcher", "--principal", "OTHER"]);
    let list: Value = desk
        .client
        .get(format!("{}/v1/reports", desk.url))
        .bearer_auth(&desk.researcher)
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
    let get = |token: &str, name: &str, format: &str| {
        let r = desk
            .client
            .get(format!("{}/v1/reports/{name}?format={format}", desk.url))
            .bearer_auth(token)
            .send()
            .expect("report");
        (r.status().as_u16(), r.bytes().expect("bytes"))
    };
    let mut confidential = 0;
    for name in &names {
        desk.sent.set(desk.sent.get() + 2);
        let (status, bytes) = get(&desk.researcher, name, "json");
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&bytes));
        let body: Value = serde_json::from_slice(&bytes).expect("json");
        let text = body["rows"].to_string();
        confidential += text.matches(":c").count();
        assert!(text.contains("Total"), "{name}: no margins: {body}");
        // Another project gets the very same release, and neither project pays for it.
        let (status, again) = get(&other, name, "json");
        assert_eq!(status, 200);
        let again: Value = serde_json::from_slice(&again).expect("json");
        assert_eq!(
            again["rows"], body["rows"],
            "{name}: reports differ between callers"
        );
    }
    assert!(
        confidential > 0,
        "no report cell under the threshold on the small sample"
    );
    // A report reads only the tables the caller's project is granted.
    let decl = token(&data, &["--role", "researcher", "--principal", "DECL"]);
    desk.sent.set(desk.sent.get() + 2);
    let (status, body) = get(&decl, "positions_by_region", "json");
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("not granted"));
    let (status, _) = get(&decl, "wage_quartiles_by_age_gender", "json");
    assert_eq!(status, 200);
    assert_eq!(desk.spent(), 0.0, "reports spent a project's budget");
    let all = desk.budget_as(&desk.admin);
    let reports = all["budgets"]
        .as_array()
        .expect("budgets")
        .iter()
        .find(|b| b["project"] == "_reports")
        .expect("the reports' budget")
        .clone();
    assert!(reports["rho_spent"].as_f64().expect("spent") > 0.0, "{all}");
    // CSV and JSON round alike; Parquet is Parquet.
    desk.sent.set(desk.sent.get() + 3);
    let (_, csv) = get(&desk.researcher, "positions_by_region", "csv");
    let csv = String::from_utf8_lossy(&csv).into_owned();
    assert!(csv.starts_with("position,region,gender,persons"), "{csv}");
    let (_, json) = get(&desk.researcher, "positions_by_region", "json");
    let json: Value = serde_json::from_slice(&json).expect("json");
    let first = csv.lines().nth(1).expect("a row");
    let figures: Vec<String> = json["rows"][0]
        .as_array()
        .expect("row")
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect();
    assert_eq!(first, figures.join(","), "CSV and JSON differ");
    let (_, parquet) = get(&desk.researcher, "positions_by_region", "parquet");
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
    let (status, _) = desk.ask("SELECT * FROM declarations");
    assert_eq!(status, 422);
    // Every request is an audit event in the chain; the chain verifies with the labour partitions.
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
    assert!(
        rows[0]["n"].as_u64().unwrap_or(0) >= desk.sent.get() as u64,
        "audit events: {rows:?} for {} requests",
        desk.sent.get()
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
        text.contains("Total") && text.contains("none is exact") && text.contains("ρ"),
        "{text}"
    );
    // Figures rounded to 5 in LM-2025-02.
    for line in text
        .lines()
        .filter(|l| l.starts_with("| F") || l.starts_with("| M") || l.starts_with("| Total"))
    {
        let n: Vec<&str> = line.split('|').map(str::trim).collect();
        if let Ok(v) = n[2].parse::<u64>() {
            assert_eq!(v % 5, 0, "{line}");
        }
    }
    // A reader that stops early (`iris sql … | head -1`): the command ends quietly, no panic.
    {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_iris"))
            .arg("--data")
            .arg(&data)
            .args(["sql", "SELECT * FROM declarations"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("a line");
        assert!(first.starts_with('+'), "{first}");
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
    }
    // The operator sees every project's budget.
    let out = ok(iris(&data, &["budget"]), "budget");
    let budgets = stdout(&out);
    assert!(
        budgets.contains("LM-2025-02") && budgets.contains("_reports"),
        "{budgets}"
    );
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
