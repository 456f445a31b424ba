//! The autocomplete dictionary: every suggestion the active gigs offer,
//! counted, and looked up by prefix at a cost that does not grow with the
//! number of matches.
//!
//! Suggestions are kept twice: by normalised text (to update counts) and in
//! an ordered set of `(count descending, text)`. Within one count, texts
//! sharing a prefix are contiguous, so a lookup visits the distinct counts
//! from the largest down and range-scans each from the prefix, stopping as
//! soon as it has `limit` suggestions. Its cost is bounded by the number of
//! distinct counts (a few hundred at most in practice) plus `limit`, however
//! short the prefix.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use uuid::Uuid;

use crate::model::{GigDocument, Suggestion, SuggestionKind};
use crate::text::{normalize_prefix, normalize_suggestion};

/// Titles conventionally start with this; suggestions drop it.
const TITLE_LEAD: &str = "i will ";

#[derive(Default)]
pub(crate) struct SuggestionDictionary {
    entries: HashMap<Arc<str>, Entry>,
    ranked: BTreeSet<(Reverse<u32>, Arc<str>)>,
    /// Distinct counts and how many suggestions have each.
    bands: BTreeMap<u32, u32>,
    by_gig: HashMap<Uuid, Held>,
}

/// What one gig contributes: suggestion texts and the kind it counts under.
type Held = Box<[(Arc<str>, SuggestionKind)]>;

#[derive(Default)]
struct Entry {
    count: u32,
    /// Indexed by `priority(kind)`.
    kinds: [KindSlot; 3],
}

#[derive(Default)]
struct KindSlot {
    count: u32,
    display: Option<Box<str>>,
}

fn priority(kind: SuggestionKind) -> usize {
    match kind {
        SuggestionKind::Title => 0,
        SuggestionKind::Tag => 1,
        SuggestionKind::Category => 2,
    }
}

const KINDS: [SuggestionKind; 3] = [
    SuggestionKind::Title,
    SuggestionKind::Tag,
    SuggestionKind::Category,
];

impl Entry {
    fn suggestion(&self) -> Option<Suggestion> {
        KINDS.iter().rev().find_map(|&kind| {
            let slot = &self.kinds[priority(kind)];
            match (&slot.display, slot.count) {
                (Some(display), 1..) => Some(Suggestion {
                    text: display.to_string(),
                    kind,
                }),
                _ => None,
            }
        })
    }
}

/// What one gig offers: `(normalised, display, kind)`, one per text.
fn contributions(doc: &GigDocument) -> Vec<(String, String, SuggestionKind)> {
    let mut out = Vec::with_capacity(doc.tags.len() + 3);
    let mut push = |display: &str, kind| {
        let display = display.trim();
        let key = normalize_suggestion(display);
        if !key.is_empty() {
            out.push((key, display.to_owned(), kind));
        }
    };
    let title = doc.title.trim();
    let title = match title.get(..TITLE_LEAD.len()) {
        Some(lead) if lead.eq_ignore_ascii_case(TITLE_LEAD) => &title[TITLE_LEAD.len()..],
        _ => title,
    };
    push(title, SuggestionKind::Title);
    for tag in &doc.tags {
        push(tag, SuggestionKind::Tag);
    }
    push(&doc.category_name, SuggestionKind::Category);
    push(&doc.subcategory_name, SuggestionKind::Category);
    // One count per gig and text, under its most specific kind.
    out.sort_by(|a, b| a.0.cmp(&b.0).then(priority(b.2).cmp(&priority(a.2))));
    out.dedup_by(|later, first| later.0 == first.0);
    out
}

impl SuggestionDictionary {
    /// Records `doc`'s suggestions, replacing what the same gig offered before.
    pub fn upsert(&mut self, doc: &GigDocument) {
        self.remove(doc.gig_id);
        let mut held = Vec::new();
        for (key, display, kind) in contributions(doc) {
            let key = self.increment(key, display, kind);
            held.push((key, kind));
        }
        self.by_gig.insert(doc.gig_id, held.into_boxed_slice());
    }

    /// Forgets what `gig_id` offered.
    pub fn remove(&mut self, gig_id: Uuid) {
        if let Some(held) = self.by_gig.remove(&gig_id) {
            for (key, kind) in held.iter() {
                self.decrement(key, *kind);
            }
        }
    }

    pub fn clear(&mut self) {
        *self = SuggestionDictionary::default();
    }

    /// Number of distinct suggestions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The `limit` most used suggestions starting with `prefix`
    /// (case-insensitive), most used first, then alphabetically.
    pub fn lookup(&self, prefix: &str, limit: usize) -> Vec<Suggestion> {
        let prefix = normalize_prefix(prefix);
        let mut out = Vec::new();
        if prefix.is_empty() || limit == 0 {
            return out;
        }
        let start: Arc<str> = Arc::from(prefix.as_str());
        for &count in self.bands.keys().rev() {
            let band = self.ranked.range((Reverse(count), Arc::clone(&start))..);
            for (Reverse(c), key) in band {
                if *c != count || !key.starts_with(prefix.as_str()) {
                    break;
                }
                if let Some(suggestion) = self.entries.get(key).and_then(Entry::suggestion) {
                    out.push(suggestion);
                    if out.len() == limit {
                        return out;
                    }
                }
            }
        }
        out
    }

