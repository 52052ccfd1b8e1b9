//! The subcommands.

pub mod gen_events;
pub mod import;
pub mod keys;
pub mod labour;
pub mod opts;
pub mod prove;
pub mod recover;
pub mod remote;
pub mod research;
pub mod retention;
pub mod serve;
pub mod tls;
pub mod token;
pub mod trace;
pub mod witness;

use crate::Command;
use anyhow::Context;
use iris_store::datadir::DataDir;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// Runs one command; returns the process exit code (0 ok, 1 findings, 2 error).
pub async fn run(
    command: Command,
    dir: DataDir,
    limits: iris_query::QueryLimits,
    settings: crate::config::Settings,
) -> i32 {
    let result = match command {
        Command::Keygen { id } => keys::keygen(&dir, id).await,
        Command::Import { args, .. } => import::run(dir, args).await,
        Command::Seal { .. } => seal(dir).await,
        Command::Verify {
            checkpoint,
            witnesses,
            quorum,
            witness_urls,
            key,
        } => {
            let checkpoint = match latest_from_witnesses(&witness_urls).await {
                Ok(Some(p)) => Some(p),
                Ok(None) => checkpoint,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return 2;
                }
            };
            return verify(&dir, checkpoint, &witnesses, quorum, key.as_deref()).await;
        }
        Command::Retention(args) => retention::run(dir, args).await,
        Command::Checkpoint {
            out,
            format: prove::CheckpointFormat::Json,
            ..
        } => checkpoint(&dir, out).await,
        Command::Checkpoint {
            out,
            format,
            origin,
        } => prove::checkpoint(&dir, out, format, &origin).await,
        Command::Prove { args, .. } => prove::prove(&dir, args, &limits).await,
        Command::VerifyProof(args) => return prove::verify_proof(args),
        Command::Consistency(args) => return prove::consistency(&dir, args).await,
        Command::Witness(c) => witness::run(&dir, c).await,
        Command::Reindex { all, .. } => reindex(&dir, all).await,
        Command::Compact {
            months,
            target_rows,
            ..
        } => compact(dir, months, target_rows).await,
        Command::Sql {
            query,
            file,
            no_index,
            format,
            remote,
            ..
        } => match (query, file) {
            (Some(q), _) => sql(&dir, &q, format, !no_index, &limits, &remote).await,
            (None, Some(f)) => match std::fs::read_to_string(&f) {
                Ok(q) => sql(&dir, &q, format, !no_index, &limits, &remote).await,
                Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", f.display())),
            },
            (None, None) => Err(anyhow::anyhow!("give a query or --file")),
        },
        Command::Me {
            consultations,
            format,
            remote,
        } => me(consultations, format, &remote).await,
        Command::Serve(args) => serve::run(dir, args, limits, settings).await,
        Command::Recover { args, .. } => recover::recover(dir, args).await,
        Command::Source { command, .. } => recover::source(dir, command).await,
        Command::Trace { args, .. } => trace::run(&dir, args, &limits).await,
        Command::Gen(args) => gen_events::run(args),
        Command::Token(args) => token::run(&dir, args),
        Command::Labour(c) => labour::run(dir, c).await,
        Command::Research { sql, answer, .. } => {
            research::research(&dir, &sql, &answer, &limits).await
        }
        Command::Report { name, answer, .. } => {
            research::report_cmd(&dir, name, &answer, &limits).await
        }
        Command::Budget(args) => research::budget_cmd(&dir, &args).await,
        // Handled in main before any store is opened.
        Command::Config(_) => Ok(()),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

async fn seal(dir: DataDir) -> anyhow::Result<()> {
    let (_wh, recovery) = iris_store::warehouse::Warehouse::open(dir).await?;
    for q in &recovery.quarantined {
        eprintln!(
            "quarantined unsealed partition {q} (its events were still in the write-ahead log)"
        );
    }
    let s = recovery.sealed;
    println!(
        "sealed {} events and {} rejections into {} partitions ({} already sealed, skipped)",
        s.events, s.rejections, s.partitions, s.duplicates
    );
    Ok(())
}

async fn compact(dir: DataDir, months: Vec<String>, target_rows: u64) -> anyhow::Result<()> {
    for m in &months {
        if chrono::NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").is_err() {
            anyhow::bail!("--month {m}: expected YYYY-MM");
        }
    }
    let started = std::time::Instant::now();
    // Issue 16: the Merkle heads of the daily files are computed (and remembered) before compaction
    // deletes them; a file that cannot give its head is left for the compaction to refuse.
    if let Err(e) = prove::remember_heads(&dir).await {
        eprintln!("warning: Merkle heads not computed before compaction: {e:#}");
    }
    let (wh, _recovery) = iris_store::warehouse::Warehouse::open(dir).await?;
    let opts = iris_store::compact::CompactOptions {
        months,
        target_rows,
        ..Default::default()
    };
    let summary = wh.sealer().lock().await.compact(&opts).await?;
    if summary.leftovers_removed > 0 {
        eprintln!(
            "removed {} files replaced by an earlier, interrupted compaction",
            summary.leftovers_removed
        );
    }
    for m in &summary.months {
        println!(
            "{}: {} rows, {} files ({:.1} MB) -> {} files ({:.1} MB, {:.1} bytes/event), seal #{}",
            m.month,
            m.rows,
            m.replaced,
            m.bytes_before as f64 / 1e6,
            m.written,
            m.bytes_after as f64 / 1e6,
            m.bytes_after as f64 / m.rows.max(1) as f64,
            m.seal
        );
    }
    if summary.months.is_empty() {
        println!(
            "nothing to compact (months before {} hold no daily partitions; name one with --month)",
            opts.before
        );
    } else {
        println!(
            "compacted {} months in {:.2}s",
            summary.months.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn reindex(dir: &DataDir, all: bool) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let (wh, _) = import::open_warehouse(dir.clone()).await?;
    let summary = iris_store::reindex::reindex(&mut *wh.sealer().lock().await, all).await?;
    for (path, why) in &summary.refused {
        eprintln!("not indexed {path}: {why}");
    }
    println!(
        "reindexed {} partitions, {} indexes already current, {} older indexes sealed as they are, {} refused, in {:.2}s",
        summary.rebuilt,
        summary.kept,
        summary.adopted,
        summary.refused.len(),
        started.elapsed().as_secs_f64()
    );
    if summary.refused.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} partitions could not be indexed", summary.refused.len())
    }
}

