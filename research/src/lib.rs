//! Researchers' access to the labour-market tables: anonymised aggregates only.
//!
//! - [`shape`]: what a researcher's SQL may be (one SELECT of aggregates over a granted table);
//! - [`pseudonym`]: keyed per-project pseudonyms of persons and enterprises;
//! - [`cells`]: every cell and margin of an answer, with each person's contribution;
//! - [`suppress`]: primary rules (frequency, nk-dominance, p %) and secondary suppression;
//! - [`differencing`]: refusing answers that differ from earlier ones by a few persons;
//! - [`desk`]: the whole path from SQL to a released [`answer::Answer`];
//! - [`reports`]: the published reports under `sql/reports/`.

pub mod answer;
pub mod cells;
pub mod desk;
pub mod differencing;
pub mod pseudonym;
pub mod reports;
pub mod shape;
pub mod suppress;

pub use answer::Answer;
pub use desk::{ProjectRules, ResearchDesk, ResearchError};
