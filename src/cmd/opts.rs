//! Option groups shared by several commands, each flattened only into the commands it applies to (so
//! `--help` shows a command's own options). Every value may also come from `iris.toml` or the
//! environment: see `crate::config`.

use crate::config::Overrides;
use std::path::PathBuf;

/// Query limits: for the commands that run queries.
#[derive(clap::Args, Debug, Default)]
pub struct QueryOpts {
    /// Memory all queries of this process may hold together, in MiB (sorts and aggregates spill to
    /// disk past it) [default: 2048; `query.memory_mb`].
    #[arg(long, env = "IRIS_QUERY_MEMORY_MB")]
    pub query_memory: Option<u64>,
    /// Disk for query spill files, in MiB (0: no spilling; a query past its memory fails clearly)
    /// [default: 65536; `query.spill_mb`].
    #[arg(long, env = "IRIS_QUERY_SPILL_MB")]
    pub query_spill: Option<u64>,
    /// Longest a query may run, in seconds [default: 300; `query.timeout_s`].
    #[arg(long, env = "IRIS_QUERY_TIMEOUT")]
    pub query_timeout: Option<u64>,
    /// Full-scan queries that may run at once (more wait for their turn) [default: 2; `query.heavy`].
    #[arg(long, env = "IRIS_HEAVY_QUERIES")]
    pub heavy_queries: Option<u64>,
}

impl QueryOpts {
    pub fn overrides(&self, o: &mut Overrides) {
        o.set(
            "query.memory_mb",
            "query_memory",
            self.query_memory.map(as_i64),
        );
        o.set(
            "query.spill_mb",
            "query_spill",
            self.query_spill.map(as_i64),
        );
        o.set(
            "query.timeout_s",
            "query_timeout",
            self.query_timeout.map(as_i64),
        );
        o.set(
            "query.heavy",
            "heavy_queries",
            self.heavy_queries.map(as_i64),
        );
    }
}

/// Ingest and write-ahead log options: for the commands that write to the store.
#[derive(clap::Args, Debug, Default)]
pub struct WalOpts {
    /// Largest step a source's `source_seq` may take past its highest stored number
    /// [default: 10⁹; `ingest.max_seq_jump`; 2⁶³−1 or more: no limit].
    #[arg(long, global = true, env = "IRIS_MAX_SEQ_JUMP")]
    pub max_seq_jump: Option<u64>,
    /// A second write-ahead log directory, on another device: every acknowledged batch is synced to
    /// both, and recovery reads a damaged segment from the other copy (remembered in DATA/wal-mirror)
    /// [`ingest.wal_mirror`].
    #[arg(long, global = true, env = "IRIS_WAL_MIRROR")]
    pub wal_mirror: Option<PathBuf>,
}

impl WalOpts {
    pub fn overrides(&self, o: &mut Overrides) {
        o.set(
            "ingest.max_seq_jump",
            "max_seq_jump",
            self.max_seq_jump.map(as_i64),
        );
        o.set(
            "ingest.wal_mirror",
            "wal_mirror",
            self.wal_mirror.as_ref().map(|p| p.display().to_string()),
        );
    }
}

/// TOML integers are i64; larger values saturate (and are still range-checked where it matters).
pub fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `iris config`.
#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (default: --config, IRIS_CONFIG or ./iris.toml) and the IRIS_*
    /// environment: exit 0 if all holds, 2 with the first problem (unknown key, wrong type with line
    /// and column, bad value).
    Check {
        /// The file to check.
        file: Option<PathBuf>,
    },
    /// Print the effective configuration (file, environment, defaults), each value with its source.
    Show,
    /// Print the table of every option (key, environment variable, flag, default) as Markdown.
    Keys,
}

/// Runs `iris config …`; returns the exit code.
pub fn config(c: ConfigCommand, given: Option<&std::path::Path>, o: &Overrides) -> i32 {
    use crate::config;
    let result = match c {
        ConfigCommand::Keys => {
            print!("{}", config::markdown_table());
            return 0;
        }
        ConfigCommand::Check { file } => {
            let path = file.or_else(|| config::file_path(given));
            match &path {
                None => Err(config::ConfigError(format!(
                    "no configuration file: give FILE, --config or IRIS_CONFIG, or create ./{}",
                    config::DEFAULT_FILE
                ))),
                Some(p) => config::resolve(Some(p), o).map(|r| {
                    println!(
                        "{}: OK ({} of {} keys set)",
                        p.display(),
                        r.file_keys,
                        config::KEYS.len()
                    );
                }),
            }
        }
        ConfigCommand::Show => config::resolve(config::file_path(given).as_deref(), o)
            .map(|r| print!("{}", config::show(&r))),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}
