//! The cargo-fuzz targets of `fuzz/` (WAL frames, record parser, seal decoder, index loader) replayed
//! over their committed corpora and simple mutations of them (every bit of the small inputs flipped,
//! every truncation), so `cargo test` checks their properties without a fuzzer or nightly toolchain.
#![allow(unexpected_cfgs)]

#[path = "../fuzz/fuzz_targets/index_loader.rs"]
mod index_loader;
#[path = "../fuzz/fuzz_targets/record_parser.rs"]
mod record_parser;
#[path = "../fuzz/fuzz_targets/seal_decoder.rs"]
mod seal_decoder;
#[path = "../fuzz/fuzz_targets/wal_frames.rs"]
mod wal_frames;

mod support;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = support::repo().join("fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|p| std::fs::read(p).expect("corpus file"))
        .collect();
    assert!(!inputs.is_empty(), "{target}: empty corpus");
    inputs
}

/// Runs `check` on every corpus input, each with one bit flipped at `stride`-spaced positions, and
/// each cut at `stride`-spaced lengths. Panics (a failed property) propagate.
fn replay(target: &str, stride: usize, check: fn(&[u8])) -> usize {
    let mut runs = 0;
    for input in corpus(target) {
        check(&input);
        runs += 1;
        for at in (0..input.len()).step_by(stride) {
            let mut m = input.clone();
            m[at] ^= 1 << (at % 8);
            check(&m);
            check(&input[..at]);
            runs += 2;
        }
    }
    runs
}

#[test]
fn wal_frames_hold_on_the_corpus_and_its_mutations() {
    assert!(replay("wal_frames", 1, wal_frames::check) > 1000);
}

#[test]
fn the_record_parser_holds_on_the_corpus_and_its_mutations() {
    assert!(replay("record_parser", 1, record_parser::check) > 1000);
}

#[test]
fn the_seal_decoder_holds_on_the_corpus_and_its_mutations() {
    assert!(replay("seal_decoder", 1, seal_decoder::check) > 1000);
}

#[test]
fn the_index_loader_never_panics_on_the_corpus_and_its_mutations() {
    // tantivy may panic inside on damaged bytes: the loader catches it. Keep the expected panic
    // messages off the test output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let runs = std::panic::catch_unwind(|| replay("index_loader", 3, index_loader::check));
    std::panic::set_hook(hook);
    let runs = runs.expect("the index loader panicked");
    assert!(runs > 1000, "{runs}");
}
