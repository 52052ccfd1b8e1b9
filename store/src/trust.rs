//! Which signing keys the log trusts, derived from the chain itself (issue 16): the first key is the
//! one a trust anchor names (the published public key given to `verify --key`; without one, the
//! keyring's entry for the key of seal #0), and each later key only if a rotation seal signed by its
//! predecessor introduced it. `keys/keyring.json` is a cache of that history: any difference between
//! the two is a finding (`KEYRING-MISMATCH`), never a reason to trust a key.

use crate::keys::{KeyInfo, Keyring};
use crate::seal::{Seal, SealKind};
use crate::verify::{Finding, FindingKind};
use std::collections::BTreeMap;

/// The keys the chain introduced and what does not fit.
#[derive(Clone, Debug, Default)]
pub struct KeyTrust {
    /// Genesis key first, then each key a rotation introduced, with the validity the log gives them.
    pub keys: Vec<KeyInfo>,
    pub findings: Vec<Finding>,
}

impl KeyTrust {
    /// The derived keys as a keyring (to check checkpoints with).
    pub fn keyring(&self) -> Keyring {
        Keyring {
            keys: self.keys.clone(),
        }
    }
}

/// Where the keyring is, for the subject of keyring findings.
const KEYRING: &str = "keys/keyring.json";

/// Derives the trusted keys from `seals` (the readable seals, in chain order), checks every seal's
/// signature with the key the chain says was signing at that point, and compares the result with the
/// keyring. `anchor` is the published genesis public key (64 hex digits), if the caller has one.
pub fn derive(seals: &[Seal], ring: &Keyring, anchor: Option<&str>) -> KeyTrust {
    let mut out = KeyTrust::default();
    let mut add = |kind, subject: String, detail: String| {
        out.findings.push(Finding {
            kind,
            subject,
            detail,
        })
    };
    let Some(genesis_id) = seals
        .first()
        .map(|s| s.key_id.clone())
        .or_else(|| ring.keys.first().map(|k| k.id.clone()))
    else {
        return out;
    };
    let cached = ring.get(&genesis_id).cloned();
    let mut current: Option<KeyInfo> = match anchor {
        Some(public) => {
            let info = KeyInfo {
                id: genesis_id.clone(),
                public_key: public.to_ascii_lowercase(),
                valid_from: cached.as_ref().map_or(i64::MIN, |k| k.valid_from),
                valid_until: None,
            };
            if let Some(first) = seals.first()
                && !info.verify(&first.signed_bytes(), &first.signature)
            {
                add(
                    FindingKind::UntrustedKey,
                    format!("key {genesis_id}"),
                    format!(
                        "seal #{} is not signed by the published key given with --key: the chain was signed with another key (re-signed with a fresh key?); no seal of it is trusted",
                        first.n
                    ),
                );
                return out;
            }
            Some(info)
        }
        // The log says the signing key is valid until it rotates: a cached end date is the cache's.
        None => cached.map(|k| KeyInfo {
            valid_until: None,
            ..k
        }),
    };
    // Seals signed by a key that was not the signing key at their place, grouped per key.
    let mut stray: BTreeMap<(FindingKind, String), (Vec<u64>, String)> = BTreeMap::new();
    let mut retired: Vec<(KeyInfo, u64)> = Vec::new();
    let mut introduced: BTreeMap<String, u64> = BTreeMap::new();
    for seal in seals {
        let cur = match &current {
            Some(c) if c.id == seal.key_id => c.clone(),
            _ => {
                let id = seal.key_id.clone();
                let (kind, why) = if let Some((_, by)) = retired.iter().find(|(k, _)| k.id == id) {
                    (
                        FindingKind::ExpiredKey,
                        format!("signed by key `{id}`, which the rotation in seal #{by} retired"),
                    )
                } else if ring.get(&id).is_some() {
                    (
                        FindingKind::UntrustedKey,
                        format!(
                            "signed by key `{id}`: the keyring lists it, but no rotation entry signed by its predecessor introduced it into the log"
                        ),
                    )
                } else {
                    (
                        FindingKind::UnknownKey,
                        format!("signed by unknown key `{id}`"),
                    )
                };
                stray
                    .entry((kind, id))
                    .or_insert_with(|| (Vec::new(), why))
                    .0
                    .push(seal.n);
                continue;
            }
        };
        if !cur.verify(&seal.signed_bytes(), &seal.signature) {
            add(
                FindingKind::BadSignature,
                format!("seal #{}", seal.n),
                format!("signature does not verify with key `{}`", cur.id),
            );
            continue;
        }
        if seal.kind != SealKind::Rotation {
            continue;
        }
        let Some(next) = &seal.key else {
            add(
                FindingKind::UntrustedKey,
                format!("seal #{}", seal.n),
                "a rotation entry that names no key".into(),
            );
            continue;
        };
        let reused = next.id == cur.id
            || introduced.contains_key(&next.id)
            || retired.iter().any(|(k, _)| k.id == next.id);
        if let Err(e) = next.verifying_key() {
            add(
                FindingKind::UntrustedKey,
                format!("seal #{}", seal.n),
                format!("the rotation entry's key is not an Ed25519 public key: {e}"),
            );
            continue;
        }
        if reused {
            add(
                FindingKind::UntrustedKey,
                format!("seal #{}", seal.n),
                format!("the rotation entry reuses key id `{}`", next.id),
            );
            continue;
        }
        let mut old = cur;
        old.valid_until = Some(next.valid_from);
        retired.push((old, seal.n));
        introduced.insert(next.id.clone(), seal.n);
        current = Some(KeyInfo {
            valid_until: None,
            ..next.clone()
        });
    }
    for ((kind, _), (seals, why)) in stray {
        let subject = match (seals.first(), seals.last()) {
            (Some(a), Some(b)) if a != b => format!("seals #{a}–#{b}"),
            (Some(a), _) => format!("seal #{a}"),
            _ => continue,
        };
        let detail = if seals.len() > 1 {
            format!("{why} ({} seals)", seals.len())
        } else {
            why
        };
        add(kind, subject, detail);
    }
    out.keys = retired.into_iter().map(|(k, _)| k).chain(current).collect();

    // The keyring is a cache of this history: every difference is named.
    for k in &out.keys {
        let from = introduced
            .get(&k.id)
            .map_or("the genesis key".to_owned(), |n| {
                format!("introduced by seal #{n}")
            });
        match ring.get(&k.id) {
            None => out.findings.push(Finding {
                kind: FindingKind::KeyringMismatch,
                subject: KEYRING.into(),
                detail: format!(
                    "lacks key `{}` ({from}); restore the keyring from a copy",
                    k.id
                ),
            }),
            Some(r) if !r.public_key.eq_ignore_ascii_case(&k.public_key) => {
                out.findings.push(Finding {
                    kind: FindingKind::KeyringMismatch,
                    subject: KEYRING.into(),
                    detail: format!(
                        "key `{}` ({from}) has public key {} in the log, {} in the keyring",
                        k.id,
                        short(&k.public_key),
                        short(&r.public_key)
                    ),
                })
            }
            Some(r) if r.valid_from != k.valid_from || r.valid_until != k.valid_until => {
                out.findings.push(Finding {
                    kind: FindingKind::KeyringMismatch,
                    subject: KEYRING.into(),
                    detail: format!(
                        "key `{}` ({from}) is valid {} in the log, {} in the keyring",
                        k.id,
                        validity(k),
                        validity(r)
                    ),
                })
            }
            Some(_) => {}
        }
    }
    for r in &ring.keys {
        if !out.keys.iter().any(|k| k.id == r.id) {
            out.findings.push(Finding {
                kind: FindingKind::KeyringMismatch,
                subject: KEYRING.into(),
                detail: format!(
                    "lists key `{}`, which no rotation entry of the log introduced (a key added by hand is not trusted)",
                    r.id
                ),
            });
        }
    }
    out
}

