//! The lookup-index loader on any bytes: never panics (tantivy panics on damaged data are caught and
//! reported as a corrupt index), and lookups on whatever it opens never panic either.
#![cfg_attr(fuzzing, no_main)]
// Also compiled into `tests/fuzz_corpus.rs`, which replays the corpus and its mutations in `cargo test`.
#![allow(dead_code)]

use iris_index::PartitionIndex;

/// The property checked on every input.
pub fn check(data: &[u8]) {
    let _ = iris_index::read_header(data);
    if let Ok(ix) = PartitionIndex::open(data) {
        for column in ["subject_id", "actor_id", "ticket", "other"] {
            let _ = ix.rows_matching(column, &["85073003328", "x", ""]);
        }
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
