//! The types every backend speaks: documents in, queries, pages and
//! suggestions out.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cursor::Cursor;
use crate::error::SearchError;
use crate::text;

/// The largest page a query may ask for.
pub const MAX_LIMIT: usize = 50;
/// The page size when the caller does not say.
pub const DEFAULT_LIMIT: usize = 20;
/// Longest accepted search text, in characters.
pub const MAX_TEXT_CHARS: usize = 200;

/// One active gig as the index sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GigDocument {
    pub gig_id: Uuid,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// Category slug, e.g. `programming-tech`.
    pub category: String,
    /// Category display name, e.g. `Programming & Tech`.
    pub category_name: String,
    /// Subcategory slug.
    pub subcategory: String,
    pub subcategory_name: String,
    pub seller_id: Uuid,
    pub seller_username: String,
    /// Display or full name.
    pub seller_name: String,
    pub seller_level: SellerLevel,
    /// Minor units of the marketplace currency (the cheapest package).
    pub price_min: i64,
    pub price_max: i64,
    /// Delivery days of the fastest package.
    pub delivery_days_min: u32,
    /// 0.0 when `rating_count == 0`.
    pub rating_avg: f32,
    pub rating_count: u32,
    pub image_url: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A value that is not one of an enum's wire names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct ParseEnumError {
    kind: &'static str,
    value: String,
}

/// The seller's level, as shown on gigs and filtered on in search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SellerLevel {
    New,
    #[serde(rename = "level_1")]
    Level1,
    #[serde(rename = "level_2")]
    Level2,
    TopRated,
}

impl SellerLevel {
    pub const ALL: [SellerLevel; 4] = [
        SellerLevel::New,
        SellerLevel::Level1,
        SellerLevel::Level2,
        SellerLevel::TopRated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SellerLevel::New => "new",
            SellerLevel::Level1 => "level_1",
            SellerLevel::Level2 => "level_2",
            SellerLevel::TopRated => "top_rated",
        }
    }

    /// Dense code used in the tantivy fast field.
    pub(crate) fn code(self) -> u64 {
        match self {
            SellerLevel::New => 0,
            SellerLevel::Level1 => 1,
            SellerLevel::Level2 => 2,
            SellerLevel::TopRated => 3,
        }
    }
}

impl fmt::Display for SellerLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SellerLevel {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SellerLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "seller level",
                value: s.to_owned(),
            })
    }
}

/// Result order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Best match first; behaves as `Newest` when there is no search text.
    #[default]
    Relevance,
    PriceAsc,
    PriceDesc,
    /// Highest average rating first, then most reviews.
    Rating,
    Newest,
}

impl Sort {
    pub const ALL: [Sort; 5] = [
        Sort::Relevance,
        Sort::PriceAsc,
        Sort::PriceDesc,
        Sort::Rating,
        Sort::Newest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::PriceAsc => "price_asc",
            Sort::PriceDesc => "price_desc",
            Sort::Rating => "rating",
            Sort::Newest => "newest",
        }
    }

    pub(crate) fn code(self) -> u8 {
        match self {
            Sort::Relevance => 0,
            Sort::PriceAsc => 1,
            Sort::PriceDesc => 2,
            Sort::Rating => 3,
            Sort::Newest => 4,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Sort> {
        Sort::ALL.into_iter().find(|sort| sort.code() == code)
    }
}

impl fmt::Display for Sort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sort {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sort::ALL
            .into_iter()
            .find(|sort| sort.as_str() == s)
            .ok_or_else(|| ParseEnumError {
                kind: "sort",
                value: s.to_owned(),
            })
    }
}

