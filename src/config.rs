//! One configuration file, `iris.toml`: every option of `iris serve` (and the store and query options
//! the other commands share), each with its environment variable and default, resolved in one place.
//!
//! Precedence: command-line flag > environment variable > file > default. [`KEYS`] is the one list of
//! options: the README's table is checked against it and against [`Settings`] by `tests/config.rs`.

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The file read when neither `--config` nor `IRIS_CONFIG` names one (only if it exists).
pub const DEFAULT_FILE: &str = "iris.toml";

/// Every setting, as resolved. Each section and field has a default, so a file may name any subset.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub store: StoreSettings,
    pub server: ServerSettings,
    pub query: QuerySettings,
    pub ingest: IngestSettings,
    pub witness: WitnessSettings,
    pub retention: RetentionSettings,
    pub tls: TlsSettings,
    // A new option of `serve` goes here (a field, a row in KEYS, a flag setting it in
    // `ServeArgs::overrides`): see "Adding an option" in README "Configuration".
}

/// Retention policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// At start, delete event files whose rows are all older than this many days (unset: keep all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

/// HTTPS on the listener.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

/// Where the data live.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Data directory (store, write-ahead log, keys, tokens).
    pub data: PathBuf,
    /// Object store URL for partitions and chain; default DATA/store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            data: PathBuf::from("./iris-data"),
            url: None,
        }
    }
}

/// The HTTP server.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: std::net::SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub seal_interval_s: u64,
    pub seal_threshold: u64,
    pub no_index: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: ([127, 0, 0, 1], 8080).into(),
            metrics_listen: None,
            seal_interval_s: 10,
            seal_threshold: 500_000,
            no_index: false,
        }
    }
}

/// Query limits.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QuerySettings {
    pub memory_mb: u64,
    pub spill_mb: u64,
    pub timeout_s: u64,
    pub heavy: u64,
}

impl Default for QuerySettings {
    fn default() -> Self {
        QuerySettings {
            memory_mb: 2048,
            spill_mb: 65536,
            timeout_s: 300,
            heavy: 2,
        }
    }
}

impl QuerySettings {
    /// The query engine's limits.
    pub fn limits(&self) -> iris_query::QueryLimits {
        iris_query::QueryLimits {
            memory_bytes: (self.memory_mb as usize) << 20,
            spill_bytes: self.spill_mb << 20,
            spill_dir: None,
            timeout: std::time::Duration::from_secs(self.timeout_s),
            heavy_queries: self.heavy as usize,
            ..iris_query::QueryLimits::default()
        }
    }
}

/// Ingest and the write-ahead log.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    pub max_seq_jump: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_mirror: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_mapping: Option<PathBuf>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            max_seq_jump: iris_ingest::sequencer::DEFAULT_MAX_JUMP,
            wal_mirror: None,
            otlp_mapping: None,
        }
    }
}

/// Witnesses cosigning the checkpoints.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WitnessSettings {
    pub urls: Vec<String>,
    pub interval_s: u64,
    pub origin: String,
}

impl Default for WitnessSettings {
    fn default() -> Self {
        WitnessSettings {
            urls: Vec::new(),
            interval_s: 60,
            origin: iris_proof::log::DEFAULT_ORIGIN.to_owned(),
        }
    }
}

/// The type of a key's value, for reading it from an environment variable.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Text,
    Integer,
    Bool,
    /// Comma-separated in the environment.
    List,
}

/// One documented option.
#[derive(Debug)]
pub struct Key {
    /// `section.name` in the file.
    pub key: &'static str,
    pub env: &'static str,
    /// The flag of the commands that take it.
    pub flag: &'static str,
    pub kind: Kind,
    /// As written in the README table (`—` when unset).
    pub default: &'static str,
    pub doc: &'static str,
}

