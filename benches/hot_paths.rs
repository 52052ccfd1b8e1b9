//! Criterion micro-benchmarks of the hot paths: record validation, check digits, hashing, a lookup in a
//! partition's index, the access decision (with its p99, the target of DESIGN §4's issue), and the
//! research desk's disclosure control.
//!
//! `cargo bench --bench hot_paths` (add `-- --quick` for a short run).

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use criterion::Criterion;
use iris_access::directory::Directory;
use iris_access::policies::Policies;
use iris_access::{Action, Principal, Request, Role, decide};
use iris_ingest::Validator;
use iris_ingest::checkdigit::{is_valid_bce, is_valid_niss};
use iris_ingest::formats::jsonl::parse_line;
use sha2::{Digest, Sha256};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const RECORD: &str = r#"{"ts":"2025-03-01T08:01:53.130475Z","actor_id":"U0577002","actor_kind":"person","actor_org":"onem0577","actor_role":"assistant-social","subject_id":"31050600120","subject_kind":"niss","ticket":"T000000079E3779B9","message_type":"L100","application":"dossier-social","operation":"consult","result":"ok","channel":"batch","purpose":"CSSS/07/077","source":"unemployment","source_seq":1}"#;

fn validation(c: &mut Criterion) {
    let v = Validator::now();
    c.bench_function("validate one record (parse + rules)", |b| {
        b.iter(|| {
            let raw = parse_line(black_box(RECORD)).map_err(|r| r.reason);
            black_box(raw.and_then(|r| v.validate(r)))
        })
    });
    c.bench_function("NISS check digits", |b| {
        b.iter(|| is_valid_niss(black_box("31050600120")))
    });
    c.bench_function("BCE check digits", |b| {
        b.iter(|| is_valid_bce(black_box("0403170701")))
    });
}

fn hashing(c: &mut Criterion) {
    let mib = vec![7u8; 1 << 20];
    let mut g = c.benchmark_group("hashing");
    g.throughput(criterion::Throughput::Bytes(mib.len() as u64));
    g.bench_function("SHA-256 of 1 MiB (partition digest)", |b| {
        b.iter(|| Sha256::digest(black_box(&mib)))
    });
    g.finish();
}

fn index_lookup(c: &mut Criterion) {
    let rows = 100_000usize;
    let column = |prefix: &str, modulo: usize| -> ArrayRef {
        Arc::new(StringArray::from(
            (0..rows)
                .map(|i| format!("{prefix}{:08}", (i * 7919) % modulo))
                .collect::<Vec<_>>(),
        ))
    };
    let schema = Arc::new(Schema::new(
        iris_index::INDEXED_COLUMNS
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema,
        vec![column("S", 20_000), column("A", 2_000), column("T", rows)],
    )
    .expect("batch");
    let blob = iris_index::build_index(&[batch], "bench", vec![rows as u64]).expect("build");
    let idx = iris_index::PartitionIndex::open(&blob).expect("open");
    c.bench_function("index lookup: one subject in a 100k-row partition", |b| {
        b.iter(|| idx.rows_matching("subject_id", black_box(&["S00004242"])))
    });
}

fn decisions(c: &mut Criterion) {
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("data-samples/access");
    let directory = Directory::load(&root.join("directory")).expect("directory");
    let policies = Policies::load(&root.join("policies")).expect("policies");
    let inspector = Principal {
        token_id: "t".into(),
        role: Role::Inspector,
        id: "INS0005".into(),
        source: None,
    };
    let adviser = Principal {
        role: Role::Adviser,
        id: "ADV0000".into(),
        ..inspector.clone()
    };
    let today = chrono::Utc::now().date_naive();
    let ask = |p: &Principal| {
        decide(
            &directory,
            &policies,
            &Request {
                principal: p,
                action: Action::Sql,
                key: None,
                deliberation: Some("CSSS/04/032"),
                case_ref: Some("PV-2025-0042"),
                today,
            },
        )
    };
    c.bench_function("decision: inspector under a deliberation and case", |b| {
        b.iter(|| ask(black_box(&inspector)))
    });
    c.bench_function("decision: security adviser", |b| {
        b.iter(|| ask(black_box(&adviser)))
    });
    // The target is on the tail: measure each decision and print p50 / p99.
    let mut took: Vec<u128> = (0..100_000)
        .map(|i| {
            let p = if i % 2 == 0 { &inspector } else { &adviser };
            let t = Instant::now();
            black_box(ask(p));
            t.elapsed().as_nanos()
        })
        .collect();
    took.sort_unstable();
    println!(
        "decision latency over 100,000 decisions: p50 {} ns, p99 {} ns, max {} ns",
        took[took.len() / 2],
        took[took.len() * 99 / 100],
        took[took.len() - 1]
    );
}

/// The research desk's release path: bound 100,000 rows into the 3 × 14 × 8 cells of a 3-dimension
/// answer, then draw the discrete Gaussian for the cells' counts and sums (OpenDP, OpenSSL's CSPRNG).
fn private_release(c: &mut Criterion) {
    use iris_research::cells::{Bounds, Grid, Row, build};
    use iris_research::mechanism::gaussian;
    let rows: Vec<Row> = (0..100_000u64)
        .map(|i| Row {
            dims: vec![
                format!("r{}", i % 3),
                format!("s{}", (i / 3) % 14),
                format!("q{}", (i / 42) % 8),
            ],
            unit: i % 40_000,
            record: i,
            employer: None,
            measures: vec![(i % 977) as f64 * 31.0],
        })
        .collect();
    let grid = Grid::new(vec![
        (0..3).map(|i| format!("r{i}")).collect(),
        (0..14).map(|i| format!("s{i}")).collect(),
        (0..8).map(|i| format!("q{i}")).collect(),
    ]);
    let bounds = Bounds {
        rows_total: 8,
        rows_per_cell: 1,
    };
    c.bench_function(
        "private release: bound 100k rows into 336 cells, Gaussian noise on counts and sums",
        |b| {
            b.iter(|| {
                let e = build(black_box(rows.clone()), &grid, 1, bounds);
                let n = gaussian(&e.persons, 8f64.sqrt(), 0.01).expect("noise");
                let s = gaussian(&e.sums[0], 30_000.0 * 8f64.sqrt(), 0.01).expect("noise");
                black_box((n, s))
            })
        },
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    private_release(&mut c);
    validation(&mut c);
    hashing(&mut c);
    index_lookup(&mut c);
    decisions(&mut c);
    c.final_summary();
}
