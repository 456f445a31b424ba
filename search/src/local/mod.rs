//! The embedded tantivy index: the search backend of the embedded mode and
//! the autocomplete cache and fallback in production.
//!
//! One `IndexWriter` behind a mutex; every write commits and reloads the
//! reader before it returns, so it is visible to the next search. Blocking
//! tantivy work runs on tokio's blocking pool.

mod collect;
pub(crate) mod schema;

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use tantivy::collector::DocSetCollector;
use tantivy::directory::MmapDirectory;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, MoreLikeThisQuery, Occur, Query, TermQuery,
};
use tantivy::schema::{IndexRecordOption, OwnedValue};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term};
use tracing::{info, warn};
use uuid::Uuid;

use self::collect::{Collected, Filters, GigCollector};
use self::schema::{build_schema, from_tantivy, id_term, register_analyzer, to_tantivy, Fields};
use crate::backend::{validate_similar_limit, SearchBackend};
use crate::cursor::Cursor;
use crate::error::SearchError;
use crate::model::{GigDocument, GigHit, SearchPage, SearchQuery, Sort, Suggestion, MAX_LIMIT};
use crate::suggest::SuggestionDictionary;
use crate::text::{typo_distance, MAX_SUGGESTION_CHARS, MAX_TERMS};

/// Memory the writer may buffer before it flushes a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;
/// Weight of a prefix match (the term being typed) relative to an exact one.
const PREFIX_WEIGHT: f32 = 0.5;
/// Weight of a typo-tolerant match; below a prefix match.
const FUZZY_WEIGHT: f32 = 0.3;

/// The result of [`TantivyIndex::open`].
pub struct Opened {
    pub index: TantivyIndex,
    /// The index was missing or unreadable and is now empty: the caller
    /// must reindex from the database.
    pub needs_rebuild: bool,
}

/// The embedded index; cheap to share behind an `Arc`.
pub struct TantivyIndex {
    inner: Arc<Inner>,
}

struct Inner {
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    suggestions: RwLock<SuggestionDictionary>,
}

impl TantivyIndex {
    /// Opens the index in `dir`, creating it if missing. If it is missing or
    /// unreadable/corrupt, it is (re)created empty and
    /// [`Opened::needs_rebuild`] is true, so the caller reindexes from the
    /// database. The directory belongs to the index: recreating it removes
    /// the files in it.
    pub fn open(dir: &Path) -> Result<Opened, SearchError> {
        let path = dir.display().to_string();
        fs::create_dir_all(dir)?;
        match open_existing(dir) {
            Ok(Some(index)) => {
                info!(
                    path = %path,
                    docs = index.inner.reader.searcher().num_docs(),
                    suggestions = index.inner.suggestions.read().len(),
                    "local search index opened"
                );
                return Ok(Opened {
                    index,
                    needs_rebuild: false,
                });
            }
            Ok(None) => info!(path = %path, "no local search index yet, creating it"),
            Err(err @ SearchError::Index(tantivy::TantivyError::LockFailure(..))) => {
                return Err(err)
            }
            Err(err) => {
                warn!(path = %path, error = %err, "local search index unreadable, recreating it empty");
                clear_directory(dir)?;
            }
        }
        let (schema, _) = build_schema();
        let index = Index::create_in_dir(dir, schema)?;
        Ok(Opened {
            index: TantivyIndex::from_index(index)?,
            needs_rebuild: true,
        })
    }

    /// An index in memory, for tests.
    pub fn in_memory() -> Result<TantivyIndex, SearchError> {
        let (schema, _) = build_schema();
        TantivyIndex::from_index(Index::create_in_ram(schema))
    }

    fn from_index(index: Index) -> Result<TantivyIndex, SearchError> {
        let (schema, fields) = build_schema();
        let expected =
            serde_json::to_string(&schema).map_err(|e| SearchError::Corrupt(e.to_string()))?;
        let found = serde_json::to_string(&index.schema())
            .map_err(|e| SearchError::Corrupt(e.to_string()))?;
        if expected != found {
            return Err(SearchError::Corrupt(
                "index schema is out of date".to_owned(),
            ));
        }
        register_analyzer(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let writer = index.writer(WRITER_MEMORY)?;
        let inner = Inner {
            reader,
            writer: Mutex::new(writer),
            fields,
            suggestions: RwLock::new(SuggestionDictionary::default()),
        };
        inner.rebuild_suggestions()?;
        Ok(TantivyIndex {
            inner: Arc::new(inner),
        })
    }

    /// Up to `limit` (1..=50) suggestions starting with `prefix`, most used
    /// first. Answered from memory in time independent of how many
    /// suggestions match.
    pub async fn autocomplete(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Suggestion>, SearchError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(SearchError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        if prefix.chars().count() > MAX_SUGGESTION_CHARS {
            return Err(SearchError::invalid(format!(
                "prefix must be at most {MAX_SUGGESTION_CHARS} characters"
            )));
        }
        Ok(self.inner.suggestions.read().lookup(prefix, limit))
    }

    async fn blocking<T, F>(&self, work: F) -> Result<T, SearchError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> Result<T, SearchError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner)).await?
    }
}

