//! The direct trace path over HTTP against plain DataFusion (`iris sql --no-index`) on the same store:
//! for random subjects, actors and tickets — heavy, medium and rare — random windows crossing
//! partitions and random page sizes, the pages followed by their `next` cursors concatenate to exactly
//! the rows of the plain query, in order, on daily partitions and after compacting a month (a store
//! holding both layouts). Out-of-scope rows never appear (Iris's own audit events, in partitions of
//! their own, reach only the auditor), and a damaged file is refused on the direct path too.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use support::{Server, iris, ok, parquet_files, stdout, token};

/// The columns a trace shows, in order.
const SHOWN: &str = "ts, source, actor_id, actor_kind, actor_org, actor_role, subject_id, subject_kind, \
                     ticket, message_type, application, operation, result, error_code, channel, purpose";

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Keys of `field` by frequency: the two heaviest, two from the middle, two seen once or twice.
fn keys(events: &[Value], field: &str, rng: &mut Rng) -> Vec<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for e in events {
        *counts.entry(e[field].as_str().expect("key")).or_default() += 1;
    }
    let mut by: Vec<(usize, &str)> = counts.into_iter().map(|(k, c)| (c, k)).collect();
    by.sort_by(|a, b| b.cmp(a));
    let n = by.len();
    let mut out = vec![by[0].1, by[1.min(n - 1)].1];
    for _ in 0..2 {
        out.push(by[n / 4 + rng.below(n / 2)].1);
        out.push(by[n - 1 - rng.below(n / 10)].1);
    }
    out.into_iter().map(str::to_owned).collect()
}

/// Every event of the keys, by plain DataFusion, in trace order (with `day` for the windows).
fn reference(data: &Path, keys: &[(&str, Vec<String>)]) -> Vec<Value> {
    let cond = keys
        .iter()
        .map(|(field, ks)| {
            let list = ks.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>();
            format!("{field} IN ({})", list.join(", "))
        })
        .collect::<Vec<_>>()
        .join(" OR ");
    let q = format!("SELECT {SHOWN}, day FROM events WHERE {cond} ORDER BY ts, source, source_seq");
    let o = ok(
        iris(data, &["sql", &q, "--format", "json", "--no-index"]),
        "reference",
    );
    serde_json::from_str(&stdout(&o)).expect("json")
}

/// Follows the pages of one trace; returns the rows and the number of pages.
fn pages(server: &Server, tok: &str, query: &str, size: usize) -> (Vec<Value>, usize) {
    let client = reqwest::blocking::Client::new();
    let (mut rows, mut n, mut after) = (Vec::new(), 0, None::<String>);
    loop {
        let mut url = format!("{}/v1/trace?{query}&limit={size}", server.url);
        if let Some(a) = &after {
            url.push_str(&format!("&after={a}"));
        }
        let r = client.get(&url).bearer_auth(tok).send().expect("trace");
        assert_eq!(r.status(), 200, "{url}");
        let body: Value = r.json().expect("json");
        let events = body["events"].as_array().expect("events").clone();
        assert_eq!(body["count"], events.len(), "{url}");
        assert!(events.len() <= size, "{url}");
        let next = body["next"].as_str().map(str::to_owned);
        assert_eq!(body["truncated"], next.is_some(), "{url}");
        assert!(
            next.is_none() || events.len() == size,
            "{url}: a short page has no next"
        );
        rows.extend(events);
        n += 1;
        assert!(n < 10_000, "{url}: no end");
        match next {
            Some(a) => after = Some(a),
            None => return (rows, n),
        }
    }
}

fn day(e: &Value) -> &str {
    e["day"].as_str().expect("day")
}

