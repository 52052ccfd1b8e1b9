//! `iris`: the command line of the Iris audit-log warehouse.

mod cmd;
mod config;
mod samples;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;

/// Iris: a tamper-evident audit-log warehouse. Collect → seal → verify → query.
#[derive(Parser)]
#[command(name = "iris", version, about)]
struct Cli {
    /// Data directory (store, write-ahead log, keys, tokens) [default: ./iris-data; `store.data`].
    #[arg(long, global = true, env = "IRIS_DATA")]
    data: Option<PathBuf>,
    /// Object store URL for partitions and chain (file:///dir, s3://bucket/prefix); default DATA/store
    /// [`store.url`].
    #[arg(long, global = true, env = "IRIS_STORE")]
    store: Option<String>,
    /// Configuration file (see README "Configuration") [default: ./iris.toml when it exists].
    #[arg(long, global = true, env = "IRIS_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// The values given on the command line (or read by clap from the environment).
    fn overrides(&self) -> config::Overrides {
        let mut o = config::Overrides::default();
        o.set(
            "store.data",
            "data",
            self.data.as_ref().map(|p| p.display().to_string()),
        );
        o.set("store.url", "store", self.store.clone());
        match &self.command {
            Command::Sql { limits: q, .. }
            | Command::Trace { limits: q, .. }
            | Command::Prove { limits: q, .. }
            | Command::Research { limits: q, .. }
            | Command::Report { limits: q, .. } => q.overrides(&mut o),
            Command::Serve(a) => a.overrides(&mut o),
            Command::Import { wal, .. }
            | Command::Seal { wal }
            | Command::Reindex { wal, .. }
            | Command::Compact { wal, .. }
            | Command::Recover { wal, .. }
            | Command::Source { wal, .. } => wal.overrides(&mut o),
            _ => {}
        }
        o
    }
}

