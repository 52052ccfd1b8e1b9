//! `iris keygen`: the store's first (genesis) key, or a rotation — a new key introduced by an entry
//! of the log signed by the outgoing key (issue 16), so `verify` can tell it from a key added to
//! `keys/keyring.json` by hand.

use anyhow::Context;
use iris_store::datadir::DataDir;

/// Who ran an operator command, for its audit event.
pub fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| iris_ingest::validate::is_token(u))
        .unwrap_or_else(|| "operator".to_owned())
}

/// `iris keygen [--id ID]`.
pub async fn keygen(dir: &DataDir, id: Option<String>) -> anyhow::Result<()> {
    dir.create()?;
    let keys = dir.keys();
    if keys.keyring()?.keys.is_empty() {
        let info = keys.generate(id)?;
        println!(
            "new signing key `{}` (public key {}): the genesis key of this log",
            info.id, info.public_key
        );
        println!(
            "keep this public key outside the store (it is the trust anchor of `iris verify --key`)"
        );
        println!("keyring: {}", keys.keyring_path().display());
        return Ok(());
    }
    // A rotation is signed by the outgoing key: its secret must be at hand, and the store locked.
    let (wh, _) = crate::cmd::import::open_warehouse(dir.clone())
        .await
        .context("a key rotation is an entry of the log signed by the outgoing key")?;
    let next = keys.new_signer(id)?;
    let seal = wh.sealer().lock().await.rotate(next, &operator()).await?;
    let info = seal.key.clone().context("a rotation seal names its key")?;
    keys.record_rotation(&info)?;
    println!(
        "new signing key `{}` (public key {}), introduced by seal #{} signed by `{}`",
        info.id, info.public_key, seal.n, seal.key_id
    );
    println!("keyring: {}", keys.keyring_path().display());
    Ok(())
}
