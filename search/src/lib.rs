//! The search tier: where buyers find gigs.
//!
//! Gig shard actors feed it [`GigDocument`]s; the gateway asks it for
//! [`SearchPage`]s, similar gigs and autocomplete [`Suggestion`]s. Two
//! backends implement the [`SearchBackend`] port: the embedded tantivy index
//! ([`TantivyIndex`], the default, and always kept up to date as the
//! autocomplete cache and fallback) and Elasticsearch
//! ([`ElasticsearchBackend`], production). [`SearchTier`] combines them.
//!
//! Layout:
//! - `model`: documents, queries, pages, suggestions, [`SellerLevel`], [`Sort`].
//! - `backend`: the [`SearchBackend`] trait.
//! - `error`: [`SearchError`].
//! - `cursor`: opaque pagination cursors, one format for both backends.
//! - `text`: how text becomes terms, typo distances, suggestion normalisation.
//! - `suggest`: the in-memory autocomplete dictionary with bounded lookups.
//! - `local`: [`TantivyIndex`] (schema, query building, the collector that
//!   filters, counts facets and pages in one pass).
//! - `elastic`: [`ElasticsearchBackend`] (mapping, bulk writes, query DSL).
//! - `tier`: [`SearchTier`], Elasticsearch first with tantivy as fallback.
//! - `matcher`: [`QueryMatcher`], whether one gig matches a query without an
//!   index, by the local index's rules (saved-search alerts).
//! - `synthetic` (feature `synthetic`): believable generated gigs for
//!   benchmarks and bulk seeding.

mod backend;
mod cursor;
mod elastic;
mod error;
mod local;
mod matcher;
mod model;
mod suggest;
mod text;
mod tier;

#[cfg(feature = "synthetic")]
pub mod synthetic;

pub use backend::SearchBackend;
pub use elastic::ElasticsearchBackend;
pub use error::SearchError;
pub use local::{Opened, TantivyIndex};
pub use matcher::{DocumentTerms, QueryMatcher};
pub use model::{
    CategoryCount, GigDocument, GigHit, ParseEnumError, SearchPage, SearchQuery, SellerLevel, Sort,
    Suggestion, SuggestionKind, DEFAULT_LIMIT, MAX_LIMIT, MAX_TEXT_CHARS,
};
pub use tier::{SearchTier, DEFAULT_REMOTE_TIMEOUT};
