//! `iris labour gen|import`: the labour-market tables — generate realistic data, import CSV files into
//! sealed partitions of the same chain as the events.

use anyhow::Context;
use iris_labour::generate::{LabourConfig, generate};
use iris_store::warehouse::Warehouse;
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum LabourCommand {
    /// Write declarations.csv, relations.csv and positions.csv of a synthetic population.
    Gen {
        /// Persons in the population.
        #[arg(long, default_value_t = 2_000)]
        persons: u64,
        /// First year (quarters start at its Q1).
        #[arg(long, default_value_t = 2024)]
        first_year: i32,
        /// Number of quarters.
        #[arg(long, default_value_t = 8)]
        quarters: u32,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Import CSV files: a directory holding `<table>.csv` files, or files named after their table.
    Import {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub async fn run(dir: iris_store::datadir::DataDir, command: LabourCommand) -> anyhow::Result<()> {
    match command {
        LabourCommand::Gen {
            persons,
            first_year,
            quarters,
            seed,
            out,
        } => {
            let cfg = LabourConfig {
                persons,
                first_year,
                quarters,
                seed,
            };
            let n = generate(&cfg, &out).with_context(|| format!("writing {}", out.display()))?;
            println!(
                "wrote {} declarations, {} relations, {} positions to {}",
                n.declarations,
                n.relations,
                n.positions,
                out.display()
            );
            Ok(())
        }
        LabourCommand::Import { paths } => {
            let mut files = Vec::new();
            for p in paths {
                if p.is_dir() {
                    for t in iris_labour::TABLES {
                        let f = p.join(format!("{}.csv", t.name));
                        if f.exists() {
                            files.push(f);
                        }
                    }
                } else {
                    files.push(p);
                }
            }
            if files.is_empty() {
                anyhow::bail!(
                    "no <table>.csv file found (tables: declarations, relations, positions)"
                );
            }
            let (wh, _) = Warehouse::open(dir).await?;
            let mut rejected = 0;
            for f in files {
                let text =
                    std::fs::File::open(&f).with_context(|| format!("reading {}", f.display()))?;
                let (n, summary) = import(&wh, &f, text).await?;
                println!("{summary}");
                rejected += n;
            }
            if rejected > 0 {
                anyhow::bail!("{rejected} row(s) rejected (see above); the others are sealed");
            }
            Ok(())
        }
    }
}

/// Imports one CSV file of the table its name gives, printing each rejected row. Returns the number
/// of rejected rows and a summary line.
pub async fn import(
    wh: &Warehouse,
    file: &Path,
    input: impl std::io::Read,
) -> anyhow::Result<(usize, String)> {
    let name = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let Some(table) = iris_labour::table(&name) else {
        anyhow::bail!(
            "{}: name the file after its table (declarations.csv, relations.csv, positions.csv)",
            file.display()
        );
    };
    let parsed = iris_labour::parse_csv(table, input)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    for r in parsed.rejected.iter().take(20) {
        eprintln!("{}:{}: rejected: {}", file.display(), r.line, r.reason);
    }
    if parsed.rejected.len() > 20 {
        eprintln!("… and {} more rejected rows", parsed.rejected.len() - 20);
    }
    let mut sealer = wh.sealer().lock().await;
    for (quarter, batch) in &parsed.batches {
        sealer.seal_table(table.name, quarter, batch).await?;
    }
    let summary = format!(
        "{}: {} rows of {} sealed in {} quarter partition(s), {} rejected",
        file.display(),
        parsed.accepted,
        table.name,
        parsed.batches.len(),
        parsed.rejected.len()
    );
    Ok((parsed.rejected.len(), summary))
}
