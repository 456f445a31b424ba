//! The search scenario suite, run unchanged against every backend.
//!
//! Each scenario receives an empty backend, loads the fixture marketplace
//! (in two batches, so the local index has several segments) and checks one
//! behaviour through the `SearchBackend` port only.

use std::collections::HashSet;
use std::sync::Arc;

use search::{SearchBackend, SearchError, SearchPage, SearchQuery, SellerLevel, Sort};

use crate::fixtures::{expected_order, gigs, id, ids, sorted};

pub type Backend = Arc<dyn SearchBackend>;

pub async fn load(backend: &Backend) {
    let all = gigs();
    backend.upsert(&all[..6]).await.unwrap();
    backend.upsert(&all[6..]).await.unwrap();
    assert_eq!(backend.count().await.unwrap(), 12);
}

async fn search(backend: &Backend, query: SearchQuery) -> SearchPage {
    backend.search(&query).await.unwrap()
}

fn text(t: &str) -> SearchQuery {
    SearchQuery {
        text: Some(t.into()),
        ..SearchQuery::default()
    }
}

fn assert_invalid(result: Result<SearchPage, SearchError>, what: &str) {
    match result {
        Err(SearchError::InvalidQuery(_)) => {}
        other => panic!("{what}: expected InvalidQuery, got {other:?}"),
    }
}

