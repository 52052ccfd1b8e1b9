//! `iris`: the command line of the Iris audit-log warehouse.

mod cmd;
mod samples;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Iris: a tamper-evident audit-log warehouse. Collect → seal → verify → query.
#[derive(Parser)]
#[command(name = "iris", version, about)]
struct Cli {
    /// Data directory (store, write-ahead log, keys, tokens).
    #[arg(long, global = true, env = "IRIS_DATA", default_value = "./iris-data")]
    data: PathBuf,
    /// Object store URL for partitions and chain (file:///dir, s3://bucket/prefix); default DATA/store.
    #[arg(long, global = true, env = "IRIS_STORE")]
    store: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a new signing key (and end the validity of the previous one).
    Keygen {
        /// Key id (default: generated from the date).
        #[arg(long)]
        id: Option<String>,
    },
    /// Import log files, validate them and seal them into partitions.
    Import(cmd::import::ImportArgs),
    /// Seal events left in the write-ahead log (after a crash, without starting the server).
    Seal,
    /// Check every partition and seal; exit 0 if all holds, 1 with one line per finding.
    Verify {
        /// A checkpoint exported earlier: the chain must still contain it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Rebuild the lookup indexes of sealed partitions that lack one or whose index is stale.
    Reindex {
        /// Rebuild every index, not only missing or stale ones.
        #[arg(long)]
        all: bool,
    },
    /// Export the signed head of the chain (keep it somewhere else).
    Checkpoint {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Run a SQL query over the sealed events (tables `events`, `rejections`).
    Sql {
        /// The query text (or use --file).
        #[arg(required_unless_present = "file")]
        query: Option<String>,
        /// Read the query from a file, e.g. one of `sql/examples/*.sql`.
        #[arg(long, conflicts_with = "query")]
        file: Option<PathBuf>,
        /// Do not use the lookup indexes (plain DataFusion scan; same answers, for comparison).
        #[arg(long)]
        no_index: bool,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: iris_query::OutputFormat,
    },
    /// Every event on one person, by one agent, or under one ticket, in time order (uses the index).
    Trace(cmd::trace::TraceArgs),
    /// Run the HTTP server.
    Serve(cmd::serve::ServeArgs),
    /// Write synthetic events (JSON lines) with a fixed seed.
    Gen(cmd::gen_events::GenArgs),
    /// Create an API token and print it (shown once).
    Token {
        /// admin or collector.
        #[arg(long)]
        role: iris_web::Role,
        /// The source a collector token may push events for.
        #[arg(long)]
        source: Option<String>,
    },
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IRIS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let dir = iris_store::datadir::DataDir::new(&cli.data, cli.store.clone());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(cmd::run(cli.command, dir));
    std::process::exit(code);
}
