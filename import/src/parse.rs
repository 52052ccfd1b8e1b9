//! Parsing and validating one input on every core, handing the batches back in input order.
//!
//! ```text
//! reader thread ──chunks──▶ N worker threads ──(index, batch)──▶ consumer (puts them back in order)
//!        ▲                                                              │
//!        └──────────────── a token per chunk, returned once consumed ───┘
//! ```
//! The reader takes a token before reading each chunk and the consumer gives it back once that chunk's
//! batch has been used in order, so at most [`Options::chunks_in_flight`] chunks (raw or parsed) exist
//! at any time, whatever the input's size and however the workers interleave.

use crate::{ImportError, Input, Options};
use iris_ingest::commit::Batch;
use iris_ingest::formats::chunks::Chunker;
use iris_ingest::formats::{Format, FormatError, jsonl};
use iris_ingest::{Rejection, Validator, validate::is_token};
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

type Parsed = (u64, Result<Batch, FormatError>);

/// Records per batch of a delimited (mapped) input, read on one thread.
const MAPPED_BATCH: usize = 65_536;

/// The batches of one input, in input order.
pub(crate) struct Batches {
    results: UnboundedReceiver<Parsed>,
    early: BTreeMap<u64, Result<Batch, FormatError>>,
    next: u64,
    tokens: SyncSender<()>,
}

impl Batches {
    /// Starts the reader and the workers of `input`.
    pub(crate) fn start(
        input: Input,
        validator: &Validator,
        received_at: i64,
        opts: &Options,
    ) -> Batches {
        let in_flight = opts.chunks_in_flight.max(1);
        let (tokens, token_rx) = sync_channel::<()>(in_flight);
        for _ in 0..in_flight {
            // Cannot fail: the channel has room for every token and its receiver is alive.
            let _ = tokens.try_send(());
        }
        let (results_tx, results) = unbounded_channel::<Parsed>();
        match input.format {
            Format::JsonLines => start_jsonl(
                input.reader,
                validator,
                received_at,
                opts,
                token_rx,
                results_tx,
            ),
            Format::Mapped(_) => {
                let validator = validator.clone();
                std::thread::spawn(move || {
                    read_mapped(input, &validator, received_at, &token_rx, &results_tx)
                });
            }
        }
        Batches {
            results,
            early: BTreeMap::new(),
            next: 0,
            tokens,
        }
    }

    /// The next batch in input order; `None` after the last.
    pub(crate) async fn next(&mut self) -> Option<Result<Batch, ImportError>> {
        loop {
            if let Some(r) = self.early.remove(&self.next) {
                self.next += 1;
                // The chunk is consumed: the reader may read one more.
                let _ = self.tokens.try_send(());
                return Some(r.map_err(ImportError::from));
            }
            match self.results.recv().await {
                Some((index, r)) => {
                    self.early.insert(index, r);
                }
                None if self.early.is_empty() => return None,
                None => {
                    return Some(Err(ImportError::Pipeline(format!(
                        "batch {} never arrived (a worker stopped)",
                        self.next
                    ))));
                }
            }
        }
    }
}

fn start_jsonl(
    reader: Box<dyn std::io::Read + Send>,
    validator: &Validator,
    received_at: i64,
    opts: &Options,
    token_rx: Receiver<()>,
    results_tx: UnboundedSender<Parsed>,
) {
    let (work_tx, work_rx) = sync_channel(opts.workers.max(1));
    let work_rx = Arc::new(Mutex::new(work_rx));
    let chunk_bytes = opts.chunk_bytes;
    let reader_results = results_tx.clone();
    std::thread::spawn(move || {
        let mut chunker =
            Chunker::with_sizes(reader, chunk_bytes, iris_ingest::formats::chunks::MAX_LINE);
        let mut index = 0;
        // A token per chunk bounds what is in flight; no token means the consumer has gone.
        while token_rx.recv().is_ok() {
            match chunker.next_chunk() {
                Ok(Some(chunk)) => {
                    index = chunk.index + 1;
                    if work_tx.send(chunk).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = reader_results.send((index, Err(FormatError::File(e.to_string()))));
                    return;
                }
            }
        }
    });
    for _ in 0..opts.workers.max(1) {
        let work_rx = work_rx.clone();
        let results_tx = results_tx.clone();
        let validator = validator.clone();
        std::thread::spawn(move || {
            loop {
                // The lock is held only to take the next chunk, never while parsing.
                let next = match work_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                let Ok(chunk) = next else { return };
                let parsed = jsonl::validate_chunk(&chunk, &validator, received_at);
                if results_tx.send((chunk.index, parsed)).is_err() {
                    return;
                }
            }
        });
    }
}

