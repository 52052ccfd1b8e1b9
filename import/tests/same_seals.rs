//! The pipeline seals the same partitions, byte for byte, whatever its chunk size and core count, and
//! a second import of the same file stores nothing twice.

use iris_import::{Input, Options, Totals, import};
use iris_ingest::formats::Format;
use iris_ingest::generate::{GenConfig, Generator};
use iris_store::datadir::DataDir;
use iris_store::seal::SealKind;
use iris_store::warehouse::Warehouse;

fn input() -> Vec<u8> {
    let mut out = Vec::new();
    let cfg = GenConfig {
        events: 6_000,
        days: 20,
        ..GenConfig::default()
    };
    for (i, e) in Generator::new(cfg).enumerate() {
        out.extend_from_slice(serde_json::to_string(&e).expect("json").as_bytes());
        out.extend_from_slice(if i % 5 == 0 { b"\r\n" } else { b"\n" });
        if i % 997 == 0 {
            out.extend_from_slice(b"{\"ts\":\"2025-01-01T00:00:00Z\",\"comment\":\"x\"}\n");
        }
    }
    out
}

/// Event seals as (path without its random part, rows, numbers, SHA-256), and rejection seals' rows.
type Seals = (Vec<(String, u64, Vec<[u64; 2]>, String)>, u64);

async fn run(dir: &std::path::Path, data: &[u8], opts: &Options) -> (Totals, Seals, Vec<u64>) {
    let dir = DataDir::new(dir, None);
    if dir
        .keys()
        .keyring()
        .map(|k| k.keys.is_empty())
        .unwrap_or(true)
    {
        dir.create().expect("create");
        dir.keys().generate(None).expect("key");
    }
    let (wh, _) = Warehouse::open(dir.clone()).await.expect("open");
    let mut refused = Vec::new();
    let inputs = vec![Input {
        name: "events.jsonl".into(),
        format: Format::JsonLines,
        reader: Box::new(std::io::Cursor::new(data.to_vec())),
    }];
    let totals = import(&wh, inputs, opts, |_, line, _| refused.push(line))
        .await
        .expect("import");
    let chain = iris_store::chain::read_chain(&wh.loc).await.expect("chain");
    let mut events = Vec::new();
    let mut rejected = 0;
    for s in chain {
        match s.kind {
            SealKind::Events => {
                let stem = s
                    .path
                    .rsplit_once('-')
                    .map(|(a, _)| a.to_owned())
                    .unwrap_or_default();
                events.push((stem, s.rows, s.seq_ranges, s.sha256));
            }
            SealKind::Rejections => rejected += s.rows,
            _ => {}
        }
    }
    (totals, (events, rejected), refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_input_same_seals_for_any_chunk_size_and_core_count() {
    let data = input();
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let opts = |workers, chunk_bytes| Options {
        workers,
        chunk_bytes,
        chunks_in_flight: 3,
        seal_events: 1_700,
    };
    let (ta, sa, ra) = run(a.path(), &data, &opts(1, 64 << 10)).await;
    let (tb, sb, rb) = run(b.path(), &data, &opts(3, 777)).await;
    assert_eq!((ta.records, ta.accepted, ta.rejected), (6_007, 6_000, 7));
    assert_eq!(
        (tb.records, tb.accepted, tb.rejected),
        (ta.records, ta.accepted, ta.rejected)
    );
    assert_eq!(ra, rb, "the same lines refused, reported in order");
    assert!(ra.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(sa.1, 7);
    assert!(sa.0.len() > 20, "{} event partitions", sa.0.len());
    assert_eq!(sa, sb, "same partitions, same bytes, same order");
    // Importing again stores nothing twice.
    let (again, seals, _) = run(a.path(), &data, &opts(2, 4096)).await;
    assert_eq!((again.accepted, again.duplicates), (0, 6_000));
    assert_eq!(seals.0, sa.0);
}
