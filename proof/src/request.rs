//! Making a proof bundle on request: the one implementation behind `iris prove` and
//! `GET /v1/proof`.
//!
//! The events to prove are found first through a query within the caller's scope (the same row
//! scope a trace applies, inside the query plan), and only the events that query returns reach the
//! log: an event or ticket outside the scope and one that does not exist both end as "no event"
//! before the store's files or trees are touched, so the answer cannot tell them apart.

use crate::ProofError;
use crate::bundle::Bundle;
use crate::log::{LogTree, cache_path};
use arrow::array::AsArray;
use arrow::datatypes::{DataType, UInt64Type};
use datafusion::prelude::{col, lit};
use iris_query::{QueryEngine, RowScope};
use iris_store::StoreLocation;
use iris_store::keys::Signer;
use std::path::Path;

/// Most events one bundle proves (a ticket's path across sources is a handful).
pub const MAX_EVENTS: usize = 1000;

/// What to prove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Every event of a ticket.
    Ticket(String),
    /// One event, `source:source_seq`.
    Event(String, u64),
}

impl Target {
    /// Parses `SOURCE:SEQ`.
    pub fn event(s: &str) -> Result<Target, ProofError> {
        let bad = || ProofError::Request(format!("event `{s}`: expected SOURCE:SEQ"));
        let (source, seq) = s.rsplit_once(':').ok_or_else(bad)?;
        let seq = seq.parse().map_err(|_| bad())?;
        if source.is_empty() {
            return Err(bad());
        }
        Ok(Target::Event(source.to_owned(), seq))
    }
}

/// A bundle made, with what it took.
#[derive(Clone, Debug)]
pub struct Proven {
    /// The bundle.
    pub bundle: Bundle,
    /// The bundle as `iris prove` writes it (pretty JSON and a newline): the bytes to hand out.
    pub json: String,
    /// Seals in the log the checkpoint covers.
    pub log_size: u64,
}

/// How to sign, or which checkpoint to prove against.
pub enum Head<'a> {
    /// Sign a checkpoint of the whole log now.
    Sign {
        /// The log's origin (first line of the checkpoint, name of its key).
        origin: &'a str,
        /// The log's signing key.
        signer: &'a Signer,
    },
    /// Prove against this signed checkpoint (C2SP note) already handed out.
    Note(String),
}

/// The events `(source, source_seq)` of `targets` that `scope` lets through, in time order.
///
/// `scope` `None` is the store's owner (the CLI): an event named `SOURCE:SEQ` is taken as given
/// (any event of the log, Iris's own included) and a ticket is looked up among the network's
/// events. With a scope every target is looked up within it, so nothing outside it is ever named.
pub async fn events_within(
    engine: &QueryEngine,
    targets: &[Target],
    scope: Option<&RowScope>,
) -> Result<Vec<(String, u64)>, ProofError> {
    let mut out = Vec::new();
    for t in targets {
        match (t, scope) {
            (Target::Event(source, seq), None) => out.push((source.clone(), *seq)),
            _ => out.extend(lookup(engine, t, scope).await?),
        }
        if out.len() > MAX_EVENTS {
            return Err(ProofError::Request(format!(
                "more than {MAX_EVENTS} events: prove fewer at a time"
            )));
        }
    }
    Ok(out)
}

/// One target through a query: the filter of the scope sits in the plan below the key's.
async fn lookup(
    engine: &QueryEngine,
    target: &Target,
    scope: Option<&RowScope>,
) -> Result<Vec<(String, u64)>, ProofError> {
    let started = std::time::Instant::now();
    let q = |e: iris_query::QueryError| ProofError::Store(e.user_message());
    let df_err = |e: datafusion::error::DataFusionError| ProofError::Store(e.to_string());
    let ctx = engine.context_within_trusted(scope).map_err(q)?;
    let key = match target {
        Target::Ticket(t) => col("ticket").eq(lit(t.as_str())),
        Target::Event(source, seq) => col("source")
            .eq(lit(source.as_str()))
            .and(col("source_seq").eq(lit(*seq))),
    };
    let df = ctx
        .table("events")
        .await
        .map_err(df_err)?
        .filter(key)
        .and_then(|d| d.select_columns(&["ts", "source", "source_seq"]))
        .and_then(|d| {
            d.sort(vec![
                col("ts").sort(true, false),
                col("source").sort(true, false),
                col("source_seq").sort(true, false),
            ])
        })
        .and_then(|d| d.limit(0, Some(MAX_EVENTS + 1)))
        .map_err(df_err)?;
    let batches = engine.collect(df, started).await.map_err(q)?;
    let mut out = Vec::new();
    for b in batches {
        let cast = |i: usize, ty: &DataType| {
            arrow::compute::cast(b.column(i), ty).map_err(|e| ProofError::Store(e.to_string()))
        };
        let (src, seq) = (cast(1, &DataType::Utf8)?, cast(2, &DataType::UInt64)?);
        let (src, seq) = (src.as_string::<i32>(), seq.as_primitive::<UInt64Type>());
        for r in 0..b.num_rows() {
            out.push((src.value(r).to_owned(), seq.value(r)));
        }
    }
    Ok(out)
}

/// The bundle of `targets` within `scope` (see [`events_within`]); `None` when no event is found
/// (unknown, or outside the scope: the same answer).
pub async fn prove_within(
    engine: &QueryEngine,
    loc: &StoreLocation,
    data_dir: &Path,
    targets: &[Target],
    scope: Option<&RowScope>,
    head: Head<'_>,
) -> Result<Option<Proven>, ProofError> {
    let events = events_within(engine, targets, scope).await?;
    if events.is_empty() {
        return Ok(None);
    }
    let tree = LogTree::build(loc, &cache_path(data_dir)).await?;
    let checkpoint = match head {
        Head::Sign { origin, signer } => tree.checkpoint(origin, signer)?,
        Head::Note(text) => text,
    };
    let bundle = tree.prove(loc, &events, &checkpoint).await?;
    let json =
        serde_json::to_string_pretty(&bundle).map_err(|e| ProofError::Store(e.to_string()))? + "\n";
    Ok(Some(Proven {
        bundle,
        json,
        log_size: tree.size(),
    }))
}
