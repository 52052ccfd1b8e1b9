//! Who may see what, end to end over HTTP: each role sees only its scope (checked against an
//! independent count by the admin), refusals carry their reason and policies, an adversarial suite of
//! SQL tries to escape the scope, and every request leaves exactly one audit event in the chain.

mod support;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use support::{Server, install_access, iris, load_samples, ok, stdout, token};

/// The citizen of the demo and a person who is not them.
const CITIZEN: &str = "30010100124";
const OTHER: &str = "30010200191";

struct Api {
    url: String,
    client: reqwest::blocking::Client,
}

impl Api {
    fn sql(&self, token: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/v1/sql", self.url))
            .bearer_auth(token)
            .json(&body)
            .send()
            .expect("sql request");
        (r.status().as_u16(), r.json().expect("json answer"))
    }

    fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .expect("get request");
        (r.status().as_u16(), r.json().expect("json answer"))
    }

    /// The admin's answer, which must succeed.
    fn admin_rows(&self, admin: &str, sql: &str) -> Vec<Value> {
        let (status, body) = self.sql(admin, json!({ "sql": sql }));
        assert_eq!(status, 200, "{sql}: {body}");
        body["rows"].as_array().cloned().unwrap_or_default()
    }

    fn admin_count(&self, admin: &str, sql: &str) -> i64 {
        let rows = self.admin_rows(admin, sql);
        rows[0]
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_i64)
            .unwrap_or_else(|| panic!("{sql}: no count in {rows:?}"))
    }
}

