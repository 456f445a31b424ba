//! The one error type of the search tier.

/// What can go wrong in the search tier.
///
/// `InvalidQuery` is the caller's fault (the gateway answers 422); every other
/// variant is a backend failure whose details belong in the log.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A malformed cursor, a limit out of range, `price_min > price_max`, ...
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The embedded tantivy index failed.
    #[error("local index error")]
    Index(#[from] tantivy::TantivyError),
    /// Reading or writing the index directory failed.
    #[error("local index i/o error")]
    Io(#[from] std::io::Error),
    /// A stored document could not be decoded.
    #[error("stored document is unreadable: {0}")]
    Corrupt(String),
    /// A blocking index task panicked or was cancelled.
    #[error("index worker failed: {0}")]
    Worker(String),
    /// Elasticsearch could not be reached, or the request timed out.
    #[error("elasticsearch request failed")]
    Transport(#[from] elasticsearch::Error),
    /// Elasticsearch answered with an error status.
    #[error("elasticsearch answered {status}: {reason}")]
    Remote { status: u16, reason: String },
    /// Elasticsearch answered something this client does not understand.
    #[error("unexpected elasticsearch response: {0}")]
    Decode(String),
    /// The backend is misconfigured (bad URL, index name).
    #[error("invalid search configuration: {0}")]
    Config(String),
    /// The remote backend took longer than the tier allows.
    #[error("remote search backend timed out")]
    Timeout,
}

impl SearchError {
    /// True for errors caused by the request itself (the gateway's 422).
    pub fn is_invalid_query(&self) -> bool {
        matches!(self, SearchError::InvalidQuery(_))
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        SearchError::InvalidQuery(message.into())
    }
}

impl From<tokio::task::JoinError> for SearchError {
    fn from(err: tokio::task::JoinError) -> Self {
        SearchError::Worker(err.to_string())
    }
}

/// The error and its sources on one line, for logs.
pub(crate) fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
