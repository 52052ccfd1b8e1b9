//! `iris import`: read log files, validate every record, seal the accepted ones.
//!
//! The work is done by [`iris_import`] (chunks parsed and validated on every core, sealed in input
//! order while the next ones are parsed); this module opens the files and reports. Nothing is
//! acknowledged before the summary: an interrupted import is simply run again (what was sealed is
//! recognised by `source`/`source_seq` and counted as already stored).

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use iris_ingest::formats::Format;
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

pub use iris_import::Totals;

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

/// Imports every input in order through the parallel pipeline ([`iris_import`]), printing rejected
/// records (up to `show`) on standard error and a progress bar for large files.
pub async fn import(wh: &Warehouse, inputs: Vec<Input>, show: usize) -> anyhow::Result<Totals> {
    let total: u64 = inputs.iter().filter_map(|i| i.len).sum();
    let progress = if total > 8 << 20 {
        bar(total, "bytes")
    } else {
        ProgressBar::hidden()
    };
    let inputs = inputs
        .into_iter()
        .map(|i| iris_import::Input {
            name: i.name,
            format: i.format,
            reader: Box::new(progress.wrap_read(i.reader)),
        })
        .collect();
    let mut shown = 0usize;
    let totals = iris_import::import(
        wh,
        inputs,
        &iris_import::Options::default(),
        |name, line, reason| {
            if shown < show {
                progress.suspend(|| eprintln!("rejected {name}:{line}: {reason}"));
            }
            shown += 1;
        },
    )
    .await?;
    progress.finish_and_clear();
    if shown > show {
        eprintln!(
            "… and {} more rejected records (--all-rejections to list them)",
            shown - show
        );
    }
    Ok(totals)
}
