//! Integration tests of the search tier: the shared scenario suite on the
//! tantivy index and on the Elasticsearch backend (against an HTTP double),
//! autocomplete, index recovery, and the tier's fallback.

// Test helpers outside `#[test]` functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod elastic;
mod es_double;
mod fixtures;
mod local;
mod scenarios;
mod tier;