    fn increment(&mut self, key: String, display: String, kind: SuggestionKind) -> Arc<str> {
        let key: Arc<str> = match self.entries.get_key_value(key.as_str()) {
            Some((existing, _)) => Arc::clone(existing),
            None => Arc::from(key),
        };
        let entry = self.entries.entry(Arc::clone(&key)).or_default();
        let old = entry.count;
        entry.count += 1;
        let slot = &mut entry.kinds[priority(kind)];
        slot.count += 1;
        if slot.display.is_none() {
            slot.display = Some(display.into_boxed_str());
        }
        let new = entry.count;
        self.move_band(&key, old, new);
        key
    }

    fn decrement(&mut self, key: &Arc<str>, kind: SuggestionKind) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        let old = entry.count;
        entry.count = old.saturating_sub(1);
        let slot = &mut entry.kinds[priority(kind)];
        slot.count = slot.count.saturating_sub(1);
        if slot.count == 0 {
            slot.display = None;
        }
        let new = entry.count;
        if new == 0 {
            self.entries.remove(key);
        }
        self.move_band(key, old, new);
    }

    fn move_band(&mut self, key: &Arc<str>, old: u32, new: u32) {
        if old > 0 {
            self.ranked.remove(&(Reverse(old), Arc::clone(key)));
            if let Some(n) = self.bands.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.bands.remove(&old);
                }
            }
        }
        if new > 0 {
            self.ranked.insert((Reverse(new), Arc::clone(key)));
            *self.bands.entry(new).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::model::SellerLevel;

    fn gig(n: u128, title: &str, tags: &[&str], category: &str) -> GigDocument {
        GigDocument {
            gig_id: Uuid::from_u128(n),
            title: title.into(),
            description: String::new(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            category: "c".into(),
            category_name: category.into(),
            subcategory: "s".into(),
            subcategory_name: String::new(),
            seller_id: Uuid::nil(),
            seller_username: "u".into(),
            seller_name: "U".into(),
            seller_level: SellerLevel::New,
            price_min: 100,
            price_max: 100,
            delivery_days_min: 1,
            rating_avg: 0.0,
            rating_count: 0,
            image_url: None,
            created_at: Utc::now(),
        }
    }

    fn texts(found: &[Suggestion]) -> Vec<&str> {
        found.iter().map(|s| s.text.as_str()).collect()
    }

    #[test]
    fn ranks_by_count_then_alphabetically_and_counts_each_gig_once() {
        let mut dict = SuggestionDictionary::default();
        dict.upsert(&gig(
            1,
            "I will build apps",
            &["apps", "Apps", "api"],
            "Apps",
        ));
        dict.upsert(&gig(2, "Write an API", &["api"], "Writing"));
        dict.upsert(&gig(3, "Art", &["api"], "Writing"));
        // "apps" is title, tag (twice) and category of gig 1: one gig, one count.
        let found = dict.lookup("a", 10);
        assert_eq!(texts(&found), ["api", "Apps", "Art"]);
        assert_eq!(found[1].kind, SuggestionKind::Category);
        assert_eq!(dict.lookup("A", 1).len(), 1);
        dict.remove(Uuid::from_u128(1));
        dict.remove(Uuid::from_u128(1));
        assert_eq!(texts(&dict.lookup("a", 10)), ["api", "Art"]);
        dict.upsert(&gig(3, "Art", &[], "Writing"));
        assert_eq!(texts(&dict.lookup("a", 10)), ["api", "Art"]);
        assert_eq!(dict.lookup("api", 10)[0].kind, SuggestionKind::Tag);
        dict.clear();
        assert_eq!(dict.len(), 0);
    }

    #[test]
    fn a_one_letter_lookup_touches_only_the_count_bands() {
        let mut dict = SuggestionDictionary::default();
        for n in 0..20_000u128 {
            let tags = [format!("tag{}", n % 50)];
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            dict.upsert(&gig(n, &format!("title number {n}"), &tags, "Things"));
        }
        // 20k distinct titles start with "t", but only a handful of counts exist.
        assert!(dict.bands.len() < 10, "{}", dict.bands.len());
        let found = dict.lookup("t", 5);
        assert_eq!(found[0].text, "Things");
        assert_eq!(found.len(), 5);
        assert!(found[1..].iter().all(|s| s.kind == SuggestionKind::Tag));
        assert_eq!(
            texts(&dict.lookup("title number 1999", 3)),
            [
                "title number 1999",
                "title number 19990",
                "title number 19991"
            ]
        );
    }
}