/// Events of the last months for the citizen view (the samples are from 2025), pushed by a collector.
fn recent_events(days_ago: &[(i64, &str, &str)]) -> String {
    let now = chrono::Utc::now();
    days_ago
        .iter()
        .enumerate()
        .map(|(i, (d, subject, org))| {
            let ts = (now - chrono::Duration::days(*d)).to_rfc3339();
            json!({
                "ts": ts, "actor_id": format!("U9{i:06}"), "actor_kind": "person",
                "actor_org": org, "actor_role": "agent", "subject_id": subject,
                "subject_kind": "niss", "ticket": format!("T-RECENT-{i}"), "message_type": "L100",
                "application": "dossier-social", "operation": "consult", "result": "ok",
                "channel": "portal", "purpose": "CSSS/07/077", "source": "recent",
                "source_seq": i + 1,
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn setup() -> (
    tempfile::TempDir,
    Server,
    Api,
    BTreeMap<&'static str, String>,
) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path();
    load_samples(data, &[], &[]);
    install_access(data);
    let mut tokens = BTreeMap::new();
    tokens.insert("admin", token(data, &["--role", "admin"]));
    tokens.insert(
        "collector",
        token(data, &["--role", "collector", "--source", "recent"]),
    );
    tokens.insert(
        "adviser",
        token(data, &["--role", "adviser", "--principal", "ADV0003"]),
    );
    tokens.insert(
        "inspector",
        token(data, &["--role", "inspector", "--principal", "INS0005"]),
    );
    tokens.insert(
        "citizen",
        token(data, &["--role", "citizen", "--principal", CITIZEN]),
    );
    tokens.insert(
        "researcher",
        token(data, &["--role", "researcher", "--principal", "LM-2025-01"]),
    );
    tokens.insert("auditor", token(data, &["--role", "auditor"]));
    let server = Server::start(data, &[]);
    let api = Api {
        url: server.url.clone(),
        client: reqwest::blocking::Client::new(),
    };
    // Recent events: two for the citizen (one by the adviser's institution), one for someone else,
    // one older than the citizen's six months.
    let body = recent_events(&[
        (10, CITIZEN, "onem0003"),
        (40, CITIZEN, "cpas0000"),
        (5, OTHER, "onem0003"),
        (300, CITIZEN, "mut0001"),
    ]);
    let r = api
        .client
        .post(format!("{}/v1/events", api.url))
        .bearer_auth(&tokens["collector"])
        .body(body)
        .send()
        .expect("push");
    assert_eq!(r.status(), 200);
    let (status, _) = seal(&api, &tokens["admin"]);
    assert_eq!(status, 200);
    (tmp, server, api, tokens)
}

fn seal(api: &Api, admin: &str) -> (u16, Value) {
    let r = api
        .client
        .post(format!("{}/v1/seal", api.url))
        .bearer_auth(admin)
        .send()
        .expect("seal");
    (r.status().as_u16(), r.json().expect("json"))
}

fn error_of(body: &Value) -> String {
    body["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn each_role_sees_its_scope_and_every_request_is_logged_once() {
    let (tmp, _server, api, t) = setup();
    let admin = &t["admin"];
    // What each principal did, to compare with the audit events at the end: (actor, result) → n.
    let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut did = |actor: &str, ok: bool| {
        *expected
            .entry((actor.to_owned(), if ok { "ok" } else { "nok" }.to_owned()))
            .or_default() += 1;
    };
    // The setup's batch (collector t2) and seal (admin t1) are requests too.
    did("t2", true);
    did("t1", true);

    // Adviser ADV0003 supervises onem0003: only its users' events.
    let (s, b) = api.sql(
        &t["adviser"],
        json!({"sql": "SELECT actor_org, count(*) AS n FROM events GROUP BY actor_org"}),
    );
    did("ADV0003", true);
    assert_eq!(s, 200, "{b}");
    let rows = b["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{b}");
    assert_eq!(rows[0]["actor_org"], "onem0003");
    let independent = api.admin_count(
        admin,
        "SELECT count(*) FROM events WHERE actor_org = 'onem0003'",
    );
    did("t1", true);
    assert!(independent > 0);
    assert_eq!(rows[0]["n"].as_i64(), Some(independent));
    // A trace by subject shows only onem0003's part of the chain.
    let (s, b) = api.get(&t["adviser"], &format!("/v1/trace?subject={CITIZEN}"));
    did("ADV0003", true);
    assert_eq!(s, 200, "{b}");
    let events = b["events"].as_array().expect("events");
    assert!(!events.is_empty(), "{b}");
    assert!(events.iter().all(|e| e["actor_org"] == "onem0003"), "{b}");
    // Tracing a user of another institution is refused, with the reason and the policy.
    let (s, b) = api.get(&t["adviser"], "/v1/trace?actor=U0000000");
    did("ADV0003", false);
    assert_eq!(s, 403, "{b}");
    assert!(
        error_of(&b).contains("you may trace only the users of the institutions you supervise"),
        "{b}"
    );
    // The refusal says what the adviser may not do, not where the other user works.
    assert!(
        !error_of(&b).contains("cpas") && !error_of(&b).contains("is a user of"),
        "{b}"
    );
    assert!(
        b["policies"].to_string().contains("supervision:ADV0003"),
        "{b}"
    );
    // An unknown id and an application id are refused with the same words as a user elsewhere
    // (not 200 with no events): the answer must not reveal who is a registered user elsewhere.
    let elsewhere = error_of(&b).replace("U0000000", "ACTOR");
    for actor in ["U0003999", "app-cpas0000"] {
        let (s, b) = api.get(&t["adviser"], &format!("/v1/trace?actor={actor}"));
        did("ADV0003", false);
        assert_eq!(s, 403, "{actor}: {b}");
        assert_eq!(
            error_of(&b).replace(actor, "ACTOR"),
            elsewhere,
            "{actor}: {b}"
        );
    }

    // Inspector INS0005 of insp0005: a deliberation and a registered case are required.
    let q = json!({"sql": "SELECT count(*) AS n FROM events"});
    let (s, b) = api.sql(&t["inspector"], q.clone());
    did("INS0005", false);
    assert_eq!(s, 403);
    assert!(error_of(&b).contains("CSSS/04/032"), "{b}");
    let (s, b) = api.sql(
        &t["inspector"],
        json!({"sql": "SELECT 1", "deliberation": "CSSS/04/032"}),
    );
    did("INS0005", false);
    assert_eq!(s, 403);
    assert!(error_of(&b).contains("requires a case reference"), "{b}");
    let (s, b) = api.sql(
        &t["inspector"],
        json!({"sql": "SELECT 1", "deliberation": "CSSS/04/032", "case": "PV-9999"}),
    );
    did("INS0005", false);
    assert_eq!(s, 403);
    assert!(error_of(&b).contains("not registered"), "{b}");
    let (s, b) = api.sql(
        &t["inspector"],
        json!({"sql": "SELECT 1", "deliberation": "CSSS/02/017", "case": "X"}),
    );
    did("INS0005", false);
    assert_eq!(s, 403);
    assert!(error_of(&b).contains("may be used from"), "{b}");
    assert_eq!(b["policies"][0], "deliberation:CSSS/02/017");
    let (s, b) = api.sql(
        &t["inspector"],
        json!({"sql": "SELECT subject_id, count(*) AS n FROM events GROUP BY subject_id ORDER BY subject_id",
               "deliberation": "CSSS/04/032", "case": "PV-2025-0042"}),
    );
    did("INS0005", true);
    assert_eq!(s, 200, "{b}");
    let independent = api.admin_rows(
        admin,
        &format!(
            "SELECT subject_id, count(*) AS n FROM events WHERE subject_id IN ('{CITIZEN}', '{OTHER}') \
             AND ts >= TIMESTAMP '2025-01-01T00:00:00Z' AND ts < TIMESTAMP '2026-01-01T00:00:00Z' \
             GROUP BY subject_id ORDER BY subject_id"
        ),
    );
    did("t1", true);
    assert!(!independent.is_empty());
    assert_eq!(b["rows"].as_array(), Some(&independent), "{b}");

    // The citizen: institutions that consulted them in the last six months, no agent ids.
    let (s, b) = api.get(&t["citizen"], "/v1/me/consultations");
    did(CITIZEN, true);
    assert_eq!(s, 200, "{b}");
    let rows = b["consultations"].as_array().expect("rows");
    let orgs: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["institution"].as_str())
        .collect();
    assert_eq!(orgs, ["onem0003", "cpas0000"], "{b}");
    assert!(!b.to_string().contains("U9000000"), "no agent id: {b}");
    let (s, b) = api.sql(&t["citizen"], q.clone());
    did(CITIZEN, false);
    assert_eq!(s, 403);
    assert!(error_of(&b).contains("consultations"), "{b}");

    // Researcher and collector read no events; a revoked token is refused at the door.
    let (s, b) = api.sql(&t["researcher"], q.clone());
    did("LM-2025-01", false);
    assert_eq!(s, 403);
    assert!(error_of(&b).contains("anonymised aggregates"), "{b}");
    let (s, _) = api.sql(&t["collector"], q.clone());
    did("t2", false);
    assert_eq!(s, 403);
    ok(iris(tmp.path(), &["token", "--revoke", "t3"]), "revoke");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (s, b) = api.sql(&t["adviser"], q.clone());
    did("unauthenticated", false);
    assert_eq!(s, 401);
    assert!(error_of(&b).contains("revoked"), "{b}");

    // Every request above is one audit event: seal, then the auditor reads them.
    assert_eq!(seal(&api, admin).0, 200);
    let (s, b) = api.sql(
        &t["auditor"],
        json!({"sql": "SELECT actor_id, result, count(*) AS n FROM events \
                       WHERE message_type <> 'iris.policy' GROUP BY actor_id, result"}),
    );
    assert_eq!(s, 200, "{b}");
    let logged: BTreeMap<(String, String), i64> = b["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                (
                    r["actor_id"].as_str().unwrap_or_default().to_owned(),
                    r["result"].as_str().unwrap_or_default().to_owned(),
                ),
                r["n"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(logged, expected);
    // The auditor sees no network event, and the purposes of the inspector's queries are logged.
    let (_, b) = api.sql(
        &t["auditor"],
        json!({"sql": "SELECT DISTINCT purpose FROM events WHERE actor_id = 'INS0005' AND result = 'ok'"}),
    );
    assert_eq!(
        b["rows"][0]["purpose"], "CSSS/04/032; case PV-2025-0042",
        "{b}"
    );
    let (_, b) = api.sql(
        &t["auditor"],
        json!({"sql": "SELECT count(*) AS n FROM events WHERE source <> 'iris'"}),
    );
    assert_eq!(b["rows"][0]["n"], 0, "{b}");
    // The policy files in force were logged at start.
    let (_, b) = api.sql(
        &t["auditor"],
        json!({"sql": "SELECT count(*) AS n FROM events WHERE message_type = 'iris.policy'"}),
    );
    assert_eq!(b["rows"][0]["n"], 6, "{b}");
    // And the chain, audit events included, verifies.
    let report = stdout(&iris(tmp.path(), &["verify"]));
    assert!(report.contains("OK"), "{report}");
}

/// The adviser's and the inspector's scopes as SQL predicates, for the independent counts.
const ADVISER_SCOPE: &str = "actor_org = 'onem0003'";

/// Queries that must be refused (never answered) whatever the scope.
const MUST_FAIL: [&str; 20] = [
    "SELECT * FROM rejections",
    "SELECT * FROM audit",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM datafusion.information_schema.columns",
    "SHOW TABLES",
    "SHOW COLUMNS FROM events",
    "DESCRIBE rejections",
    "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION 'store/events/'",
    "CREATE VIEW v AS SELECT * FROM events",
    "CREATE TABLE t AS SELECT * FROM events",
    "DROP TABLE events",
    "INSERT INTO events SELECT * FROM events",
    "DELETE FROM events",
    "UPDATE events SET actor_org = 'x'",
    "COPY (SELECT * FROM events) TO '/tmp/iris-escape.csv'",
    "SET datafusion.execution.target_partitions = 1",
    "SELECT * FROM 'store/events'",
    "SELECT * FROM read_parquet('store/events')",
    "SELECT 1; SELECT * FROM rejections",
    "SELECT * FROM events_unscoped",
];

/// Queries answered only within the scope: each answer must equal the admin's answer to the same
/// query over the in-scope rows (`events` replaced by a CTE holding exactly them).
const SCOPED: [&str; 26] = [
    "SELECT count(*) FROM events",
    "SELECT count(*) FROM events WHERE actor_org <> 'onem0003'",
    "SELECT count(*) FROM events WHERE actor_org = 'bcss' OR 1 = 1",
    "SELECT count(*) FROM (SELECT * FROM events) t",
    "WITH e AS (SELECT * FROM events) SELECT count(*) FROM e",
    "SELECT count(*) FROM events a JOIN events b ON a.ticket = b.ticket",
    "SELECT count(*) FROM events WHERE ticket IN (SELECT ticket FROM events WHERE actor_org = 'bcss')",
    "SELECT count(*) FROM (SELECT actor_org FROM events UNION ALL SELECT actor_org FROM events) u",
    "SELECT count(DISTINCT actor_org) FROM events",
    "SELECT actor_org, count(*) FROM events GROUP BY actor_org ORDER BY actor_org",
    "SELECT subject_id, ticket FROM events ORDER BY ts, ticket, subject_id LIMIT 50",
    "SELECT count(*) FROM events WHERE source = 'iris'",
    "SELECT count(*) FROM public.events",
    "SELECT count(*) FROM datafusion.public.events",
    "SELECT count(*) FROM \"events\"",
    "SELECT count(*) FROM EVENTS",
    "SELECT count(*) FROM events WHERE day >= '2000-01-01' OR day IS NULL",
    "SELECT (SELECT count(*) FROM events) AS n",
    "SELECT count(*) FROM events e1 WHERE EXISTS (SELECT 1 FROM events e2 WHERE e2.subject_id = e1.subject_id AND e2.actor_org <> e1.actor_org)",
    "SELECT count(*) FROM events CROSS JOIN (SELECT 1 AS one) t",
    "SELECT count(*) FROM generate_series(1, 3) g, events",
    "SELECT count(*) FROM events WHERE actor_org IN ('onem0003', 'bcss', 'cpas0000')",
    "SELECT count(*) FROM (SELECT * FROM events LIMIT 100000) x",
    "SELECT max(actor_org), min(actor_org) FROM events",
    "SELECT count(*) FROM events WHERE subject_id IN (SELECT subject_id FROM events)",
    "SELECT count(*) FROM events WHERE actor_org = 'onem0003' UNION ALL SELECT count(*) FROM events WHERE actor_org = 'bcss'",
];

/// The admin's version of a scoped query: `events` replaced by the in-scope rows.
fn independent(query: &str, scope: &str) -> String {
    let cte = format!("s AS (SELECT * FROM events WHERE {scope})");
    let replaced = query
        .replace("datafusion.public.events", "s")
        .replace("public.events", "s")
        .replace("\"events\"", "s")
        .replace("EVENTS", "s")
        .replace("FROM events", "FROM s")
        .replace("JOIN events", "JOIN s")
        .replace(", events", ", s");
    match replaced.strip_prefix("WITH ") {
        Some(rest) => format!("WITH {cte}, {rest}"),
        None => format!("WITH {cte} {replaced}"),
    }
}

fn values(rows: &[Value]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            r.as_object()
                .map(|o| o.values().map(Value::to_string).collect())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn adversarial_sql_gets_refused_or_only_in_scope_rows() {
    let (_tmp, _server, api, t) = setup();
    let admin = &t["admin"];
    let inspector_scope = format!(
        "subject_id IN ('{CITIZEN}', '{OTHER}') AND ts >= TIMESTAMP '2025-01-01T00:00:00Z' \
         AND ts < TIMESTAMP '2026-01-01T00:00:00Z'"
    );
    let principals = [
        ("adviser", json!({}), ADVISER_SCOPE.to_owned()),
        (
            "inspector",
            json!({"deliberation": "CSSS/04/032", "case": "PV-2025-0042"}),
            inspector_scope,
        ),
    ];
    let mut checked = 0;
    for (who, extra, scope) in &principals {
        for q in MUST_FAIL {
            let mut body = extra.clone();
            body["sql"] = json!(q);
            let (s, b) = api.sql(&t[*who], body);
            assert!(
                (400..500).contains(&s) && !error_of(&b).is_empty(),
                "{who}: `{q}` was not refused: {s} {b}"
            );
            checked += 1;
        }
        for q in SCOPED {
            let mut body = extra.clone();
            body["sql"] = json!(q);
            let (s, b) = api.sql(&t[*who], body);
            assert_eq!(s, 200, "{who}: `{q}`: {b}");
            let mut got = values(b["rows"].as_array().expect("rows"));
            let mut want = values(&api.admin_rows(admin, &independent(q, scope)));
            if !q.contains("ORDER BY") {
                // Without ORDER BY (a UNION ALL, say) rows come in any order.
                got.sort();
                want.sort();
            }
            assert_eq!(got, want, "{who}: `{q}` answered outside its scope");
            checked += 1;
        }
    }
    assert!(checked >= 90);
    // A predicate that fails on every row outside the scope: the query's expressions see only
    // in-scope rows (the scope barrier), so it answers — an error would tell that such rows exist.
    let in_scope = api.admin_count(
        admin,
        &format!("SELECT count(*) FROM events WHERE {ADVISER_SCOPE}"),
    );
    let (s, b) = api.sql(
        &t["adviser"],
        json!({"sql": "SELECT count(*) AS n FROM events \
                       WHERE 1 / (CASE WHEN actor_org = 'onem0003' THEN 1 ELSE 0 END) = 1"}),
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["rows"][0]["n"].as_i64(), Some(in_scope), "{b}");
    // The same for the admin, who has no scope, fails: the probe is a real one.
    let (s, _) = api.sql(
        admin,
        json!({"sql": "SELECT count(*) AS n FROM events \
                       WHERE 1 / (CASE WHEN actor_org = 'onem0003' THEN 1 ELSE 0 END) = 1"}),
    );
    assert_eq!(s, 400);
    // No escape wrote a file.
    assert!(!Path::new("/tmp/iris-escape.csv").exists());
}

#[test]
fn policy_changes_are_logged_and_a_broken_file_keeps_the_last_good_rules() {
    let (tmp, _server, api, t) = setup();
    let file = tmp.path().join("access/policies/deliberations.toml");
    let original = std::fs::read_to_string(&file).expect("read");
    let ask = json!({"sql": "SELECT count(*) AS n FROM events", "deliberation": "CSSS/09/013", "case": "C-1"});
    let (s, b) = api.sql(&t["inspector"], ask.clone());
    assert_eq!(s, 200, "{b}");
    // A broken file: reported, and the last good rules stay in force.
    std::fs::write(&file, format!("{original}\n[[deliberation]]\nid = ")).expect("write");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (s, b) = api.sql(&t["inspector"], ask.clone());
    assert_eq!(s, 200, "the last good deliberations stay in force: {b}");
    let (_, health) = api.get(&t["admin"], "/v1/status");
    assert!(
        health["access_error"]
            .as_str()
            .is_some_and(|e| e.contains("deliberations.toml")),
        "{health}"
    );
    // A valid change (the deliberation withdrawn) applies at once and is logged as an event.
    let withdrawn = original.replace("id = \"CSSS/09/013\"", "id = \"CSSS/09/013-withdrawn\"");
    assert_ne!(withdrawn, original);
    std::fs::write(&file, &withdrawn).expect("write");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (s, b) = api.sql(&t["inspector"], ask);
    assert_eq!(s, 403, "{b}");
    assert!(
        error_of(&b).contains("no deliberation `CSSS/09/013`"),
        "{b}"
    );
    let (_, health) = api.get(&t["admin"], "/v1/status");
    assert!(health["access_error"].is_null(), "{health}");
    // The watcher logs within 2 s; then seal and find the change.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(seal(&api, &t["admin"]).0, 200);
    let rows = api.admin_rows(
        &t["admin"],
        "SELECT subject_id FROM audit WHERE message_type = 'iris.policy' \
         AND subject_id LIKE 'policies/deliberations.toml%'",
    );
    assert_eq!(
        rows.len(),
        2,
        "the version at start and the change: {rows:?}"
    );
}

#[test]
fn the_cli_asks_the_server_within_the_tokens_scope() {
    let (tmp, server, _api, t) = setup();
    let data = tmp.path();
    let remote = |token: &str, args: &[&str]| {
        let mut a = args.to_vec();
        a.extend(["--server", &server.url, "--token", token]);
        iris(data, &a)
    };
    let o = ok(
        remote(
            &t["citizen"],
            &["me", "--consultations", "--format", "json"],
        ),
        "me --consultations",
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout(&o)).expect("json rows");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let o = ok(
        remote(
            &t["adviser"],
            &["trace", "--subject", CITIZEN, "--format", "json"],
        ),
        "trace",
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout(&o)).expect("json rows");
    assert!(!rows.is_empty() && rows.iter().all(|r| r["actor_org"] == "onem0003"));
    let o = remote(&t["researcher"], &["sql", "SELECT count(*) FROM events"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("403") && err.contains("anonymised aggregates"),
        "{err}"
    );
    let o = remote(
        &t["inspector"],
        &[
            "sql",
            "SELECT count(*) AS n FROM events",
            "--deliberation",
            "CSSS/04/032",
            "--case",
            "PV-2025-0077",
            "--format",
            "json",
        ],
    );
    let rows: Vec<Value> = serde_json::from_str(&stdout(&ok(o, "inspector sql"))).expect("json");
    assert!(rows[0]["n"].as_i64().is_some_and(|n| n > 0), "{rows:?}");
}
