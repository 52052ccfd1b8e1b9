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
    /// Memory all queries of this process may hold together, in MiB (sorts and aggregates spill to
    /// disk past it).
    #[arg(
        long,
        global = true,
        env = "IRIS_QUERY_MEMORY_MB",
        default_value_t = 2048
    )]
    query_memory: usize,
    /// Disk for query spill files, in MiB (0: no spilling; a query past its memory fails clearly).
    #[arg(
        long,
        global = true,
        env = "IRIS_QUERY_SPILL_MB",
        default_value_t = 65536
    )]
    query_spill: u64,
    /// Longest a query may run, in seconds.
    #[arg(long, global = true, env = "IRIS_QUERY_TIMEOUT", default_value_t = 300)]
    query_timeout: u64,
    /// Full-scan queries that may run at once (more wait for their turn).
    #[arg(long, global = true, env = "IRIS_HEAVY_QUERIES", default_value_t = 2)]
    heavy_queries: usize,
    /// Largest step a source's `source_seq` may take past its highest stored number (default 10⁹).
    #[arg(long, global = true, env = "IRIS_MAX_SEQ_JUMP")]
    max_seq_jump: Option<u64>,
    /// A second write-ahead log directory, on another device: every acknowledged batch is synced to
    /// both, and recovery reads a damaged segment from the other copy (remembered in DATA/wal-mirror).
    #[arg(long, global = true, env = "IRIS_WAL_MIRROR")]
    wal_mirror: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    fn query_limits(&self) -> iris_query::QueryLimits {
        iris_query::QueryLimits {
            memory_bytes: self.query_memory.max(1) << 20,
            spill_bytes: self.query_spill << 20,
            spill_dir: None,
            timeout: std::time::Duration::from_secs(self.query_timeout.max(1)),
            heavy_queries: self.heavy_queries.max(1),
            ..iris_query::QueryLimits::default()
        }
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
    Import(cmd::import::ImportArgs),
    /// Seal events left in the write-ahead log (after a crash, without starting the server).
    Seal,
    /// Check every partition and seal; exit 0 if all holds, 1 with one line per finding.
    Verify {
        /// A checkpoint exported earlier (JSON or C2SP note): the chain must still contain it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// A witness's key `NAME+HASH+KEY` (repeatable): the note `--checkpoint` must carry its
        /// cosignature, for at least `--quorum` of them.
        #[arg(long = "witness", requires = "checkpoint")]
        witnesses: Vec<String>,
        /// How many `--witness` cosignatures are required (default: all).
        #[arg(long, requires = "checkpoint")]
        quorum: Option<usize>,
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
    Prove(cmd::prove::ProveArgs),
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
    Trace(cmd::trace::TraceArgs),
    /// Run the HTTP server.
    Serve(cmd::serve::ServeArgs),
    /// Salvage a damaged write-ahead log: seal every intact frame, record and print what was lost.
    Recover(cmd::recover::RecoverArgs),
    /// Sources' sequence numbers: reset a source's next expected number (sealed), list high-water marks.
    #[command(subcommand)]
    Source(cmd::recover::SourceCommand),
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
    },
    /// Run a published report (sql/reports/), protected like any research query; without NAME, list them.
    Report {
        name: Option<String>,
        #[command(flatten)]
        answer: cmd::research::AnswerArgs,
    },
    /// The research projects' privacy budgets: spent, left (locally every project and the reports';
    /// with --server the token's project).
    Budget(cmd::research::BudgetArgs),
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
    // A command writing to a closed pipe (`iris sql … | head -1`) ends quietly, as other Unix tools
    // do, instead of panicking in println!. Not for the server: its sockets must never raise SIGPIPE.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve(_)) {
        // SAFETY: setting a signal's disposition to its default before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let dir = iris_store::datadir::DataDir::new(&cli.data, cli.store.clone())
        .with_max_seq_jump(cli.max_seq_jump)
        .with_wal_mirror(cli.wal_mirror.clone());
    let limits = cli.query_limits();
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
    let code = runtime.block_on(cmd::run(cli.command, dir, limits));
    std::process::exit(code);
}
