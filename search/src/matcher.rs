//! Whether one gig matches a query, without an index: what saved-search
//! alerts need when a gig is published.
//!
//! The rules are the local index's: every analysed search term must match
//! a term of some text field (title, tags, category and subcategory names,
//! seller name and username, description) exactly, as a prefix when it is
//! the last term, or within the typo distance of its length (a
//! transposition counts as one edit); the filters compare the same values
//! the index's fast fields hold. Sort, cursor and limit do not matter.
//! Both sides go through the index's own analyser, so a term matches here
//! exactly when it matches there.

use std::collections::BTreeSet;

use crate::local::schema::analyzer;
use crate::model::{GigDocument, SearchQuery, SellerLevel};
use crate::text::{typo_distance, MAX_TERMS};

/// The analysed terms of every text field of one document, to match many
/// queries against.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocumentTerms {
    terms: BTreeSet<String>,
}

impl DocumentTerms {
    pub fn new(doc: &GigDocument) -> Self {
        let mut analyzer = analyzer();
        let mut terms = BTreeSet::new();
        let fields = [
            doc.title.as_str(),
            doc.description.as_str(),
            doc.category_name.as_str(),
            doc.subcategory_name.as_str(),
            doc.seller_name.as_str(),
            doc.seller_username.as_str(),
        ];
        for text in fields
            .into_iter()
            .chain(doc.tags.iter().map(String::as_str))
        {
            let mut stream = analyzer.token_stream(text);
            while stream.advance() {
                terms.insert(stream.token().text.clone());
            }
        }
        Self { terms }
    }

    fn has(&self, term: &str) -> bool {
        self.terms.contains(term)
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        self.terms
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|term| term.starts_with(prefix))
    }

    fn has_within(&self, term: &str, distance: u8) -> bool {
        let wanted: Vec<char> = term.chars().collect();
        let mut scratch = Vec::new();
        self.terms
            .iter()
            .any(|candidate| within(&wanted, candidate, usize::from(distance), &mut scratch))
    }
}

/// A query prepared for matching many documents: its analysed terms and
/// its filters.
#[derive(Clone, Debug)]
pub struct QueryMatcher {
    terms: Vec<String>,
    category: Option<String>,
    subcategory: Option<String>,
    price_min: Option<i64>,
    price_max: Option<i64>,
    max_delivery_days: Option<u32>,
    min_rating: Option<f32>,
    seller_levels: Vec<SellerLevel>,
}

impl QueryMatcher {
    pub fn new(query: &SearchQuery) -> Self {
        let mut terms = Vec::new();
        if let Some(text) = &query.text {
            let mut analyzer = analyzer();
            let mut stream = analyzer.token_stream(text);
            while stream.advance() && terms.len() < MAX_TERMS {
                terms.push(stream.token().text.clone());
            }
        }
        Self {
            terms,
            category: query.category.clone(),
            subcategory: query.subcategory.clone(),
            price_min: query.price_min,
            price_max: query.price_max,
            max_delivery_days: query.max_delivery_days,
            min_rating: query.min_rating,
            seller_levels: query.seller_levels.clone(),
        }
    }

    /// Whether the document (whose terms are `terms`) is one of the query's
    /// results.
    pub fn matches(&self, doc: &GigDocument, terms: &DocumentTerms) -> bool {
        self.passes_filters(doc) && self.matches_text(terms)
    }

    fn passes_filters(&self, doc: &GigDocument) -> bool {
        if self.category.as_ref().is_some_and(|c| *c != doc.category)
            || self
                .subcategory
                .as_ref()
                .is_some_and(|s| *s != doc.subcategory)
        {
            return false;
        }
        if self.price_min.is_some_and(|min| doc.price_min < min)
            || self.price_max.is_some_and(|max| doc.price_min > max)
        {
            return false;
        }
        if self
            .max_delivery_days
            .is_some_and(|max| doc.delivery_days_min > max)
        {
            return false;
        }
        // The index keeps the rating as an `f64` made from the `f32`.
        if self
            .min_rating
            .is_some_and(|min| f64::from(doc.rating_avg) < f64::from(min))
        {
            return false;
        }
        self.seller_levels.is_empty() || self.seller_levels.contains(&doc.seller_level)
    }

    fn matches_text(&self, doc: &DocumentTerms) -> bool {
        self.terms.iter().enumerate().all(|(i, term)| {
            let last = i + 1 == self.terms.len();
            let distance = typo_distance(term);
            doc.has(term)
                || (last && doc.has_prefix(term))
                || (distance > 0 && doc.has_within(term, distance))
        })
    }
}

impl SearchQuery {
    /// Whether `doc` is one of this query's results, whatever the page:
    /// [`QueryMatcher`] for one document.
    pub fn matches(&self, doc: &GigDocument) -> bool {
        QueryMatcher::new(self).matches(doc, &DocumentTerms::new(doc))
    }
}

