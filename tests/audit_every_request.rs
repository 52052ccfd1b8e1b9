//! Audit by construction, over HTTP: a wide list of requests — open routes, no or a bad token, unknown
//! routes, wrong methods, malformed and oversized bodies, bad query strings, refusals of every role,
//! EXPLAIN by every role, statements too deep, too wide or amplifying, answers — each leaves exactly
//! one audit event with its route, its result and its principal. The server survives the hostile
//! statements and answers in between; SIGTERM stops it within seconds even with a runaway query.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{Server, install_access, load_samples, token};

struct Fixture {
    _tmp: tempfile::TempDir,
    server: Server,
    client: reqwest::blocking::Client,
    t: BTreeMap<&'static str, String>,
}

fn setup(extra: &[&str]) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    load_samples(data, &[], &[]);
    install_access(data);
    let mut t = BTreeMap::new();
    t.insert("admin", token(data, &["--role", "admin"])); // t1
    t.insert(
        "collector",
        token(data, &["--role", "collector", "--source", "recent"]),
    ); // t2
    t.insert(
        "adviser",
        token(data, &["--role", "adviser", "--principal", "ADV0003"]),
    );
    t.insert(
        "inspector",
        token(data, &["--role", "inspector", "--principal", "INS0005"]),
    );
    t.insert(
        "citizen",
        token(data, &["--role", "citizen", "--principal", "30010100124"]),
    );
    t.insert(
        "researcher",
        token(data, &["--role", "researcher", "--principal", "LM-2025-01"]),
    );
    t.insert("auditor", token(data, &["--role", "auditor"])); // t7
    let server = Server::start(data, extra);
    Fixture {
        _tmp: tmp,
        server,
        client: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client"),
        t,
    }
}

/// The principal id each role's token stands for in the audit events.
fn actor(role: &str) -> &'static str {
    match role {
        "admin" => "t1",
        "collector" => "t2",
        "adviser" => "ADV0003",
        "inspector" => "INS0005",
        "citizen" => "30010100124",
        "researcher" => "LM-2025-01",
        "auditor" => "t7",
        _ => "unauthenticated",
    }
}

/// One request of the list and what its audit event must say.
struct Req {
    method: &'static str,
    path: String,
    /// A role, `""` for none, or `"bad"` for an unknown token.
    who: &'static str,
    body: Option<(&'static str, Vec<u8>)>,
    /// The route the event names.
    route: String,
    status: u16,
}

fn req(method: &'static str, path: &str, who: &'static str, status: u16) -> Req {
    Req {
        method,
        path: path.to_owned(),
        who,
        body: None,
        route: format!("{method} {}", path.split('?').next().unwrap_or(path)),
        status,
    }
}

fn sql(who: &'static str, body: Value, status: u16) -> Req {
    Req {
        body: Some(("application/json", body.to_string().into_bytes())),
        ..req("POST", "/v1/sql", who, status)
    }
}

impl Fixture {
    fn send(&self, r: &Req) -> (u16, Value, Duration) {
        let url = format!("{}{}", self.server.url, r.path);
        let method = reqwest::Method::from_bytes(r.method.as_bytes()).expect("method");
        let mut b = self.client.request(method, url);
        match r.who {
            "" => {}
            "bad" => b = b.bearer_auth("not-a-token"),
            role => b = b.bearer_auth(&self.t[role]),
        }
        if let Some((ct, body)) = &r.body {
            b = b.header("content-type", *ct).body(body.clone());
        }
        let started = Instant::now();
        let resp = b.send().expect("the server answers");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, started.elapsed())
    }

    fn admin_sql(&self, sql: &str) -> Vec<Value> {
        let (s, b, _) = self.send(&self::sql("admin", json!({ "sql": sql }), 200));
        assert_eq!(s, 200, "{sql}: {b}");
        b["rows"].as_array().cloned().unwrap_or_default()
    }

    fn seal(&self) {
        let (s, b, _) = self.send(&req("POST", "/v1/seal", "admin", 200));
        assert_eq!(s, 200, "{b}");
    }

    fn alive(&self) {
        let (s, b, elapsed) = self.send(&req("GET", "/v1/health", "", 200));
        assert_eq!((s, &b), (200, &json!({"status": "ok"})));
        assert!(elapsed < Duration::from_secs(5), "health took {elapsed:?}");
    }
}

/// The process's peak resident memory (`VmHWM`), in MiB (0 where /proc is not there).
fn peak_rss_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

