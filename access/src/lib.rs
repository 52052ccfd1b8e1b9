//! Iris access: who may see what (DESIGN §4).
//!
//! [`tokens`] authenticates (bearer tokens bound to principals), [`directory`] is the information
//! point (institutions, users, supervision), [`policies`] the administration point (deliberations,
//! the citizen rule, research projects), [`decision`] the decision point (permit or deny, with the
//! reason, the deciding policies and the scope of rows), and [`control`] keeps directory and
//! policies loaded and reloads them when their files change. The enforcement point is the query
//! layer: the scope becomes a filter inside the DataFusion plan ([`iris_query::RowScope`]).

pub mod certificate;
pub mod control;
pub mod decision;
pub mod directory;
pub mod policies;
pub mod tokens;

pub use certificate::{CERTIFICATE_SIGN_IN, CertificateRefusal, principal_of_certificate};
pub use control::{AccessControl, FileChange, Snapshot};
pub use decision::{Action, Decision, Request, TraceBy, decide};
pub use tokens::{AuthError, NewToken, Principal, Role, TokenError, TokenRecord, TokenStore};

/// Errors of the access files.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A file is missing or wrong; the message names it.
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

impl AccessError {
    /// An error about `path`.
    pub fn file(path: &std::path::Path, message: impl Into<String>) -> AccessError {
        AccessError::File {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}
