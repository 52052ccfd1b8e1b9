//! Errors of the index crate.

/// What can go wrong building, packing or reading an index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// tantivy failed.
    #[error("index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The blob is not an Iris index or is damaged.
    #[error("not a valid index blob: {0}")]
    Corrupt(String),
    /// Reading the index failed.
    #[error("index read: {0}")]
    Io(#[from] std::io::Error),
    /// A column that is not indexed was asked for.
    #[error("column `{0}` is not indexed (indexed: subject_id, actor_id, ticket)")]
    NotIndexed(String),
    /// The batches lack an indexed column or have the wrong type.
    #[error("cannot index column `{0}`: missing or not a string")]
    BadColumn(String),
}

impl From<tantivy::directory::error::OpenReadError> for IndexError {
    fn from(e: tantivy::directory::error::OpenReadError) -> Self {
        IndexError::Corrupt(e.to_string())
    }
}
