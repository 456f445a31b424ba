//! The tantivy index: the scenario suite, autocomplete and recovery.

use std::sync::Arc;

use search::{SearchBackend, SearchQuery, Suggestion, SuggestionKind, TantivyIndex};

use crate::fixtures::{gigs, id, ids, sorted};
use crate::scenarios::{load, Backend};

async fn tantivy() -> Backend {
    Arc::new(TantivyIndex::in_memory().unwrap())
}

mod scenarios_on_tantivy {
    crate::scenario_tests!(super::tantivy);
}

async fn loaded() -> TantivyIndex {
    let index = TantivyIndex::in_memory().unwrap();
    index.upsert(&gigs()).await.unwrap();
    index
}

fn texts(suggestions: &[Suggestion]) -> Vec<&str> {
    suggestions.iter().map(|s| s.text.as_str()).collect()
}

#[tokio::test]
async fn autocomplete_from_one_letter_ranked_by_use() {
    let index = loaded().await;
    // "Programming & Tech" names 4 gigs, the tag "python" 3.
    let found = index.autocomplete("p", 10).await.unwrap();
    assert_eq!(
        found[0],
        Suggestion {
            text: "Programming & Tech".into(),
            kind: SuggestionKind::Category
        }
    );
    assert_eq!(
        found[1],
        Suggestion {
            text: "python".into(),
            kind: SuggestionKind::Tag
        }
    );
    assert!(
        found.iter().all(|s| s.text.to_lowercase().starts_with('p')),
        "{found:?}"
    );

    // "Logo Design" is a subcategory of two gigs and a tag of one of them:
    // one suggestion, counted once per gig, ahead of single-use ones.
    let found = index.autocomplete("l", 10).await.unwrap();
    assert_eq!(
        found[0],
        Suggestion {
            text: "Logo Design".into(),
            kind: SuggestionKind::Category
        }
    );
    let lower: Vec<String> = found.iter().map(|s| s.text.to_lowercase()).collect();
    let mut unique = lower.clone();
    unique.dedup();
    assert_eq!(lower, unique, "no duplicates");
    assert!(lower.contains(&"logo".to_owned()) && lower.contains(&"logo animation".to_owned()));

    // Titles are suggested without their "I will".
    let found = index.autocomplete("transl", 10).await.unwrap();
    assert!(
        found.contains(&Suggestion {
            text: "translate english to spanish".into(),
            kind: SuggestionKind::Title
        }),
        "{found:?}"
    );
    assert!(found.contains(&Suggestion {
        text: "Translation".into(),
        kind: SuggestionKind::Category
    }));
}

#[tokio::test]
async fn autocomplete_is_case_insensitive_deduplicated_and_bounded() {
    let index = loaded().await;
    let lower = index.autocomplete("logo d", 10).await.unwrap();
    assert_eq!(texts(&lower), ["Logo Design"]);
    assert_eq!(index.autocomplete("LOGO   D", 10).await.unwrap(), lower);
    // A typed space ends the word.
    let found = index.autocomplete("logo ", 10).await.unwrap();
    assert_eq!(texts(&found), ["Logo Design", "Logo Animation"]);
    assert_eq!(index.autocomplete("i", 2).await.unwrap().len(), 2);
    assert!(index.autocomplete("zzz", 5).await.unwrap().is_empty());
    assert!(index.autocomplete("   ", 5).await.unwrap().is_empty());
    assert!(index
        .autocomplete("l", 0)
        .await
        .unwrap_err()
        .is_invalid_query());
    assert!(index
        .autocomplete("l", 51)
        .await
        .unwrap_err()
        .is_invalid_query());
    assert!(index
        .autocomplete(&"l".repeat(101), 5)
        .await
        .unwrap_err()
        .is_invalid_query());
}

#[tokio::test]
async fn autocomplete_follows_updates_and_deletes() {
    let index = loaded().await;
    let python = |found: Vec<Suggestion>| found.into_iter().position(|s| s.text == "python");
    assert_eq!(python(index.autocomplete("p", 10).await.unwrap()), Some(1));

    index.delete(&[id(10)]).await.unwrap();
    assert!(index.autocomplete("logo a", 10).await.unwrap().is_empty());
    assert!(index.autocomplete("animate", 10).await.unwrap().is_empty());

    // Two python gigs left: "python" still shows, now behind "Programming & Tech" (3)
    // and on par with single-use suggestions ordered alphabetically.
    index.delete(&[id(4)]).await.unwrap();
    let found = index.autocomplete("p", 10).await.unwrap();
    assert_eq!(texts(&found[..2]), ["Programming & Tech", "python"]);

    // Replacing a gig replaces its suggestions.
    let mut gig = gigs().remove(8);
    gig.tags = vec!["ghostwriting".into()];
    index.upsert(&[gig]).await.unwrap();
    assert!(index.autocomplete("blog w", 10).await.unwrap().is_empty());
    assert_eq!(
        texts(&index.autocomplete("ghost", 10).await.unwrap()),
        ["ghostwriting"]
    );

    index.clear().await.unwrap();
    assert!(index.autocomplete("p", 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn open_creates_a_missing_index_and_asks_for_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("index");
    let opened = TantivyIndex::open(&path).unwrap();
    assert!(opened.needs_rebuild);
    assert_eq!(opened.index.count().await.unwrap(), 0);
    assert!(path.join("meta.json").exists());
}

#[tokio::test]
async fn reopening_a_good_index_keeps_documents_and_suggestions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let opened = TantivyIndex::open(dir.path()).unwrap();
        assert!(opened.needs_rebuild, "an empty directory holds no index");
        load(&(Arc::new(opened.index) as Backend)).await;
    }
    let opened = TantivyIndex::open(dir.path()).unwrap();
    assert!(!opened.needs_rebuild);
    let index = opened.index;
    assert_eq!(index.count().await.unwrap(), 12);
    let page = index
        .search(&SearchQuery {
            text: Some("python".into()),
            ..SearchQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(sorted(ids(&page.hits)), [4, 5, 12]);
    let found = index.autocomplete("p", 2).await.unwrap();
    assert_eq!(texts(&found), ["Programming & Tech", "python"]);
}

#[tokio::test]
async fn a_corrupt_index_is_recreated_empty() {
    let dir = tempfile::tempdir().unwrap();
    {
        let opened = TantivyIndex::open(dir.path()).unwrap();
        load(&(Arc::new(opened.index) as Backend)).await;
    }
    std::fs::write(dir.path().join("meta.json"), b"{ this is not json").unwrap();
    let opened = TantivyIndex::open(dir.path()).unwrap();
    assert!(opened.needs_rebuild);
    let index: Backend = Arc::new(opened.index);
    assert_eq!(index.count().await.unwrap(), 0);
    // And it works again.
    load(&index).await;
}

#[tokio::test]
async fn a_second_writer_on_the_same_directory_is_refused_not_wiped() {
    let dir = tempfile::tempdir().unwrap();
    let first = TantivyIndex::open(dir.path()).unwrap().index;
    first.upsert(&gigs()).await.unwrap();
    assert!(TantivyIndex::open(dir.path()).is_err());
    assert_eq!(first.count().await.unwrap(), 12);
}