/// Reads a delimited input through its mapping on this thread (quoted fields may span lines, so it is
/// not cut into chunks), sending batches of [`MAPPED_BATCH`] records.
fn read_mapped(
    input: Input,
    validator: &Validator,
    received_at: i64,
    tokens: &Receiver<()>,
    results: &UnboundedSender<Parsed>,
) {
    let new_batch = || Batch {
        received_at,
        ..Batch::default()
    };
    let mut batch = new_batch();
    let mut index = 0u64;
    let mut closed = false;
    let mut send = |batch: Batch, closed: &mut bool| {
        *closed = tokens.recv().is_err() || results.send((index, Ok(batch))).is_err();
        index += 1;
    };
    let read = input.format.read(input.reader, |line, record| {
        if closed {
            return;
        }
        let refuse = |reason: String, source: Option<String>, seq: Option<u64>| Rejection {
            received_at,
            source: source.filter(|s| is_token(s)),
            source_seq: seq,
            line,
            reason,
        };
        match record {
            Err(r) => batch
                .rejections
                .push(refuse(r.reason, r.source, r.source_seq)),
            Ok(raw) => {
                let (source, seq) = (raw.source.clone(), raw.source_seq);
                match validator.validate(raw) {
                    Ok(e) => batch.events.push((line, e)),
                    Err(reason) => batch.rejections.push(refuse(reason, source, seq)),
                }
            }
        }
        if batch.events.len() + batch.rejections.len() >= MAPPED_BATCH {
            send(std::mem::replace(&mut batch, new_batch()), &mut closed);
        }
    });
    match read {
        Ok(()) if !closed => send(batch, &mut closed),
        Ok(()) => {}
        Err(e) => {
            if !closed {
                send(batch, &mut closed);
            }
            let _ = results.send((index, Err(e)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iris_ingest::Event;
    use iris_ingest::generate::{GenConfig, Generator};

    /// What a run yields: events and refused records (line, reason, source, number).
    type Outcome = (
        Vec<(u64, Event)>,
        Vec<(u64, String, Option<String>, Option<u64>)>,
    );

    fn refusals(rejections: Vec<Rejection>) -> Vec<(u64, String, Option<String>, Option<u64>)> {
        rejections
            .into_iter()
            .map(|r| (r.line, r.reason, r.source, r.source_seq))
            .collect()
    }

    /// The sequential reader and validator, as `iris import` read files before the pipeline.
    fn sequential(input: &[u8], v: &Validator) -> Outcome {
        let (mut events, mut rejections) = (Vec::new(), Vec::new());
        Format::JsonLines
            .read(input, |line, record| match record {
                Err(r) => rejections.push((
                    line,
                    r.reason,
                    r.source.filter(|s| is_token(s)),
                    r.source_seq,
                )),
                Ok(raw) => {
                    let (source, seq) = (raw.source.clone(), raw.source_seq);
                    match v.validate(raw) {
                        Ok(e) => events.push((line, e)),
                        Err(reason) => {
                            rejections.push((line, reason, source.filter(|s| is_token(s)), seq))
                        }
                    }
                }
            })
            .expect("read");
        rejections.sort_by_key(|r| r.0);
        (events, rejections)
    }

    fn piped(input: Vec<u8>, v: &Validator, opts: &Options) -> Outcome {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let input = Input {
                name: "test".into(),
                format: Format::JsonLines,
                reader: Box::new(std::io::Cursor::new(input)),
            };
            let mut batches = Batches::start(input, v, 0, opts);
            let (mut events, mut rejections) = (Vec::new(), Vec::new());
            let mut last_line = 0;
            while let Some(b) = batches.next().await {
                let b = b.expect("batch");
                // Batches come back in input order.
                let first = b
                    .events
                    .iter()
                    .map(|e| e.0)
                    .chain(b.rejections.iter().map(|r| r.line))
                    .min();
                if let Some(first) = first {
                    assert!(first > last_line, "batch out of order");
                    last_line = b
                        .events
                        .iter()
                        .map(|e| e.0)
                        .chain(b.rejections.iter().map(|r| r.line))
                        .max()
                        .unwrap_or(first);
                }
                events.extend(b.events);
                rejections.extend(refusals(b.rejections));
            }
            rejections.sort_by_key(|r| r.0);
            (events, rejections)
        })
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n.max(1)
        }
    }

    /// Generated events, with malformed, foreign, blank, CRLF and huge lines mixed in.
    fn input(rng: &mut Rng, events: u64) -> Vec<u8> {
        let cfg = GenConfig {
            events,
            seed: rng.below(1 << 30),
            ..GenConfig::default()
        };
        let mut out = Vec::new();
        for e in Generator::new(cfg) {
            let line = serde_json::to_string(&e).expect("json");
            match rng.below(12) {
                0 => {
                    out.extend_from_slice(&line.as_bytes()[..rng.below(line.len() as u64) as usize])
                }
                1 => out.extend_from_slice(line.replacen('}', ",\"payload\":\"x\"}", 1).as_bytes()),
                2 => out.extend_from_slice(format!("{line}\r").as_bytes()),
                3 => out.extend_from_slice(b"  \t"),
                4 => out.extend_from_slice(
                    line.replacen(
                        "\"ticket\":\"",
                        &format!("\"ticket\":\"{}", "t".repeat(20_000)),
                        1,
                    )
                    .as_bytes(),
                ),
                5 => out.extend_from_slice(
                    line.replacen("\"source_seq\":", "\"source_seq\":-", 1)
                        .as_bytes(),
                ),
                6 => out.extend_from_slice(
                    "{\"ts\":\"2025-01-01T00:00:00Z\",\"actor_id\":\"é\u{2028}\"}".as_bytes(),
                ),
                _ => out.extend_from_slice(line.as_bytes()),
            }
            out.push(b'\n');
        }
        if rng.below(2) == 0 && out.ends_with(b"\n") {
            out.pop();
        }
        out
    }

    #[test]
    fn the_pipeline_gives_the_sequential_records_for_any_chunk_size_and_core_count() {
        let v = Validator::now();
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for round in 0..40 {
            let events = 50 + rng.below(400);
            let data = input(&mut rng, events);
            let opts = Options {
                workers: 1 + rng.below(4) as usize,
                chunk_bytes: 16 + rng.below(if round % 2 == 0 { 300 } else { 40_000 }) as usize,
                chunks_in_flight: 1 + rng.below(6) as usize,
                seal_events: 1,
            };
            let want = sequential(&data, &v);
            assert!(!want.0.is_empty() && !want.1.is_empty());
            let got = piped(data, &v, &opts);
            assert_eq!(got.0, want.0, "events, round {round}, {opts:?}");
            assert_eq!(got.1, want.1, "rejections, round {round}, {opts:?}");
        }
    }

    #[test]
    fn empty_input_and_blank_lines_give_nothing() {
        let v = Validator::now();
        for data in [&b""[..], b"\n", b"\r\n\r\n", b"   "] {
            let got = piped(data.to_vec(), &v, &Options::default());
            assert!(got.0.is_empty() && got.1.is_empty(), "{data:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_stop_the_input_naming_the_line() {
        let v = Validator::now();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let err = rt.block_on(async {
            let input = Input {
                name: "test".into(),
                format: Format::JsonLines,
                reader: Box::new(std::io::Cursor::new(b"{}\n{}\n\xff\xfe\n".to_vec())),
            };
            let mut batches = Batches::start(input, &v, 0, &Options::default());
            loop {
                match batches.next().await {
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return e.to_string(),
                    None => return String::new(),
                }
            }
        });
        assert!(err.contains("line 3") && err.contains("UTF-8"), "{err}");
    }
}
