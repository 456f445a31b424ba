//! The tantivy schema, its analyser, and the mapping between
//! [`GigDocument`] and tantivy documents.

use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value, FAST,
    STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, TantivyDocument, Term};
use uuid::Uuid;

use crate::error::SearchError;
use crate::model::GigDocument;
use crate::text::{MAX_TERM_CHARS, STOP_WORDS};

/// Name of the analyser of every full-text field.
pub(crate) const ANALYZER: &str = "gig_text";

// Fast field names, read by the collector.
pub(crate) const F_CATEGORY: &str = "category";
pub(crate) const F_SUBCATEGORY: &str = "subcategory";
pub(crate) const F_LEVEL: &str = "seller_level";
pub(crate) const F_PRICE: &str = "price_min";
pub(crate) const F_DELIVERY: &str = "delivery_days_min";
pub(crate) const F_RATING: &str = "rating_avg";
pub(crate) const F_RATING_COUNT: &str = "rating_count";
pub(crate) const F_CREATED: &str = "created_us";
pub(crate) const F_ID_HI: &str = "id_hi";
pub(crate) const F_ID_LO: &str = "id_lo";

#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub gig_id: Field,
    pub id_hi: Field,
    pub id_lo: Field,
    pub title: Field,
    pub description: Field,
    pub tags: Field,
    /// Category and subcategory display names.
    pub category_name: Field,
    /// Seller display name and username.
    pub seller: Field,
    pub category: Field,
    pub subcategory: Field,
    pub seller_level: Field,
    pub price_min: Field,
    pub delivery_days_min: Field,
    pub rating_avg: Field,
    pub rating_count: Field,
    pub created_us: Field,
    /// The whole [`GigDocument`] as JSON, to answer hits from.
    pub doc: Field,
}

impl Fields {
    /// Full-text fields and their boosts.
    pub fn text_fields(&self) -> [(Field, f32); 5] {
        [
            (self.title, 3.0),
            (self.tags, 2.0),
            (self.category_name, 1.5),
            (self.seller, 1.0),
            (self.description, 1.0),
        ]
    }
}

pub(crate) fn build_schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fast = || NumericOptions::default().set_fast();
    let fields = Fields {
        gig_id: builder.add_text_field("gig_id", STRING),
        id_hi: builder.add_u64_field(F_ID_HI, fast()),
        id_lo: builder.add_u64_field(F_ID_LO, fast()),
        title: builder.add_text_field("title", text.clone()),
        description: builder.add_text_field("description", text.clone()),
        tags: builder.add_text_field("tags", text.clone()),
        category_name: builder.add_text_field("category_name", text.clone()),
        seller: builder.add_text_field("seller", text),
        category: builder.add_text_field(F_CATEGORY, STRING | FAST),
        subcategory: builder.add_text_field(F_SUBCATEGORY, STRING | FAST),
        seller_level: builder.add_u64_field(F_LEVEL, fast()),
        price_min: builder.add_i64_field(F_PRICE, fast()),
        delivery_days_min: builder.add_u64_field(F_DELIVERY, fast()),
        rating_avg: builder.add_f64_field(F_RATING, fast()),
        rating_count: builder.add_u64_field(F_RATING_COUNT, fast()),
        created_us: builder.add_i64_field(F_CREATED, fast()),
        doc: builder.add_bytes_field("doc", STORED),
    };
    (builder.build(), fields)
}

/// Lowercase alphanumeric runs, ASCII-folded, without stop words: the same
/// terms as [`crate::text::terms`] and the Elasticsearch `gig_text` analyser.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TERM_CHARS + 1))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .build()
}

pub(crate) fn register_analyzer(index: &Index) {
    index.tokenizers().register(ANALYZER, analyzer());
}

pub(crate) fn id_term(fields: &Fields, gig_id: Uuid) -> Term {
    Term::from_field_text(fields.gig_id, &gig_id.hyphenated().to_string())
}

pub(crate) fn to_tantivy(
    fields: &Fields,
    gig: &GigDocument,
) -> Result<TantivyDocument, SearchError> {
    let json = serde_json::to_vec(gig).map_err(|e| SearchError::Corrupt(e.to_string()))?;
    let id = gig.gig_id.as_u128();
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.gig_id, gig.gig_id.hyphenated().to_string());
    doc.add_u64(fields.id_hi, (id >> 64) as u64);
    doc.add_u64(fields.id_lo, id as u64);
    doc.add_text(fields.title, &gig.title);
    doc.add_text(fields.description, &gig.description);
    for tag in &gig.tags {
        doc.add_text(fields.tags, tag);
    }
    doc.add_text(fields.category_name, &gig.category_name);
    doc.add_text(fields.category_name, &gig.subcategory_name);
    doc.add_text(fields.seller, &gig.seller_name);
    doc.add_text(fields.seller, &gig.seller_username);
    doc.add_text(fields.category, &gig.category);
    doc.add_text(fields.subcategory, &gig.subcategory);
    doc.add_u64(fields.seller_level, gig.seller_level.code());
    doc.add_i64(fields.price_min, gig.price_min);
    doc.add_u64(fields.delivery_days_min, u64::from(gig.delivery_days_min));
    doc.add_f64(fields.rating_avg, f64::from(gig.rating_avg));
    doc.add_u64(fields.rating_count, u64::from(gig.rating_count));
    doc.add_i64(fields.created_us, gig.created_at.timestamp_micros());
    doc.add_bytes(fields.doc, &json);
    Ok(doc)
}

pub(crate) fn from_tantivy(
    fields: &Fields,
    doc: &TantivyDocument,
) -> Result<GigDocument, SearchError> {
    let bytes = doc
        .get_first(fields.doc)
        .and_then(|value| value.as_bytes())
        .ok_or_else(|| SearchError::Corrupt("stored gig is missing".to_owned()))?;
    serde_json::from_slice(bytes).map_err(|e| SearchError::Corrupt(e.to_string()))
}
