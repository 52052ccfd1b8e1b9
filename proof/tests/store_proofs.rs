//! The trees of a real (in-memory) store: checkpoints, inclusion bundles checked offline, every
//! changed byte of a bundle refused, consistency between two checkpoints, a rewritten chain caught.

use iris_ingest::generate::{GenConfig, Generator};
use iris_proof::bundle::Bundle;
use iris_proof::log::{LogTree, verifier_key};
use iris_proof::merkle::verify_consistency;
use iris_proof::note::SignedCheckpoint;
use iris_store::StoreLocation;
use iris_store::keys::Signer;
use iris_store::sealer::Sealer;

const ORIGIN: &str = "iris.test/log";

fn events(n: u64, seed: u64) -> Vec<iris_ingest::event::Event> {
    Generator::new(GenConfig {
        events: n,
        seed,
        start: chrono::NaiveDate::from_ymd_opt(2025, 3, 1).expect("date"),
        days: 3,
        ..GenConfig::default()
    })
    .collect()
}

fn signer() -> Signer {
    Signer::from_seed("k1", [7; 32])
}

#[tokio::test]
async fn bundles_verify_offline_and_every_changed_byte_is_refused() {
    let loc = StoreLocation::memory();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("roots.json");
    let evs = events(600, 7);
    let mut sealer = Sealer::open(loc.clone(), signer()).await.expect("sealer");
    sealer.seal(evs.clone(), vec![]).await.expect("seal");

    let tree = LogTree::build(&loc, &cache).await.expect("tree");
    assert!(
        tree.size() >= 3,
        "several partitions, {} seals",
        tree.size()
    );
    assert!(cache.exists(), "file heads remembered");
    let cp = tree.checkpoint(ORIGIN, &signer()).expect("checkpoint");
    let vkey = verifier_key(ORIGIN, &signer()).expect("vkey");

    // Three events from different partitions, proven together.
    let picks: Vec<(String, u64)> = [0usize, 299, 599]
        .iter()
        .map(|&i| (evs[i].source.clone(), evs[i].source_seq))
        .collect();
    let bundle = tree.prove(&loc, &picks, &cp).await.expect("prove");
    let v = bundle
        .verify(&vkey)
        .expect("verifies with the verifier key");
    assert_eq!(v.events.len(), 3);
    for ((e, _), want) in v.events.iter().zip(&picks) {
        assert_eq!((&e.source, e.source_seq), (&want.0, want.1));
    }
    // The keyring's hex public key works too (named by the checkpoint's origin).
    let hex_key = signer().info(0).public_key;
    bundle.verify(&hex_key).expect("verifies with the hex key");
    // Another key does not.
    let other = verifier_key(ORIGIN, &Signer::from_seed("k2", [8; 32])).expect("vkey");
    assert!(bundle.verify(&other).is_err());

    // Every byte of the bundle, changed three ways, makes it fail.
    let json = serde_json::to_vec_pretty(&bundle).expect("json");
    let mut accepted = Vec::new();
    for i in 0..json.len() {
        for mask in [0x01u8, 0x20, 0x80] {
            let mut bad = json.clone();
            bad[i] ^= mask;
            if Bundle::parse(&bad).and_then(|b| b.verify(&vkey)).is_ok() {
                accepted.push((i, mask));
            }
        }
    }
    assert!(
        accepted.is_empty(),
        "{} of {} changed bytes still verified, e.g. {:?} around {:?}",
        accepted.len(),
        json.len() * 3,
        accepted.first(),
        accepted.first().map(|(i, _)| String::from_utf8_lossy(
            &json[i.saturating_sub(30)..(*i + 30).min(json.len())]
        )
        .into_owned())
    );
    Bundle::parse(&json)
        .expect("parse")
        .verify(&vkey)
        .expect("the original still verifies");
}

#[tokio::test]
async fn consistency_between_checkpoints_and_a_rewritten_chain() {
    let loc = StoreLocation::memory();
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = dir.path().join("roots.json");
    let mut sealer = Sealer::open(loc.clone(), signer()).await.expect("sealer");
    sealer.seal(events(300, 1), vec![]).await.expect("seal");
    let old_tree = LogTree::build(&loc, &cache).await.expect("tree");
    let old = SignedCheckpoint::parse(&old_tree.checkpoint(ORIGIN, &signer()).expect("cp"))
        .expect("parse");

    // More events (other days, a later seed) extend the log.
    let later: Vec<_> = Generator::new(GenConfig {
        events: 300,
        seed: 2,
        start: chrono::NaiveDate::from_ymd_opt(2025, 4, 1).expect("date"),
        days: 2,
        ..GenConfig::default()
    })
    .map(|mut e| {
        e.source_seq += 10_000;
        e
    })
    .collect();
    sealer.seal(later, vec![]).await.expect("seal more");
    let tree = LogTree::build(&loc, &cache).await.expect("tree");
    assert!(tree.size() > old.body.size);
    let new =
        SignedCheckpoint::parse(&tree.checkpoint(ORIGIN, &signer()).expect("cp")).expect("parse");
    tree.check_head(&old)
        .expect("the old checkpoint is a head of the grown log");
    let proof = tree
        .consistency(old.body.size, new.body.size)
        .expect("proof");
    verify_consistency(
        old.body.size,
        &old.body.root,
        new.body.size,
        &new.body.root,
        &proof,
    )
    .expect("NEW extends OLD");
    // Swapped, or against another old head, it fails.
    assert!(
        verify_consistency(
            old.body.size,
            &new.body.root,
            new.body.size,
            &new.body.root,
            &proof
        )
        .is_err()
    );
    let mut wrong = old.body.root;
    wrong[5] ^= 1;
    assert!(
        verify_consistency(old.body.size, &wrong, new.body.size, &new.body.root, &proof).is_err()
    );

    // A store rebuilt from other events under the same key (a rewritten log) does not hold OLD.
    let forged = StoreLocation::memory();
    let mut s2 = Sealer::open(forged.clone(), signer())
        .await
        .expect("sealer");
    s2.seal(events(300, 99), vec![]).await.expect("seal");
    let cache2 = dir.path().join("roots2.json");
    let t2 = LogTree::build(&forged, &cache2).await.expect("tree");
    assert!(
        t2.check_head(&old).is_err(),
        "a rewritten log is not an extension"
    );
}
