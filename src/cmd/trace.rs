//! `iris trace --subject X | --actor A | --ticket T [--from DAY --to DAY]`.

use clap::{ArgGroup, Args};
use iris_query::{OutputFormat, QueryEngine, TraceKey, TraceRequest};
use iris_store::datadir::DataDir;

/// Arguments of `iris trace`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("key").required(true).args(["subject", "actor", "ticket"])))]
pub struct TraceArgs {
    /// A person or enterprise: NISS, BCE/KBO or ONSS number.
    #[arg(long)]
    subject: Option<String>,
    /// An agent or application id.
    #[arg(long)]
    actor: Option<String>,
    /// A ticket: the message's whole path across sources.
    #[arg(long)]
    ticket: Option<String>,
    /// First day (YYYY-MM-DD, inclusive).
    #[arg(long)]
    from: Option<chrono::NaiveDate>,
    /// Last day (YYYY-MM-DD, inclusive).
    #[arg(long)]
    to: Option<chrono::NaiveDate>,
    /// Most events shown.
    #[arg(long)]
    limit: Option<usize>,
    /// table, csv or json.
    #[arg(long, default_value = "table")]
    format: OutputFormat,
    /// Do not use the lookup indexes (same answer, slower; for comparison).
    #[arg(long)]
    no_index: bool,
    #[command(flatten)]
    remote: crate::cmd::remote::RemoteArgs,
}

/// Runs the trace and prints it.
pub async fn run(
    dir: &DataDir,
    args: TraceArgs,
    limits: &iris_query::QueryLimits,
) -> anyhow::Result<()> {
    let key = match (args.subject, args.actor, args.ticket) {
        (Some(s), _, _) => TraceKey::Subject(s),
        (_, Some(a), _) => TraceKey::Actor(a),
        (_, _, Some(t)) => TraceKey::Ticket(t),
        _ => anyhow::bail!("give --subject, --actor or --ticket"),
    };
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from > to
    {
        anyhow::bail!("--from {from} is after --to {to}");
    }
    if let Some(remote) = args.remote.remote()? {
        let (name, value) = match &key {
            TraceKey::Subject(v) => ("subject", v),
            TraceKey::Actor(v) => ("actor", v),
            TraceKey::Ticket(v) => ("ticket", v),
        };
        let mut q = vec![(name, value.clone())];
        let days = [("from", args.from), ("to", args.to)];
        q.extend(
            days.iter()
                .filter_map(|(k, d)| d.map(|d| (*k, d.to_string()))),
        );
        q.extend(args.limit.map(|l| ("limit", l.to_string())));
        q.extend(remote.deliberation.clone().map(|d| ("deliberation", d)));
        q.extend(remote.case_ref.clone().map(|c| ("case", c)));
        let answer = remote.get("/v1/trace", &q).await?;
        let n = crate::cmd::remote::print_rows(&answer["events"], args.format)?;
        eprintln!(
            "{n} events (scope: {})",
            answer["scope"].as_str().unwrap_or("?")
        );
        return Ok(());
    }
    let req = TraceRequest {
        key,
        from: args.from,
        to: args.to,
        limit: args.limit,
        after: None,
    };
    let engine = QueryEngine::new(dir.store()?)
        .with_index(!args.no_index)
        .with_limits(limits.clone())?;
    let batches = engine
        .trace(&req)
        .await
        .map_err(|e| anyhow::anyhow!(e.user_message()))?;
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    // An empty table prints nothing; CSV and JSON still print their (empty) document.
    if n > 0 || !matches!(args.format, OutputFormat::Table) {
        println!("{}", iris_query::render(&batches, args.format)?);
    }
    eprintln!("{n} events");
    Ok(())
}
