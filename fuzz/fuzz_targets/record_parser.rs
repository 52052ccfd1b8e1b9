//! The JSON-lines record parser and validator on any line: never panics; whatever it accepts is a valid
//! event that serialises and parses back to itself.
#![cfg_attr(fuzzing, no_main)]
// Also compiled into `tests/fuzz_corpus.rs`, which replays the corpus and its mutations in `cargo test`.
#![allow(dead_code)]

use iris_ingest::Validator;
use iris_ingest::validate::{parse_json_line, probe_key};

/// The property checked on every input.
pub fn check(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let _ = probe_key(line);
    let Ok(raw) = parse_json_line(line) else {
        return;
    };
    if let Ok(event) = Validator::now().validate(raw) {
        let text = serde_json::to_string(&event).expect("an event serialises");
        let back: iris_ingest::Event = serde_json::from_str(&text).expect("and parses back");
        assert_eq!(back, event);
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
