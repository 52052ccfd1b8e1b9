//! `iris gen`: synthetic events as JSON lines.

use anyhow::Context;
use chrono::NaiveDate;
use iris_ingest::generate::{GenConfig, Generator};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GenArgs {
    /// Number of events.
    #[arg(long, default_value_t = 10_000)]
    events: u64,
    /// Random seed (same seed, same events).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First day (YYYY-MM-DD).
    #[arg(long, default_value = "2025-01-01")]
    from: NaiveDate,
    /// Number of days.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Distinct persons (default events / 20).
    #[arg(long)]
    persons: Option<u64>,
    /// Output file (default standard output).
    #[arg(long, short)]
    out: Option<PathBuf>,
}

pub fn run(args: GenArgs) -> anyhow::Result<()> {
    let cfg = GenConfig {
        events: args.events,
        seed: args.seed,
        start: args.from,
        days: args.days,
        persons: args.persons,
        ..GenConfig::default()
    };
    let sink: Box<dyn Write> = match &args.out {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 20, sink);
    let bar = (args.out.is_some() && args.events >= 100_000)
        .then(|| crate::cmd::import::bar(args.events, "events"));
    for (i, e) in Generator::new(cfg).enumerate() {
        serde_json::to_writer(&mut w, &e)?;
        w.write_all(b"\n")?;
        if let Some(b) = &bar
            && i % 65_536 == 0
        {
            b.set_position(i as u64);
        }
    }
    w.flush()?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some(p) = args.out {
        eprintln!("wrote {} events to {}", args.events, p.display());
    }
    Ok(())
}
