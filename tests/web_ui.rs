//! The web UI in a real browser: headless Chromium driven over WebDriver (chromedriver), the way a
//! security adviser, a citizen and an auditor use it — sign-in, a trace with its timeline and CSV
//! export, a denied search with its reason, the citizen's consultations, the chain status with verify
//! and checkpoint, labels on every form field and the three languages. Screenshots are saved under
//! `$CARGO_TARGET_DIR/ui-screenshots/` (or `target/ui-screenshots/`) as test artifacts.
//!
//! Needs `chromium` and `chromedriver` (Debian packages `chromium`, `chromium-driver`), which `.ci/run`
//! installs; without them the test fails and says so.

mod support;

use base64::Engine;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{Server, install_access, load_samples, token};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CITIZEN: &str = "30010100124";

/// A chromedriver process and one browser session, both ended on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver must be installed (Debian: apt-get install chromium chromium-driver; .ci/run does it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let started = Instant::now();
        while http
            .get(format!("{base}/status"))
            .send()
            .ok()
            .and_then(|r| r.json::<Value>().ok())
            .and_then(|v| v["value"]["ready"].as_bool())
            != Some(true)
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().expect("profile");
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromium must be installed (Debian package chromium; .ci/run installs it)");
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "binary": binary,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--disable-quic", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.path().display())],
        }}}});
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .expect("new session")
            .json()
            .expect("json");
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {r}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = req.send().expect("webdriver").json().expect("json");
        if v["value"]["error"].is_string() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    /// Waits until `script` (a JS expression) is truthy, and returns its value.
    fn wait(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self.js(&format!("return {script};"));
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if started.elapsed() > Duration::from_secs(20) {
                let body = self.js("return document.body.innerText;");
                panic!("timed out waiting for {what}; the page shows: {body}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT]
            .as_str()
            .or_else(|| v["ELEMENT"].as_str())
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), json!({}));
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), json!({}));
    }

    fn screenshot(&self, name: &str) {
        let png = self.cmd("GET", "/screenshot", json!({}));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64"))
            .expect("png");
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| support::repo().join("target"))
            .join("ui-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("screenshot");
    }

    fn sign_in(&self, url: &str, token: &str) {
        self.go(&format!("{url}/#/signout"));
        self.wait("the sign-in form", "document.querySelector('#token')");
        self.type_into("#token", token);
        self.click("#signin");
        self.wait(
            "who I am",
            "document.querySelector('#who') && document.querySelector('#who').innerText",
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn recent_events() -> String {
    let now = chrono::Utc::now();
    (0..3)
        .map(|i| {
            json!({
                "ts": (now - chrono::Duration::days(5 + i)).to_rfc3339(), "actor_id": format!("U9{i:06}"),
                "actor_kind": "person", "actor_org": "onem0003", "actor_role": "agent",
                "subject_id": CITIZEN, "subject_kind": "niss", "ticket": format!("T-UI-{i}"),
                "message_type": "L100", "application": "dossier-social", "operation": "consult",
                "result": "ok", "channel": "portal", "purpose": "CSSS/07/077", "source": "recent",
                "source_seq": i + 1,
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sign_in_trace_export_denial_citizen_and_chain_in_a_real_browser() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path();
    load_samples(data, &[], &[]);
    install_access(data);
    // Citizens may download the proof of each consultation here.
    let rule = data.join("access/policies/citizen.toml");
    let text = std::fs::read_to_string(&rule).expect("citizen.toml");
    std::fs::write(&rule, text.replace("proofs = false", "proofs = true")).expect("citizen.toml");
    support::ok(
        support::iris(data, &["labour", "import", "data-samples/labour"]),
        "labour import",
    );
    let admin = token(data, &["--role", "admin"]);
    let researcher = token(data, &["--role", "researcher", "--principal", "LM-2025-01"]);
    let adviser = token(data, &["--role", "adviser", "--principal", "ADV0003"]);
    let citizen = token(data, &["--role", "citizen", "--principal", CITIZEN]);
    let inspector = token(data, &["--role", "inspector", "--principal", "INS0005"]);
    let collector = token(data, &["--role", "collector", "--source", "recent"]);
    let server = Server::start(data, &[]);
    let http = reqwest::blocking::Client::new();
    let r = http
        .post(format!("{}/v1/events", server.url))
        .bearer_auth(&collector)
        .body(recent_events())
        .send()
        .expect("ingest");
    assert_eq!(r.status().as_u16(), 200);
    http.post(format!("{}/v1/seal", server.url))
        .bearer_auth(&admin)
        .send()
        .expect("seal");
    let sql = |q: &str| -> Vec<Value> {
        let v: Value = http
            .post(format!("{}/v1/sql", server.url))
            .bearer_auth(&admin)
            .json(&json!({ "sql": q }))
            .send()
            .expect("sql")
            .json()
            .expect("json");
        v["rows"].as_array().cloned().unwrap_or_default()
    };
    // A person the adviser's institution consulted, and how many of its events the adviser may see.
    let pick = sql(
        "SELECT subject_id, count(*) AS n FROM events WHERE actor_org = 'onem0003' AND source <> 'recent' \
         GROUP BY subject_id ORDER BY n DESC, subject_id LIMIT 1",
    );
    let subject = pick[0]["subject_id"].as_str().expect("subject").to_owned();
    let expected = pick[0]["n"].as_u64().expect("n");
    let outsider = sql(
        "SELECT actor_id FROM events WHERE actor_org <> 'onem0003' AND source <> 'recent' LIMIT 1",
    )[0]["actor_id"]
        .as_str()
        .expect("actor")
        .to_owned();

    // The page allows no script but its own.
    let page = http.get(format!("{}/", server.url)).send().expect("page");
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );

    let b = Browser::start();
    // Sign-in shows who I am, my role and scope; every field has a label.
    b.sign_in(&server.url, &adviser);
    let who = b.js("return document.querySelector('#who').innerText;");
    assert!(
        who.as_str().unwrap_or("").contains("ADV0003")
            && who.as_str().unwrap_or("").contains("adviser"),
        "{who}"
    );
    let unlabelled = b.js("return [...document.querySelectorAll('input, select')].filter(e => e.labels.length === 0).map(e => e.id);");
    assert_eq!(unlabelled, json!([]), "form fields without a label");
    // A trace: rows in time order, all of the adviser's institution, a timeline, paging and a CSV export.
    b.wait("the trace form", "document.querySelector('#key')");
    b.type_into("#key", &subject);
    b.click("#search");
    b.wait("the results", "document.querySelector('#results')");
    let summary = b.js("return document.querySelector('#summary').innerText;");
    assert!(
        summary
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{expected} ")),
        "{summary} (expected {expected})"
    );
    let orgs = b.js("return [...document.querySelectorAll('#results tbody tr')].map(r => r.children[2].innerText);");
    let orgs = orgs.as_array().expect("rows");
    assert!(
        !orgs.is_empty() && orgs.iter().all(|o| o == "onem0003"),
        "{orgs:?}"
    );
    let ts = b.js("return [...document.querySelectorAll('#results tbody tr')].map(r => r.children[0].innerText);");
    let ts: Vec<&str> = ts
        .as_array()
        .expect("ts")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "not in time order: {ts:?}"
    );
    // Previous/Next only when there is another page; the busy indicator is gone once answered.
    assert_eq!(
        b.js("return document.querySelector('#page').innerText.endsWith('/ 1') === (document.querySelector('#next') === null);"),
        json!(true)
    );
    assert_eq!(
        b.js("return document.querySelector('#busy').hidden;"),
        json!(true)
    );
    let bars = b.js("return document.querySelectorAll('#timeline rect').length;");
    assert!(bars.as_u64().unwrap_or(0) >= 1, "no timeline");
    let csv = b.cmd(
        "POST",
        "/execute/async",
        json!({"script": "const done = arguments[arguments.length - 1]; fetch(document.querySelector('#export').href).then(r => r.text()).then(done);", "args": []}),
    );
    let csv = csv.as_str().expect("csv");
    assert!(
        csv.starts_with("ts,actor_id,actor_org,subject_id,ticket"),
        "{csv}"
    );
    assert_eq!(csv.lines().count() as u64, expected + 1, "CSV rows");
    assert_eq!(
        b.js("return document.querySelector('#export').getAttribute('download');"),
        json!("iris-trace.csv")
    );
    b.screenshot("trace");
    // Sorting by a column header (keyboard: Enter on the header).
    b.js("const th = document.querySelector('th[data-col=\"ticket\"]'); th.focus(); th.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter'}));");
    assert_eq!(
        b.js("return document.querySelector('th[data-col=\"ticket\"]').getAttribute('aria-sort');"),
        json!("ascending")
    );
    // A ticket opens its whole chain across sources.
    b.click("a.ticket");
    b.wait(
        "the ticket's events",
        "document.querySelector('#by').value === 'ticket' && document.querySelector('#results')",
    );
    // A denied search: an agent of another institution, refused with the reason.
    b.js("document.querySelector('#by').value = 'actor';");
    b.type_into("#key", &outsider);
    b.click("#search");
    let error = b.wait(
        "the refusal",
        "document.querySelector('#error') && document.querySelector('#error').innerText",
    );
    let error = error.as_str().unwrap_or("");
    assert!(
        error.contains(&outsider) && error.contains("supervis"),
        "{error}"
    );
    assert!(
        b.js("return getComputedStyle(document.querySelector('#error')).color;")
            .as_str()
            .unwrap_or("")
            .contains("164, 0, 0"),
        "the refusal is not red"
    );
    b.screenshot("denied");
    // Languages.
    b.js("const s = document.querySelector('#lang'); s.value = 'fr'; s.dispatchEvent(new Event('change'));");
    b.wait(
        "French",
        "document.querySelector('h1') && document.querySelector('h1').innerText === 'Traçage'",
    );
    // The refusal is still there, now in French, and so is the search.
    let error = b.js(
        "return document.querySelector('#error') && document.querySelector('#error').innerText;",
    );
    assert!(
        error.as_str().unwrap_or("").contains("que vous supervisez")
            && error.as_str().unwrap_or("").contains(&outsider),
        "{error}"
    );
    assert_eq!(
        b.js("return document.querySelector('#key').value;"),
        json!(outsider)
    );
    b.js("const s = document.querySelector('#lang'); s.value = 'nl'; s.dispatchEvent(new Event('change'));");
    b.wait(
        "Dutch",
        "document.querySelector('h1') && document.querySelector('h1').innerText === 'Opsporing'",
    );
    b.js("const s = document.querySelector('#lang'); s.value = 'en'; s.dispatchEvent(new Event('change'));");
    // A person's number with wrong check digits is refused with the reason, not "0 events".
    b.wait(
        "English",
        "document.querySelector('h1').innerText === 'Trace'",
    );
    b.js("document.querySelector('#by').value = 'subject';");
    b.type_into("#key", "85073003329");
    b.click("#search");
    let error = b.wait(
        "the NISS refusal",
        "document.querySelector('#error') && document.querySelector('#error').innerText.includes('85073003329') && document.querySelector('#error').innerText",
    );
    assert!(
        error.as_str().unwrap_or("").contains("check digits"),
        "{error}"
    );
    // The SQL console: an answer within the scope, and a refusal explained.
    b.go(&format!("{}/#/sql", server.url));
    b.wait("the console", "document.querySelector('#sql')");
    b.click("#run");
    let summary = b.wait(
        "the answer",
        "document.querySelector('#summary') && document.querySelector('#summary').innerText",
    );
    assert!(
        summary.as_str().unwrap_or("").contains("onem0003"),
        "{summary}"
    );
    // A typo says where.
    b.js("document.querySelector('#sql').value = 'SELECT count(*) FORM events';");
    b.click("#run");
    let error = b.wait(
        "the syntax error",
        "document.querySelector('#error') && document.querySelector('#error').innerText",
    );
    assert!(
        error
            .as_str()
            .unwrap_or("")
            .contains("syntax error near `events` at line 1, column 22"),
        "{error}"
    );
    b.js("document.querySelector('#sql').value = 'SELECT * FROM rejections';");
    b.click("#run");
    // The typo's message is still on the page until this answer replaces it.
    let error = b.wait(
        "the refusal",
        "(t => t && !t.includes('syntax error') ? t : null)(document.querySelector('#error') && document.querySelector('#error').innerText)",
    );
    assert!(
        error.as_str().unwrap_or("").contains("rejections"),
        "{error}"
    );
    // Misuse patterns: each saved query as a table, with a chart.
    b.go(&format!("{}/#/patterns", server.url));
    b.wait(
        "the patterns",
        "document.querySelectorAll('section table').length === 4",
    );
    assert!(
        b.js("return document.querySelectorAll('section svg rect').length;")
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "no chart"
    );
    let shown = b.js("return [...document.querySelectorAll('#table-users_by_distinct_persons tbody tr')].map(r => r.children[0].innerText);");
    let users: Vec<&str> = shown
        .as_array()
        .expect("users")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!users.is_empty(), "no user ranked");
    let theirs = sql("SELECT DISTINCT actor_id FROM events WHERE actor_org = 'onem0003'");
    let theirs: Vec<&str> = theirs
        .iter()
        .filter_map(|r| r["actor_id"].as_str())
        .collect();
    assert!(
        users.iter().all(|u| theirs.contains(u)),
        "a user of another institution ranked: {users:?}"
    );
    b.screenshot("patterns");

    // The inspector: no search before a deliberation and a case reference are given.
    b.sign_in(&server.url, &inspector);
    b.wait("the deliberations", "document.querySelector('#deliberation') && document.querySelector('#deliberation').options.length > 1");
    b.js("document.querySelector('#deliberation').value = '';");
    b.type_into("#key", CITIZEN);
    b.click("#search");
    // The form does not submit: both fields are required, and the page says why.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.js("return document.querySelector('#trace-form').checkValidity();"),
        json!(false)
    );
    assert_eq!(
        b.js("return document.querySelector('#summary') === null;"),
        json!(true)
    );
    let hint = b.js("return document.querySelector('#need-case').innerText;");
    assert!(
        hint.as_str().unwrap_or("").contains("case reference"),
        "{hint}"
    );
    b.js("document.querySelector('#deliberation').value = 'CSSS/04/032';");
    b.type_into("#case", "PV-2025-0042");
    b.click("#search");
    let summary = b.wait(
        "the inspector's trace",
        "document.querySelector('#summary') && document.querySelector('#summary').innerText",
    );
    assert!(
        summary.as_str().unwrap_or("").contains("CSSS/04/032"),
        "{summary}"
    );

    // The researcher: a report with its suppressed cells flagged.
    b.sign_in(&server.url, &researcher);
    b.wait("the reports", "document.querySelector('#report') && document.querySelector('#report').options.length >= 6");
    b.js("document.querySelector('#report').value = 'employment_by_sector_region';");
    b.click("#show");
    b.wait("the report", "document.querySelector('#report-table')");
    let flagged = b.js("return document.querySelectorAll('#report-table td.c').length;");
    assert!(
        flagged.as_u64().unwrap_or(0) > 0,
        "no confidential cell flagged"
    );
    assert!(
        b.js("return document.querySelector('#legend').innerText;")
            .as_str()
            .unwrap_or("")
            .contains(":c")
    );
    // Figures are shown as noisy, with what the answer cost and the budget left.
    assert!(
        b.js("return document.querySelector('#noisy').innerText;")
            .as_str()
            .unwrap_or("")
            .contains("none is exact")
    );
    let budget = b.wait(
        "the budget",
        "document.querySelector('#budget') && document.querySelector('#budget').innerText.includes('ρ') && document.querySelector('#budget').innerText",
    );
    assert!(
        budget.as_str().unwrap_or("").contains("Privacy budget"),
        "{budget}"
    );
    // A free query from the page spends from the project's budget, and the page says so.
    b.js("document.querySelector('#out').innerHTML = ''; return true;");
    b.click("#ask-run");
    let spent = b.wait(
        "the free query",
        "document.querySelector('#spent') && document.querySelector('#budget').innerText.indexOf('ρ 0.0000 /') < 0 && document.querySelector('#spent').innerText",
    );
    assert!(spent.as_str().unwrap_or("").contains("ρ 0.0"), "{spent}");
    assert!(
        b.js("return document.querySelector('#report-table').innerText;")
            .as_str()
            .unwrap_or("")
            .contains("median_wage")
    );
    b.screenshot("statistics");

    // The citizen: who consulted my data, no agent ids.
    b.sign_in(&server.url, &citizen);
    b.wait(
        "the consultations",
        "document.querySelector('#consultations')",
    );
    let text = b.js("return document.querySelector('#consultations').innerText;");
    let text = text.as_str().unwrap_or("");
    assert!(text.contains("onem0003"), "{text}");
    // Names a citizen understands: the institution, what the message is about, a local time to the
    // minute (no ISO timestamp with microseconds).
    assert!(
        text.contains("Unemployment office 0003") && text.contains("Identification data"),
        "{text}"
    );
    let iso_day = (chrono::Utc::now() - chrono::Duration::days(5))
        .format("%Y-%m-%d")
        .to_string();
    assert!(!text.contains(&iso_day), "{text}");
    assert!(
        !text.contains("U9000000") && !text.contains("actor_id"),
        "agent ids shown to a citizen: {text}"
    );
    assert_eq!(
        b.js("return document.querySelectorAll('#consultations tbody tr').length;"),
        json!(3)
    );
    // Each consultation offers its proof, with how to check it offline; the file downloaded is a
    // bundle `iris verify-proof` accepts with no store.
    assert_eq!(
        b.js("return document.querySelectorAll('#consultations button.proof').length;"),
        json!(3)
    );
    let help = b.js("return document.querySelector('#proof-help').innerText;");
    assert!(
        help.as_str()
            .unwrap_or_default()
            .contains("iris verify-proof"),
        "{help}"
    );
    b.click("#consultations button.proof");
    b.wait("the proof file", "document.querySelector('#proof-file')");
    b.js("fetch(document.querySelector('#proof-file').href).then((r) => r.text()).then((t) => { window.proofText = t; });");
    let bundle = b.wait("the bundle's bytes", "window.proofText");
    let file = data.join("proof-from-the-page.json");
    std::fs::write(&file, bundle.as_str().unwrap_or_default()).expect("write");
    let vkey = support::stdout(&support::ok(
        support::iris(data, &["checkpoint", "--format", "vkey"]),
        "vkey",
    ));
    let checked = support::ok(
        support::iris(
            &data.join("nowhere"),
            &[
                "verify-proof",
                file.to_str().expect("utf-8"),
                "--key",
                vkey.trim(),
            ],
        ),
        "verify-proof of the page's download",
    );
    assert!(
        support::stdout(&checked).contains(&format!("subject {CITIZEN} ")),
        "{}",
        support::stdout(&checked)
    );
    b.screenshot("citizen");

    // The chain: verify now (all holds), the last seals, a checkpoint to download.
    b.sign_in(&server.url, &admin);
    b.go(&format!("{}/#/chain", server.url));
    b.wait("the seals", "document.querySelector('#seals')");
    b.click("#verify");
    let verdict = b.wait(
        "the verdict",
        "document.querySelector('#verdict.ok') && document.querySelector('#verdict').innerText",
    );
    assert!(
        verdict.as_str().unwrap_or("").contains("seals"),
        "{verdict}"
    );
    assert!(
        b.js("return document.querySelectorAll('#seals tbody tr').length;")
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
    b.click("#checkpoint");
    b.wait(
        "the checkpoint",
        "document.querySelector('#checkpoint-file')",
    );
    b.screenshot("chain");
    // Tamper with a partition: the next verify shows the finding in red.
    let part = support::parquet_files(&data.join("store/events"))
        .into_iter()
        .next()
        .expect("a partition");
    let mut bytes = std::fs::read(&part).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&part, bytes).expect("write");
    b.click("#verify");
    let finding = b.wait(
        "the finding",
        "document.querySelector('#verdict.error') && document.querySelector('#verdict').innerText",
    );
    assert!(
        finding.as_str().unwrap_or("").contains("CHANGED"),
        "{finding}"
    );
    b.screenshot("chain-finding");
}