/// `Ok(None)` when `dir` holds no index; an error when it holds one that
/// cannot be used.
fn open_existing(dir: &Path) -> Result<Option<TantivyIndex>, SearchError> {
    let directory = MmapDirectory::open(dir).map_err(|e| SearchError::Corrupt(e.to_string()))?;
    if !Index::exists(&directory).map_err(|e| SearchError::Corrupt(e.to_string()))? {
        return Ok(None);
    }
    let index = Index::open(directory)?;
    TantivyIndex::from_index(index).map(Some)
}

/// Removes the files of a broken index (the directory itself stays).
fn clear_directory(dir: &Path) -> Result<(), SearchError> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

impl Inner {
    fn rebuild_suggestions(&self) -> Result<(), SearchError> {
        let searcher = self.reader.searcher();
        let mut dictionary = SuggestionDictionary::default();
        for segment in searcher.segment_readers() {
            let store = segment.get_store_reader(64)?;
            for doc in store.iter::<TantivyDocument>(segment.alive_bitset()) {
                dictionary.upsert(&from_tantivy(&self.fields, &doc?)?);
            }
        }
        *self.suggestions.write() = dictionary;
        Ok(())
    }

    fn upsert(&self, docs: &[GigDocument]) -> Result<(), SearchError> {
        let prepared = docs
            .iter()
            .map(|doc| to_tantivy(&self.fields, doc))
            .collect::<Result<Vec<_>, _>>()?;
        let mut writer = self.writer.lock();
        for (doc, tantivy_doc) in docs.iter().zip(prepared) {
            writer.delete_term(id_term(&self.fields, doc.gig_id));
            if let Err(err) = writer.add_document(tantivy_doc) {
                rollback(&mut writer);
                return Err(err.into());
            }
        }
        self.commit(&mut writer)?;
        let mut suggestions = self.suggestions.write();
        for doc in docs {
            suggestions.upsert(doc);
        }
        Ok(())
    }

    fn delete(&self, ids: &[Uuid]) -> Result<(), SearchError> {
        let mut writer = self.writer.lock();
        for id in ids {
            writer.delete_term(id_term(&self.fields, *id));
        }
        self.commit(&mut writer)?;
        let mut suggestions = self.suggestions.write();
        for id in ids {
            suggestions.remove(*id);
        }
        Ok(())
    }

    fn clear(&self) -> Result<(), SearchError> {
        let mut writer = self.writer.lock();
        writer.delete_all_documents()?;
        self.commit(&mut writer)?;
        self.suggestions.write().clear();
        Ok(())
    }

    fn commit(&self, writer: &mut IndexWriter) -> Result<(), SearchError> {
        if let Err(err) = writer.commit() {
            rollback(writer);
            return Err(err.into());
        }
        self.reader.reload()?;
        Ok(())
    }

    /// The analysed terms of a search text.
    fn analyze(&self, text: &str) -> Vec<String> {
        let mut analyzer = schema::analyzer();
        let mut stream = analyzer.token_stream(text);
        let mut terms = Vec::new();
        while stream.advance() && terms.len() < MAX_TERMS {
            terms.push(stream.token().text.clone());
        }
        terms
    }

