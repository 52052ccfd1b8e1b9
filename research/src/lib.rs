//! Researchers' access to the labour-market tables: differentially private aggregates only.
//!
//! - [`shape`]: what a researcher's SQL may be (one SELECT of aggregates over a granted table);
//! - [`domain`]: the public values of every dimension, so the cells are known before any row is read;
//! - [`pseudonym`]: keyed per-project pseudonyms of persons and enterprises;
//! - [`cells`]: each person's records bounded, then the exact cells;
//! - [`mechanism`]: OpenDP's discrete Gaussian and exponential-mechanism quantile;
//! - [`budget`]: the project's ρ-zCDP budget, the one place privacy loss is spent;
//! - [`cache`]: released figure sets, answered again without spending;
//! - [`desk`]: the whole path from SQL to a released [`answer::Answer`];
//! - [`reports`]: the published reports under `sql/reports/`.

pub mod answer;
pub mod budget;
pub mod cache;
pub mod cells;
pub mod desk;
pub mod domain;
pub mod mechanism;
pub mod pseudonym;
pub mod reports;
pub mod shape;

pub use answer::Answer;
pub use budget::{BudgetError, BudgetStatus};
pub use desk::{ProjectRules, ResearchDesk, ResearchError};
