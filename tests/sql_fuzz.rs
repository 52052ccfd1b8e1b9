//! A seeded SQL fuzzer over HTTP: random statements from a small grammar — predicates nested at random
//! depths, functions that amplify sizes, divisions by zero, bad casts, subqueries, joins, EXPLAIN,
//! stray tokens — sent as a security adviser. Whatever the statement: no 5xx (no panic, no abort, the
//! server keeps answering), every answer inside the adviser's scope (rows of `onem0003` only; counts
//! equal to the admin's count over the in-scope rows), and every request exactly one audit event.
//!
//! `IRIS_FUZZ_SEED` and `IRIS_FUZZ_CASES` change the seed (default 14) and the number of statements
//! (default 300).

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::{Server, install_access, load_samples, token};

/// xorshift64*: small, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const COLUMNS: [&str; 8] = [
    "actor_org",
    "actor_id",
    "subject_id",
    "ticket",
    "message_type",
    "operation",
    "result",
    "source",
];
const ORGS: [&str; 4] = ["'onem0003'", "'cpas0000'", "'bcss'", "'mut0001'"];
const STRINGS: [&str; 6] = ["'30010100124'", "'U0000000'", "'L100'", "'ok'", "''", "'%'"];

fn literal(r: &mut Rng) -> String {
    match r.below(6) {
        0 => r.pick(&ORGS).to_owned(),
        1 => r.pick(&STRINGS).to_owned(),
        2 => r.below(1000).to_string(),
        3 => format!("-{}", r.below(5)),
        4 => "NULL".to_owned(),
        _ => "'2025-03-01'".to_owned(),
    }
}

/// A scalar expression.
fn scalar(r: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return if r.chance(60) {
            r.pick(&COLUMNS).to_owned()
        } else {
            literal(r)
        };
    }
    let d = depth - 1;
    match r.below(12) {
        0 => format!("length({})", scalar(r, d)),
        1 => format!("upper({})", scalar(r, d)),
        2 => format!("concat({}, {})", scalar(r, d), scalar(r, d)),
        3 => format!(
            "repeat({}, {})",
            scalar(r, d),
            r.pick(&["3", "0", "-1", "100000", "2147483647", "length(actor_id)"])
        ),
        4 => format!(
            "lpad({}, {}, 'x')",
            scalar(r, d),
            r.pick(&["5", "1000000000", "length(subject_id) * 1000"])
        ),
        5 => format!("replace({}, 'a', {})", scalar(r, d), scalar(r, d)),
        6 => format!(
            "CAST({} AS {})",
            scalar(r, d),
            r.pick(&["INT", "VARCHAR", "DATE", "DOUBLE"])
        ),
        7 => format!(
            "(length({}) {} {})",
            scalar(r, d),
            r.pick(&["+", "-", "*", "/", "%"]),
            r.pick(&["0", "1", "7", "length(ticket) - length(ticket)"])
        ),
        8 => format!(
            "CASE WHEN {} THEN {} ELSE {} END",
            predicate(r, d),
            scalar(r, d),
            scalar(r, d)
        ),
        9 => format!("coalesce({}, {})", scalar(r, d), literal(r)),
        10 => format!(
            "array_length(array_repeat({}, {}))",
            scalar(r, d),
            r.pick(&["2", "5000000000"])
        ),
        _ => format!("substr({}, {}, {})", scalar(r, d), r.below(5), r.below(9)),
    }
}

