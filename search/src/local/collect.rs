//! One pass over the documents matching the text query: filters from fast
//! fields, per-category counts, the total, and the top of the page after
//! the cursor.
//!
//! The category and subcategory filters are applied here, after counting
//! categories, so the counts ignore them as the facets require; every other
//! filter applies to both.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::index::SegmentReader;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal};

use super::schema::{
    F_CATEGORY, F_CREATED, F_DELIVERY, F_ID_HI, F_ID_LO, F_LEVEL, F_PRICE, F_RATING,
    F_RATING_COUNT, F_SUBCATEGORY,
};
use crate::model::{order_key, CategoryCount, SearchQuery, Sort};

/// Position in result order: `(primary, secondary, gig id)`, ascending.
pub(crate) type Key = (u64, u64, u128);

/// The filters of a query, in the form the collector checks them.
#[derive(Clone, Debug)]
pub(crate) struct Filters {
    price_min: i64,
    price_max: i64,
    max_delivery: u64,
    min_rating: f64,
    /// Bit `code` set for each accepted seller level.
    levels: u8,
    category: Option<String>,
    subcategory: Option<String>,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            price_min: i64::MIN,
            price_max: i64::MAX,
            max_delivery: u64::MAX,
            min_rating: f64::NEG_INFINITY,
            levels: 0b1111,
            category: None,
            subcategory: None,
        }
    }
}

impl Filters {
    pub fn from_query(query: &SearchQuery) -> Filters {
        let levels = if query.seller_levels.is_empty() {
            0b1111
        } else {
            query
                .seller_levels
                .iter()
                .fold(0u8, |mask, level| mask | (1 << level.code()))
        };
        Filters {
            price_min: query.price_min.unwrap_or(i64::MIN),
            price_max: query.price_max.unwrap_or(i64::MAX),
            max_delivery: query.max_delivery_days.map_or(u64::MAX, u64::from),
            min_rating: query.min_rating.map_or(f64::NEG_INFINITY, f64::from),
            levels,
            category: query.category.clone(),
            subcategory: query.subcategory.clone(),
        }
    }
}

/// A hit kept for the page.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Candidate {
    pub key: Key,
    pub address: DocAddress,
    pub score: Score,
    /// Raw sort values, for the cursor.
    pub primary: u64,
    pub secondary: u32,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

pub(crate) struct GigCollector {
    pub sort: Sort,
    /// How many hits to keep (the page size plus one, to know if more follow).
    pub keep: usize,
    pub after: Option<Key>,
    pub filters: Arc<Filters>,
    pub facets: bool,
}

pub(crate) struct Collected {
    pub total: u64,
    /// Sorted, at most `keep`.
    pub top: Vec<Candidate>,
    /// Largest first, then by name.
    pub categories: Vec<CategoryCount>,
}

pub(crate) struct SegmentFruit {
    total: u64,
    top: Vec<Candidate>,
    facet_counts: Vec<u64>,
    category: Option<StrColumn>,
}

struct Columns {
    price: Column<i64>,
    delivery: Column<u64>,
    rating: Column<f64>,
    rating_count: Column<u64>,
    level: Column<u64>,
    created: Column<i64>,
    id_hi: Column<u64>,
    id_lo: Column<u64>,
    category: Option<StrColumn>,
    subcategory: Option<StrColumn>,
}

/// A wanted string value as a term ordinal of this segment's column.
enum Wanted {
    Any,
    Ordinal(u64),
    /// The value does not occur in this segment.
    Absent,
}

fn wanted(column: Option<&StrColumn>, value: Option<&String>) -> tantivy::Result<Wanted> {
    let Some(value) = value else {
        return Ok(Wanted::Any);
    };
    let Some(column) = column else {
        return Ok(Wanted::Absent);
    };
    Ok(match column.dictionary().term_ord(value.as_bytes())? {
        Some(ord) => Wanted::Ordinal(ord),
        None => Wanted::Absent,
    })
}

pub(crate) struct GigSegmentCollector {
    segment: SegmentOrdinal,
    sort: Sort,
    keep: usize,
    after: Option<Key>,
    filters: Arc<Filters>,
    columns: Columns,
    category: Wanted,
    subcategory: Wanted,
    facet_counts: Option<Vec<u64>>,
    total: u64,
    heap: BinaryHeap<Candidate>,
}