/// A search request. `Default` matches every gig, newest first, 20 per page.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchQuery {
    pub text: Option<String>,
    /// Category slug.
    pub category: Option<String>,
    /// Subcategory slug.
    pub subcategory: Option<String>,
    /// Lower bound on the gig's "starting at" price (`price_min`), inclusive.
    pub price_min: Option<i64>,
    /// Upper bound on the gig's "starting at" price, inclusive.
    pub price_max: Option<i64>,
    /// Gigs whose fastest package is delivered within this many days.
    pub max_delivery_days: Option<u32>,
    pub min_rating: Option<f32>,
    /// Any of these levels; empty means all.
    pub seller_levels: Vec<SellerLevel>,
    pub sort: Sort,
    /// Opaque, from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// 1..=50.
    pub limit: usize,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            text: None,
            category: None,
            subcategory: None,
            price_min: None,
            price_max: None,
            max_delivery_days: None,
            min_rating: None,
            seller_levels: Vec::new(),
            sort: Sort::Relevance,
            cursor: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl SearchQuery {
    /// Checks what a backend cannot be expected to handle; every backend
    /// calls it first, so they reject the same queries.
    pub fn validate(&self) -> Result<(), SearchError> {
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return Err(SearchError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        if let Some(text) = &self.text {
            if text.chars().count() > MAX_TEXT_CHARS {
                return Err(SearchError::invalid(format!(
                    "search text must be at most {MAX_TEXT_CHARS} characters"
                )));
            }
        }
        if self.price_min.is_some_and(|p| p < 0) || self.price_max.is_some_and(|p| p < 0) {
            return Err(SearchError::invalid("prices must not be negative"));
        }
        if let (Some(min), Some(max)) = (self.price_min, self.price_max) {
            if min > max {
                return Err(SearchError::invalid(
                    "price_min must not be greater than price_max",
                ));
            }
        }
        if let Some(rating) = self.min_rating {
            if !rating.is_finite() || !(0.0..=5.0).contains(&rating) {
                return Err(SearchError::invalid("min_rating must be between 0 and 5"));
            }
        }
        self.decoded_cursor()?;
        Ok(())
    }

    /// The analysed search terms (lowercase, stop words removed).
    pub(crate) fn terms(&self) -> Vec<String> {
        self.text.as_deref().map(text::terms).unwrap_or_default()
    }

    /// The order actually applied: relevance without search text is newest.
    pub fn effective_sort(&self) -> Sort {
        if self.sort == Sort::Relevance && self.terms().is_empty() {
            Sort::Newest
        } else {
            self.sort
        }
    }

    pub(crate) fn decoded_cursor(&self) -> Result<Option<Cursor>, SearchError> {
        match &self.cursor {
            None => Ok(None),
            Some(raw) => Cursor::decode(raw, self.effective_sort()).map(Some),
        }
    }
}

/// One result row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GigHit {
    pub gig_id: Uuid,
    pub title: String,
    pub seller_username: String,
    pub seller_name: String,
    pub seller_level: SellerLevel,
    pub category: String,
    pub subcategory: String,
    pub price_min: i64,
    pub delivery_days_min: u32,
    pub rating_avg: f32,
    pub rating_count: u32,
    pub image_url: Option<String>,
    /// The backend's relevance score, when results are ordered by relevance.
    pub score: Option<f32>,
}

impl GigHit {
    pub(crate) fn from_document(doc: GigDocument, score: Option<f32>) -> GigHit {
        GigHit {
            gig_id: doc.gig_id,
            title: doc.title,
            seller_username: doc.seller_username,
            seller_name: doc.seller_name,
            seller_level: doc.seller_level,
            category: doc.category,
            subcategory: doc.subcategory,
            price_min: doc.price_min,
            delivery_days_min: doc.delivery_days_min,
            rating_avg: doc.rating_avg,
            rating_count: doc.rating_count,
            image_url: doc.image_url,
            score,
        }
    }
}

/// How many gigs of one category match the current query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryCount {
    pub category: String,
    pub count: u64,
}

/// One page of results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    pub hits: Vec<GigHit>,
    /// Every gig matching the query and all its filters.
    pub total: u64,
    /// Counts per category for the query without its category and
    /// subcategory filters, largest first.
    pub categories: Vec<CategoryCount>,
    /// Present when more results follow.
    pub next_cursor: Option<String>,
}

/// Where a suggestion comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    Title,
    Tag,
    Category,
}

impl SuggestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionKind::Title => "title",
            SuggestionKind::Tag => "tag",
            SuggestionKind::Category => "category",
        }
    }
}

/// One autocomplete suggestion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub text: String,
    pub kind: SuggestionKind,
}

/// Sorting key of a gig, shared by the cursor and the local collector:
/// ascending order of `(primary, secondary, id)` is result order.
pub(crate) fn order_key(sort: Sort, primary: u64, secondary: u32) -> (u64, u64) {
    match sort {
        Sort::Relevance => (u64::MAX - ordered_f32(f32::from_bits(primary as u32)), 0),
        Sort::PriceAsc => (ordered_i64(primary as i64), 0),
        Sort::PriceDesc => (u64::MAX - ordered_i64(primary as i64), 0),
        Sort::Rating => (
            u64::MAX - ordered_f32(f32::from_bits(primary as u32)),
            u64::from(u32::MAX - secondary),
        ),
        Sort::Newest => (u64::MAX - ordered_i64(primary as i64), 0),
    }
}