fn deep_or(terms: usize) -> String {
    let or = (0..terms)
        .map(|i| format!("subject_id = '{i:011}'"))
        .collect::<Vec<_>>()
        .join(" OR ");
    format!("SELECT count(*) FROM events WHERE {or}")
}

#[test]
fn every_request_is_one_audit_event_and_hostile_statements_leave_the_server_up() {
    let f = setup(&["--query-timeout", "20", "--query-memory", "256"]);
    let report = "employment_by_sector_region";
    let mut list = vec![
        // Open routes.
        req("GET", "/", "", 200),
        req("GET", "/ui/app.js", "", 200),
        req("GET", "/ui/app.css", "", 200),
        req("GET", "/v1/health", "", 200),
        // No token, a bad token.
        req("GET", "/v1/patterns", "", 401),
        req("GET", "/v1/reports", "", 401),
        req("GET", "/v1/me", "", 401),
        req("GET", "/v1/status", "", 401),
        req("GET", "/v1/nope", "", 401),
        req("GET", "/v1/me", "bad", 401),
        req("POST", "/v1/seal", "", 401),
        req("POST", "/v1/events", "", 401),
        sql("", json!({"sql": "SELECT 1"}), 401),
        // Unknown routes, wrong methods.
        req("GET", "/v1/nope", "admin", 404),
        req("GET", "/etc/passwd", "adviser", 404),
        req("DELETE", "/v1/sql", "admin", 405),
        req("GET", "/v1/seal", "admin", 405),
        req("POST", "/v1/trace", "adviser", 405),
        // Malformed and oversized bodies, bad query strings.
        Req {
            body: Some(("application/json", b"{not json".to_vec())),
            ..req("POST", "/v1/sql", "adviser", 400)
        },
        Req {
            body: Some(("text/plain", b"SELECT 1".to_vec())),
            ..req("POST", "/v1/sql", "adviser", 415)
        },
        Req {
            body: Some((
                "application/json",
                json!({"sql": "x".repeat(2 << 20)}).to_string().into_bytes(),
            )),
            ..req("POST", "/v1/sql", "adviser", 413)
        },
        Req {
            body: Some(("application/json", b"{".to_vec())),
            ..req("POST", "/v1/research/sql", "researcher", 400)
        },
        req(
            "GET",
            "/v1/trace?subject=30010100124&from=yesterday",
            "adviser",
            400,
        ),
        req(
            "GET",
            "/v1/trace?subject=30010100124&actor=U0000000",
            "adviser",
            400,
        ),
        req("GET", "/v1/reports/nope", "researcher", 404),
        req(
            "GET",
            &format!("/v1/reports/{report}?format=bad"),
            "researcher",
            400,
        ),
        // Refusals.
        req("POST", "/v1/seal", "adviser", 403),
        req("POST", "/v1/seal", "auditor", 403),
        req("POST", "/v1/events", "adviser", 403),
        req("GET", "/v1/status", "adviser", 403),
        req("GET", "/v1/chain", "citizen", 403),
        req("GET", "/v1/trace?actor=U0000000", "adviser", 403),
        req("GET", "/v1/me/consultations", "adviser", 403),
        // Answers.
        req("GET", "/v1/status", "admin", 200),
        req("GET", "/v1/status", "auditor", 200),
        req("GET", "/v1/chain", "auditor", 200),
        req("GET", "/v1/patterns", "adviser", 200),
        req("GET", "/v1/reports", "researcher", 200),
        req("GET", "/v1/me/consultations", "citizen", 200),
        req("GET", "/v1/trace?subject=30010100124", "adviser", 200),
        req(
            "GET",
            &format!("/v1/reports/{report}?format=json"),
            "researcher",
            200,
        ),
        sql("adviser", json!({"sql": "SELECT * FROM nope"}), 400),
    ];
    for role in [
        "admin",
        "collector",
        "adviser",
        "inspector",
        "citizen",
        "researcher",
        "auditor",
    ] {
        list.push(req("GET", "/v1/me", role, 200));
        let allowed = matches!(role, "admin" | "adviser" | "auditor");
        list.push(sql(
            role,
            json!({"sql": "SELECT count(*) AS n FROM events"}),
            if allowed { 200 } else { 403 },
        ));
        // EXPLAIN in every form: the admin's only.
        for explain in [
            "EXPLAIN SELECT * FROM events WHERE subject_id = '30010100124'",
            "EXPLAIN VERBOSE SELECT * FROM events WHERE actor_id = 'U0000000'",
            "EXPLAIN ANALYZE SELECT count(*) FROM events",
            "EXPLAIN ANALYZE VERBOSE SELECT count(*) FROM events",
            "EXPLAIN FORMAT INDENT SELECT count(*) FROM events",
            "explain select 1",
        ] {
            let mut body = json!({ "sql": explain });
            if role == "inspector" {
                body["deliberation"] = json!("CSSS/04/032");
                body["case"] = json!("PV-2025-0042");
            }
            list.push(sql(role, body, if role == "admin" { 200 } else { 403 }));
        }
    }

    // Hostile statements: refused before planning (400), with the reason.
    let hostile = [
        ("adviser", deep_or(2000), "levels deep"),
        (
            "admin",
            format!("SELECT 1{}", "+1".repeat(4999)),
            "levels deep",
        ),
        (
            "auditor",
            format!("SELECT 1 WHERE 1 IN ({})", vec!["1"; 12_000].join(",")),
            "more than 10000 expressions",
        ),
        (
            "adviser",
            format!("SELECT '{}'", "x".repeat(70_000)),
            "bytes long",
        ),
        (
            "adviser",
            format!("SELECT {}1{}", "(".repeat(1000), ")".repeat(1000)),
            "levels deep",
        ),
        (
            "admin",
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
                .to_owned(),
            "ecursive",
        ),
        // Red team of issue 14: a 400-link subscript chain (planning is cubic in its length: 300
        // links took 20 s) and 300 comma-joined tables (70 s of planning).
        (
            "adviser",
            format!("SELECT make_array(1,2,3){}", "[1:3]".repeat(400)),
            "levels deep",
        ),
        (
            "adviser",
            format!(
                "SELECT 1 FROM {} LIMIT 1",
                (0..300)
                    .map(|i| format!("events e{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "table references",
        ),
    ];
    for (who, q, _) in &hostile {
        list.push(sql(who, json!({ "sql": q }), 400));
    }
    // Size-amplifying functions: an error (the admin sees which limit), never 2 GiB.
    let amplifying = [
        ("admin", "SELECT repeat('x', 2147483647)", 400),
        ("adviser", "SELECT repeat('x', 2147483647)", 400),
        (
            "adviser",
            "SELECT length(repeat(subject_id, 100000000)) FROM events",
            400,
        ),
        ("auditor", "SELECT lpad('x', 2000000000)", 400),
        ("admin", "SELECT array_repeat(1, 2000000000)", 400),
        ("admin", "SELECT generate_series(1, 9000000000)", 400),
        // Red team of issue 14: `||` and `concat` eightfold per level (2.4 GB of RSS, then an
        // Arrow offset overflow, before they were bounded).
        (
            "adviser",
            "WITH a AS (SELECT repeat('x',16000000) s), b AS (SELECT s||s||s||s||s||s||s||s s FROM a), c AS (SELECT s||s||s||s||s||s||s||s s FROM b) SELECT length(s) FROM c",
            400,
        ),
        (
            "admin",
            "WITH a AS (SELECT repeat('x',16000000) s), b AS (SELECT concat(s,s,s,s,s,s,s,s) s FROM a), c AS (SELECT concat(s,s,s,s,s,s,s,s) s FROM b) SELECT length(s) FROM c",
            400,
        ),
        (
            "adviser",
            "SELECT length(s || s || s) FROM (SELECT repeat(subject_id, 300000) s FROM events) t",
            400,
        ),
    ];
    for (who, q, status) in amplifying {
        list.push(sql(who, json!({ "sql": q }), status));
    }

    // Baseline: everything so far sealed; the requests below are counted from `since`.
    f.seal();
    std::thread::sleep(Duration::from_millis(20));
    let since = chrono::Utc::now().timestamp_micros();
    std::thread::sleep(Duration::from_millis(20));

    let mut expected: BTreeMap<(String, String, String), i64> = BTreeMap::new();
    for r in &list {
        let (status, body, elapsed) = f.send(r);
        assert_eq!(
            status, r.status,
            "{} {} as {:?}: {body}",
            r.method, r.route, r.who
        );
        assert!(
            elapsed < Duration::from_secs(30),
            "{}: {elapsed:?}",
            r.route
        );
        if status >= 400 {
            // Every error answer has the same JSON shape, the framework's own included.
            assert!(
                body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{} {}: {body}",
                r.method,
                r.route
            );
        }
        let who = if r.who == "bad" { "" } else { r.who };
        let route = if r.route.starts_with("GET /v1/reports/") {
            "GET /v1/reports/{name}".to_owned()
        } else {
            r.route.clone()
        };
        let result = if status < 400 { "ok" } else { "nok" };
        *expected
            .entry((route, actor(who).to_owned(), result.to_owned()))
            .or_default() += 1;
    }
    // The checks that matter beyond the count.
    let (s, b, _) = f.send(&req("GET", "/v1/trace?actor=U0000000", "adviser", 403));
    assert_eq!(s, 403);
    let why = b["error"].as_str().unwrap_or_default();
    assert!(
        !why.contains("cpas0000") && why.contains("you may trace only"),
        "a refusal names no other institution: {why}"
    );
    *expected
        .entry((
            "GET /v1/trace".to_owned(),
            "ADV0003".to_owned(),
            "nok".to_owned(),
        ))
        .or_default() += 1;
    for (who, q, reason) in &hostile {
        let (s, b, _) = f.send(&sql(who, json!({ "sql": q }), 400));
        assert_eq!(s, 400, "{b}");
        assert!(
            b["error"].as_str().unwrap_or_default().contains(reason),
            "{who}: {reason}: {b}"
        );
        *expected
            .entry((
                "POST /v1/sql".to_owned(),
                actor(who).to_owned(),
                "nok".to_owned(),
            ))
            .or_default() += 1;
        f.alive();
        *expected
            .entry((
                "GET /v1/health".to_owned(),
                "unauthenticated".to_owned(),
                "ok".to_owned(),
            ))
            .or_default() += 1;
    }
    let (_, b, _) = f.send(&sql(
        "admin",
        json!({"sql": "SELECT repeat('x', 2147483647)"}),
        400,
    ));
    assert!(
        b["error"].as_str().unwrap_or_default().contains("16 MiB"),
        "{b}"
    );
    *expected
        .entry(("POST /v1/sql".to_owned(), "t1".to_owned(), "nok".to_owned()))
        .or_default() += 1;
    let (_, b, _) = f.send(&sql(
        "adviser",
        json!({"sql": "EXPLAIN SELECT * FROM events"}),
        403,
    ));
    assert!(
        b["error"]
            .as_str()
            .unwrap_or_default()
            .contains("administrator only"),
        "{b}"
    );
    *expected
        .entry((
            "POST /v1/sql".to_owned(),
            "ADV0003".to_owned(),
            "nok".to_owned(),
        ))
        .or_default() += 1;
    // The researcher's endpoint takes the same hostile shapes (its own checks decide) and stays up.
    for q in [
        format!(
            "SELECT region, COUNT(*) FROM declarations WHERE {} GROUP BY region",
            (0..2000)
                .map(|i| format!("region = 'R{i}'"))
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
        format!("SELECT COUNT(*) + 1{} FROM declarations", "+1".repeat(4999)),
        format!(
            "SELECT {}1{} FROM declarations",
            "(".repeat(1000),
            ")".repeat(1000)
        ),
    ] {
        let r = Req {
            body: Some((
                "application/json",
                json!({ "sql": q }).to_string().into_bytes(),
            )),
            ..req("POST", "/v1/research/sql", "researcher", 0)
        };
        let (s, b, _) = f.send(&r);
        assert!(s < 500, "{s}: {b}");
        *expected
            .entry((
                "POST /v1/research/sql".to_owned(),
                "LM-2025-01".to_owned(),
                if s < 400 { "ok" } else { "nok" }.to_owned(),
            ))
            .or_default() += 1;
        f.alive();
        *expected
            .entry((
                "GET /v1/health".to_owned(),
                "unauthenticated".to_owned(),
                "ok".to_owned(),
            ))
            .or_default() += 1;
    }
    let peak = peak_rss_mib(f.server.pid());
    eprintln!("peak RSS of the server after the hostile statements: {peak} MiB");
    // The query pool is 256 MiB; `repeat('x', 2147483647)` alone once took 15.7 GB.
    assert!(peak < 256 + 256, "peak RSS {peak} MiB");
    let sent: i64 = expected.values().sum();
    eprintln!("{sent} requests sent");
    assert!(sent >= 120, "{sent} requests");

    // Seal, then read what was logged since the baseline.
    f.seal();
    let rows = f.admin_sql(&format!(
        "SELECT application AS route, actor_id, result, count(*) AS n FROM audit \
         WHERE message_type <> 'iris.policy' AND CAST(ts AS BIGINT) >= {since} \
         GROUP BY application, actor_id, result"
    ));
    let logged: BTreeMap<(String, String, String), i64> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
            (
                (s("route"), s("actor_id"), s("result")),
                r["n"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, n)| logged.get(*k) != Some(n))
        .map(|(k, n)| format!("{k:?}: sent {n}, logged {:?}", logged.get(k)))
        .collect();
    let extra: Vec<_> = logged
        .iter()
        .filter(|(k, _)| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing: {missing:#?}\nextra: {extra:#?}"
    );
    // Every answer names its event: the header's ticket is in the chain once, with the route.
    let r = f
        .client
        .get(format!("{}/v1/nope?x=1", f.server.url))
        .send()
        .expect("answer");
    assert_eq!(r.status(), 401);
    let ticket = r
        .headers()
        .get("x-iris-request")
        .and_then(|v| v.to_str().ok())
        .expect("x-iris-request header")
        .to_owned();
    f.seal();
    let rows = f.admin_sql(&format!(
        "SELECT application, actor_id, result, subject_id FROM audit WHERE ticket = '{ticket}'"
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["application"], "GET /v1/nope", "{rows:?}");
    assert_eq!(rows[0]["actor_id"], "unauthenticated", "{rows:?}");
    assert_eq!(rows[0]["result"], "nok", "{rows:?}");
    assert_eq!(rows[0]["subject_id"], "/v1/nope?x=1", "{rows:?}");
    // Refusals and failures carry their reason; no event lacks a route.
    let rows = f.admin_sql(&format!(
        "SELECT count(*) AS n FROM audit WHERE CAST(ts AS BIGINT) >= {since} \
         AND message_type <> 'iris.policy' \
         AND (application IS NULL OR application = '' OR error_code IS NULL OR error_code = '')"
    ));
    assert_eq!(rows[0]["n"], 0, "{rows:?}");
}

#[test]
fn sigterm_stops_the_server_within_seconds_during_a_runaway_query() {
    let mut f = setup(&["--query-timeout", "600"]);
    let url = f.server.url.clone();
    let admin = f.t["admin"].clone();
    // A cross join of the samples with themselves three times: far longer than the grace period.
    let runaway = std::thread::spawn(move || {
        let _ = reqwest::blocking::Client::new()
            .post(format!("{url}/v1/sql"))
            .bearer_auth(admin)
            .json(&json!({"sql": "SELECT count(*) FROM events a, events b, events c, events d WHERE a.ts < b.ts + (c.ts - d.ts)"}))
            .timeout(Duration::from_secs(120))
            .send();
    });
    std::thread::sleep(Duration::from_secs(2));
    f.alive();
    let started = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &f.server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = f.server.wait_exit(Duration::from_secs(15));
    assert!(
        exit.is_some(),
        "the server still runs {:?} after SIGTERM",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let _ = runaway.join();
    // The abandoned query still left its audit event, written at shutdown.
    let server = Server::start(f._tmp.path(), &[]);
    let r = f
        .client
        .post(format!("{}/v1/sql", server.url))
        .bearer_auth(&f.t["admin"])
        .json(&json!({"sql": "SELECT count(*) AS n FROM audit WHERE error_code LIKE '%abandoned at shutdown%' AND application LIKE '%/v1/sql%'"}))
        .send()
        .expect("audit query");
    let body: Value = r.json().expect("json");
    assert_eq!(body["rows"][0]["n"].as_u64(), Some(1), "{body}");
}

#[test]
fn idle_half_sent_connections_cannot_exhaust_the_server() {
    let f = setup(&[]);
    let addr = f.server.url.trim_start_matches("http://").to_owned();
    // Far more half-sent requests (headers never finished) than the connection cap, as a slowloris
    // client would: they must neither exhaust descriptors nor stop the write-ahead log.
    let mut idle = Vec::new();
    for _ in 0..700 {
        match std::net::TcpStream::connect(&addr) {
            Ok(mut s) => {
                use std::io::Write;
                let _ = s.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n");
                idle.push(s);
            }
            Err(_) => break,
        }
    }
    assert!(idle.len() >= 600, "only {} connections opened", idle.len());
    // The header timeout frees the slots: the service answers again within seconds, while the idle
    // clients are still connected.
    let started = Instant::now();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(30) {
        let ok = reqwest::blocking::Client::new()
            .get(format!("{}/v1/health", f.server.url))
            .timeout(Duration::from_secs(3))
            .send()
            .is_ok_and(|r| r.status().as_u16() == 200);
        if ok {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(healthy, "no answer {:?} after the flood", started.elapsed());
    // And the log still takes requests: an admin's seal is logged and answered.
    let r = f
        .client
        .post(format!("{}/v1/seal", f.server.url))
        .bearer_auth(&f.t["admin"])
        .send()
        .expect("seal");
    assert_eq!(r.status().as_u16(), 200);
    drop(idle);
}