impl Collector for GigCollector {
    type Fruit = Collected;
    type Child = GigSegmentCollector;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<GigSegmentCollector> {
        let fast = reader.fast_fields();
        let columns = Columns {
            price: fast.i64(F_PRICE)?,
            delivery: fast.u64(F_DELIVERY)?,
            rating: fast.f64(F_RATING)?,
            rating_count: fast.u64(F_RATING_COUNT)?,
            level: fast.u64(F_LEVEL)?,
            created: fast.i64(F_CREATED)?,
            id_hi: fast.u64(F_ID_HI)?,
            id_lo: fast.u64(F_ID_LO)?,
            category: fast.str(F_CATEGORY)?,
            subcategory: fast.str(F_SUBCATEGORY)?,
        };
        let category = wanted(columns.category.as_ref(), self.filters.category.as_ref())?;
        let subcategory = wanted(
            columns.subcategory.as_ref(),
            self.filters.subcategory.as_ref(),
        )?;
        let facet_counts = match (&columns.category, self.facets) {
            (Some(column), true) => Some(vec![0; column.num_terms()]),
            _ => None,
        };
        Ok(GigSegmentCollector {
            segment,
            sort: self.sort,
            keep: self.keep,
            after: self.after,
            filters: Arc::clone(&self.filters),
            columns,
            category,
            subcategory,
            facet_counts,
            total: 0,
            heap: BinaryHeap::with_capacity(self.keep + 1),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.sort == Sort::Relevance
    }

    fn merge_fruits(&self, fruits: Vec<SegmentFruit>) -> tantivy::Result<Collected> {
        let mut total = 0;
        let mut top = Vec::new();
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut name = String::new();
        for fruit in fruits {
            total += fruit.total;
            top.extend(fruit.top);
            if let Some(column) = &fruit.category {
                for (ord, &count) in fruit.facet_counts.iter().enumerate() {
                    if count > 0 && column.ord_to_str(ord as u64, &mut name)? {
                        *counts.entry(name.clone()).or_default() += count;
                    }
                }
            }
        }
        top.sort_unstable();
        top.truncate(self.keep);
        let mut categories: Vec<CategoryCount> = counts
            .into_iter()
            .map(|(category, count)| CategoryCount { category, count })
            .collect();
        categories.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.category.cmp(&b.category))
        });
        Ok(Collected {
            total,
            top,
            categories,
        })
    }
}

fn first_ord(column: Option<&StrColumn>, doc: DocId) -> Option<u64> {
    column.and_then(|c| c.ords().first(doc))
}

fn matches(wanted: &Wanted, ord: Option<u64>) -> bool {
    match wanted {
        Wanted::Any => true,
        Wanted::Ordinal(want) => ord == Some(*want),
        Wanted::Absent => false,
    }
}

impl GigSegmentCollector {
    fn passes_filters(&self, doc: DocId) -> bool {
        let f = &self.filters;
        let c = &self.columns;
        let price = c.price.first(doc).unwrap_or(0);
        if price < f.price_min || price > f.price_max {
            return false;
        }
        if c.delivery.first(doc).unwrap_or(0) > f.max_delivery {
            return false;
        }
        if c.rating.first(doc).unwrap_or(0.0) < f.min_rating {
            return false;
        }
        let level = c.level.first(doc).unwrap_or(0);
        level < 8 && f.levels & (1 << level) != 0
    }

    fn sort_values(&self, doc: DocId, score: Score) -> (u64, u32) {
        let c = &self.columns;
        match self.sort {
            Sort::Relevance => (u64::from(score.to_bits()), 0),
            Sort::PriceAsc | Sort::PriceDesc => (c.price.first(doc).unwrap_or(0) as u64, 0),
            Sort::Rating => {
                let rating = c.rating.first(doc).unwrap_or(0.0) as f32;
                let count = c.rating_count.first(doc).unwrap_or(0);
                (
                    u64::from(rating.to_bits()),
                    u32::try_from(count).unwrap_or(u32::MAX),
                )
            }
            Sort::Newest => (c.created.first(doc).unwrap_or(0) as u64, 0),
        }
    }
}

impl SegmentCollector for GigSegmentCollector {
    type Fruit = SegmentFruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        if !self.passes_filters(doc) {
            return;
        }
        let category = first_ord(self.columns.category.as_ref(), doc);
        if let (Some(counts), Some(ord)) = (self.facet_counts.as_mut(), category) {
            if let Some(slot) = counts.get_mut(ord as usize) {
                *slot += 1;
            }
        }
        if !matches(&self.category, category) {
            return;
        }
        if !matches(
            &self.subcategory,
            first_ord(self.columns.subcategory.as_ref(), doc),
        ) {
            return;
        }
        self.total += 1;
        let (primary, secondary) = self.sort_values(doc, score);
        let (a, b) = order_key(self.sort, primary, secondary);
        let id = (u128::from(self.columns.id_hi.first(doc).unwrap_or(0)) << 64)
            | u128::from(self.columns.id_lo.first(doc).unwrap_or(0));
        let key = (a, b, id);
        if self.after.is_some_and(|after| key <= after) {
            return;
        }
        if self.heap.len() >= self.keep {
            match self.heap.peek() {
                Some(worst) if key < worst.key => {
                    self.heap.pop();
                }
                _ => return,
            }
        }
        self.heap.push(Candidate {
            key,
            address: DocAddress::new(self.segment, doc),
            score,
            primary,
            secondary,
        });
    }

    fn harvest(self) -> SegmentFruit {
        SegmentFruit {
            total: self.total,
            top: self.heap.into_vec(),
            facet_counts: self.facet_counts.unwrap_or_default(),
            category: self.columns.category,
        }
    }
}
