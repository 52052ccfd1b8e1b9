//! `iris serve`: the HTTP API; with `--demo`, a ready-to-try instance on the sample data.

use crate::cmd::import::{Input, import, open_warehouse, print_totals};
use iris_access::NewToken;
use iris_web::{Role, ServerConfig, TokenStore};
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free one) [default: 127.0.0.1:8080; `server.listen`].
    #[arg(long, env = "IRIS_LISTEN")]
    listen: Option<SocketAddr>,
    /// Demo mode: make a key if there is none, import the sample data into an empty store, print tokens.
    #[arg(long)]
    demo: bool,
    #[command(flatten)]
    ingest: IngestOpts,
    /// Seal waiting events at least this often, in seconds [default: 10; `server.seal_interval_s`].
    #[arg(long, env = "IRIS_SEAL_INTERVAL")]
    seal_interval: Option<u64>,
    /// Seal early once this many events are waiting [default: 500000; `server.seal_threshold`].
    #[arg(long, env = "IRIS_SEAL_THRESHOLD")]
    seal_threshold: Option<u64>,
    /// Answer queries without the lookup indexes (plain DataFusion, same answers; for comparisons)
    /// [`server.no_index`].
    #[arg(long)]
    no_index: bool,
    /// A witness's URL (repeatable): each new checkpoint is sent to it for cosigning (issue 16);
    /// the last cosigned one is kept in DATA/proofs/checkpoint.note [`witness.urls`, env
    /// IRIS_WITNESSES, comma-separated].
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// How often to send the witnesses a checkpoint when the log has grown, in seconds
    /// [default: 60; `witness.interval_s`].
    #[arg(long, env = "IRIS_WITNESS_INTERVAL")]
    witness_interval: Option<u64>,
    #[command(flatten)]
    query: crate::cmd::opts::QueryOpts,
    #[command(flatten)]
    wal: crate::cmd::opts::WalOpts,
    #[command(flatten)]
    tls: crate::cmd::tls::TlsArgs,
    #[command(flatten)]
    clients: crate::cmd::tls::ClientCertArgs,
    /// Serve Prometheus metrics (`GET /metrics`) on this address, apart from the API and without a
    /// token: keep it on loopback or a monitoring network (e.g. 127.0.0.1:9464) [default: off].
    #[arg(long, env = "IRIS_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// The mapping of OTLP log records to the audit schema (`POST /v1/logs`) [default: the
    /// built-in one, data-samples/otlp/logs-mapping.toml].
    #[arg(long, env = "IRIS_OTLP_MAPPING")]
    otlp_mapping: Option<std::path::PathBuf>,
    /// Retention policy (issue 16): at start, delete event files whose rows are all older than this
    /// many days, under a signed retention entry (as `iris retention --days N`) [default: keep all].
    #[arg(long, env = "IRIS_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(1..))]
    retention_days: Option<u32>,
}

impl ServeArgs {
    /// The values given as flags (or read by clap from the environment), for `crate::config`.
    pub fn overrides(&self, o: &mut crate::config::Overrides) {
        use crate::cmd::opts::as_i64;
        o.set(
            "server.listen",
            "listen",
            self.listen.map(|a| a.to_string()),
        );
        o.set(
            "server.seal_interval_s",
            "seal_interval",
            self.seal_interval.map(as_i64),
        );
        o.set(
            "server.seal_threshold",
            "seal_threshold",
            self.seal_threshold.map(as_i64),
        );
        o.set("server.no_index", "no_index", self.no_index.then_some(true));
        o.set_list("witness.urls", "witnesses", &self.witnesses);
        o.set(
            "witness.interval_s",
            "witness_interval",
            self.witness_interval.map(as_i64),
        );
        o.set(
            "server.metrics_listen",
            "metrics_listen",
            self.metrics_listen.map(|a| a.to_string()),
        );
        o.set(
            "ingest.otlp_mapping",
            "otlp_mapping",
            self.otlp_mapping.as_ref().map(|p| p.display().to_string()),
        );
        o.set(
            "retention.days",
            "retention_days",
            self.retention_days.map(i64::from),
        );
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
        o.set("tls.cert", "tls_cert", path(&self.tls.tls_cert));
        o.set("tls.key", "tls_key", path(&self.tls.tls_key));
        self.query.overrides(o);
        self.wal.overrides(o);
    }
}