/// Every option: the one list the README table and [`Settings`] are checked against.
pub const KEYS: &[Key] = &[
    Key {
        key: "store.data",
        env: "IRIS_DATA",
        flag: "--data",
        kind: Kind::Text,
        default: "./iris-data",
        doc: "data directory: store, write-ahead log, keys, tokens, access files",
    },
    Key {
        key: "store.url",
        env: "IRIS_STORE",
        flag: "--store",
        kind: Kind::Text,
        default: "—",
        doc: "object store for partitions and chain (`file:///dir`, `s3://bucket/prefix`); unset: DATA/store",
    },
    Key {
        key: "server.listen",
        env: "IRIS_LISTEN",
        flag: "--listen",
        kind: Kind::Text,
        default: "127.0.0.1:8080",
        doc: "address of the HTTP API and web UI (port 0 picks a free one)",
    },
    Key {
        key: "server.metrics_listen",
        env: "IRIS_METRICS_LISTEN",
        flag: "--metrics-listen",
        kind: Kind::Text,
        default: "—",
        doc: "address of `GET /metrics` (Prometheus), apart from the API and without a token; unset: off",
    },
    Key {
        key: "server.seal_interval_s",
        env: "IRIS_SEAL_INTERVAL",
        flag: "--seal-interval",
        kind: Kind::Integer,
        default: "10",
        doc: "seal waiting events at least this often, in seconds (≥ 1)",
    },
    Key {
        key: "server.seal_threshold",
        env: "IRIS_SEAL_THRESHOLD",
        flag: "--seal-threshold",
        kind: Kind::Integer,
        default: "500000",
        doc: "seal early once this many events are waiting (≥ 1)",
    },
    Key {
        key: "server.no_index",
        env: "IRIS_NO_INDEX",
        flag: "--no-index",
        kind: Kind::Bool,
        default: "false",
        doc: "answer without the lookup indexes (same answers; for comparisons)",
    },
    Key {
        key: "query.memory_mb",
        env: "IRIS_QUERY_MEMORY_MB",
        flag: "--query-memory",
        kind: Kind::Integer,
        default: "2048",
        doc: "memory all queries of the process share, MiB (sorts and aggregates spill past it; ≥ 1)",
    },
    Key {
        key: "query.spill_mb",
        env: "IRIS_QUERY_SPILL_MB",
        flag: "--query-spill",
        kind: Kind::Integer,
        default: "65536",
        doc: "disk for query spill files, MiB (0: never spill)",
    },
    Key {
        key: "query.timeout_s",
        env: "IRIS_QUERY_TIMEOUT",
        flag: "--query-timeout",
        kind: Kind::Integer,
        default: "300",
        doc: "longest a query may run, seconds (≥ 1)",
    },
    Key {
        key: "query.heavy",
        env: "IRIS_HEAVY_QUERIES",
        flag: "--heavy-queries",
        kind: Kind::Integer,
        default: "2",
        doc: "full-scan queries that may run at once (≥ 1; more wait their turn)",
    },
    Key {
        key: "ingest.max_seq_jump",
        env: "IRIS_MAX_SEQ_JUMP",
        flag: "--max-seq-jump",
        kind: Kind::Integer,
        default: "1000000000",
        doc: "largest step a source's `source_seq` may take past its highest stored number (≥ 1)",
    },
    Key {
        key: "ingest.wal_mirror",
        env: "IRIS_WAL_MIRROR",
        flag: "--wal-mirror",
        kind: Kind::Text,
        default: "—",
        doc: "second write-ahead log directory, on another device (remembered in DATA/wal-mirror)",
    },
    Key {
        key: "ingest.otlp_mapping",
        env: "IRIS_OTLP_MAPPING",
        flag: "--otlp-mapping",
        kind: Kind::Text,
        default: "—",
        doc: "mapping of OTLP log records to the audit schema (`POST /v1/logs`); unset: the built-in one",
    },
    Key {
        key: "witness.urls",
        env: "IRIS_WITNESSES",
        flag: "--witness",
        kind: Kind::List,
        default: "[]",
        doc: "witnesses (C2SP tlog-witness URLs) each new checkpoint is sent to for cosigning",
    },
    Key {
        key: "witness.interval_s",
        env: "IRIS_WITNESS_INTERVAL",
        flag: "--witness-interval",
        kind: Kind::Integer,
        default: "60",
        doc: "how often the witnesses get a checkpoint when the log has grown, seconds (≥ 1)",
    },
    Key {
        key: "witness.origin",
        env: "IRIS_ORIGIN",
        flag: "--origin",
        kind: Kind::Text,
        default: "iris.local/log",
        doc: "the log's origin line in signed checkpoints (and its key's name)",
    },
    Key {
        key: "retention.days",
        env: "IRIS_RETENTION_DAYS",
        flag: "--retention-days",
        kind: Kind::Integer,
        default: "—",
        doc: "at start, delete event files whose rows are all older than this many days, under a signed retention entry (≥ 1); unset: keep all",
    },
    Key {
        key: "tls.cert",
        env: "IRIS_TLS_CERT",
        flag: "--tls-cert",
        kind: Kind::Text,
        default: "—",
        doc: "the server's certificate chain, PEM (with `tls.key`: HTTPS only)",
    },
    Key {
        key: "tls.key",
        env: "IRIS_TLS_KEY",
        flag: "--tls-key",
        kind: Kind::Text,
        default: "—",
        doc: "the certificate's private key, PEM",
    },
];

