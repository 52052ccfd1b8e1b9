//! `GET /v1/proof` over HTTP (issue 16): a citizen downloads the proof of their own consultation and
//! `iris verify-proof` accepts it with no store; any changed byte of it is refused; a ticket or event
//! outside the caller's scope (a citizen's, an adviser's) gets exactly the answer an unknown one gets;
//! every proof request is an audit event; without the citizen rule's `proofs` a citizen is refused.

mod support;

use serde_json::{Value, json};
use std::path::Path;
use support::{Server, install_access, iris, load_samples, ok, stdout, token};

const CITIZEN: &str = "30010100124";
const OTHER: &str = "30010200191";

fn citizen_rule(data: &Path, proofs: bool) {
    std::fs::write(
        data.join("access/policies/citizen.toml"),
        format!(
            "id = \"citizen-view\"\nmonths = 6\n\
             operations = [\"consult\", \"list\", \"modify\", \"create\", \"delete\"]\nproofs = {proofs}\n"
        ),
    )
    .expect("citizen.toml");
}

/// Recent events (the citizen sees six months): `(days ago, subject, institution)`, tickets
/// `T-P-0`, `T-P-1`…, source `recent`, numbers from 1.
fn recent_events(rows: &[(i64, &str, &str)]) -> String {
    let now = chrono::Utc::now();
    rows.iter()
        .enumerate()
        .map(|(i, (d, subject, org))| {
            json!({
                "ts": (now - chrono::Duration::days(*d)).to_rfc3339(), "actor_id": format!("U9{i:06}"),
                "actor_kind": "person", "actor_org": org, "actor_role": "agent", "subject_id": subject,
                "subject_kind": "niss", "ticket": format!("T-P-{i}"), "message_type": "L100",
                "application": "dossier-social", "operation": "consult", "result": "ok",
                "channel": "portal", "purpose": "CSSS/07/077", "source": "recent", "source_seq": i + 1,
            })
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Fixture {
    _tmp: tempfile::TempDir,
    data: std::path::PathBuf,
    server: Server,
    client: reqwest::blocking::Client,
    admin: String,
    citizen: String,
    adviser: String,
}

/// The answer to a request: status, `x-iris-request`, body bytes.
struct Answer {
    status: u16,
    request: String,
    disposition: String,
    body: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        load_samples(&data, &[], &[]);
        install_access(&data);
        citizen_rule(&data, true);
        let admin = token(&data, &["--role", "admin"]);
        let collector = token(&data, &["--role", "collector", "--source", "recent"]);
        let citizen = token(&data, &["--role", "citizen", "--principal", CITIZEN]);
        // ADV0003 supervises onem0003.
        let adviser = token(&data, &["--role", "adviser", "--principal", "ADV0003"]);
        let server = Server::start(&data, &[]);
        let client = reqwest::blocking::Client::new();
        let r = client
            .post(format!("{}/v1/events", server.url))
            .bearer_auth(&collector)
            .body(recent_events(&[
                (10, CITIZEN, "onem0003"),
                (40, CITIZEN, "cpas0000"),
                (5, OTHER, "onem0003"),
            ]))
            .send()
            .expect("push");
        assert_eq!(r.status(), 200);
        let f = Fixture {
            _tmp: tmp,
            data,
            server,
            client,
            admin,
            citizen,
            adviser,
        };
        f.seal();
        f
    }

    fn seal(&self) {
        let r = self
            .client
            .post(format!("{}/v1/seal", self.server.url))
            .bearer_auth(&self.admin)
            .send()
            .expect("seal");
        assert_eq!(r.status(), 200);
    }

    fn get(&self, token: &str, query: &str) -> Answer {
        let r = self
            .client
            .get(format!("{}/v1/proof?{query}", self.server.url))
            .bearer_auth(token)
            .send()
            .expect("GET /v1/proof");
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Answer {
            status: r.status().as_u16(),
            request: header("x-iris-request"),
            disposition: header("content-disposition"),
            body: r.bytes().expect("body").to_vec(),
        }
    }

    fn admin_sql(&self, sql: &str) -> Vec<Value> {
        let b: Value = self
            .client
            .post(format!("{}/v1/sql", self.server.url))
            .bearer_auth(&self.admin)
            .json(&json!({ "sql": sql }))
            .send()
            .expect("sql")
            .json()
            .expect("json");
        b["rows"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{sql}: {b}"))
    }
}

/// Two answers that must not be told apart: same status, same bytes.
fn assert_same(a: &Answer, b: &Answer, what: &str) {
    assert_eq!(
        a.status,
        404,
        "{what}: {}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(a.status, b.status, "{what}");
    assert_eq!(
        String::from_utf8_lossy(&a.body),
        String::from_utf8_lossy(&b.body),
        "{what}"
    );
}

#[test]
fn proofs_over_http_within_the_callers_scope() {
    let f = Fixture::new();
    let vkey = f.data.join("../log.vkey");
    std::fs::write(
        &vkey,
        stdout(&ok(
            iris(&f.data, &["checkpoint", "--format", "vkey"]),
            "vkey",
        )),
    )
    .expect("vkey");
    let k = vkey.to_str().expect("utf-8");
    let nowhere = f.data.join("../nowhere");

    // The citizen's own consultation: a bundle, checked offline with the published key.
    let own = f.get(&f.citizen, "ticket=T-P-0");
    assert_eq!(own.status, 200, "{}", String::from_utf8_lossy(&own.body));
    assert!(
        own.disposition.contains("attachment") && own.disposition.contains("T-P-0"),
        "{}",
        own.disposition
    );
    let file = f.data.join("../proof.json");
    std::fs::write(&file, &own.body).expect("write");
    let b = file.to_str().expect("utf-8");
    let out = stdout(&ok(
        iris(&nowhere, &["verify-proof", b, "--key", k]),
        "verify-proof",
    ));
    assert!(
        out.contains(&format!("PROVEN recent:1 ticket T-P-0 subject {CITIZEN} ")),
        "{out}"
    );
    assert!(out.contains("OK: 1 event(s)"), "{out}");
    // The same bundle as `iris prove` makes (events and leaves; the checkpoint may have grown since).
    let bundle: Value = serde_json::from_slice(&own.body).expect("json");
    let cli: Value = serde_json::from_str(&stdout(&ok(
        iris(&f.data, &["prove", "--ticket", "T-P-0"]),
        "prove",
    )))
    .expect("json");
    assert_eq!(bundle["format"], cli["format"]);
    assert_eq!(bundle["proofs"][0]["event"], cli["proofs"][0]["event"]);
    assert_eq!(bundle["proofs"][0]["leaf"], cli["proofs"][0]["leaf"]);
    // By number as well.
    assert_eq!(f.get(&f.citizen, "event=recent:2").status, 200);

    // Any changed byte of the download is refused.
    let flipped = f.data.join("../flipped.json");
    let fl = flipped.to_str().expect("utf-8");
    for i in (0..own.body.len()).step_by(61) {
        let mut bad = own.body.clone();
        bad[i] ^= 0x01;
        std::fs::write(&flipped, &bad).expect("write");
        let o = iris(&nowhere, &["verify-proof", fl, "--key", k]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "byte {i} changed, still: {}",
            stdout(&o)
        );
    }

    // Someone else's ticket and event: exactly the answer an unknown one gets.
    let unknown = f.get(&f.citizen, "ticket=T-NOPE");
    assert_same(
        &f.get(&f.citizen, "ticket=T-P-2"),
        &unknown,
        "citizen, other's ticket",
    );
    assert_same(
        &f.get(&f.citizen, "event=recent:3"),
        &f.get(&f.citizen, "event=recent:999"),
        "citizen, other's event",
    );
    // The adviser of onem0003: its events, not cpas0000's.
    assert_eq!(f.get(&f.adviser, "ticket=T-P-0").status, 200);
    assert_same(
        &f.get(&f.adviser, "ticket=T-P-1"),
        &f.get(&f.adviser, "ticket=T-NOPE"),
        "adviser out of scope",
    );
    // The admin proves any of them.
    assert_eq!(f.get(&f.admin, "ticket=T-P-2").status, 200);
    // Bad requests say why.
    assert_eq!(f.get(&f.citizen, "event=recent").status, 400);
    assert_eq!(f.get(&f.citizen, "ticket=a&event=b:1").status, 400);

    // Each request is an audit event, out-of-scope ones included.
    let asked = f.get(&f.citizen, "ticket=T-P-2");
    f.seal();
    let rows = f.admin_sql(&format!(
        "SELECT message_type, actor_id, result, subject_id FROM audit WHERE ticket = '{}'",
        asked.request
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["message_type"], "iris.proof", "{rows:?}");
    assert_eq!(rows[0]["actor_id"], CITIZEN, "{rows:?}");
    assert_eq!(rows[0]["result"], "nok", "{rows:?}");
    assert_eq!(rows[0]["subject_id"], "ticket:T-P-2", "{rows:?}");
    let rows = f.admin_sql(&format!(
        "SELECT result FROM audit WHERE ticket = '{}'",
        own.request
    ));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["result"], "ok", "{rows:?}");

    // Without the citizen rule's `proofs`, a citizen is refused, saying why.
    citizen_rule(&f.data, false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let a = f.get(&f.citizen, "ticket=T-P-0");
        if a.status == 403 {
            let body = String::from_utf8_lossy(&a.body);
            assert!(body.contains("agent's id"), "{body}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", a.status);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