fn validity(k: &KeyInfo) -> String {
    let f = iris_ingest::event::format_micros;
    format!(
        "from {} until {}",
        if k.valid_from == i64::MIN {
            "the start".to_owned()
        } else {
            f(k.valid_from)
        },
        k.valid_until.map_or("now".to_owned(), f)
    )
}

fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Signer;

    /// A small deterministic generator (no dependency for a test's dice).
    struct Dice(u64);
    impl Dice {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    /// A chain of `len` seals with rotations at random places, signed as `iris` signs them, and the
    /// keyring `iris keygen` leaves.
    fn chain(dice: &mut Dice, len: u64) -> (Vec<Seal>, Keyring, Vec<Signer>) {
        let mut signers = vec![Signer::from_seed("k0", [0; 32])];
        let mut ring = Keyring {
            keys: vec![signers[0].info(1_000)],
        };
        let mut seals = Vec::new();
        for n in 0..len {
            let at = 2_000 + n as i64 * 10;
            let mut seal = Seal {
                n,
                path: format!("events/p{n}"),
                sealed_at: at,
                ..Seal::default()
            };
            if dice.next().is_multiple_of(4) {
                let i = signers.len();
                let next = Signer::from_seed(&format!("k{i}"), [i as u8; 32]);
                let info = next.info(at - 1);
                seal.kind = SealKind::Rotation;
                seal.key = Some(info.clone());
                seal.sign(signers.last().expect("a signer"));
                if let Some(k) = ring.keys.last_mut() {
                    k.valid_until = Some(info.valid_from);
                }
                ring.keys.push(info);
                signers.push(next);
            } else {
                seal.sign(signers.last().expect("a signer"));
            }
            seals.push(seal);
        }
        (seals, ring, signers)
    }

    fn kinds(t: &KeyTrust) -> Vec<FindingKind> {
        t.findings.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn generated_rotation_sequences_verify_and_any_tampered_signature_is_refused() {
        let mut dice = Dice(7);
        for round in 0..40 {
            let len = 1 + dice.next() % 24;
            let (seals, ring, signers) = chain(&mut dice, len);
            let t = derive(&seals, &ring, None);
            assert!(t.findings.is_empty(), "round {round}: {:?}", t.findings);
            assert_eq!(t.keys, ring.keys, "round {round}: the keyring is the log's");
            let genesis = ring.keys[0].public_key.clone();
            assert!(
                derive(&seals, &ring, Some(genesis.as_str()))
                    .findings
                    .is_empty()
            );

            // One changed signature digit, anywhere: refused at that seal.
            let i = (dice.next() % len) as usize;
            let mut bad = seals.clone();
            let mut sig = bad[i].signature.clone().into_bytes();
            let j = (dice.next() as usize) % sig.len();
            sig[j] = if sig[j] == b'0' { b'1' } else { b'0' };
            bad[i].signature = String::from_utf8(sig).expect("hex");
            let t = derive(&bad, &ring, None);
            assert!(
                t.findings
                    .iter()
                    .any(|f| f.kind == FindingKind::BadSignature
                        && f.subject == format!("seal #{i}")),
                "round {round}: {:?}",
                t.findings
            );

            // A rotation whose new key was changed after signing: refused, and its key not trusted.
            if let Some(r) = seals.iter().position(|s| s.kind == SealKind::Rotation) {
                let mut bad = seals.clone();
                let forged = Signer::from_seed("kx", [0xee; 32]).info(0);
                if let Some(k) = bad[r].key.as_mut() {
                    k.public_key = forged.public_key;
                }
                let t = derive(&bad, &ring, None);
                assert!(kinds(&t).contains(&FindingKind::BadSignature), "{round}");
                if r + 1 < seals.len() {
                    assert!(
                        kinds(&t)
                            .iter()
                            .any(|k| matches!(k, FindingKind::UntrustedKey)),
                        "round {round}: later seals by the new key are untrusted: {:?}",
                        t.findings
                    );
                }
            }

            // The next key introduced by a rotation signed by someone else: untrusted.
            let mut forged = seals.clone();
            let intruder = Signer::from_seed("k0", [0x55; 32]);
            let mut rot = Seal {
                n: len,
                kind: SealKind::Rotation,
                key: Some(Signer::from_seed("kz", [0x66; 32]).info(9_999_999)),
                sealed_at: 9_999_999,
                ..Seal::default()
            };
            rot.sign(&intruder);
            rot.key_id = signers.last().expect("signer").id.clone();
            forged.push(rot);
            let t = derive(&forged, &ring, None);
            assert!(kinds(&t).contains(&FindingKind::BadSignature), "{round}");

            // A chain re-signed with a fresh key passes against its own keyring, not the anchor.
            let fresh = Signer::from_seed("k0", [0x77; 32]);
            let resigned: Vec<Seal> = seals
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    s.kind = SealKind::Events;
                    s.key = None;
                    s.sign(&fresh);
                    s
                })
                .collect();
            let fake_ring = Keyring {
                keys: vec![fresh.info(1_000)],
            };
            assert!(derive(&resigned, &fake_ring, None).findings.is_empty());
            assert_eq!(
                kinds(&derive(&resigned, &fake_ring, Some(genesis.as_str()))),
                [FindingKind::UntrustedKey]
            );
        }
    }

    #[test]
    fn every_keyring_edit_is_named() {
        let mut dice = Dice(3);
        let (seals, ring, _) = loop {
            let c = chain(&mut dice, 12);
            if c.1.keys.len() >= 3 {
                break c;
            }
        };
        let mismatch = |r: &Keyring| {
            let t = derive(&seals, r, None);
            t.findings
                .iter()
                .filter(|f| f.kind == FindingKind::KeyringMismatch)
                .count()
        };
        // An extra key.
        let mut extra = ring.clone();
        extra
            .keys
            .push(Signer::from_seed("kx", [0x99; 32]).info(5_000));
        assert_eq!(mismatch(&extra), 1);
        // A later key's public key swapped.
        let mut swapped = ring.clone();
        swapped.keys[2].public_key = Signer::from_seed("k2", [0x98; 32]).info(0).public_key;
        assert_eq!(mismatch(&swapped), 1);
        // Validity edited.
        let mut edited = ring.clone();
        edited.keys[1].valid_until = None;
        assert_eq!(mismatch(&edited), 1);
        let mut edited = ring.clone();
        edited.keys[2].valid_from -= 1;
        assert_eq!(mismatch(&edited), 1);
        // A key removed.
        let mut removed = ring.clone();
        removed.keys.remove(1);
        assert_eq!(mismatch(&removed), 1);
        assert_eq!(mismatch(&ring), 0);
    }
}
