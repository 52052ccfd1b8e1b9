//! `iris witness serve` (a C2SP tlog-witness with its own key and state) and `iris witness add`
//! (have witnesses cosign a checkpoint of this store).

use anyhow::Context;
use clap::Subcommand;
use iris_proof::log::{LogTree, cache_path};
use iris_proof::note::{Note, SignedCheckpoint};
use iris_proof::witness::{Witness, add_checkpoint_body, router};
use iris_store::datadir::DataDir;
use std::path::PathBuf;
use std::sync::Arc;

/// `iris witness …`.
#[derive(Subcommand, Debug)]
pub enum WitnessCommand {
    /// Run a witness: it cosigns a log's checkpoint only if it extends the last one it cosigned.
    Serve {
        /// Its own directory: `witness.key` (made on first run) and `state.json`. Not the log's.
        #[arg(long)]
        dir: PathBuf,
        /// Its name (in its cosignatures and its key).
        #[arg(long)]
        name: String,
        /// A log it witnesses: the log's verifier key `ORIGIN+HASH+KEY` (repeatable).
        #[arg(long = "log", required = true)]
        logs: Vec<String>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: std::net::SocketAddr,
        /// TLS (a self-signed certificate is kept in the witness's own directory).
        #[command(flatten)]
        tls: crate::cmd::tls::TlsArgs,
    },
    /// Send a signed checkpoint of this store to witnesses; write it with their cosignatures.
    Add {
        /// The signed checkpoint (from `iris checkpoint --format note`).
        #[arg(long)]
        checkpoint: PathBuf,
        /// A witness's base URL (repeatable).
        #[arg(long = "witness", required = true)]
        witnesses: Vec<String>,
        /// Write the cosigned checkpoint here (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// Runs a witness command.
pub async fn run(dir: &DataDir, command: WitnessCommand) -> anyhow::Result<()> {
    match command {
        WitnessCommand::Serve {
            dir: wdir,
            name,
            logs,
            listen,
            tls,
        } => {
            let files = tls.resolve(listen, &wdir, false, &Default::default())?;
            let scheme = crate::cmd::tls::scheme(&files);
            let config = match &files {
                Some(f) => Some(iris_web::tls::load(f)?.config),
                None => None,
            };
            let w = Witness::open(&wdir, &name, &logs)?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen}"))?;
            let addr = listener.local_addr()?;
            println!("witness key: {}", w.verifier().to_text());
            println!("witness listening on {scheme}://{addr}");
            let app = iris_web::server::with_hsts(router(Arc::new(w)), config.is_some());
            iris_web::server::serve_connections(listener, app, config, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await;
            Ok(())
        }
        WitnessCommand::Add {
            checkpoint,
            witnesses,
            out,
        } => add(dir, &checkpoint, &witnesses, out).await,
    }
}

async fn add(
    dir: &DataDir,
    checkpoint: &PathBuf,
    witnesses: &[String],
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(checkpoint)
        .with_context(|| format!("reading {}", checkpoint.display()))?;
    let (text, refused) = cosign(dir, &text, witnesses).await?;
    match out {
        Some(p) => std::fs::write(&p, &text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    if refused.is_empty() {
        Ok(())
    } else {
        anyhow::bail!(
            "{} witness(es) refused: {}",
            refused.len(),
            refused.join(", ")
        )
    }
}

/// Sends the signed checkpoint `text` of this store to each witness; returns the note with the
/// cosignatures it got and the witnesses that refused.
pub async fn cosign(
    dir: &DataDir,
    text: &str,
    witnesses: &[String],
) -> anyhow::Result<(String, Vec<String>)> {
    let cp = SignedCheckpoint::parse(text)?;
    let tree = LogTree::build(&dir.store()?, &cache_path(&dir.root)).await?;
    tree.check_head(&cp)?;
    let client = reqwest::Client::new();
    let mut note = cp.note.clone();
    let mut refused = Vec::new();
    for url in witnesses {
        let endpoint = format!("{}/add-checkpoint", url.trim_end_matches('/'));
        // First as if the witness knew nothing; a 409 says what size it knows, then prove from there.
        let mut old = 0u64;
        let mut answer = None;
        for _ in 0..2 {
            let Some(proof) = tree.consistency(old, cp.body.size) else {
                answer = Some((
                    409,
                    format!(
                        "it cosigned a log of {old} seals, this checkpoint has {}: rolled back or stale",
                        cp.body.size
                    ),
                ));
                break;
            };
            let body = add_checkpoint_body(old, &proof, text);
            let r = client
                .post(&endpoint)
                .body(body)
                .send()
                .await
                .with_context(|| format!("POST {endpoint}"))?;
            let status = r.status().as_u16();
            let reply = r.text().await.unwrap_or_default();
            if status == 409
                && let Ok(size) = reply.trim().parse::<u64>()
                && size != old
            {
                old = size;
                continue;
            }
            answer = Some((status, reply));
            break;
        }
        match answer {
            Some((200, lines)) => {
                let cosig = Note::parse(&format!("{}\n{lines}", cp.note.text))
                    .with_context(|| format!("{url}: not a cosignature"))?;
                note.signatures.extend(cosig.signatures);
                eprintln!("{url}: cosigned");
            }
            Some((status, why)) => {
                eprintln!("{url}: refused ({status}): {}", why.trim());
                refused.push(url.clone());
            }
            None => {
                eprintln!("{url}: no answer");
                refused.push(url.clone());
            }
        }
    }
    Ok((note.to_text(), refused))
}

/// Where `iris serve --witness` keeps the last checkpoint its witnesses cosigned.
pub fn cosigned_path(dir: &DataDir) -> PathBuf {
    dir.root.join("proofs").join("checkpoint.note")
}

/// `iris serve --witness URL…`: every `interval`, when the log has grown, signs a checkpoint, has
/// the witnesses cosign it and writes it to [`cosigned_path`]. Runs until the process ends.
pub async fn push_loop(
    dir: DataDir,
    witnesses: Vec<String>,
    origin: String,
    interval: std::time::Duration,
) {
    let mut last_size = None;
    loop {
        let round = async {
            let tree = LogTree::build(&dir.store()?, &cache_path(&dir.root)).await?;
            if last_size == Some(tree.size()) {
                return anyhow::Ok(None);
            }
            let note = tree.checkpoint(&origin, &dir.keys().active_signer()?)?;
            let (cosigned, refused) = cosign(&dir, &note, &witnesses).await?;
            let path = cosigned_path(&dir);
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &cosigned)?;
            std::fs::rename(&tmp, &path)?;
            Ok(Some((tree.size(), refused)))
        };
        match round.await {
            Ok(Some((size, refused))) => {
                last_size = Some(size);
                if !refused.is_empty() {
                    eprintln!(
                        "warning: witness(es) refused the checkpoint: {}",
                        refused.join(", ")
                    );
                }
            }
            Ok(None) => {}
            Err(e) => eprintln!("warning: checkpoint not witnessed: {e:#}"),
        }
        tokio::time::sleep(interval).await;
    }
}