/// A boolean expression.
fn predicate(r: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return match r.below(5) {
            0 => format!("actor_org = {}", r.pick(&ORGS)),
            1 => format!("{} IS NULL", r.pick(&COLUMNS)),
            2 => format!("{} LIKE {}", r.pick(&COLUMNS), r.pick(&STRINGS)),
            3 => format!(
                "{} IN ({}, {})",
                r.pick(&COLUMNS),
                r.pick(&ORGS),
                r.pick(&STRINGS)
            ),
            _ => r.pick(&["TRUE", "FALSE", "1 = 1", "NULL"]).to_owned(),
        };
    }
    let d = depth - 1;
    match r.below(8) {
        0 => format!("({} AND {})", predicate(r, d), predicate(r, d)),
        1 => format!("({} OR {})", predicate(r, d), predicate(r, d)),
        2 => format!("NOT ({})", predicate(r, d)),
        3 => format!(
            "{} {} {}",
            scalar(r, d),
            r.pick(&["=", "<>", "<", ">="]),
            scalar(r, d)
        ),
        4 => format!(
            "EXISTS (SELECT 1 FROM events e2 WHERE e2.ticket = events.ticket AND {})",
            predicate(r, d)
        ),
        5 => format!(
            "subject_id IN (SELECT subject_id FROM events WHERE {})",
            predicate(r, d)
        ),
        6 => format!("({}) IS NOT DISTINCT FROM TRUE", predicate(r, d)),
        _ => predicate(r, 0),
    }
}

/// A long chain, sometimes past the depth limit.
fn chain(r: &mut Rng) -> String {
    let n = [10, 100, 127, 200, 3000][r.below(5)];
    let op = r.pick(&[" OR ", " AND "]);
    (0..n)
        .map(|i| format!("actor_id <> 'U{i:07}'"))
        .collect::<Vec<_>>()
        .join(op)
}

/// What a generated statement is, for the checks.
enum Shape {
    /// `SELECT count(*) AS n FROM events WHERE <pred>`: compared with the admin's count.
    Count(String),
    /// Rows with an `actor_org` column: all of the adviser's institution.
    Rows,
    /// Anything else: only status and audit are checked.
    Other,
}

fn statement(r: &mut Rng) -> (String, Shape) {
    let depth = r.below(4);
    match r.below(10) {
        0 | 1 => {
            let p = predicate(r, depth);
            (
                format!("SELECT count(*) AS n FROM events WHERE {p}"),
                Shape::Count(p),
            )
        }
        2 | 3 => (
            format!(
                "SELECT actor_org, {} AS x FROM events WHERE {} ORDER BY ticket LIMIT {}",
                scalar(r, depth),
                predicate(r, depth),
                r.below(50)
            ),
            Shape::Rows,
        ),
        4 => (
            format!(
                "SELECT actor_org, count(*) AS n FROM (SELECT * FROM events WHERE {}) t GROUP BY actor_org",
                predicate(r, depth)
            ),
            Shape::Rows,
        ),
        5 => {
            let p = chain(r);
            (
                format!("SELECT count(*) AS n FROM events WHERE {p}"),
                Shape::Count(p),
            )
        }
        6 => (
            format!(
                "{} SELECT * FROM events WHERE {}",
                r.pick(&[
                    "EXPLAIN",
                    "EXPLAIN VERBOSE",
                    "EXPLAIN ANALYZE",
                    "explain format tree"
                ]),
                predicate(r, depth)
            ),
            Shape::Other,
        ),
        7 => (
            format!(
                "SELECT a.actor_org, b.subject_id FROM events a JOIN events b ON a.ticket = b.ticket WHERE {} LIMIT 20",
                predicate(r, depth).replace("events.ticket", "a.ticket")
            ),
            Shape::Rows,
        ),
        8 => {
            // Stray tokens and truncations.
            let mut s = format!(
                "SELECT {} FROM events WHERE {}",
                scalar(r, depth),
                predicate(r, depth)
            );
            let cut = r.below(s.len());
            if r.chance(50) {
                s.truncate(cut);
            } else {
                s.insert_str(
                    cut,
                    r.pick(&[
                        " ) ",
                        " ; DROP TABLE events; ",
                        " '",
                        " /* ",
                        " UNION SELECT * FROM rejections ",
                    ]),
                );
            }
            (s, Shape::Other)
        }
        _ => (
            format!(
                "SELECT {} AS x FROM generate_series(1, {}) g",
                scalar(r, depth)
                    .replace("actor_", "g.")
                    .replace("subject_id", "g.value"),
                r.pick(&["3", "1000"])
            ),
            Shape::Other,
        ),
    }
}

