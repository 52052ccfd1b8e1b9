//! Canonical leaves.
//!
//! **Event leaf** (`iris-event-v1`), one per row of a sealed event file, in row order: the bytes
//! `"iris-event-v1"`, a 0x00 byte, then the fields below in this order. A string is its UTF-8 length
//! as 4 bytes big-endian, then its bytes; an optional string is 0x00 when absent, else 0x01 and the
//! string; `ts` is microseconds since 1970-01-01 UTC as 8 bytes big-endian (two's complement);
//! `source_seq` is 8 bytes big-endian.
//!
//! `ts, source, source_seq, actor_id, actor_kind, actor_org, actor_role?, subject_id, subject_kind,
//! ticket, message_type, application, operation, result, error_code?, channel, purpose?`
//!
//! **Seal leaf** (`iris-seal-v1`), one per seal of the chain, in chain order: the bytes
//! `"iris-seal-v1"`, 0x00, the number of event files the seal brings into the log as 4 bytes
//! big-endian, then for each (an event seal: its partition; a compaction: each written file, in the
//! seal's order) its row count (8 bytes big-endian) and the head of its event tree (32 bytes), then
//! the seal exactly as stored (`chain/seal-NNNNNNNNNN.json`, whose SHA-256 is the next seal's
//! `prev`).

use crate::merkle::Hash;
use serde::{Deserialize, Serialize};

/// The domain tag of event leaves.
pub const EVENT_TAG: &[u8] = b"iris-event-v1\0";
/// The domain tag of seal leaves.
pub const SEAL_TAG: &[u8] = b"iris-seal-v1\0";

/// One event as it is stored, every field as text (what the leaf encodes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafEvent {
    /// Microseconds since 1970-01-01 UTC.
    pub ts_us: i64,
    pub source: String,
    pub source_seq: u64,
    pub actor_id: String,
    pub actor_kind: String,
    pub actor_org: String,
    pub actor_role: Option<String>,
    pub subject_id: String,
    pub subject_kind: String,
    pub ticket: String,
    pub message_type: String,
    pub application: String,
    pub operation: String,
    pub result: String,
    pub error_code: Option<String>,
    pub channel: String,
    pub purpose: Option<String>,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Fields are validated to a few hundred bytes at ingest; a longer one still encodes unambiguously
    // as long as it fits 4 GiB, which a Parquet string does.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

impl LeafEvent {
    /// The canonical leaf bytes.
    pub fn leaf(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(EVENT_TAG);
        out.extend_from_slice(&self.ts_us.to_be_bytes());
        put_str(&mut out, &self.source);
        out.extend_from_slice(&self.source_seq.to_be_bytes());
        put_str(&mut out, &self.actor_id);
        put_str(&mut out, &self.actor_kind);
        put_str(&mut out, &self.actor_org);
        put_opt(&mut out, self.actor_role.as_deref());
        put_str(&mut out, &self.subject_id);
        put_str(&mut out, &self.subject_kind);
        put_str(&mut out, &self.ticket);
        put_str(&mut out, &self.message_type);
        put_str(&mut out, &self.application);
        put_str(&mut out, &self.operation);
        put_str(&mut out, &self.result);
        put_opt(&mut out, self.error_code.as_deref());
        put_str(&mut out, &self.channel);
        put_opt(&mut out, self.purpose.as_deref());
        out
    }
}

/// The head of one event file's tree, as a seal leaf commits to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRoot {
    /// Rows in the file (leaves of its tree).
    pub rows: u64,
    /// Its tree head.
    #[serde(with = "crate::hexhash")]
    pub root: Hash,
}

/// The canonical leaf of a seal: the heads of the event files it seals, then its stored bytes.
pub fn seal_leaf(roots: &[FileRoot], seal_json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEAL_TAG.len() + 4 + roots.len() * 40 + seal_json.len());
    out.extend_from_slice(SEAL_TAG);
    out.extend_from_slice(&(roots.len() as u32).to_be_bytes());
    for r in roots {
        out.extend_from_slice(&r.rows.to_be_bytes());
        out.extend_from_slice(&r.root);
    }
    out.extend_from_slice(seal_json);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;

    fn sample() -> LeafEvent {
        LeafEvent {
            ts_us: 1_740_819_600_123_456,
            source: "portal".into(),
            source_seq: 42,
            actor_id: "A0001".into(),
            actor_kind: "agent".into(),
            actor_org: "0203201340".into(),
            actor_role: None,
            subject_id: "85073003328".into(),
            subject_kind: "citizen".into(),
            ticket: "T-1".into(),
            message_type: "L001".into(),
            application: "app".into(),
            operation: "read".into(),
            result: "OK".into(),
            error_code: None,
            channel: "web".into(),
            purpose: Some("check".into()),
        }
    }

    /// Golden vectors: the encoding must never change (old proofs would stop verifying).
    #[test]
    fn event_leaf_golden_vector() {
        let leaf = sample().leaf();
        assert_eq!(
            hex::encode(&leaf),
            "697269732d6576656e742d763100\
             00062f4425e22640\
             00000006706f7274616c\
             000000000000002a\
             000000054130303031\
             000000056167656e74\
             0000000a30323033323031333430\
             00\
             0000000b3835303733303033333238\
             00000007636974697a656e\
             00000003542d31\
             000000044c303031\
             00000003617070\
             0000000472656164\
             000000024f4b\
             00\
             00000003776562\
             0100000005636865636b"
        );
        // SHA-256(0x00 || leaf), computed independently (Python hashlib).
        assert_eq!(
            hex::encode(leaf_hash(&leaf)),
            "df0e0554e6e7780477dd0c842438dfa8bf0f7236f5188e58a5853956f428c49d"
        );
    }

    #[test]
    fn every_field_changes_the_leaf() {
        let base = sample().leaf();
        let mut variants = Vec::new();
        let mut e = sample();
        e.ts_us += 1;
        variants.push(e);
        let mut e = sample();
        e.source_seq += 1;
        variants.push(e);
        let mut e = sample();
        e.actor_role = Some(String::new());
        variants.push(e);
        let mut e = sample();
        e.purpose = None;
        variants.push(e);
        // Moving a byte from one field to the next changes the leaf (length prefixes).
        let mut e = sample();
        e.actor_id = "A000".into();
        e.actor_kind = "1agent".into();
        variants.push(e);
        for v in variants {
            assert_ne!(v.leaf(), base, "{v:?}");
        }
    }

    #[test]
    fn seal_leaf_golden_vector() {
        let leaf = seal_leaf(
            &[FileRoot {
                rows: 3,
                root: [0xab; 32],
            }],
            b"{}",
        );
        assert_eq!(
            hex::encode(&leaf),
            format!(
                "697269732d7365616c2d76310000000001{}{}7b7d",
                "0000000000000003",
                "ab".repeat(32)
            )
        );
        assert_ne!(seal_leaf(&[], b"{}"), leaf);
    }
}
