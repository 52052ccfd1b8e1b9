//! `iris recover` (salvage a damaged write-ahead log) and `iris source reset` (move a source's next
//! expected `source_seq`, as a sealed, audited decision).

use crate::cmd::import::open_warehouse;
use iris_store::datadir::DataDir;
use iris_store::warehouse::Warehouse;

/// `iris source …`.
#[derive(clap::Subcommand)]
pub enum SourceCommand {
    /// Set the next `source_seq` expected from a source (e.g. after a wild number jammed it). The reset
    /// is sealed in the chain with who and why; numbers it skips are accounted for, not gaps. Only
    /// forward (or below wild numbers only), within --max-seq-jump, and for a known source unless --new.
    Reset {
        /// The source code.
        source: String,
        /// The next number the source will send.
        #[arg(long)]
        next: u64,
        /// Why (kept in the seal).
        #[arg(long, default_value = "")]
        reason: String,
        /// Who decides (kept in the seal; default: $USER).
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
        /// The source has sent nothing yet (otherwise an unknown source is refused, as a likely typo).
        #[arg(long)]
        new: bool,
    },
    /// Show each source's high-water mark as sealed.
    List,
}

/// `iris recover` options.
#[derive(clap::Args, Default)]
pub struct RecoverArgs {
    /// Go on when acknowledged events were lost that cannot be named by source and number (the
    /// acknowledgement record is damaged too): the loss is sealed by segment, offset and bytes, and
    /// `iris verify` reports it as LOST.
    #[arg(long)]
    pub accept_unidentified_loss: bool,
}

/// `iris recover`: seal every intact frame of the WAL, record and print what was lost.
pub async fn recover(dir: DataDir, args: RecoverArgs) -> anyhow::Result<()> {
    let (_wh, s) = Warehouse::recover(dir.clone(), args.accept_unidentified_loss).await?;
    for d in &s.damage {
        println!("damaged: {d}");
    }
    println!(
        "salvaged {} intact frames: sealed {} events and {} rejections into {} partitions ({} already sealed)",
        s.frames, s.sealed.events, s.sealed.rejections, s.sealed.partitions, s.sealed.duplicates
    );
    if s.damage.is_empty() {
        println!("the write-ahead log had no damage: nothing lost");
        return Ok(());
    }
    let total: u64 = s.lost.iter().map(|l| l.count()).sum();
    for d in s.damage.iter().filter(|d| d.unidentified) {
        println!(
            "lost: UNIDENTIFIED acknowledged events in {} bytes at offset {} of {} (sealed as a loss record)",
            d.len,
            d.offset,
            d.segment.display()
        );
    }
    for l in &s.lost {
        println!("lost: {}", l.describe());
    }
    println!(
        "{total} acknowledged sequence numbers lost, recorded in the chain (`iris verify` reports them as LOST); damaged segments kept in {}",
        dir.root.join("wal-damaged").display()
    );
    Ok(())
}

/// `iris source reset | list`.
pub async fn source(dir: DataDir, cmd: SourceCommand) -> anyhow::Result<()> {
    let (wh, _) = open_warehouse(dir).await?;
    let mut sealer = wh.sealer().lock().await;
    match cmd {
        SourceCommand::Reset {
            source,
            next,
            reason,
            by,
            new,
        } => {
            let note = format!(
                "by {by}{}{reason}",
                if reason.is_empty() { "" } else { ": " }
            );
            let seal = sealer.reset_source(&source, next, &note, new).await?;
            println!(
                "source `{source}`: next source_seq {next}, sealed as seal #{} ({})",
                seal.n, seal.note
            );
        }
        SourceCommand::List => {
            let mut sources: Vec<_> = sealer
                .sealed()
                .sources()
                .map(|(name, st)| (name.to_owned(), st.highest()))
                .collect();
            sources.sort();
            for (name, highest) in sources {
                match highest {
                    Some(h) => println!("{name}\t{h}"),
                    None => println!("{name}\t-"),
                }
            }
        }
    }
    Ok(())
}
