//! Iris ingest: everything between a source system's log line and a validated, durable [`Event`].
//!
//! Data flows `formats` (JSON lines, mapped CSV) → `validate` (schema, check digits, no content)
//! → `sequencer` (idempotency on `source`/`source_seq`) → `wal` (durable acknowledgement) → the store.

pub mod checkdigit;
pub mod commit;
pub mod event;
pub mod formats;
pub mod generate;
pub mod sequencer;
pub mod validate;
pub mod wal;

pub use event::{ActorKind, Event, Operation, Outcome, Rejection, SubjectKind};
pub use sequencer::{Admission, IntervalSet, Sequencer};
pub use validate::{RawEvent, Validator};
