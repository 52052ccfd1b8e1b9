//! Proofs anyone can check (issue 16): `iris checkpoint --format note|vkey`, `iris prove`,
//! `iris verify-proof`, `iris consistency`.

use anyhow::Context;
use clap::{ArgGroup, Args, ValueEnum};
use iris_proof::bundle::{Bundle, verifier_for};
use iris_proof::log::{LogTree, cache_path, verifier_key};
use iris_proof::merkle::{Hash, verify_consistency};
use iris_proof::note::SignedCheckpoint;
use iris_store::datadir::DataDir;
use std::path::{Path, PathBuf};

/// The log's origin when none is given: the first line of its checkpoints and its key's name.
pub const DEFAULT_ORIGIN: &str = iris_proof::log::DEFAULT_ORIGIN;

/// What `iris checkpoint` writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CheckpointFormat {
    /// Iris's own JSON checkpoint (what `iris verify --checkpoint` reads).
    #[default]
    Json,
    /// A C2SP tlog-checkpoint signed note over the Merkle tree of the seals.
    Note,
    /// The signed-note verifier key of the active signing key (`ORIGIN+HASH+KEY`).
    Vkey,
}

/// Arguments of `iris prove`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["event", "ticket"])))]
pub struct ProveArgs {
    /// The event `SOURCE:SEQ` (repeatable).
    #[arg(long, value_name = "SOURCE:SEQ")]
    event: Vec<String>,
    /// Every event of this ticket.
    #[arg(long)]
    ticket: Option<String>,
    /// Prove against this signed checkpoint (C2SP note) instead of signing a new one.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Write the bundle here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// The log's origin (first line of the checkpoint, name of its key).
    #[arg(long, env = "IRIS_ORIGIN", default_value = DEFAULT_ORIGIN)]
    origin: String,
}

/// Arguments of `iris verify-proof`.
#[derive(Args, Debug)]
pub struct VerifyProofArgs {
    /// The proof bundle (JSON) written by `iris prove`.
    file: PathBuf,
    /// The log's public key: `ORIGIN+HASH+KEY` (from `iris checkpoint --format vkey`), 64 hex digits,
    /// or a file holding either.
    #[arg(long)]
    key: String,
    /// A witness's key `NAME+HASH+KEY` (from `iris witness serve`; repeatable): the checkpoint must
    /// carry its cosignature, for at least `--quorum` of them.
    #[arg(long = "witness")]
    witnesses: Vec<String>,
    /// How many of the `--witness` keys must have cosigned (default: all of them).
    #[arg(long)]
    quorum: Option<usize>,
}

/// Arguments of `iris consistency`.
#[derive(Args, Debug)]
pub struct ConsistencyArgs {
    /// The older signed checkpoint (C2SP note).
    old: PathBuf,
    /// The newer signed checkpoint.
    new: PathBuf,
    /// The log's public key (as for `verify-proof`); default: every key of the data directory's keyring.
    #[arg(long)]
    key: Option<String>,
    /// Check this consistency proof (JSON written by an earlier run) offline, without the store.
    #[arg(long)]
    proof: Option<PathBuf>,
}