/// Where a value came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => write!(f, "flag"),
            Source::Env(v) => write!(f, "env {v}"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Default => write!(f, "default"),
        }
    }
}

/// A configuration error: the message names the file, key or variable and what is expected.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The parsed command line, kept so a value can be said to come from a flag or from the environment.
static MATCHES: OnceLock<ArgMatches> = OnceLock::new();

/// Remembers the parsed command line (once, in `main`).
pub fn remember(matches: ArgMatches) {
    let _ = MATCHES.set(matches);
}

/// Whether the clap argument `id` (in the command or its subcommands) was given as a flag or read from
/// the environment by clap.
fn arg_source(id: &str, env: &'static str) -> Source {
    fn find(m: &ArgMatches, id: &str) -> Option<ValueSource> {
        // `try_get_raw` answers an id this (sub)command does not define without panicking, unlike
        // `value_source`; only a defined and present id is asked for its source.
        if matches!(m.try_get_raw(id), Ok(Some(_)))
            && let Some(s) = m.value_source(id)
        {
            return Some(s);
        }
        m.subcommand().and_then(|(_, sub)| find(sub, id))
    }
    match MATCHES.get().and_then(|m| find(m, id)) {
        Some(ValueSource::EnvVariable) => Source::Env(env),
        _ => Source::Flag,
    }
}

/// Values given on the command line (clap has already preferred a flag to its environment variable).
#[derive(Default)]
pub struct Overrides(Vec<(&'static str, toml::Value, Source)>);

impl Overrides {
    /// Sets `key` from the clap argument `arg_id` when it was given.
    pub fn set<T: Into<toml::Value>>(&mut self, key: &'static str, arg_id: &str, value: Option<T>) {
        if let Some(v) = value {
            let env = KEYS.iter().find(|k| k.key == key).map_or("", |k| k.env);
            self.0.push((key, v.into(), arg_source(arg_id, env)));
        }
    }

    /// Sets `key` to a list given by a repeatable flag, when it was given.
    pub fn set_list(&mut self, key: &'static str, arg_id: &str, values: &[String]) {
        if !values.is_empty() {
            let list: Vec<toml::Value> = values.iter().cloned().map(toml::Value::from).collect();
            self.set(key, arg_id, Some(toml::Value::Array(list)));
        }
    }
}

/// The effective settings and where each value came from.
pub struct Resolved {
    pub settings: Settings,
    pub sources: BTreeMap<&'static str, Source>,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// How many options the file sets.
    pub file_keys: usize,
}

/// The file to read: `--config`/`IRIS_CONFIG`, else `./iris.toml` when it exists.
pub fn file_path(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None => Path::new(DEFAULT_FILE)
            .exists()
            .then(|| PathBuf::from(DEFAULT_FILE)),
    }
}

/// Resolves every setting: flag > environment > file > default, then checks the values.
pub fn resolve(file: Option<&Path>, overrides: &Overrides) -> Result<Resolved, ConfigError> {
    let mut table = toml::Table::try_from(Settings::default())
        .map_err(|e| ConfigError(format!("defaults: {e}")))?;
    let mut sources: BTreeMap<&'static str, Source> =
        KEYS.iter().map(|k| (k.key, Source::Default)).collect();
    let mut file_keys = 0;
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        let parsed = parse_file(path, &text)?;
        for k in KEYS {
            if let Some(v) = get(&parsed, k.key) {
                put(&mut table, k.key, v.clone());
                sources.insert(k.key, Source::File(path.to_path_buf()));
                file_keys += 1;
            }
        }
    }
    for k in KEYS {
        if let Ok(text) = std::env::var(k.env) {
            put(&mut table, k.key, env_value(k, &text)?);
            sources.insert(k.key, Source::Env(k.env));
        }
    }
    for (key, value, source) in &overrides.0 {
        put(&mut table, key, value.clone());
        sources.insert(*key, source.clone());
    }
    let settings: Settings = toml::Value::Table(table)
        .try_into()
        .map_err(|e| ConfigError(format!("{e}")))?;
    check_values(&settings, &sources)?;
    // Every setting has its documented key (tests/config.rs sets all of them in one file).
    if let Some(key) = undocumented(&settings).first() {
        return Err(ConfigError(format!(
            "setting `{key}` has no row in config::KEYS"
        )));
    }
    Ok(Resolved {
        settings,
        sources,
        file: file.map(Path::to_path_buf),
        file_keys,
    })
}