/// `verify --witness-url`: the largest of the checkpoints the witnesses last cosigned for this log,
/// written to a temporary note file for the `--checkpoint` check (`None` without URLs).
async fn latest_from_witnesses(urls: &[String]) -> anyhow::Result<Option<std::path::PathBuf>> {
    use anyhow::Context as _;
    if urls.is_empty() {
        return Ok(None);
    }
    let origin = iris_proof::log::origin_from_env();
    let client = reqwest::Client::new();
    let mut best: Option<(u64, String)> = None;
    for url in urls {
        let endpoint = format!("{}/latest", url.trim_end_matches('/'));
        let r = client
            .get(&endpoint)
            .query(&[("origin", origin.as_str())])
            .send()
            .await
            .with_context(|| format!("GET {endpoint}"))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if !status.is_success() {
            anyhow::bail!("{endpoint}: {status}: {}", text.trim());
        }
        let cp = iris_proof::note::SignedCheckpoint::parse(&text)
            .with_context(|| format!("{endpoint}: not a signed checkpoint"))?;
        if best.as_ref().is_none_or(|(size, _)| cp.body.size > *size) {
            best = Some((cp.body.size, text));
        }
    }
    let Some((_, text)) = best else {
        return Ok(None);
    };
    let path = std::env::temp_dir().join(format!("iris-witnessed-{}.note", std::process::id()));
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(Some(path))
}

