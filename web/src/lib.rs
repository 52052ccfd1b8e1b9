//! Iris web: the HTTP API (axum) over the ingest, store and query layers, behind access control.
//!
//! `guard` authenticates, asks the decision point and logs every request into the chain (`audit`);
//! `ingest_api` takes batches of events from collectors; `sql_api`, `trace_api`, `proof_api` and `me_api` answer
//! within the caller's scope; `chain_api` shows the chain's status to auditors; `ui` serves the web page; `research_api` releases protected aggregates to research projects; `server` assembles the router, the background sealer and the policy
//! watcher.

pub mod audit;
pub mod chain_api;
pub mod citizen_names;
pub mod error;
pub mod guard;
pub mod ingest_api;
pub mod me_api;
pub mod metrics;
pub mod otlp_api;
pub mod patterns;
pub mod proof_api;
pub mod research_api;
pub mod server;
pub mod sql_api;
pub mod tls;
pub mod trace_api;
pub mod ui;

pub use iris_access::{Principal, Role, TokenStore};
pub use server::{ServerConfig, serve};
