//! Merkle trees as in RFC 9162 §2.1: leaf hash `SHA-256(0x00 || leaf)`, interior node
//! `SHA-256(0x01 || left || right)`, the empty tree's hash `SHA-256("")`.
//!
//! Trees are built and proofs generated here over *leaf hashes* (a compacted partition holds
//! millions of events; keeping only 32 bytes per leaf keeps that cheap). Proofs are *verified* by
//! the `ct-merkle` crate, an independent implementation, so a mistake in the generator shows up as a
//! proof that does not verify rather than as a verifier that agrees with it.

use crate::ProofError;
use ct_merkle::{ConsistencyProof, InclusionProof, RootHash};
use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a tree head.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The largest power of two smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// MTH(D[n]): the tree head of the leaves whose hashes are `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]) (RFC 9162 §2.1.3.1): the audit path of leaf `index`, bottom up. `None` if `index` is
/// outside the tree.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Option<Vec<Hash>> {
    if index >= leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    path(index, leaves, &mut out);
    Some(out)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// PROOF(m, D[n]) (RFC 9162 §2.1.4.1): proves that the first `old_size` leaves are a prefix of
/// `leaves`. Empty when `old_size` is 0 or the whole tree; `None` when `old_size` is larger.
pub fn consistency_proof(leaves: &[Hash], old_size: usize) -> Option<Vec<Hash>> {
    if old_size > leaves.len() {
        return None;
    }
    let mut out = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut out);
    }
    Some(out)
}

