//! `iris retention --before DATE [--dry-run]`: expired event files deleted under a signed retention
//! entry of the chain (issue 16); their seals and Merkle heads stay, so the log still verifies.

use iris_store::datadir::DataDir;
use iris_store::retention::{NaiveDate, RetentionSummary};

/// Arguments of `iris retention`.
#[derive(clap::Args, Debug)]
pub struct RetentionArgs {
    /// Delete event files whose rows all fall before this day (YYYY-MM-DD).
    #[arg(long, value_name = "YYYY-MM-DD", required_unless_present = "days")]
    before: Option<String>,
    /// Or: keep this many days (the cut-off is today minus DAYS, UTC).
    #[arg(long, conflicts_with = "before")]
    days: Option<u32>,
    /// Say what would be deleted; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The cut-off of a `--retention-days N` policy: today (UTC) minus `days`.
pub fn cut_off(days: u32) -> NaiveDate {
    chrono::Utc::now().date_naive() - chrono::Days::new(u64::from(days))
}

/// `iris retention`.
pub async fn run(dir: DataDir, args: RetentionArgs) -> anyhow::Result<()> {
    let before = match (&args.before, args.days) {
        (Some(d), _) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| anyhow::anyhow!("--before {d}: expected YYYY-MM-DD"))?,
        (None, Some(n)) => cut_off(n),
        (None, None) => anyhow::bail!("give --before YYYY-MM-DD or --days N"),
    };
    if before > chrono::Utc::now().date_naive() + chrono::Days::new(1) {
        anyhow::bail!(
            "--before {before} is in the future: retention deletes only what has expired"
        );
    }
    let (wh, _) = crate::cmd::import::open_warehouse(dir).await?;
    let s =
        iris_proof::log::prune_expired(&wh, before, &crate::cmd::keys::operator(), args.dry_run)
            .await?;
    print_summary(&s, args.dry_run);
    Ok(())
}

/// What a run did, one line per file and a total.
pub fn print_summary(s: &RetentionSummary, dry_run: bool) {
    let verb = if dry_run { "would delete" } else { "deleted" };
    for e in &s.expired {
        println!(
            "{verb} {} ({} rows, {} bytes, sha256 {})",
            e.file.path,
            e.file.rows,
            e.file.bytes,
            &e.file.sha256[..e.file.sha256.len().min(16)]
        );
    }
    for p in &s.leftovers {
        println!(
            "{} {p} (pruned by an earlier, interrupted run)",
            if dry_run { "would remove" } else { "removed" }
        );
    }
    let before = s.before.map(|d| d.to_string()).unwrap_or_default();
    match (s.days(), s.seal) {
        (None, _) => println!("nothing to prune before {before}"),
        (Some((a, b)), seal) => println!(
            "{verb} {} files: {} events and {} refused records of {a}…{b} ({:.1} MB), before {before}{}",
            s.expired.len(),
            s.events(),
            s.rejections(),
            s.bytes() as f64 / 1e6,
            seal.map(|n| format!("; retention seal #{n}"))
                .unwrap_or_default()
        ),
    }
}
