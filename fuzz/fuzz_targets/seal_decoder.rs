//! The seal decoder on any bytes: never panics; a decoded seal re-serialises, and its signed bytes and
//! digest are computed without panicking (what `verify` does with every seal it reads).
#![cfg_attr(fuzzing, no_main)]
// Also compiled into `tests/fuzz_corpus.rs`, which replays the corpus and its mutations in `cargo test`.
#![allow(dead_code)]

use iris_store::seal::Seal;

/// The property checked on every input.
pub fn check(data: &[u8]) {
    if let Ok(seal) = serde_json::from_slice::<Seal>(data) {
        let _ = seal.signed_bytes();
        let _ = seal.digest();
        let again: Seal = serde_json::from_slice(&seal.to_json()).expect("round trip");
        assert_eq!(again, seal);
        let _ = iris_store::manifest::Manifest::from_seals(&[seal]);
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
