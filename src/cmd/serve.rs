//! `iris serve`: the HTTP API; with `--demo`, a ready-to-try instance on the sample data.

use crate::cmd::import::{Input, import, open_warehouse, print_totals};
use iris_web::{Role, ServerConfig, TokenStore};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Demo mode: make a key if there is none, import the sample data into an empty store, print tokens.
    #[arg(long)]
    demo: bool,
    /// Seal waiting events at least this often (seconds).
    #[arg(long, default_value_t = 10)]
    seal_interval: u64,
    /// Seal early once this many events are waiting.
    #[arg(long, default_value_t = 500_000)]
    seal_threshold: u64,
    /// Answer queries without the lookup indexes (plain DataFusion, same answers; for comparisons).
    #[arg(long)]
    no_index: bool,
}

pub async fn run(
    dir: iris_store::datadir::DataDir,
    args: ServeArgs,
    query_limits: iris_query::QueryLimits,
) -> anyhow::Result<()> {
    if args.demo {
        dir.create()?;
        if dir.keys().keyring()?.keys.is_empty() {
            let k = dir.keys().generate(None)?;
            eprintln!("demo: made signing key `{}`", k.id);
        }
    }
    let (wh, _) = open_warehouse(dir.clone()).await?;
    if args.demo {
        let empty = wh.sealer().lock().await.seal_count() == 0;
        if empty {
            let started = std::time::Instant::now();
            let inputs: Vec<Input> = crate::samples::all()?
                .into_iter()
                .map(|(name, format, text)| Input {
                    name: name.into(),
                    format,
                    reader: Box::new(text.as_bytes()),
                    len: None,
                })
                .collect();
            let totals = import(&wh, inputs, 0).await?;
            eprint!("demo: sample data: ");
            print_totals(&totals, started.elapsed().as_secs_f64());
        }
        let tokens = TokenStore::new(&dir.tokens_path());
        let (_, admin) = tokens.create(Role::Admin, None)?;
        let (_, collector) = tokens.create(Role::Collector, Some("demo".into()))?;
        println!("demo admin token:     {admin}");
        println!("demo collector token: {collector}   (source `demo`)");
    }
    let config = ServerConfig {
        listen: args.listen,
        seal_interval: Duration::from_secs(args.seal_interval.max(1)),
        seal_threshold: args.seal_threshold.max(1),
        query_limits,
        no_index: args.no_index,
    };
    iris_web::serve(wh, config, |addr| {
        println!("Iris listening on http://{addr}");
        println!("  try: curl -s http://{addr}/v1/health");
        let _ = std::io::stdout().flush();
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}
