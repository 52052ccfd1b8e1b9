//! `iris import`: read log files, validate every record, seal the accepted ones.
//!
//! A reader thread parses and validates while the sealer writes the previous chunk. Nothing is
//! acknowledged before the summary: an interrupted import is simply run again (what was sealed is
//! recognised by `source`/`source_seq` and counted as already stored).

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use iris_ingest::commit::{Batch, admit_batch};
use iris_ingest::formats::Format;
use iris_ingest::{Rejection, Validator};
use iris_store::sealer::SealSummary;
use iris_store::warehouse::Warehouse;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// `jsonl`, or the name of a mapping in DATA/formats or data-samples/formats (e.g. portal-csv).
    #[arg(long)]
    format: String,
    /// A mapping file to use instead of looking the format name up.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// Print every rejected record (default: the first 20).
    #[arg(long)]
    all_rejections: bool,
    /// The files to import.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// One input to import.
pub struct Input {
    pub name: String,
    pub format: Format,
    pub reader: Box<dyn Read + Send>,
    pub len: Option<u64>,
}

/// Totals of an import.
#[derive(Default, Debug)]
pub struct Totals {
    pub records: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub sealed: SealSummary,
}

/// Events sealed together (bounds memory on large files).
const CHUNK: usize = 1_000_000;

pub async fn run(dir: iris_store::datadir::DataDir, args: ImportArgs) -> anyhow::Result<()> {
    let format = match &args.mapping {
        Some(path) => Format::from_mapping_file(path)?,
        None => crate::samples::resolve_format(&args.format, &dir)?,
    };
    let mut inputs = Vec::new();
    for path in &args.files {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let len = file.metadata().ok().map(|m| m.len());
        inputs.push(Input {
            name: path.display().to_string(),
            format: format.clone(),
            reader: Box::new(file),
            len,
        });
    }
    let (wh, recovery) = open_warehouse(dir).await?;
    let _ = recovery;
    let started = Instant::now();
    let t = import(
        &wh,
        inputs,
        if args.all_rejections { usize::MAX } else { 20 },
    )
    .await?;
    print_totals(&t, started.elapsed().as_secs_f64());
    Ok(())
}

/// Opens the data directory for writing, saying what crash recovery did.
pub async fn open_warehouse(
    dir: iris_store::datadir::DataDir,
) -> anyhow::Result<(Warehouse, iris_store::warehouse::Recovery)> {
    let (wh, recovery) = Warehouse::open(dir).await?;
    for q in &recovery.quarantined {
        eprintln!(
            "quarantined unsealed partition {q} (left by an interrupted seal; its events are still in the WAL)"
        );
    }
    if recovery.sealed.events + recovery.sealed.rejections > 0 {
        eprintln!(
            "sealed {} events left in the write-ahead log",
            recovery.sealed.events
        );
    }
    Ok((wh, recovery))
}

pub fn print_totals(t: &Totals, secs: f64) {
    let per_event = if t.sealed.events > 0 {
        t.sealed.bytes as f64 / t.sealed.events as f64
    } else {
        0.0
    };
    println!(
        "imported {} records: {} accepted, {} already stored, {} rejected; sealed {} partitions ({:.1} MB, {:.1} bytes/event) in {:.2}s ({:.0} records/s)",
        t.records,
        t.accepted,
        t.duplicates,
        t.rejected,
        t.sealed.partitions,
        t.sealed.bytes as f64 / 1e6,
        per_event,
        secs,
        t.records as f64 / secs.max(1e-9)
    );
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub fn bar(len: u64, unit: &str) -> ProgressBar {
    let b = ProgressBar::new(len);
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{eta}})"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    b.set_style(style);
    b
}

/// Imports every input in order, printing rejected records (up to `show`) on standard error.
pub async fn import(wh: &Warehouse, inputs: Vec<Input>, show: usize) -> anyhow::Result<Totals> {
    let mut totals = Totals::default();
    let mut seq = wh.sealer().lock().await.sealed().clone();
    let mut shown = 0usize;
    let mut pending_events = Vec::new();
    let mut pending_rejections = Vec::new();
    for input in inputs {
        let name = input.name.clone();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
        let progress = match input.len {
            Some(len) if len > 8 << 20 => bar(len, "bytes"),
            _ => ProgressBar::hidden(),
        };
        let reader_progress = progress.clone();
        let reader = tokio::task::spawn_blocking(move || read_input(input, tx, reader_progress));
        while let Some(batch) = rx.recv().await {
            totals.records += (batch.events.len() + batch.rejections.len()) as u64;
            let (record, outcome) = admit_batch(&mut seq, batch);
            totals.accepted += outcome.accepted;
            totals.duplicates += outcome.duplicates;
            totals.rejected += outcome.rejected.len() as u64;
            for (line, reason) in &outcome.rejected {
                if shown < show {
                    progress.suspend(|| eprintln!("rejected {name}:{line}: {reason}"));
                }
                shown += 1;
            }
            pending_events.extend(record.events);
            pending_rejections.extend(record.rejections);
            if pending_events.len() >= CHUNK {
                let s = wh
                    .sealer()
                    .lock()
                    .await
                    .seal(
                        std::mem::take(&mut pending_events),
                        std::mem::take(&mut pending_rejections),
                    )
                    .await?;
                add(&mut totals.sealed, &s);
            }
        }
        reader.await.context("reader task")??;
        progress.finish_and_clear();
    }
    let s = wh
        .sealer()
        .lock()
        .await
        .seal(pending_events, pending_rejections)
        .await?;
    add(&mut totals.sealed, &s);
    if shown > show {
        eprintln!(
            "… and {} more rejected records (--all-rejections to list them)",
            shown - show
        );
    }
    Ok(totals)
}

fn add(total: &mut SealSummary, s: &SealSummary) {
    total.partitions += s.partitions;
    total.events += s.events;
    total.rejections += s.rejections;
    total.duplicates += s.duplicates;
    total.bytes += s.bytes;
}

/// Parses and validates one input, sending batches of up to 64 k records.
fn read_input(
    input: Input,
    tx: tokio::sync::mpsc::Sender<Batch>,
    progress: ProgressBar,
) -> anyhow::Result<()> {
    let validator = Validator::now();
    let received_at = chrono::Utc::now().timestamp_micros();
    let new_batch = || Batch {
        received_at,
        ..Batch::default()
    };
    let mut batch = new_batch();
    let mut closed = false;
    let reader = progress.wrap_read(input.reader);
    input
        .format
        .read(reader, |line, record| {
            if closed {
                return;
            }
            let refuse = |reason: String, source: Option<String>, seq: Option<u64>| Rejection {
                received_at,
                source: source.filter(|s| iris_ingest::validate::is_token(s)),
                source_seq: seq,
                line,
                reason,
            };
            match record {
                Err(r) => batch
                    .rejections
                    .push(refuse(r.reason, r.source, r.source_seq)),
                Ok(raw) => {
                    let (source, seq) = (raw.source.clone(), raw.source_seq);
                    match validator.validate(raw) {
                        Ok(e) => batch.events.push((line, e)),
                        Err(reason) => batch.rejections.push(refuse(reason, source, seq)),
                    }
                }
            }
            if batch.events.len() + batch.rejections.len() >= 65_536 {
                closed = tx
                    .blocking_send(std::mem::replace(&mut batch, new_batch()))
                    .is_err();
            }
        })
        .with_context(|| format!("reading {}", input.name))?;
    if !closed {
        let _ = tx.blocking_send(batch);
    }
    Ok(())
}
