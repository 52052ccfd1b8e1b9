//! `iris research`, `iris report` and `iris budget`: differentially private aggregates of the
//! labour-market tables paid from a project's privacy budget, locally (the operator, naming the
//! project) or through a server (a researcher's token; the server logs the query in the chain).

use super::remote::RemoteArgs;
use anyhow::Context;
use iris_research::answer::AnswerFormat;
use iris_research::reports::{REPORTS, report, title};
use iris_research::{ProjectRules, ResearchDesk};
use std::io::Write;
use std::path::PathBuf;

/// Where the answer goes and how.
#[derive(clap::Args, Debug)]
pub struct AnswerArgs {
    /// table, csv, json or parquet.
    #[arg(long, default_value = "table")]
    pub format: AnswerFormat,
    /// Write to this file (required for parquet) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The project whose rules apply (local runs; with --server the token's project applies).
    #[arg(long)]
    pub project: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Runs a free query.
pub async fn research(
    dir: &iris_store::datadir::DataDir,
    sql: &str,
    args: &AnswerArgs,
    limits: &iris_query::QueryLimits,
) -> anyhow::Result<()> {
    if let Some(remote) = args.remote.remote()? {
        let body = serde_json::json!({"sql": sql, "format": format_name(args.format)});
        let bytes = remote.post_bytes("/v1/research/sql", &body).await?;
        return emit(&bytes, args);
    }
    let bytes = local(dir, sql, args, limits).await?;
    emit(&bytes, args)
}

/// Lists the reports, or runs one.
pub async fn report_cmd(
    dir: &iris_store::datadir::DataDir,
    name: Option<String>,
    args: &AnswerArgs,
    limits: &iris_query::QueryLimits,
) -> anyhow::Result<()> {
    let Some(name) = name else {
        for (name, sql) in REPORTS {
            println!("{name:<30} {}", title(sql));
        }
        return Ok(());
    };
    let Some(sql) = report(&name) else {
        anyhow::bail!(
            "no report `{name}` (reports: {})",
            REPORTS.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
        );
    };
    if let Some(remote) = args.remote.remote()? {
        let bytes = remote
            .get_bytes(
                &format!("/v1/reports/{name}"),
                &[("format", format_name(args.format).to_owned())],
            )
            .await?;
        return emit(&bytes, args);
    }
    eprintln!("{}", title(sql));
    let rules = ProjectRules::reports(&load_policies(dir)?.reports);
    let bytes = local_with(dir, sql, args, limits, Some(rules)).await?;
    emit(&bytes, args)
}

/// `iris budget`.
#[derive(clap::Args, Debug)]
pub struct BudgetArgs {
    /// Only this project (local runs).
    #[arg(long)]
    pub project: Option<String>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Prints what the projects have spent.
pub async fn budget_cmd(
    dir: &iris_store::datadir::DataDir,
    args: &BudgetArgs,
) -> anyhow::Result<()> {
    if let Some(remote) = args.remote.remote()? {
        let bytes = remote.get_bytes("/v1/research/budget", &[]).await?;
        std::io::stdout().write_all(&bytes)?;
        println!();
        return Ok(());
    }
    let policies = load_policies(dir)?;
    let mut rules: Vec<ProjectRules> = policies
        .projects
        .values()
        .filter(|p| args.project.as_ref().is_none_or(|x| *x == p.id))
        .map(ProjectRules::from)
        .collect();
    if args.project.is_none() {
        rules.push(ProjectRules::reports(&policies.reports));
    }
    if rules.is_empty() {
        anyhow::bail!("no such project in projects.toml");
    }
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>8} {:>12}",
        "project", "ρ budget", "ρ spent", "ρ left", "charges", "ε (δ=1e-9)"
    );
    for r in &rules {
        let s = iris_research::budget::Ledger::new(&dir.root, &r.id, r.budget_rho).status()?;
        println!(
            "{:<16} {:>10.4} {:>10.4} {:>10.4} {:>8} {:>12.2}",
            s.project, s.rho_total, s.rho_spent, s.rho_left, s.charges, s.epsilon_spent
        );
    }
    Ok(())
}

fn format_name(f: AnswerFormat) -> &'static str {
    match f {
        AnswerFormat::Table => "table",
        AnswerFormat::Csv => "csv",
        AnswerFormat::Json => "json",
        AnswerFormat::Parquet => "parquet",
    }
}

async fn local(
    dir: &iris_store::datadir::DataDir,
    sql: &str,
    args: &AnswerArgs,
    limits: &iris_query::QueryLimits,
) -> anyhow::Result<Vec<u8>> {
    local_with(dir, sql, args, limits, None).await
}

/// Runs `sql` locally under `rules`, or the named project's when `None`.
async fn local_with(
    dir: &iris_store::datadir::DataDir,
    sql: &str,
    args: &AnswerArgs,
    limits: &iris_query::QueryLimits,
    rules: Option<ProjectRules>,
) -> anyhow::Result<Vec<u8>> {
    let engine = iris_query::QueryEngine::new(dir.store()?).with_limits(limits.clone())?;
    let desk = ResearchDesk::new(engine, dir.root.clone());
    if let Some(rules) = rules {
        let answer = desk.answer(&rules, sql).await?;
        return answer.render(args.format).map_err(|e| anyhow::anyhow!(e));
    }
    let policies = load_policies(dir)?;
    let known = policies
        .projects
        .keys()
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let project = match &args.project {
        Some(p) => policies
            .projects
            .get(p)
            .with_context(|| format!("no project `{p}` in projects.toml (projects: {known})"))?,
        None => anyhow::bail!("name the project whose rules apply: --project (projects: {known})"),
    };
    let answer = desk.answer(&ProjectRules::from(project), sql).await?;
    answer.render(args.format).map_err(|e| anyhow::anyhow!(e))
}

fn load_policies(
    dir: &iris_store::datadir::DataDir,
) -> anyhow::Result<iris_access::policies::Policies> {
    iris_access::policies::Policies::load(&dir.root.join("access").join("policies"))
        .context("reading the research projects (DATA/access/policies/projects.toml)")
}

fn emit(bytes: &[u8], args: &AnswerArgs) -> anyhow::Result<()> {
    match &args.out {
        Some(path) => {
            std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("written to {}", path.display());
        }
        None if args.format == AnswerFormat::Parquet => {
            anyhow::bail!("Parquet is binary: give --out FILE")
        }
        None => std::io::stdout().write_all(bytes)?,
    }
    Ok(())
}
