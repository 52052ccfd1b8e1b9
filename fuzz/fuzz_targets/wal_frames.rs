//! The WAL frame decoder on any bytes: never panics, accounts for every byte (intact frame or damaged
//! range), and every frame it returns re-encodes to the same bytes. Also the acknowledgement record and
//! the readable-pairs scan used to name what damaged bytes held.
#![cfg_attr(fuzzing, no_main)]
// Also compiled into `tests/fuzz_corpus.rs`, which replays the corpus and its mutations in `cargo test`.
#![allow(dead_code)]

use iris_ingest::wal::{FRAME_HEADER, decode_ack, decode_frames, encode_frame};

/// The property checked on every input.
pub fn check(data: &[u8]) {
    let d = decode_frames(data);
    let mut covered = 0usize;
    for f in &d.frames {
        let len = FRAME_HEADER + f.payload.len();
        let frame = encode_frame(f.payload).expect("an intact frame is small enough");
        assert_eq!(&data[f.offset..f.offset + len], frame.as_slice());
        covered += len;
    }
    covered += d.damaged.iter().map(|(s, e)| e - s).sum::<usize>();
    assert_eq!(covered, data.len());
    let _ = decode_ack(data);
    let _ = iris_store::wal_replay::readable_pairs(data);
    // Every intact payload either decodes as a WAL record or fails cleanly.
    for f in &d.frames {
        let _ = serde_json::from_slice::<iris_ingest::commit::WalRecord>(f.payload);
    }
}

#[cfg(fuzzing)]
libfuzzer_sys::fuzz_target!(|data: &[u8]| check(data));

/// Without the fuzzer: replays the files named on the command line (reproducing a crash on stable).
#[cfg(not(fuzzing))]
fn main() {
    for path in std::env::args().skip(1) {
        check(&std::fs::read(&path).expect("readable input"));
        println!("{path}: ok");
    }
}