pub async fn run(
    dir: iris_store::datadir::DataDir,
    mut args: ServeArgs,
    query_limits: iris_query::QueryLimits,
    settings: crate::config::Settings,
) -> anyhow::Result<()> {
    // The certificate and key may come from iris.toml or the environment too (flag first).
    args.tls.tls_cert = settings.tls.cert.clone();
    args.tls.tls_key = settings.tls.key.clone();
    // TLS is settled first: a listener that would be refused stops the start before any work.
    let tls = args.tls.resolve(
        settings.server.listen,
        &dir.root.join("tls"),
        args.demo,
        &args.clients,
    )?;
    let scheme = crate::cmd::tls::scheme(&tls);
    if args.demo {
        dir.create()?;
        if dir.keys().keyring()?.keys.is_empty() {
            let k = dir.keys().generate(None)?;
            eprintln!("demo: made signing key `{}`", k.id);
        }
    }
    let (mut wh, _) = open_warehouse(dir.clone()).await?;
    args.ingest.apply(&mut wh).await;
    // The samples are dated March 2025: the demo moves them (and the deliberations' periods) by whole
    // weeks so their last day is in the past week, within the citizen's window of recent months.
    let shift = crate::samples::demo_shift_days(chrono::Utc::now().date_naive());
    if args.demo {
        let empty = wh.sealer().lock().await.seal_count() == 0;
        if empty {
            let started = std::time::Instant::now();
            let inputs: Vec<Input> = crate::samples::shifted_events(shift)?
                .into_iter()
                .map(|(name, format, text)| Input {
                    name: name.into(),
                    format,
                    reader: Box::new(std::io::Cursor::new(text.into_bytes())),
                    len: None,
                })
                .collect();
            eprintln!("demo: sample events moved {shift} days later (to end in the past week)");
            let totals = import(&wh, inputs, 0).await?;
            eprint!("demo: sample data: ");
            print_totals(&totals, started.elapsed().as_secs_f64());
            for (name, text) in crate::samples::LABOUR_CSV {
                let (_, summary) =
                    crate::cmd::labour::import(&wh, std::path::Path::new(name), text.as_bytes())
                        .await?;
                eprintln!("demo: labour-market sample {summary}");
            }
        }
        if crate::samples::install_access_files(&dir.root.join("access"), shift)? {
            eprintln!(
                "demo: directory and policies written to {}",
                dir.root.join("access").display()
            );
        }
        let tokens = TokenStore::new(&dir.tokens_path());
        println!("demo tokens (one per role; see README \"Who may see what\"):");
        // A restart shows the same tokens while they still authenticate, instead of minting seven
        // more each time (the demo's own file, owner-only, beside the data it opens).
        let saved_path = dir.root.join("demo-tokens.txt");
        let saved: Vec<String> = std::fs::read_to_string(&saved_path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_default();
        let reuse = saved.len() == DEMO_PRINCIPALS.len()
            && saved.iter().all(|s| tokens.authenticate(s).is_ok());
        let mut secrets = Vec::new();
        for (i, (role, principal, source, what)) in DEMO_PRINCIPALS.into_iter().enumerate() {
            let secret = if reuse {
                saved[i].clone()
            } else {
                tokens
                    .create(NewToken {
                        role,
                        principal: principal.map(str::to_owned),
                        source: source.map(str::to_owned),
                        expires_in_days: Some(30),
                    })?
                    .1
            };
            println!("  {:<10} {secret}   {what}", role.as_str());
            secrets.push(secret);
        }
        if !reuse {
            write_private(&saved_path, &(secrets.join("\n") + "\n"))?;
        }
    }
    if let Some(days) = settings.retention.days {
        let before = crate::cmd::retention::cut_off(days);
        let s = iris_proof::log::prune_expired(&wh, before, "retention-policy", false).await?;
        crate::cmd::retention::print_summary(&s, false);
    }
    let witness = &settings.witness;
    if !witness.urls.is_empty() {
        tokio::spawn(crate::cmd::witness::push_loop(
            dir.clone(),
            witness.urls.clone(),
            witness.origin.clone(),
            Duration::from_secs(witness.interval_s),
        ));
    }
    let server = &settings.server;
    let config = ServerConfig {
        listen: server.listen,
        seal_interval: Duration::from_secs(server.seal_interval_s),
        seal_threshold: server.seal_threshold,
        query_limits,
        no_index: server.no_index,
        access_dir: dir.root.join("access"),
        tls,
        metrics_listen: server.metrics_listen,
        otlp_mapping: settings.ingest.otlp_mapping.clone(),
    };
    iris_web::serve(wh, config, |addr| {
        println!("Iris listening on {scheme}://{addr}");
        println!("  web UI: {scheme}://{addr}/ (sign in with a token or a client certificate)");
        println!("  try: curl -s {scheme}://{addr}/v1/health");
        let _ = std::io::stdout().flush();
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The demo's principals: role, principal, source, what the token shows.
const DEMO_PRINCIPALS: [(Role, Option<&str>, Option<&str>, &str); 7] = [
    (Role::Admin, Some("demo-admin"), None, "everything"),
    (
        Role::Collector,
        None,
        Some("demo"),
        "POST /v1/events for source `demo`",
    ),
    (
        Role::Adviser,
        Some("ADV0003"),
        None,
        "security adviser of onem0003: its users' events",
    ),
    (
        Role::Inspector,
        Some("INS0005"),
        None,
        "inspector of insp0005: deliberation=CSSS/04/032&case=PV-2025-0042",
    ),
    (
        Role::Citizen,
        Some("30010100124"),
        None,
        "GET /v1/me/consultations (the last 6 months)",
    ),
    (
        Role::Researcher,
        Some("LM-2025-01"),
        None,
        "aggregates of the labour-market tables only",
    ),
    (
        Role::Auditor,
        Some("demo-auditor"),
        None,
        "Iris's own audit events (who asked what)",
    ),
];

/// Writes `text` to `path`, readable by its owner only.
pub(crate) fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Bounds of the HTTP ingest (issue 17): the server's memory does not follow the unsealed backlog.
#[derive(clap::Args)]
pub struct IngestOpts {
    /// Close a write-ahead log segment, and seal it, once it holds this many bytes (`64MiB`, `1GiB`
    /// or plain bytes) [default: 64MiB].
    #[arg(long, env = "IRIS_WAL_SEGMENT_BYTES", value_parser = parse_bytes)]
    pub wal_segment_bytes: Option<u64>,
    /// Refuse collectors' batches (503 with Retry-After, nothing stored) while the write-ahead log
    /// holds this many bytes not yet sealed; 0 never refuses [default: 1GiB].
    #[arg(long, env = "IRIS_INGEST_BACKLOG_BYTES", value_parser = parse_bytes)]
    pub ingest_backlog_bytes: Option<u64>,
    /// Seal the write-ahead log this many records at a time: bounds the sealer's memory
    /// [default: 100000].
    #[arg(long, env = "IRIS_SEAL_CHUNK_EVENTS")]
    pub seal_chunk_events: Option<usize>,
}

impl IngestOpts {
    /// The limits, defaults filled in.
    pub fn limits(&self) -> iris_ingest::commit::IngestLimits {
        let d = iris_ingest::commit::IngestLimits::default();
        iris_ingest::commit::IngestLimits {
            max_segment_bytes: self.wal_segment_bytes.unwrap_or(d.max_segment_bytes),
            max_backlog_bytes: self.ingest_backlog_bytes.unwrap_or(d.max_backlog_bytes),
        }
    }

    /// Sets them on the warehouse before the server starts its write-ahead log.
    pub async fn apply(&self, wh: &mut iris_store::warehouse::Warehouse) {
        wh.set_ingest_limits(self.limits());
        if let Some(n) = self.seal_chunk_events {
            wh.sealer().lock().await.set_chunk_events(n);
        }
    }
}

/// `64MiB`, `512KiB`, `1GiB`, `1000000` (bytes); `K`/`M`/`G` are binary units too.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 64MiB, 1GiB, 1048576)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        other => {
            return Err(format!(
                "unknown size unit `{other}` in `{text}` (KiB, MiB, GiB)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{text}` is too large"))
}