/// Parses a configuration file: unknown keys (with the nearest known one), wrong types (with line and
/// column), then each value's range.
pub fn parse_file(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    let at = |e: &dyn fmt::Display| ConfigError(format!("{}: {}", path.display(), e));
    let table: toml::Table = toml::from_str(text).map_err(|e| at(&e))?;
    let mut unknown = Vec::new();
    walk(&table, "", &mut unknown);
    if let Some(key) = unknown.first() {
        let line = line_of(text, key);
        let sections = KEYS
            .iter()
            .filter_map(|k| k.key.split_once('.').map(|(s, _)| s));
        let near = KEYS
            .iter()
            .map(|k| k.key)
            .chain(sections)
            .map(|k| (strsim::levenshtein(k, key), k))
            .min()
            .filter(|(d, _)| *d <= 4)
            .map(|(_, k)| format!(" (did you mean `{k}`?)"))
            .unwrap_or_default();
        return Err(ConfigError(format!(
            "{}{line}: unknown key `{key}`{near}; known keys: {}",
            path.display(),
            KEYS.iter().map(|k| k.key).collect::<Vec<_>>().join(", ")
        )));
    }
    // Types, with the position toml reports.
    let typed: Settings = toml::from_str(text).map_err(|e| at(&e))?;
    let sources = KEYS
        .iter()
        .filter(|k| get(&table, k.key).is_some())
        .map(|k| (k.key, Source::File(path.to_path_buf())))
        .collect();
    check_values(&typed, &sources)?;
    Ok(table)
}

/// Settings (as serialized: unset options are absent) that [`KEYS`] does not document.
fn undocumented(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(table) = toml::Table::try_from(settings) {
        walk(&table, "", &mut out);
    }
    out
}

/// Dotted keys of `table` that are not options (sections included).
fn walk(table: &toml::Table, prefix: &str, unknown: &mut Vec<String>) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let is_key = KEYS.iter().any(|k| k.key == key);
        let is_section = KEYS.iter().any(|k| k.key.starts_with(&format!("{key}.")));
        match value {
            toml::Value::Table(t) if is_section => walk(t, &key, unknown),
            _ if is_key => {}
            _ => unknown.push(key),
        }
    }
}

/// `:LINE` of the first line naming the last part of `key`, for messages.
fn line_of(text: &str, key: &str) -> String {
    let last = key.rsplit('.').next().unwrap_or(key);
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches('[');
            l.starts_with(last) && l[last.len()..].trim_start().starts_with(['=', ']', '.'])
        })
        .map(|n| format!(":{}", n + 1))
        .unwrap_or_default()
}

fn get<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let (section, name) = key.split_once('.')?;
    table.get(section)?.as_table()?.get(name)
}

fn put(table: &mut toml::Table, key: &str, value: toml::Value) {
    if let Some((section, name)) = key.split_once('.') {
        let entry = table
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(t) = entry.as_table_mut() {
            t.insert(name.to_owned(), value);
        }
    }
}

/// An environment variable's text as the key's type.
fn env_value(k: &Key, text: &str) -> Result<toml::Value, ConfigError> {
    let bad = |what: &str| ConfigError(format!("{}={text:?}: expected {what} ({})", k.env, k.key));
    Ok(match k.kind {
        Kind::Text => toml::Value::String(text.to_owned()),
        Kind::Integer => toml::Value::Integer(
            // TOML integers are i64: a larger whole number means "no limit" and saturates, as
            // the same value given as a flag does (`opts::as_i64`).
            text.trim()
                .parse::<i64>()
                .or_else(|_| text.trim().parse::<u64>().map(|_| i64::MAX))
                .map_err(|_| bad("a whole number"))?,
        ),
        Kind::Bool => toml::Value::Boolean(match text.trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" | "" => false,
            _ => return Err(bad("true or false")),
        }),
        Kind::List => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(toml::Value::from)
                .collect(),
        ),
    })
}