/// Compares the paged traces of every key with the reference, under random windows and page sizes.
fn same_as_reference(data: &Path, kinds: &[(&str, Vec<String>)], rng: &mut Rng, layout: &str) {
    let all = reference(data, kinds);
    let days: Vec<String> = {
        let mut d: Vec<String> = all.iter().map(|e| day(e).to_owned()).collect();
        d.sort();
        d.dedup();
        d
    };
    let admin = token(data, &["--role", "admin"]);
    let server = Server::start(data, &[]);
    let mut checked = 0;
    for (field, ks) in kinds {
        let param = match *field {
            "subject_id" => "subject",
            "actor_id" => "actor",
            _ => "ticket",
        };
        for key in ks {
            // Whole period, then a window from one random day to a later one (crossing months).
            for windowed in [false, true] {
                let (from, to) = if windowed {
                    let a = rng.below(days.len());
                    let b = a + rng.below(days.len() - a);
                    (Some(days[a].clone()), Some(days[b].clone()))
                } else {
                    (None, None)
                };
                let want: Vec<Value> = all
                    .iter()
                    .filter(|e| e[*field] == key.as_str())
                    .filter(|e| from.as_deref().is_none_or(|f| day(e) >= f))
                    .filter(|e| to.as_deref().is_none_or(|t| day(e) <= t))
                    .map(|e| {
                        let mut e = e.clone();
                        e.as_object_mut().expect("row").remove("day");
                        e
                    })
                    .collect();
                let mut query = format!("{param}={key}");
                for (k, v) in [("from", &from), ("to", &to)] {
                    if let Some(v) = v {
                        query.push_str(&format!("&{k}={v}"));
                    }
                }
                let size = 1 + rng.below((want.len() / 3).clamp(3, 400));
                let (got, n) = pages(&server, &admin, &query, size);
                assert_eq!(got.len(), want.len(), "{layout}: {query} by {size}");
                assert_eq!(got, want, "{layout}: {query} by {size}");
                assert_eq!(n, want.len().div_ceil(size).max(1), "{layout}: {query}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 36, "{layout}");
}

#[test]
fn pages_of_the_direct_path_concatenate_to_the_plain_answer_in_every_layout() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let events = tmp.path().join("events.jsonl");
    let gen_args = [
        "gen",
        "--events",
        "20000",
        "--seed",
        "7",
        "--days",
        "75",
        "--from",
        "2025-01-10",
    ];
    let mut args = gen_args.to_vec();
    let out = events.to_string_lossy().into_owned();
    args.extend(["--out", &out]);
    ok(iris(&data, &args), "gen");
    ok(iris(&data, &["keygen"]), "keygen");
    ok(
        iris(&data, &["import", "--format", "jsonl", &out]),
        "import",
    );
    let generated: Vec<Value> = std::fs::read_to_string(&events)
        .expect("events")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let kinds: Vec<(&str, Vec<String>)> = ["subject_id", "actor_id", "ticket"]
        .into_iter()
        .map(|f| (f, keys(&generated, f, &mut rng)))
        .collect();
    same_as_reference(&data, &kinds, &mut rng, "daily");

    // Scope: Iris's own audit events are in `source=iris` partitions, never in another's trace.
    let admin = token(&data, &["--role", "admin"]);
    let auditor = token(&data, &["--role", "auditor"]);
    {
        let server = Server::start(&data, &[]);
        let client = reqwest::blocking::Client::new();
        let ticket = client
            .get(format!("{}/v1/trace?ticket=nothing", server.url))
            .bearer_auth(&admin)
            .send()
            .expect("trace")
            .headers()
            .get("x-iris-request")
            .and_then(|v| v.to_str().ok())
            .expect("x-iris-request")
            .to_owned();
        let r = client
            .post(format!("{}/v1/seal", server.url))
            .bearer_auth(&admin)
            .send()
            .expect("seal");
        assert_eq!(r.status(), 200);
        let trace = |tok: &str| -> Vec<Value> {
            let (rows, _) = pages(&server, tok, &format!("ticket={ticket}"), 10);
            rows
        };
        assert_eq!(
            trace(&admin),
            Vec::<Value>::new(),
            "the admin's events hide Iris's own"
        );
        let own = trace(&auditor);
        assert_eq!(own.len(), 1, "{own:?}");
        assert_eq!(own[0]["source"], "iris");
        // And the auditor sees none of the network's events.
        let (field, ks) = &kinds[2];
        assert_eq!(*field, "ticket");
        let (rows, _) = pages(&server, &auditor, &format!("ticket={}", ks[0]), 50);
        assert!(rows.is_empty(), "{rows:?}");
        // A cursor Iris did not write is a clear 400.
        let r = client
            .get(format!(
                "{}/v1/trace?ticket={ticket}&after=12.x",
                server.url
            ))
            .bearer_auth(&admin)
            .send()
            .expect("trace");
        assert_eq!(r.status(), 400);
        assert!(r.text().expect("text").contains("bad cursor"));
    }

    // A damaged file is refused on the direct path, named; restored, the trace answers again.
    let (field, ks) = &kinds[2];
    assert_eq!(*field, "ticket");
    let ticket = &ks[0];
    let o = ok(
        iris(
            &data,
            &[
                "sql",
                &format!("SELECT day, source FROM events WHERE ticket = '{ticket}' LIMIT 1"),
                "--format",
                "json",
            ],
        ),
        "where",
    );
    let at: Vec<Value> = serde_json::from_str(&stdout(&o)).expect("json");
    let dir = data.join("store/events").join(format!(
        "day={}/source={}",
        at[0]["day"].as_str().expect("day"),
        at[0]["source"].as_str().expect("source")
    ));
    let file = parquet_files(&dir).into_iter().next().expect("a partition");
    let original = std::fs::read(&file).expect("read");
    let mut bytes = original.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&file, &bytes).expect("damage");
    {
        let server = Server::start(&data, &[]);
        let r = reqwest::blocking::Client::new()
            .get(format!("{}/v1/trace?ticket={ticket}", server.url))
            .bearer_auth(&admin)
            .send()
            .expect("trace");
        assert_eq!(r.status(), 400);
        let err = r.text().expect("text");
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        assert!(err.contains(&name) && err.contains("seal"), "{err}");
    }
    std::fs::write(&file, &original).expect("restore");

    // Compact the first month: January is compacted, February and March stay daily.
    ok(iris(&data, &["compact", "--month", "2025-01"]), "compact");
    assert!(!parquet_files(&data.join("store/compacted")).is_empty());
    same_as_reference(&data, &kinds, &mut rng, "compacted January + daily");
}