#[derive(Subcommand)]
enum Command {
    /// Make the store's first signing key, or rotate: a new key introduced by an entry of the log
    /// signed by the outgoing key (which it retires).
    Keygen {
        /// Key id (default: generated from the date).
        #[arg(long)]
        id: Option<String>,
    },
    /// Import log files, validate them and seal them into partitions.
    Import {
        #[command(flatten)]
        args: cmd::import::ImportArgs,
        #[command(flatten)]
        wal: cmd::opts::WalOpts,
    },
    /// Seal events left in the write-ahead log (after a crash, without starting the server).
    Seal {
        #[command(flatten)]
        wal: cmd::opts::WalOpts,
    },
    /// Check every partition and seal; exit 0 if all holds, 1 with one line per finding.
    Verify {
        /// A checkpoint exported earlier (JSON or C2SP note): the chain must still contain it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A witness's key `NAME+HASH+KEY` (repeatable): the note `--checkpoint` (or the one fetched
        /// with `--witness-url`) must carry its cosignature, for at least `--quorum` of them.
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// How many `--witness` cosignatures are required (default: all).
        #[arg(long)]
        quorum: Option<usize>,
        /// A witness's URL (repeatable): the last checkpoint it cosigned is fetched (`GET /latest`) and
        /// checked like `--checkpoint` — a store rolled back or cut short is caught with no file kept
        /// by hand.
        #[arg(long = "witness-url", conflicts_with = "checkpoint")]
        witness_urls: Vec<String>,
        /// The log's published genesis public key (64 hex digits, `ORIGIN+HASH+KEY`, or a file holding
        /// either): the trust anchor; later keys are trusted only through rotation entries.
        #[arg(long)]
        key: Option<String>,
    },
    /// Delete expired event files under a signed retention entry (their seals and Merkle heads stay).
    Retention(cmd::retention::RetentionArgs),
    /// Rebuild the lookup indexes of sealed partitions that lack one or whose index is stale.
    Reindex {
        /// Rebuild every index, not only missing or stale ones.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        wal: cmd::opts::WalOpts,
    },
    /// Rewrite whole months of daily partitions into large files sorted by subject, under one signed
    /// compaction seal (default: every month before the current one).
    Compact {
        /// Compact this month (YYYY-MM), even the current one; repeatable.
        #[arg(long = "month", value_name = "YYYY-MM")]
        months: Vec<String>,
        /// Rows per compacted file: a month is split into ceil(rows / N) buckets of subjects.
        #[arg(long, default_value_t = iris_store::compact::TARGET_ROWS_PER_FILE)]
        target_rows: u64,
        #[command(flatten)]
        wal: cmd::opts::WalOpts,
    },
    /// Export the signed head of the chain (keep it somewhere else).
    Checkpoint {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// json (Iris's chain head, for `verify --checkpoint`), note (C2SP tlog-checkpoint over the
        /// Merkle tree of the seals) or vkey (the note's verifier key).
        #[arg(long, value_enum, default_value = "json")]
        format: cmd::prove::CheckpointFormat,
        /// The log's origin in a note checkpoint (and its key's name).
        #[arg(long, env = "IRIS_ORIGIN", default_value = cmd::prove::DEFAULT_ORIGIN)]
        origin: String,
    },
    /// A self-contained proof that events are in the log (checked offline by `verify-proof`).
    Prove {
        #[command(flatten)]
        args: cmd::prove::ProveArgs,
        #[command(flatten)]
        limits: cmd::opts::QueryOpts,
    },
    /// Check a proof bundle offline, without the store: exit 0 (holds), 1 (does not), 2 (unreadable).
    VerifyProof(cmd::prove::VerifyProofArgs),
    /// Prove that the log at checkpoint NEW extends the log at checkpoint OLD (exit 0, else 1).
    Consistency(cmd::prove::ConsistencyArgs),
    /// A witness (C2SP tlog-witness) with its own key and state; have witnesses cosign a checkpoint.
    #[command(subcommand)]
    Witness(cmd::witness::WitnessCommand),
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
        #[command(flatten)]
        remote: cmd::remote::RemoteArgs,
        #[command(flatten)]
        limits: cmd::opts::QueryOpts,
    },
    /// Who a token stands for (`--server`), or a citizen's consultations (`--consultations`).
    Me {
        /// Which institution consulted my data in the last months (citizen token).
        #[arg(long)]
        consultations: bool,
        /// table, csv or json.
        #[arg(long, default_value = "table")]
        format: iris_query::OutputFormat,
        #[command(flatten)]
        remote: cmd::remote::RemoteArgs,
    },
    /// Every event on one person, by one agent, or under one ticket, in time order (uses the index).
    Trace {
        #[command(flatten)]
        args: cmd::trace::TraceArgs,
        #[command(flatten)]
        limits: cmd::opts::QueryOpts,
    },
    /// Run the HTTP server.
    Serve(cmd::serve::ServeArgs),
    /// Salvage a damaged write-ahead log: seal every intact frame, record and print what was lost.
    Recover {
        #[command(flatten)]
        args: cmd::recover::RecoverArgs,
        #[command(flatten)]
        wal: cmd::opts::WalOpts,
    },
    /// Sources' sequence numbers: reset a source's next expected number (sealed), list high-water marks.
    Source {
        #[command(subcommand)]
        command: cmd::recover::SourceCommand,
        #[command(flatten)]
        wal: cmd::opts::WalOpts,
    },
    /// Write synthetic events (JSON lines) with a fixed seed.
    Gen(cmd::gen_events::GenArgs),
    /// Create an API token and print it (shown once), list tokens, or revoke one.
    Token(cmd::token::TokenArgs),
    /// The labour-market tables: generate synthetic data, import CSV files.
    #[command(subcommand)]
    Labour(cmd::labour::LabourCommand),
    /// An aggregate query over the labour-market tables, released with differential privacy from a
    /// project's budget.
    Research {
        /// One SELECT of aggregates, e.g. "SELECT region, COUNT(DISTINCT worker) FROM declarations GROUP BY region".
        sql: String,
        #[command(flatten)]
        answer: cmd::research::AnswerArgs,
        #[command(flatten)]
        limits: cmd::opts::QueryOpts,
    },
    /// Run a published report (sql/reports/), protected like any research query; without NAME, list them.
    Report {
        name: Option<String>,
        #[command(flatten)]
        answer: cmd::research::AnswerArgs,
        #[command(flatten)]
        limits: cmd::opts::QueryOpts,
    },
    /// The research projects' privacy budgets: spent, left (locally every project and the reports';
    /// with --server the token's project).
    Budget(cmd::research::BudgetArgs),
    /// The configuration file (`iris.toml`): check it, show the effective settings, list the keys.
    #[command(subcommand)]
    Config(cmd::opts::ConfigCommand),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IRIS_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    config::remember(matches);
    let overrides = cli.overrides();
    let file = config::file_path(cli.config.as_deref());
    if let Command::Config(c) = cli.command {
        std::process::exit(cmd::opts::config(c, cli.config.as_deref(), &overrides));
    }
    let resolved = match config::resolve(file.as_deref(), &overrides) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let settings = resolved.settings;
    // A command writing to a closed pipe (`iris sql … | head -1`) ends quietly, as other Unix tools
    // do, instead of panicking in println!. Not for the server: its sockets must never raise SIGPIPE.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve(_)) {
        // SAFETY: setting a signal's disposition to its default before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let dir = iris_store::datadir::DataDir::new(&settings.store.data, settings.store.url.clone())
        .with_max_seq_jump(Some(match settings.ingest.max_seq_jump {
            // The file's integers stop at 2⁶³−1 (TOML): that value, or a larger one given as a flag or
            // in the environment, means no limit at all.
            j if j >= i64::MAX as u64 => u64::MAX,
            j => j,
        }))
        .with_wal_mirror(settings.ingest.wal_mirror.clone());
    let limits = settings.query.limits();
    // Large stacks: deep (but accepted) plans are walked recursively by the query engine.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(16 << 20)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(cmd::run(cli.command, dir, limits, settings));
    std::process::exit(code);
}