/// Values a type cannot rule out: ranges, URL schemes.
fn check_values(s: &Settings, sources: &BTreeMap<&'static str, Source>) -> Result<(), ConfigError> {
    let bad = |key: &str, what: String| {
        let from = sources
            .get(key)
            .map(|s| format!(" (from {s})"))
            .unwrap_or_default();
        Err(ConfigError(format!("{key}{from}: {what}")))
    };
    for (key, v) in [
        ("server.seal_interval_s", s.server.seal_interval_s),
        ("server.seal_threshold", s.server.seal_threshold),
        ("query.memory_mb", s.query.memory_mb),
        ("query.timeout_s", s.query.timeout_s),
        ("query.heavy", s.query.heavy),
        ("ingest.max_seq_jump", s.ingest.max_seq_jump),
        ("witness.interval_s", s.witness.interval_s),
    ] {
        if v == 0 {
            return bad(key, "must be at least 1".into());
        }
    }
    // Upper bounds: a duration or a count past these is a typo, and some would overflow a clock or
    // a semaphore in the running server (a sealer that never runs again, a start that panics).
    for (key, v, max, what) in [
        (
            "server.seal_interval_s",
            s.server.seal_interval_s,
            86_400,
            "one day",
        ),
        (
            "witness.interval_s",
            s.witness.interval_s,
            86_400,
            "one day",
        ),
        ("query.timeout_s", s.query.timeout_s, 7 * 86_400, "one week"),
        ("query.heavy", s.query.heavy, 1_024, "1024 queries"),
    ] {
        if v > max {
            return bad(key, format!("{v} is more than {what} ({max})"));
        }
    }
    if s.retention.days == Some(0) {
        return bad("retention.days", "must be at least 1".into());
    }
    if s.tls.cert.is_some() != s.tls.key.is_some() {
        return bad("tls.cert", "tls.cert and tls.key go together".into());
    }
    if s.query.spill_mb > 1 << 30 {
        return bad(
            "query.spill_mb",
            format!("{} MiB is more than 1 EiB", s.query.spill_mb),
        );
    }
    if s.query.memory_mb > 1 << 24 {
        return bad(
            "query.memory_mb",
            format!("{} MiB is more than 16 TiB", s.query.memory_mb),
        );
    }
    if let Some(url) = &s.store.url
        && !(url.starts_with("file://") || url.starts_with("s3://"))
    {
        return bad(
            "store.url",
            format!("`{url}`: expected file:///dir or s3://bucket/prefix"),
        );
    }
    for w in &s.witness.urls {
        if !(w.starts_with("http://") || w.starts_with("https://")) {
            return bad("witness.urls", format!("`{w}`: expected an http(s) URL"));
        }
    }
    if s.witness.origin.trim().is_empty() || s.witness.origin.contains('\n') {
        return bad("witness.origin", "must be one non-empty line".into());
    }
    Ok(())
}

/// `iris config show`: the effective settings as TOML, each value with where it came from.
pub fn show(r: &Resolved) -> String {
    let mut out = String::new();
    if let Some(f) = &r.file {
        out.push_str(&format!("# file: {}\n", f.display()));
    } else {
        out.push_str(&format!(
            "# file: none (no --config, IRIS_CONFIG or ./{DEFAULT_FILE})\n"
        ));
    }
    let table = toml::Table::try_from(&r.settings).unwrap_or_default();
    let mut section = "";
    for k in KEYS {
        let (sec, name) = k.key.split_once('.').unwrap_or(("", k.key));
        if sec != section {
            out.push_str(&format!("\n[{sec}]\n"));
            section = sec;
        }
        let source = r.sources.get(k.key).cloned().unwrap_or(Source::Default);
        match get(&table, k.key) {
            Some(v) => out.push_str(&format!("{name} = {}  # {source}\n", toml_text(v))),
            None => out.push_str(&format!("# {name} unset  # {source}\n")),
        }
    }
    out
}

/// A value as TOML text (the values of settings: strings, numbers, booleans, lists of strings).
fn toml_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_text).collect::<Vec<_>>().join(", ")
        ),
        toml::Value::Table(t) => format!(
            "{{ {} }}",
            t.iter()
                .map(|(k, v)| format!("{k} = {}", toml_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The README's table of options, as `tests/config.rs` expects it.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| key | environment | flag | default | meaning |\n|---|---|---|---|---|\n");
    for k in KEYS {
        out.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} | {} |\n",
            k.key,
            k.env,
            k.flag,
            if k.default == "—" {
                "—".to_owned()
            } else {
                format!("`{}`", k.default)
            },
            k.doc
        ));
    }
    out
}