/// The raw sort values of a document (and its score) under `sort`.
pub(crate) fn sort_values(sort: Sort, doc: &GigDocument, score: f32) -> (u64, u32) {
    match sort {
        Sort::Relevance => (u64::from(score.to_bits()), 0),
        Sort::PriceAsc | Sort::PriceDesc => (doc.price_min as u64, 0),
        Sort::Rating => (u64::from(doc.rating_avg.to_bits()), doc.rating_count),
        Sort::Newest => (doc.created_at.timestamp_micros() as u64, 0),
    }
}

/// Maps an `f32` to a `u64` with the same order.
fn ordered_f32(value: f32) -> u64 {
    let bits = value.to_bits();
    let ordered = if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    u64::from(ordered)
}

/// Maps an `i64` to a `u64` with the same order.
fn ordered_i64(value: i64) -> u64 {
    (value as u64) ^ (1 << 63)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_wire_names() {
        for level in SellerLevel::ALL {
            assert_eq!(level.as_str().parse::<SellerLevel>(), Ok(level));
            assert_eq!(
                serde_json::to_value(level).unwrap(),
                serde_json::json!(level.as_str())
            );
        }
        for sort in Sort::ALL {
            assert_eq!(sort.as_str().parse::<Sort>(), Ok(sort));
            assert_eq!(Sort::from_code(sort.code()), Some(sort));
        }
        assert!("gold".parse::<SellerLevel>().is_err());
        assert!("cheapest".parse::<Sort>().is_err());
    }

    #[test]
    fn validate_rejects_what_no_backend_can_answer() {
        let ok = SearchQuery::default();
        assert!(ok.validate().is_ok());
        for bad in [
            SearchQuery {
                limit: 0,
                ..SearchQuery::default()
            },
            SearchQuery {
                limit: 51,
                ..SearchQuery::default()
            },
            SearchQuery {
                price_min: Some(500),
                price_max: Some(100),
                ..SearchQuery::default()
            },
            SearchQuery {
                price_min: Some(-1),
                ..SearchQuery::default()
            },
            SearchQuery {
                min_rating: Some(f32::NAN),
                ..SearchQuery::default()
            },
            SearchQuery {
                min_rating: Some(5.5),
                ..SearchQuery::default()
            },
            SearchQuery {
                cursor: Some("%%%".into()),
                ..SearchQuery::default()
            },
            SearchQuery {
                text: Some("x".repeat(201)),
                ..SearchQuery::default()
            },
        ] {
            assert!(bad.validate().unwrap_err().is_invalid_query(), "{bad:?}");
        }
    }

    #[test]
    fn relevance_without_text_means_newest() {
        assert_eq!(SearchQuery::default().effective_sort(), Sort::Newest);
        let only_stop_words = SearchQuery {
            text: Some("the of".into()),
            ..SearchQuery::default()
        };
        assert_eq!(only_stop_words.effective_sort(), Sort::Newest);
        let text = SearchQuery {
            text: Some("logo".into()),
            ..SearchQuery::default()
        };
        assert_eq!(text.effective_sort(), Sort::Relevance);
        let price = SearchQuery {
            sort: Sort::PriceAsc,
            ..SearchQuery::default()
        };
        assert_eq!(price.effective_sort(), Sort::PriceAsc);
    }

    #[test]
    fn order_keys_follow_the_sort_direction() {
        let key = |sort, p: u64, s| order_key(sort, p, s);
        assert!(key(Sort::PriceAsc, 100, 0) < key(Sort::PriceAsc, 200, 0));
        assert!(key(Sort::PriceDesc, 200, 0) < key(Sort::PriceDesc, 100, 0));
        let score = |s: f32| u64::from(s.to_bits());
        assert!(key(Sort::Relevance, score(3.5), 0) < key(Sort::Relevance, score(0.25), 0));
        assert!(key(Sort::Rating, score(4.9), 3) < key(Sort::Rating, score(4.8), 900));
        assert!(key(Sort::Rating, score(4.9), 30) < key(Sort::Rating, score(4.9), 3));
        let micros = |m: i64| m as u64;
        assert!(key(Sort::Newest, micros(2_000), 0) < key(Sort::Newest, micros(1_000), 0));
        assert!(key(Sort::Newest, micros(1), 0) < key(Sort::Newest, micros(-5), 0));
    }
}