fn subproof(m: usize, d: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !whole {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], whole, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

fn digests(proof: &[Hash]) -> Vec<ct_merkle::digest::Output<Sha256>> {
    proof.iter().map(|h| (*h).into()).collect()
}

/// Checks that `leaf` (the leaf's bytes, not its hash) is leaf `index` of the tree of `size` leaves
/// whose head is `root`, with the audit path `proof` (bottom up).
pub fn verify_inclusion(
    leaf: &[u8],
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let head = RootHash::<Sha256>::new((*root).into(), size);
    let proof = InclusionProof::<Sha256>::from_digests(digests(proof).iter());
    head.verify_inclusion(&leaf, index, &proof)
        .map_err(|e| ProofError::Inclusion(e.to_string()))
}

/// Checks that the tree of `old_size` leaves with head `old_root` is a prefix of the tree of
/// `new_size` leaves with head `new_root`.
pub fn verify_consistency(
    old_size: u64,
    old_root: &Hash,
    new_size: u64,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let bad = |why: &str| Err(ProofError::Consistency(why.to_owned()));
    if old_size > new_size {
        return bad("the old tree is larger than the new one");
    }
    if old_size == 0 {
        // Every tree extends the empty one; the empty tree's head is fixed.
        if *old_root != empty_root() {
            return bad("an empty tree's head is SHA-256 of nothing");
        }
        return if proof.is_empty() {
            Ok(())
        } else {
            bad("a proof from the empty tree is empty")
        };
    }
    if old_size == new_size {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            bad("two trees of one size must have one head and an empty proof")
        };
    }
    let old = RootHash::<Sha256>::new((*old_root).into(), old_size);
    let new = RootHash::<Sha256>::new((*new_root).into(), new_size);
    let proof = ConsistencyProof::<Sha256>::from_digests(digests(proof).iter());
    new.verify_consistency(&old, &proof)
        .map_err(|e| ProofError::Consistency(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        hex::decode(s).expect("hex").try_into().expect("32 bytes")
    }

    /// The RFC 6962 test tree of transparency-dev/merkle (proof/verify_test.go): eight leaves and
    /// the head of each prefix.
    fn vector_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|s| hex::decode(s).expect("hex"))
        .collect()
    }

    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn hashes() -> Vec<Hash> {
        vector_leaves().iter().map(|l| leaf_hash(l)).collect()
    }

    #[test]
    fn empty_tree_head_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn heads_match_the_published_vectors() {
        let hs = hashes();
        for (n, want) in ROOTS.iter().enumerate() {
            assert_eq!(hex::encode(root(&hs[..=n])), *want, "size {}", n + 1);
        }
    }

    #[test]
    fn inclusion_proofs_match_the_published_vectors() {
        // (leaf index from 0, tree size, path)
        let vectors: [(usize, usize, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let leaves = vector_leaves();
        let hs = hashes();
        for (index, size, want) in vectors {
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            let got = inclusion_proof(&hs[..size], index).expect("in range");
            assert_eq!(got, want, "leaf {index} of {size}");
            let head = h(ROOTS[size - 1]);
            verify_inclusion(&leaves[index], index as u64, size as u64, &got, &head)
                .expect("a published proof verifies");
            // Any changed hash, another index, another size or another leaf fails.
            for i in 0..got.len() {
                let mut bad = got.clone();
                bad[i][0] ^= 8;
                assert!(
                    verify_inclusion(&leaves[index], index as u64, size as u64, &bad, &head)
                        .is_err()
                );
            }
            assert!(
                verify_inclusion(b"WrongLeaf", index as u64, size as u64, &got, &head).is_err()
            );
            assert!(
                verify_inclusion(&leaves[index], index as u64 + 1, size as u64, &got, &head)
                    .is_err()
            );
            assert!(
                verify_inclusion(&leaves[index], index as u64, size as u64 * 2, &got, &head)
                    .is_err()
            );
            let mut longer = got.clone();
            longer.push(head);
            assert!(
                verify_inclusion(&leaves[index], index as u64, size as u64, &longer, &head)
                    .is_err()
            );
        }
        assert!(inclusion_proof(&hs[..3], 3).is_none());
    }

    #[test]
    fn consistency_proofs_match_the_published_vectors() {
        let vectors: [(usize, usize, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        let hs = hashes();
        for (m, n, want) in vectors {
            let want: Vec<Hash> = want.iter().map(|s| h(s)).collect();
            let got = consistency_proof(&hs[..n], m).expect("old not larger");
            assert_eq!(got, want, "{m} -> {n}");
            let (r1, r2) = (h(ROOTS[m - 1]), h(ROOTS[n - 1]));
            verify_consistency(m as u64, &r1, n as u64, &r2, &got)
                .expect("published proof verifies");
            if got.is_empty() {
                continue;
            }
            for i in 0..got.len() {
                let mut bad = got.clone();
                bad[i][0] ^= 16;
                assert!(verify_consistency(m as u64, &r1, n as u64, &r2, &bad).is_err());
            }
            assert!(
                verify_consistency(m as u64, &r2, n as u64, &r1, &got).is_err(),
                "swapped"
            );
            assert!(verify_consistency(m as u64 + 1, &r1, n as u64, &r2, &got).is_err());
            assert!(
                verify_consistency(m as u64, &r1, n as u64, &r2, &got[..got.len() - 1]).is_err()
            );
            assert!(verify_consistency(m as u64, &r1, n as u64, &r2, &[]).is_err());
        }
        assert!(verify_consistency(0, &empty_root(), 8, &h(ROOTS[7]), &[]).is_ok());
        assert!(verify_consistency(2, &h(ROOTS[1]), 1, &h(ROOTS[0]), &[]).is_err());
    }

    #[test]
    fn every_proof_of_every_small_tree_verifies() {
        let leaves: Vec<Vec<u8>> = (0u32..70).map(|i| i.to_be_bytes().to_vec()).collect();
        let hs: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l)).collect();
        for n in 1..=hs.len() {
            let head = root(&hs[..n]);
            for (i, leaf) in leaves.iter().enumerate().take(n) {
                let p = inclusion_proof(&hs[..n], i).expect("in range");
                verify_inclusion(leaf, i as u64, n as u64, &p, &head)
                    .unwrap_or_else(|e| panic!("leaf {i} of {n}: {e}"));
            }
            for m in 0..=n {
                let p = consistency_proof(&hs[..n], m).expect("old not larger");
                verify_consistency(m as u64, &root(&hs[..m]), n as u64, &head, &p)
                    .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
            }
        }
    }
}