/// Whether `candidate` is within `max` edits of `wanted` (insertions,
/// deletions, substitutions, and transpositions of neighbours, each one
/// edit), in characters.
fn within(wanted: &[char], candidate: &str, max: usize, rows: &mut Vec<usize>) -> bool {
    let other: Vec<char> = candidate.chars().collect();
    let (n, m) = (wanted.len(), other.len());
    if n.abs_diff(m) > max {
        return false;
    }
    // Three rows of the optimal string alignment table: two back, one
    // back, and the current one.
    let width = m + 1;
    rows.clear();
    rows.resize(3 * width, 0);
    for (j, cell) in rows[..width].iter_mut().enumerate() {
        *cell = j;
    }
    let row = |i: usize| (i % 3) * width;
    for i in 1..=n {
        let (current, previous, before) = (row(i), row(i - 1), row(i + 1));
        rows[current] = i;
        let mut best = i;
        for j in 1..=m {
            let cost = usize::from(wanted[i - 1] != other[j - 1]);
            let mut value = (rows[previous + j] + 1)
                .min(rows[current + j - 1] + 1)
                .min(rows[previous + j - 1] + cost);
            if i > 1 && j > 1 && wanted[i - 1] == other[j - 2] && wanted[i - 2] == other[j - 1] {
                value = value.min(rows[before + j - 2] + 1);
            }
            rows[current + j] = value;
            best = best.min(value);
        }
        if best > max {
            return false;
        }
    }
    rows[row(n) + m] <= max
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use super::*;
    use crate::backend::SearchBackend;
    use crate::local::TantivyIndex;
    use crate::model::Sort;

    fn doc(n: u128, title: &str, category: &str, price: i64) -> GigDocument {
        GigDocument {
            gig_id: Uuid::from_u128(n),
            title: title.to_owned(),
            description: "Careful work, delivered on time with clear communication.".to_owned(),
            tags: vec!["branding".to_owned(), "vector art".to_owned()],
            category: category.to_owned(),
            category_name: "Graphics & Design".to_owned(),
            subcategory: "logo-design".to_owned(),
            subcategory_name: "Logo Design".to_owned(),
            seller_id: Uuid::from_u128(1000 + n),
            seller_username: format!("seller{n}"),
            seller_name: "Zoë Müller".to_owned(),
            seller_level: SellerLevel::New,
            price_min: price,
            price_max: price * 2,
            delivery_days_min: 3,
            rating_avg: 0.0,
            rating_count: 0,
            image_url: None,
            created_at: Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
                + chrono::TimeDelta::seconds(i64::try_from(n).unwrap()),
        }
    }

    fn text(q: &str) -> SearchQuery {
        SearchQuery {
            text: Some(q.to_owned()),
            ..SearchQuery::default()
        }
    }

    #[test]
    fn edit_distance_counts_transpositions_as_one() {
        let w = |a: &str, b: &str, max| {
            let a: Vec<char> = a.chars().collect();
            within(&a, b, max, &mut Vec::new())
        };
        assert!(w("python", "pyhton", 1));
        assert!(w("wordpress", "wrodpress", 1));
        assert!(w("design", "desing", 1));
        assert!(w("logo", "logo", 0));
        assert!(!w("logo", "lago", 0));
        assert!(w("shopify", "shopfy", 1));
        assert!(!w("shopify", "shpfy", 1));
        assert!(w("illustration", "ilustratoin", 2));
        assert!(!w("illustration", "ilstratoin", 2));
        assert!(w("", "ab", 2) && !w("", "abc", 2));
    }

    #[test]
    fn text_matches_exactly_by_prefix_or_with_typos() {
        let gig = doc(
            1,
            "I will design a minimalist logo",
            "graphics-design",
            2500,
        );
        assert!(text("minimalist logo").matches(&gig));
        assert!(text("LOGO, minimalist!").matches(&gig));
        // The last term is being typed: a prefix is enough.
        assert!(text("logo minim").matches(&gig));
        assert!(!text("minim logo").matches(&gig));
        // Typos in longer words.
        assert!(text("minimalsit").matches(&gig));
        assert!(!text("lgoo").matches(&gig), "no typos under five letters");
        // Every term must match; stop words are dropped.
        assert!(!text("logo animation").matches(&gig));
        assert!(text("the logo of a").matches(&gig));
        // Tags, category names, seller names, folded accents.
        assert!(text("vector").matches(&gig));
        assert!(text("graphics").matches(&gig));
        assert!(text("zoe muller").matches(&gig));
        assert!(text("seller1").matches(&gig));
        // Only stop words, or nothing: every gig.
        assert!(text("the of").matches(&gig));
        assert!(SearchQuery::default().matches(&gig));
    }

    #[test]
    fn filters_compare_what_the_index_filters_on() {
        let mut gig = doc(
            1,
            "I will design a minimalist logo",
            "graphics-design",
            2500,
        );
        gig.seller_level = SellerLevel::Level2;
        gig.rating_avg = 4.5;
        let q = |f: fn(&mut SearchQuery)| {
            let mut query = SearchQuery::default();
            f(&mut query);
            query
        };
        assert!(q(|q| q.category = Some("graphics-design".into())).matches(&gig));
        assert!(!q(|q| q.category = Some("programming-tech".into())).matches(&gig));
        assert!(q(|q| q.subcategory = Some("logo-design".into())).matches(&gig));
        assert!(!q(|q| q.subcategory = Some("illustration".into())).matches(&gig));
        assert!(q(|q| q.price_min = Some(2500)).matches(&gig));
        assert!(!q(|q| q.price_min = Some(2501)).matches(&gig));
        assert!(q(|q| q.price_max = Some(2500)).matches(&gig));
        assert!(!q(|q| q.price_max = Some(2499)).matches(&gig));
        assert!(q(|q| q.max_delivery_days = Some(3)).matches(&gig));
        assert!(!q(|q| q.max_delivery_days = Some(2)).matches(&gig));
        assert!(q(|q| q.min_rating = Some(4.5)).matches(&gig));
        assert!(!q(|q| q.min_rating = Some(4.6)).matches(&gig));
        assert!(q(|q| q.seller_levels = vec![SellerLevel::Level2]).matches(&gig));
        assert!(
            !q(|q| q.seller_levels = vec![SellerLevel::New, SellerLevel::TopRated]).matches(&gig)
        );
    }

    /// The matcher and the local index agree on which gigs every query
    /// finds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agrees_with_the_local_index() {
        let mut docs = vec![
            doc(
                1,
                "I will design a minimalist logo",
                "graphics-design",
                2500,
            ),
            doc(
                2,
                "I will build your React web application",
                "programming-tech",
                15000,
            ),
            doc(
                3,
                "I will write SEO blog articles",
                "writing-translation",
                1200,
            ),
            doc(4, "I will mix and master your song", "music-audio", 4000),
            doc(
                5,
                "I will draw a children's book illustration",
                "graphics-design",
                9000,
            ),
            doc(
                6,
                "I will fix WordPress websites fast",
                "programming-tech",
                3000,
            ),
            doc(
                7,
                "I will translate English to Spanish",
                "writing-translation",
                800,
            ),
            doc(
                8,
                "Logotipo y branding completo para tu marca",
                "graphics-design",
                50000,
            ),
        ];
        docs[1].tags = vec!["react".into(), "typescript".into()];
        docs[1].seller_level = SellerLevel::TopRated;
        docs[1].rating_avg = 4.9;
        docs[3].delivery_days_min = 10;
        docs[4].rating_avg = 3.5;
        docs[4].seller_level = SellerLevel::Level1;
        docs[5].description = "Plugins, themes, speed and security for your website.".into();
        docs[6].subcategory = "translation".into();
        let index = TantivyIndex::in_memory().unwrap();
        index.upsert(&docs).await.unwrap();

        let mut queries: Vec<SearchQuery> = [
            "logo",
            "logo des",
            "desing",
            "minimalst logo",
            "wordpres",
            "react app",
            "web",
            "illustraton",
            "the",
            "song master",
            "spanish",
            "branding",
            "zoe",
            "muller",
            "seller3",
            "graphics design",
            "write",
            "plugin",
            "blog articles seo",
            "marca",
            "x",
        ]
        .into_iter()
        .map(text)
        .collect();
        let filtered = [
            SearchQuery {
                category: Some("graphics-design".into()),
                ..SearchQuery::default()
            },
            SearchQuery {
                category: Some("writing-translation".into()),
                subcategory: Some("translation".into()),
                ..SearchQuery::default()
            },
            SearchQuery {
                price_min: Some(1200),
                price_max: Some(9000),
                ..text("will")
            },
            SearchQuery {
                max_delivery_days: Some(5),
                ..SearchQuery::default()
            },
            SearchQuery {
                min_rating: Some(3.5),
                ..SearchQuery::default()
            },
            SearchQuery {
                seller_levels: vec![SellerLevel::TopRated, SellerLevel::Level1],
                sort: Sort::PriceAsc,
                ..SearchQuery::default()
            },
        ];
        queries.extend(filtered);
        for query in queries {
            let query = SearchQuery { limit: 50, ..query };
            let page = index.search(&query).await.unwrap();
            let found: BTreeSet<Uuid> = page.hits.iter().map(|hit| hit.gig_id).collect();
            let matched: BTreeSet<Uuid> = docs
                .iter()
                .filter(|doc| query.matches(doc))
                .map(|doc| doc.gig_id)
                .collect();
            assert_eq!(matched, found, "{query:?}");
        }
    }
}