#[test]
fn random_statements_never_crash_leak_or_go_unaudited() {
    let seed: u64 = std::env::var("IRIS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14);
    let cases: usize = std::env::var("IRIS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    load_samples(data, &[], &[]);
    install_access(data);
    let admin = token(data, &["--role", "admin"]);
    let adviser = token(data, &["--role", "adviser", "--principal", "ADV0003"]);
    let server = Server::start(data, &["--query-timeout", "30"]);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    let post = |token: &str, sql: &str| -> (u16, Value) {
        let r = client
            .post(format!("{}/v1/sql", server.url))
            .bearer_auth(token)
            .json(&json!({ "sql": sql }))
            .send()
            .unwrap_or_else(|e| panic!("the server stopped answering at `{sql}`: {e}"));
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    };
    let short = |v: &Value| -> String { v.to_string().chars().take(400).collect() };
    let seal = || {
        let r = client
            .post(format!("{}/v1/seal", server.url))
            .bearer_auth(&admin)
            .send()
            .expect("seal");
        assert_eq!(r.status(), 200);
    };
    seal();
    std::thread::sleep(Duration::from_millis(20));
    let since = chrono::Utc::now().timestamp_micros();

    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (mut answered, mut refused, mut compared) = (0, 0, 0);
    for i in 0..cases {
        let (sql, shape) = statement(&mut rng);
        let (status, body) = post(&adviser, &sql);
        assert!(
            status < 500 || matches!(status, 503 | 504 | 507),
            "case {i} (seed {seed}): {status} for `{sql}`: {}",
            short(&body)
        );
        assert!(
            status == 200 || body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "case {i}: an error without its reason: {status} {}",
            short(&body)
        );
        if status != 200 {
            refused += 1;
            if sql.trim_start().to_lowercase().starts_with("explain") {
                assert_eq!(status, 403, "case {i}: `{sql}`: {}", short(&body));
            }
            continue;
        }
        answered += 1;
        let rows = body["rows"].as_array().cloned().unwrap_or_default();
        match shape {
            Shape::Rows => {
                for row in &rows {
                    assert_eq!(
                        row["actor_org"], "onem0003",
                        "case {i}: a row outside the scope for `{sql}`: {row}"
                    );
                }
            }
            Shape::Count(p) => {
                let (s, b) = post(
                    &admin,
                    // Every `events` of the predicate (its subqueries too) is the in-scope rows.
                    &format!(
                        "WITH s AS (SELECT * FROM events WHERE actor_org = 'onem0003') \
                         SELECT count(*) AS n FROM s WHERE {}",
                        p.replace("FROM events", "FROM s")
                            .replace("events.ticket", "s.ticket")
                    ),
                );
                if s == 200 {
                    assert_eq!(
                        rows[0]["n"], b["rows"][0]["n"],
                        "case {i}: `{sql}` counted outside the scope"
                    );
                    compared += 1;
                }
            }
            // A literal of the statement may name anything: only status and audit are checked.
            Shape::Other => {}
        }
        if i % 50 == 0 {
            let r = client
                .get(format!("{}/v1/health", server.url))
                .send()
                .expect("alive");
            assert_eq!(r.status(), 200);
        }
    }
    eprintln!(
        "sql fuzz: seed {seed}, {cases} statements: {answered} answered, {refused} refused, {compared} counts compared"
    );
    assert!(answered > cases / 5, "{answered} answered of {cases}");
    assert!(refused > cases / 20, "{refused} refused of {cases}");
    assert!(compared > 10, "{compared} counts compared");

    // Every adviser request is one audit event, with its result.
    seal();
    let (s, b) = post(
        &admin,
        &format!(
            "SELECT result, count(*) AS n FROM audit WHERE actor_id = 'ADV0003' \
             AND CAST(ts AS BIGINT) >= {since} GROUP BY result ORDER BY result"
        ),
    );
    assert_eq!(s, 200, "{b}");
    let n = |result: &str| {
        b["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["result"] == result))
            .and_then(|r| r["n"].as_i64())
            .unwrap_or(0)
    };
    assert_eq!(
        (n("ok"), n("nok")),
        (answered as i64, refused as i64),
        "audit events of the adviser (seed {seed})"
    );
}