/// Title matches outrank a match in the description only; scores are
/// reported and descending under relevance.
pub async fn text_relevance(backend: Backend) {
    load(&backend).await;
    let page = search(&backend, text("logo")).await;
    assert_eq!(sorted(ids(&page.hits)), [1, 2, 3, 10]);
    assert_eq!(page.total, 4);
    assert_eq!(
        ids(&page.hits).last(),
        Some(&3),
        "description-only match ranks last"
    );
    let scores: Vec<f32> = page.hits.iter().map(|h| h.score.unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    let page = search(&backend, text("python")).await;
    assert_eq!(sorted(ids(&page.hits)), [4, 5, 12]);

    // Every term must match: only the scraper is about python *and* scraping.
    let page = search(&backend, text("python scraper")).await;
    assert_eq!(ids(&page.hits), [4]);

    // The last term is matched as a prefix while the user types.
    let page = search(&backend, text("mascot lo")).await;
    assert_eq!(ids(&page.hits), [2]);

    // Stop words do not have to match.
    let page = search(&backend, text("the translation of spanish")).await;
    assert_eq!(ids(&page.hits), [11]);

    // Seller names and category names are searchable.
    assert_eq!(ids(&search(&backend, text("farid")).await.hits), [6]);
    assert_eq!(
        sorted(ids(&search(&backend, text("Marketing")).await.hits)),
        [8]
    );

    let page = search(&backend, text("nothing matches this")).await;
    assert!(page.hits.is_empty());
    assert_eq!(page.total, 0);
    assert_eq!(page.next_cursor, None);
}

/// Longer words tolerate typos; exact matches outrank fuzzy ones.
pub async fn typos(backend: Backend) {
    load(&backend).await;
    let page = search(&backend, text("pyhton")).await;
    assert_eq!(sorted(ids(&page.hits)), [4, 5, 12]);

    let page = search(&backend, text("logo desgin")).await;
    let found = ids(&page.hits);
    assert!(found.contains(&1) && found.contains(&2), "{found:?}");
    assert_eq!(sorted(found[..2].to_vec()), [1, 2], "{found:?}");

    // "react" reaches "reach" with one typo, but exact matches come first.
    let page = search(&backend, text("react")).await;
    assert_eq!(sorted(ids(&page.hits)), [6, 7, 8]);
    assert_eq!(ids(&page.hits)[2], 8, "fuzzy match ranks after exact ones");

    // Short words must be exact: "loge" is not "logo".
    assert!(search(&backend, text("loge")).await.hits.is_empty());
}

pub async fn filters(backend: Backend) {
    load(&backend).await;
    let cases: Vec<(SearchQuery, Vec<u128>)> = vec![
        (
            SearchQuery {
                category: Some("programming-tech".into()),
                ..SearchQuery::default()
            },
            vec![4, 5, 6, 7],
        ),
        (
            SearchQuery {
                subcategory: Some("web-development".into()),
                ..SearchQuery::default()
            },
            vec![4, 5, 6],
        ),
        (
            SearchQuery {
                price_min: Some(3000),
                price_max: Some(5000),
                ..SearchQuery::default()
            },
            vec![2, 4, 8, 10, 12],
        ),
        (
            SearchQuery {
                price_min: Some(20000),
                ..SearchQuery::default()
            },
            vec![5, 6, 7],
        ),
        (
            SearchQuery {
                price_max: Some(1500),
                ..SearchQuery::default()
            },
            vec![9, 11],
        ),
        (
            SearchQuery {
                max_delivery_days: Some(2),
                ..SearchQuery::default()
            },
            vec![1, 10, 11],
        ),
        (
            SearchQuery {
                min_rating: Some(4.8),
                ..SearchQuery::default()
            },
            vec![1, 3, 4, 6, 10, 11],
        ),
        (
            SearchQuery {
                seller_levels: vec![SellerLevel::TopRated, SellerLevel::Level2],
                ..SearchQuery::default()
            },
            vec![1, 2, 5, 6, 10, 11],
        ),
        (
            SearchQuery {
                seller_levels: vec![SellerLevel::New],
                ..SearchQuery::default()
            },
            vec![7, 8],
        ),
        (
            SearchQuery {
                category: Some("programming-tech".into()),
                price_max: Some(25000),
                seller_levels: vec![SellerLevel::Level1, SellerLevel::Level2],
                ..SearchQuery::default()
            },
            vec![4, 5],
        ),
        (
            SearchQuery {
                max_delivery_days: Some(3),
                ..text("python")
            },
            vec![4, 12],
        ),
        (
            SearchQuery {
                category: Some("no-such-category".into()),
                ..SearchQuery::default()
            },
            vec![],
        ),
    ];
    for (query, expected) in cases {
        let page = search(&backend, query.clone()).await;
        assert_eq!(sorted(ids(&page.hits)), expected, "{query:?}");
        assert_eq!(page.total, expected.len() as u64, "{query:?}");
    }
}

pub async fn sorts(backend: Backend) {
    load(&backend).await;
    for sort in [
        Sort::PriceAsc,
        Sort::PriceDesc,
        Sort::Rating,
        Sort::Newest,
        Sort::Relevance,
    ] {
        let page = search(
            &backend,
            SearchQuery {
                sort,
                ..SearchQuery::default()
            },
        )
        .await;
        assert_eq!(ids(&page.hits), expected_order(sort), "{sort}");
        assert!(
            page.hits.iter().all(|h| h.score.is_none()),
            "{sort}: no text, no scores"
        );
    }
    // A sort applies to text results as well.
    let page = search(
        &backend,
        SearchQuery {
            sort: Sort::PriceDesc,
            ..text("python")
        },
    )
    .await;
    assert_eq!(ids(&page.hits), [5, 4, 12]);
    let page = search(
        &backend,
        SearchQuery {
            sort: Sort::Rating,
            ..text("logo")
        },
    )
    .await;
    assert_eq!(ids(&page.hits), [1, 10, 3, 2]);
}

pub async fn facets_ignore_the_category_filter(backend: Backend) {
    load(&backend).await;
    let counts = |page: &SearchPage| -> Vec<(String, u64)> {
        page.categories
            .iter()
            .map(|c| (c.category.clone(), c.count))
            .collect()
    };
    let all = vec![
        ("programming-tech".to_owned(), 4),
        ("graphics-design".to_owned(), 3),
        ("writing-translation".to_owned(), 2),
        ("data-ai".to_owned(), 1),
        ("digital-marketing".to_owned(), 1),
        ("video-animation".to_owned(), 1),
    ];
    let page = search(&backend, SearchQuery::default()).await;
    assert_eq!(counts(&page), all);

    let filtered = search(
        &backend,
        SearchQuery {
            category: Some("graphics-design".into()),
            subcategory: Some("logo-design".into()),
            ..SearchQuery::default()
        },
    )
    .await;
    assert_eq!(sorted(ids(&filtered.hits)), [1, 2]);
    assert_eq!(filtered.total, 2);
    assert_eq!(
        counts(&filtered),
        all,
        "facets ignore category and subcategory"
    );

    let page = search(
        &backend,
        SearchQuery {
            category: Some("programming-tech".into()),
            ..text("python")
        },
    )
    .await;
    assert_eq!(sorted(ids(&page.hits)), [4, 5]);
    assert_eq!(
        counts(&page),
        [
            ("programming-tech".to_owned(), 2),
            ("data-ai".to_owned(), 1)
        ]
    );

    // Other filters do narrow the facets.
    let page = search(
        &backend,
        SearchQuery {
            category: Some("graphics-design".into()),
            price_max: Some(3000),
            ..SearchQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&page.hits), [1]);
    assert_eq!(
        counts(&page),
        [
            ("writing-translation".to_owned(), 2),
            ("digital-marketing".to_owned(), 1),
            ("graphics-design".to_owned(), 1),
        ]
    );
}

/// Following `next_cursor` visits every match exactly once, in order,
/// including across ties on the sort value.
pub async fn cursor_paging(backend: Backend) {
    load(&backend).await;
    for sort in [Sort::PriceAsc, Sort::PriceDesc, Sort::Rating, Sort::Newest] {
        let mut query = SearchQuery {
            sort,
            limit: 3,
            ..SearchQuery::default()
        };
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = search(&backend, query.clone()).await;
            assert_eq!(page.total, 12);
            assert!(page.hits.len() <= 3);
            seen.extend(ids(&page.hits));
            pages += 1;
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
            assert!(pages < 10, "paging does not end");
        }
        assert_eq!(seen, expected_order(sort), "{sort}");
        assert_eq!(pages, 4, "{sort}");
    }

    // Relevance pages follow the single-page order.
    let one_page = search(
        &backend,
        SearchQuery {
            limit: 50,
            ..text("design")
        },
    )
    .await;
    assert!(one_page.hits.len() >= 3);
    let mut query = SearchQuery {
        limit: 1,
        ..text("design")
    };
    let mut seen = Vec::new();
    loop {
        let page = search(&backend, query.clone()).await;
        assert_eq!(page.total, one_page.total);
        seen.extend(ids(&page.hits));
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(seen, ids(&one_page.hits));
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    // Filters and cursors combine; the last full page has no cursor.
    let query = SearchQuery {
        sort: Sort::PriceAsc,
        limit: 2,
        category: Some("programming-tech".into()),
        ..SearchQuery::default()
    };
    let first = search(&backend, query.clone()).await;
    assert_eq!(ids(&first.hits), [4, 5]);
    let second = search(
        &backend,
        SearchQuery {
            cursor: first.next_cursor,
            ..query
        },
    )
    .await;
    assert_eq!(ids(&second.hits), [6, 7]);
    assert_eq!(second.next_cursor, None);
}

pub async fn invalid_queries(backend: Backend) {
    load(&backend).await;
    let bad = |q: SearchQuery| {
        let backend = Arc::clone(&backend);
        async move { backend.search(&q).await }
    };
    assert_invalid(
        bad(SearchQuery {
            cursor: Some("not-a-cursor!".into()),
            ..SearchQuery::default()
        })
        .await,
        "garbage cursor",
    );
    assert_invalid(
        bad(SearchQuery {
            cursor: Some("AAAA".into()),
            ..SearchQuery::default()
        })
        .await,
        "short cursor",
    );
    let page = search(
        &backend,
        SearchQuery {
            sort: Sort::PriceAsc,
            limit: 2,
            ..SearchQuery::default()
        },
    )
    .await;
    assert_invalid(
        bad(SearchQuery {
            sort: Sort::Newest,
            cursor: page.next_cursor,
            ..SearchQuery::default()
        })
        .await,
        "cursor of another sort",
    );
    assert_invalid(
        bad(SearchQuery {
            limit: 0,
            ..SearchQuery::default()
        })
        .await,
        "limit 0",
    );
    assert_invalid(
        bad(SearchQuery {
            limit: 51,
            ..SearchQuery::default()
        })
        .await,
        "limit 51",
    );
    assert_invalid(
        bad(SearchQuery {
            price_min: Some(5000),
            price_max: Some(100),
            ..SearchQuery::default()
        })
        .await,
        "inverted price range",
    );
    assert_invalid(
        bad(SearchQuery {
            price_min: Some(-5),
            ..SearchQuery::default()
        })
        .await,
        "negative price",
    );
    assert!(matches!(
        backend.similar(id(1), 0).await,
        Err(SearchError::InvalidQuery(_))
    ));
    assert_eq!(backend.count().await.unwrap(), 12, "nothing changed");
}

pub async fn upsert_replaces(backend: Backend) {
    load(&backend).await;
    let mut gig = gigs().remove(8);
    gig.title = "I will write technical documentation".into();
    gig.tags = vec!["documentation".into(), "technical writing".into()];
    gig.price_min = 9000;
    backend.upsert(std::slice::from_ref(&gig)).await.unwrap();

    assert_eq!(backend.count().await.unwrap(), 12);
    let page = search(&backend, text("documentation")).await;
    assert_eq!(ids(&page.hits), [9]);
    assert_eq!(page.hits[0].title, gig.title);
    assert_eq!(page.hits[0].price_min, 9000);
    assert!(search(&backend, text("seo")).await.hits.is_empty());
    let page = search(
        &backend,
        SearchQuery {
            price_max: Some(1500),
            ..SearchQuery::default()
        },
    )
    .await;
    assert_eq!(ids(&page.hits), [11]);

    // The same gig twice in one batch: the later version wins.
    let mut v1 = gigs().remove(0);
    v1.title = "I will design version one".into();
    let mut v2 = v1.clone();
    v2.title = "I will design version two".into();
    backend.upsert(&[v1, v2]).await.unwrap();
    assert_eq!(backend.count().await.unwrap(), 12);
    let page = search(&backend, text("version")).await;
    assert_eq!(ids(&page.hits), [1]);
    assert_eq!(page.hits[0].title, "I will design version two");
}

pub async fn delete_removes_at_once(backend: Backend) {
    load(&backend).await;
    backend.delete(&[id(6)]).await.unwrap();
    assert_eq!(backend.count().await.unwrap(), 11);
    assert_eq!(
        sorted(ids(&search(&backend, text("react")).await.hits)),
        [7, 8]
    );
    let page = search(
        &backend,
        SearchQuery {
            category: Some("programming-tech".into()),
            ..SearchQuery::default()
        },
    )
    .await;
    assert_eq!(page.total, 3);

    // Idempotent, and unknown ids are fine.
    backend.delete(&[id(6), id(999)]).await.unwrap();
    backend.delete(&[]).await.unwrap();
    assert_eq!(backend.count().await.unwrap(), 11);

    backend.delete(&[id(1), id(2), id(3)]).await.unwrap();
    assert_eq!(backend.count().await.unwrap(), 8);
    assert_eq!(ids(&search(&backend, text("logo")).await.hits), [10]);
}

pub async fn similar_excludes_self(backend: Backend) {
    load(&backend).await;
    let similar = backend.similar(id(4), 10).await.unwrap();
    let found = ids(&similar);
    assert!(!found.contains(&4), "{found:?}");
    for expected in [5, 6, 12] {
        assert!(found.contains(&expected), "{expected} in {found:?}");
    }
    assert!(
        !found.contains(&11),
        "translation is not like a scraper: {found:?}"
    );

    let found = ids(&backend.similar(id(1), 3).await.unwrap());
    assert!(!found.is_empty() && found.len() <= 3);
    assert!(!found.contains(&1));
    assert!(found.contains(&2), "the other logo gig: {found:?}");

    assert!(backend.similar(id(999), 5).await.unwrap().is_empty());
}

pub async fn clear_and_count(backend: Backend) {
    load(&backend).await;
    backend.clear().await.unwrap();
    assert_eq!(backend.count().await.unwrap(), 0);
    let page = search(&backend, SearchQuery::default()).await;
    assert_eq!(page.total, 0);
    assert!(page.categories.is_empty());
    load(&backend).await;
}

pub async fn hits_carry_the_card_fields(backend: Backend) {
    load(&backend).await;
    let page = search(&backend, text("mascot")).await;
    let hit = &page.hits[0];
    let gig = &gigs()[1];
    assert_eq!(hit.gig_id, gig.gig_id);
    assert_eq!(hit.title, gig.title);
    assert_eq!(hit.seller_username, gig.seller_username);
    assert_eq!(hit.seller_name, gig.seller_name);
    assert_eq!(hit.seller_level, gig.seller_level);
    assert_eq!(hit.category, gig.category);
    assert_eq!(hit.subcategory, gig.subcategory);
    assert_eq!(hit.price_min, gig.price_min);
    assert_eq!(hit.delivery_days_min, gig.delivery_days_min);
    assert_eq!(hit.rating_avg, gig.rating_avg);
    assert_eq!(hit.rating_count, gig.rating_count);
    assert_eq!(hit.image_url, gig.image_url);
    assert!(hit.score.is_some_and(|s| s > 0.0));
}

/// Generates one `#[tokio::test]` per scenario for a backend factory.
#[macro_export]
macro_rules! scenario_tests {
    ($factory:path) => {
        $crate::scenario_tests!(@each $factory;
            text_relevance, typos, filters, sorts, facets_ignore_the_category_filter,
            cursor_paging, invalid_queries, upsert_replaces, delete_removes_at_once,
            similar_excludes_self, clear_and_count, hits_carry_the_card_fields);
    };
    (@each $factory:path; $($name:ident),*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let backend = $factory().await;
                $crate::scenarios::$name(backend).await;
            }
        )*
    };
}