async fn verify(
    dir: &DataDir,
    checkpoint: Option<std::path::PathBuf>,
    witnesses: &[String],
    quorum: Option<usize>,
    key: Option<&str>,
) -> i32 {
    let run = async {
        let loc = dir.store()?;
        // The trust anchor (issue 16): the published genesis key, as raw hex.
        let anchor = key.map(prove::anchor_key).transpose()?;
        let ring = dir.keys().keyring()?;
        if ring.keys.is_empty() {
            anyhow::bail!(
                "keyring {} is empty: nothing can be verified without the public keys",
                dir.keys().keyring_path().display()
            );
        }
        // A C2SP note (issue 16) is checked against the Merkle tree of the seals; JSON as before.
        let (note, checkpoint) = match checkpoint {
            Some(p) if prove::is_note(&p) => (Some(p), None),
            other => (None, other),
        };
        if !witnesses.is_empty() && note.is_none() {
            anyhow::bail!(
                "--witness needs a signed note as --checkpoint (a JSON checkpoint has no cosignatures)"
            );
        }
        let cp = checkpoint
            .map(|p| iris_store::checkpoint::Checkpoint::load(&p))
            .transpose()?;
        let started = std::time::Instant::now();
        let progress = Arc::new(AtomicU64::new(0));
        let mut report = iris_store::verify::verify_anchored(
            &loc,
            &ring,
            anchor.as_deref(),
            cp.as_ref(),
            progress,
        )
        .await?;
        report
            .findings
            .extend(iris_store::wal_replay::verify_wal(&dir.wal_dir(), &loc).await?);
        if let Some(p) = &note {
            report
                .findings
                .extend(prove::note_findings(dir, &report.trusted, p, witnesses, quorum).await?);
        }
        Ok((report, started.elapsed()))
    };
    match run.await {
        Ok((report, took)) => {
            for f in &report.findings {
                println!("{f}");
            }
            // Throughput over everything hashed (files and their index blobs), start to end.
            let mb = report.hashed as f64 / 1e6;
            let summary = format!(
                "{} seals, {} partitions, {:.1} MB of files, {:.1} MB hashed with their indexes in {:.2}s ({:.0} MB/s)",
                report.seals,
                report.partitions,
                report.bytes as f64 / 1e6,
                mb,
                took.as_secs_f64(),
                mb / took.as_secs_f64().max(1e-9)
            );
            if report.ok() {
                let notices = report.findings.len();
                if notices > 0 {
                    println!("OK: {summary}; {notices} file(s) pruned by signed retention runs");
                } else {
                    println!("OK: {summary}");
                }
                0
            } else {
                let failing = report
                    .findings
                    .iter()
                    .filter(|f| !f.kind.is_notice())
                    .count();
                eprintln!("{failing} finding(s): {summary}");
                1
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

async fn checkpoint(dir: &DataDir, out: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let loc = dir.store()?;
    let seals = iris_store::chain::read_chain(&loc).await?;
    let signer = dir.keys().active_signer()?;
    let cp = iris_store::checkpoint::Checkpoint::of(&seals, &signer);
    let json = serde_json::to_string_pretty(&cp)?;
    match out {
        Some(path) => {
            std::fs::write(&path, json + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "checkpoint of {} seals written to {}",
                cp.seals,
                path.display()
            );
        }
        None => println!("{json}"),
    }
    Ok(())
}

async fn sql(
    dir: &DataDir,
    query: &str,
    format: iris_query::OutputFormat,
    use_index: bool,
    limits: &iris_query::QueryLimits,
    remote: &remote::RemoteArgs,
) -> anyhow::Result<()> {
    if let Some(remote) = remote.remote()? {
        let answer = remote
            .post(
                "/v1/sql",
                &serde_json::json!({
                    "sql": query,
                    "deliberation": remote.deliberation,
                    "case": remote.case_ref,
                }),
            )
            .await?;
        let n = remote::print_rows(&answer["rows"], format)?;
        eprintln!(
            "{n} rows (scope: {})",
            answer["scope"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let engine = iris_query::QueryEngine::new(dir.store()?)
        .with_index(use_index)
        .with_limits(limits.clone())?;
    let batches = engine
        .sql(query)
        .await
        .map_err(|e| anyhow::anyhow!(e.user_message()))?;
    let text = iris_query::render(&batches, format)?;
    println!("{text}");
    Ok(())
}

/// `iris me [--consultations] --server URL --token T`.
async fn me(
    consultations: bool,
    format: iris_query::OutputFormat,
    remote: &remote::RemoteArgs,
) -> anyhow::Result<()> {
    let Some(remote) = remote.remote()? else {
        anyhow::bail!(
            "`iris me` asks a server: give --server URL and --token (or IRIS_SERVER, IRIS_TOKEN)"
        );
    };
    if consultations {
        let answer = remote.get("/v1/me/consultations", &[]).await?;
        let n = remote::print_rows(&answer["consultations"], format)?;
        eprintln!(
            "{n} consultations ({})",
            answer["rule"].as_str().unwrap_or("?")
        );
    } else {
        let answer = remote.get("/v1/me", &[]).await?;
        println!("{}", serde_json::to_string_pretty(&answer)?);
    }
    Ok(())
}