/// `iris checkpoint --format note|vkey`.
pub async fn checkpoint(
    dir: &DataDir,
    out: Option<PathBuf>,
    format: CheckpointFormat,
    origin: &str,
) -> anyhow::Result<()> {
    let signer = dir.keys().active_signer()?;
    let text = match format {
        CheckpointFormat::Vkey => verifier_key(origin, &signer)? + "\n",
        _ => {
            let tree = LogTree::build(&dir.store()?, &cache_path(&dir.root)).await?;
            tree.checkpoint(origin, &signer)?
        }
    };
    match out {
        Some(path) => {
            std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `iris prove --event SOURCE:SEQ… | --ticket T`: the store's owner proves any event (no scope).
pub async fn prove(
    dir: &DataDir,
    args: ProveArgs,
    limits: &iris_query::QueryLimits,
) -> anyhow::Result<()> {
    use iris_proof::request::{Head, Target, prove_within};
    let started = std::time::Instant::now();
    let mut targets = args
        .event
        .iter()
        .map(|e| Target::event(e))
        .collect::<Result<Vec<_>, _>>()?;
    targets.extend(args.ticket.iter().map(|t| Target::Ticket(t.clone())));
    let loc = dir.store()?;
    let engine = iris_query::QueryEngine::new(loc.clone()).with_limits(limits.clone())?;
    // The secret is needed only to sign a new checkpoint.
    let signer = match &args.checkpoint {
        Some(_) => None,
        None => Some(dir.keys().active_signer()?),
    };
    let head = match (&args.checkpoint, &signer) {
        (Some(p), _) => Head::Note(
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        (None, Some(signer)) => Head::Sign {
            origin: &args.origin,
            signer,
        },
        (None, None) => anyhow::bail!("no key to sign a checkpoint with"),
    };
    let Some(proven) = prove_within(&engine, &loc, &dir.root, &targets, None, head).await? else {
        anyhow::bail!(
            "no event under ticket {}",
            args.ticket.as_deref().unwrap_or_default()
        );
    };
    match &args.out {
        Some(p) => {
            std::fs::write(p, &proven.json).with_context(|| format!("writing {}", p.display()))?
        }
        None => print!("{}", proven.json),
    }
    eprintln!(
        "proof of {} event(s) against a log of {} seals: {} bytes, made in {:.3}s",
        proven.bundle.proofs.len(),
        proven.log_size,
        proven.json.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A key given on the command line, or read from the file it names.
fn key_text(key: &str) -> anyhow::Result<String> {
    let path = Path::new(key);
    if !key.contains('+') && key.len() != 64 && path.is_file() {
        return Ok(std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .trim()
            .to_owned());
    }
    Ok(key.trim().to_owned())
}

/// The raw public key (64 hex digits) of a key given as `verify --key`: hex, `ORIGIN+HASH+KEY`, or a
/// file holding either.
pub fn anchor_key(key: &str) -> anyhow::Result<String> {
    let text = key_text(key)?;
    if text.contains('+') {
        let v = iris_proof::note::NoteVerifier::parse(&text)?;
        return Ok(hex::encode(v.public_key));
    }
    match hex::decode(&text) {
        Ok(b) if b.len() == 32 => Ok(text.to_ascii_lowercase()),
        _ => anyhow::bail!(
            "--key {key}: expected the public key as 64 hex digits, ORIGIN+HASH+KEY, or a file holding either"
        ),
    }
}

/// `iris verify-proof FILE --key PUB`: exit 0 (holds), 1 (does not), 2 (cannot read).
pub fn verify_proof(args: VerifyProofArgs) -> i32 {
    let started = std::time::Instant::now();
    let (bytes, key) = match std::fs::read(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))
        .and_then(|b| Ok((b, key_text(&args.key)?)))
    {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let checked = Bundle::parse(&bytes).and_then(|b| {
        let v = b.verify(&key)?;
        if !args.witnesses.is_empty() {
            let ws = args
                .witnesses
                .iter()
                .map(|w| {
                    iris_proof::witness::CosignatureVerifier::parse(
                        &key_text(w).unwrap_or_default(),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let note = iris_proof::note::Note::parse(&b.checkpoint)?;
            let signed =
                iris_proof::witness::check_quorum(&note, &ws, args.quorum.unwrap_or(ws.len()))?;
            println!("WITNESSED by {}", signed.join(", "));
        }
        Ok(v)
    });
    match checked {
        Ok(v) => {
            for (e, n) in &v.events {
                println!(
                    "PROVEN {}:{} ticket {} subject {} by {} ({}) — seal #{n}",
                    e.source, e.source_seq, e.ticket, e.subject_id, e.actor_org, e.actor_id
                );
            }
            println!(
                "OK: {} event(s) in the log `{}` of {} seals, head {} ({:.1} ms)",
                v.events.len(),
                v.origin,
                v.size,
                hex::encode(v.root),
                started.elapsed().as_secs_f64() * 1e3
            );
            0
        }
        Err(e) => {
            println!("INVALID: {e}");
            1
        }
    }
}

/// Reads a signed checkpoint and checks it with one of `keys`: `Err` if the file cannot be read,
/// `Ok(Err(why))` if it is malformed or no key's signature verifies (a finding).
fn open_checkpoint(
    path: &Path,
    keys: &[String],
) -> anyhow::Result<Result<SignedCheckpoint, String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let unsigned = match SignedCheckpoint::parse(&text) {
        Ok(cp) => cp,
        Err(e) => return Ok(Err(format!("{}: {e}", path.display()))),
    };
    let mut last = format!("{}: no key to check it with", path.display());
    for k in keys {
        match verifier_for(k, &unsigned.body.origin).and_then(|v| SignedCheckpoint::open(&text, &v))
        {
            Ok(cp) => return Ok(Ok(cp)),
            Err(e) => last = format!("{}: {e}", path.display()),
        }
    }
    Ok(Err(last))
}

/// `iris consistency OLD NEW [--key PUB] [--proof FILE]`: exit 0 (NEW extends OLD), 1 (it does
/// not), 2 (cannot check).
pub async fn consistency(dir: &DataDir, args: ConsistencyArgs) -> i32 {
    let run = async {
        let keys = match &args.key {
            Some(k) => vec![key_text(k)?],
            None => dir
                .keys()
                .keyring()?
                .keys
                .iter()
                .map(|k| k.public_key.clone())
                .collect(),
        };
        let old = match open_checkpoint(&args.old, &keys)? {
            Ok(cp) => cp,
            Err(why) => return Ok(Err(why)),
        };
        let new = match open_checkpoint(&args.new, &keys)? {
            Ok(cp) => cp,
            Err(why) => return Ok(Err(why)),
        };
        if old.body.origin != new.body.origin {
            return Ok(Err(format!(
                "two logs: `{}` and `{}`",
                old.body.origin, new.body.origin
            )));
        }
        let (proof, from_store): (Vec<Hash>, bool) = match &args.proof {
            Some(p) => {
                let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                let v: serde_json::Value = serde_json::from_slice(&text)?;
                let hashes = v["proof"]
                    .as_array()
                    .context("a consistency proof file has a `proof` list")?
                    .iter()
                    .map(|h| {
                        iris_proof::hexhash::parse(h.as_str().unwrap_or_default())
                            .map_err(anyhow::Error::msg)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                (hashes, false)
            }
            None => {
                let tree = LogTree::build(&dir.store()?, &cache_path(&dir.root)).await?;
                if let Err(e) = tree.check_head(&new) {
                    return Ok(Err(format!("NEW is not a head of this store: {e}")));
                }
                match tree.consistency(old.body.size, new.body.size) {
                    Some(p) => (p, true),
                    None => {
                        return Ok(Err(format!(
                            "OLD covers {} seals, NEW {}: NEW cannot extend OLD",
                            old.body.size, new.body.size
                        )));
                    }
                }
            }
        };
        let verdict = verify_consistency(
            old.body.size,
            &old.body.root,
            new.body.size,
            &new.body.root,
            &proof,
        )
        .map(|()| (old.body.size, new.body.size, proof, from_store))
        .map_err(|e| e.to_string());
        anyhow::Ok(verdict)
    };
    match run.await {
        Ok(Ok((old, new, proof, from_store))) => {
            if from_store {
                let json = serde_json::json!({
                    "old_size": old,
                    "new_size": new,
                    "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json).unwrap_or_default()
                );
            }
            eprintln!("OK: the log of {new} seals extends the log of {old} seals");
            0
        }
        Ok(Err(why)) => {
            println!("INCONSISTENT: {why}");
            1
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

/// Whether a checkpoint file is a signed note (not Iris's JSON checkpoint).
pub fn is_note(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|b| b.iter().copied().find(|c| !c.is_ascii_whitespace()))
        .is_some_and(|c| c != b'{')
}

/// `iris verify --checkpoint NOTE`: the note must be signed by a key of the keyring and be a head of
/// this store's log (its size at most the log's, its head that of the first seals), and the log now
/// must extend it (RFC 9162 consistency proof). Findings: BAD-SIGNATURE, TRUNCATED, DIVERGED,
/// UNREADABLE (heads of files that cannot be read: their own findings say why).
pub async fn note_findings(
    dir: &DataDir,
    ring: &iris_store::keys::Keyring,
    path: &Path,
    witnesses: &[String],
    quorum: Option<usize>,
) -> anyhow::Result<Vec<iris_store::verify::Finding>> {
    use iris_store::verify::{Finding, FindingKind};
    let finding = |kind, detail: String| Finding {
        kind,
        subject: "checkpoint".to_owned(),
        detail,
    };
    let keys: Vec<String> = ring.keys.iter().map(|k| k.public_key.clone()).collect();
    let cp = match open_checkpoint(path, &keys)? {
        Ok(cp) => cp,
        Err(why) => return Ok(vec![finding(FindingKind::BadSignature, why)]),
    };
    let mut findings = Vec::new();
    if !witnesses.is_empty() {
        let ws = witnesses
            .iter()
            .map(|w| {
                iris_proof::witness::CosignatureVerifier::parse(&key_text(w)?)
                    .map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Err(e) = iris_proof::witness::check_quorum(&cp.note, &ws, quorum.unwrap_or(ws.len()))
        {
            findings.push(finding(FindingKind::BadSignature, e.to_string()));
        }
    }
    let tree = match LogTree::build(&dir.store()?, &cache_path(&dir.root)).await {
        Ok(t) => t,
        Err(e) => {
            findings.push(finding(
                FindingKind::Unreadable,
                format!("the log's tree cannot be built: {e}"),
            ));
            return Ok(findings);
        }
    };
    if cp.body.size > tree.size() {
        findings.push(finding(
            FindingKind::Truncated,
            format!(
                "the signed checkpoint covers {} seals, the chain holds {}",
                cp.body.size,
                tree.size()
            ),
        ));
        return Ok(findings);
    }
    let head = tree.root_at(tree.size()).unwrap_or_default();
    let proof = tree
        .consistency(cp.body.size, tree.size())
        .unwrap_or_default();
    if let Err(e) = verify_consistency(cp.body.size, &cp.body.root, tree.size(), &head, &proof) {
        findings.push(finding(
            FindingKind::Diverged,
            format!(
                "the log does not extend the signed checkpoint of {} seals: {e}",
                cp.body.size
            ),
        ));
    }
    Ok(findings)
}

/// Computes and remembers the Merkle heads of every sealed file not yet in the cache (before a
/// compaction deletes daily files whose heads could then never be computed again).
pub async fn remember_heads(dir: &DataDir) -> anyhow::Result<()> {
    LogTree::build(&dir.store()?, &cache_path(&dir.root)).await?;
    Ok(())
}