    /// Every term must match in some field; each matches exactly, as a
    /// prefix when it is the last one (still being typed), or within the
    /// typo distance of its length. Exact outscores prefix outscores typo.
    fn text_query(&self, terms: &[String]) -> Box<dyn Query> {
        let mut required: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len());
        for (i, text) in terms.iter().enumerate() {
            let last = i + 1 == terms.len();
            let distance = typo_distance(text);
            let mut any: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, boost) in self.fields.text_fields() {
                let term = Term::from_field_text(field, text);
                any.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs)),
                        boost,
                    )),
                ));
                if last {
                    any.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(FuzzyTermQuery::new_prefix(term.clone(), 0, true)),
                            boost * PREFIX_WEIGHT,
                        )),
                    ));
                }
                if distance > 0 {
                    any.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(
                            Box::new(FuzzyTermQuery::new(term, distance, true)),
                            boost * FUZZY_WEIGHT,
                        )),
                    ));
                }
            }
            required.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        Box::new(BooleanQuery::new(required))
    }

    fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        query.validate()?;
        let sort = query.effective_sort();
        let after = query.decoded_cursor()?.map(|cursor| cursor.key());
        let terms = query
            .text
            .as_deref()
            .map(|t| self.analyze(t))
            .unwrap_or_default();
        let text_query: Box<dyn Query> = if terms.is_empty() {
            Box::new(AllQuery)
        } else {
            self.text_query(&terms)
        };
        let searcher = self.reader.searcher();
        let collected = searcher.search(
            text_query.as_ref(),
            &GigCollector {
                sort,
                keep: query.limit + 1,
                after,
                filters: Arc::new(Filters::from_query(query)),
                facets: true,
            },
        )?;
        let more = collected.top.len() > query.limit;
        let hits = self.hits(&searcher, &collected, sort, query.limit)?;
        let next_cursor = match collected.top.get(query.limit.saturating_sub(1)) {
            Some(last) if more => Some(
                Cursor {
                    sort,
                    primary: last.primary,
                    secondary: last.secondary,
                    gig_id: Uuid::from_u128(last.key.2),
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(SearchPage {
            hits,
            total: collected.total,
            categories: collected.categories,
            next_cursor,
        })
    }

    fn hits(
        &self,
        searcher: &Searcher,
        collected: &Collected,
        sort: Sort,
        limit: usize,
    ) -> Result<Vec<GigHit>, SearchError> {
        collected
            .top
            .iter()
            .take(limit)
            .map(|candidate| {
                let doc: TantivyDocument = searcher.doc(candidate.address)?;
                let score = (sort == Sort::Relevance).then_some(candidate.score);
                Ok(GigHit::from_document(
                    from_tantivy(&self.fields, &doc)?,
                    score,
                ))
            })
            .collect()
    }

    fn find(&self, searcher: &Searcher, gig_id: Uuid) -> Result<Option<GigDocument>, SearchError> {
        let query = TermQuery::new(id_term(&self.fields, gig_id), IndexRecordOption::Basic);
        let found: HashSet<_> = searcher.search(&query, &DocSetCollector)?;
        match found.into_iter().next() {
            Some(address) => {
                let doc: TantivyDocument = searcher.doc(address)?;
                from_tantivy(&self.fields, &doc).map(Some)
            }
            None => Ok(None),
        }
    }

    fn similar(&self, gig_id: Uuid, limit: usize) -> Result<Vec<GigHit>, SearchError> {
        validate_similar_limit(limit)?;
        let searcher = self.reader.searcher();
        let Some(source) = self.find(&searcher, gig_id)? else {
            return Ok(Vec::new());
        };
        let text = |s: &str| OwnedValue::Str(s.to_owned());
        let more_like_this = MoreLikeThisQuery::builder()
            .with_min_doc_frequency(2)
            .with_min_term_frequency(1)
            .with_max_query_terms(25)
            .with_min_word_length(2)
            .with_document_fields(vec![
                (self.fields.title, vec![text(&source.title)]),
                (
                    self.fields.tags,
                    source.tags.iter().map(|t| text(t)).collect(),
                ),
                (
                    self.fields.category_name,
                    vec![text(&source.category_name), text(&source.subcategory_name)],
                ),
            ]);
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(more_like_this) as Box<dyn Query>),
            (
                Occur::MustNot,
                Box::new(TermQuery::new(
                    id_term(&self.fields, gig_id),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let collected = searcher.search(
            &query,
            &GigCollector {
                sort: Sort::Relevance,
                keep: limit,
                after: None,
                filters: Arc::new(Filters::default()),
                facets: false,
            },
        )?;
        self.hits(&searcher, &collected, Sort::Relevance, limit)
    }
}

fn rollback(writer: &mut IndexWriter) {
    if let Err(err) = writer.rollback() {
        warn!(error = %err, "local search index rollback failed");
    }
}

#[async_trait]
impl SearchBackend for TantivyIndex {
    fn name(&self) -> &'static str {
        "tantivy"
    }

    async fn upsert(&self, docs: &[GigDocument]) -> Result<(), SearchError> {
        if docs.is_empty() {
            return Ok(());
        }
        let docs = docs.to_vec();
        self.blocking(move |inner| inner.upsert(&docs)).await
    }

    async fn delete(&self, ids: &[Uuid]) -> Result<(), SearchError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.to_vec();
        self.blocking(move |inner| inner.delete(&ids)).await
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchPage, SearchError> {
        query.validate()?;
        let query = query.clone();
        self.blocking(move |inner| inner.search(&query)).await
    }

    async fn similar(&self, gig_id: Uuid, limit: usize) -> Result<Vec<GigHit>, SearchError> {
        validate_similar_limit(limit)?;
        self.blocking(move |inner| inner.similar(gig_id, limit))
            .await
    }

    async fn clear(&self) -> Result<(), SearchError> {
        self.blocking(|inner| inner.clear()).await
    }

    async fn count(&self) -> Result<u64, SearchError> {
        Ok(self.inner.reader.searcher().num_docs())
    }
}
