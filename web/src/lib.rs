//! Iris web: the HTTP API (axum) over the ingest, store and query layers.
//!
//! `tokens` authenticates bearer tokens; `ingest_api` takes batches of events from collectors;
//! `sql_api` answers SQL for admins; `server` assembles the router and the background sealer.

pub mod error;
pub mod ingest_api;
pub mod server;
pub mod sql_api;
pub mod tokens;
pub mod trace_api;

pub use server::{ServerConfig, serve};
pub use tokens::{Principal, Role, TokenStore};
