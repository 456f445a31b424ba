//! Text rules shared by both backends: how search text becomes terms, how
//! far a typo may be, and how suggestions are normalised.

/// Elasticsearch's `_english_` stop word list; the local analyser and the
/// Elasticsearch mapping both drop these words.
pub(crate) const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// Terms longer than this are dropped by the analysers.
pub(crate) const MAX_TERM_CHARS: usize = 40;
/// Only this many terms of a search text are used.
pub(crate) const MAX_TERMS: usize = 10;

/// Splits search text into lowercase alphanumeric terms without stop words.
pub(crate) fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty() && t.chars().count() <= MAX_TERM_CHARS)
        .map(str::to_lowercase)
        .filter(|t| !STOP_WORDS.contains(&t.as_str()))
        .take(MAX_TERMS)
        .collect()
}

/// Edit distance tolerated for a term: none below 5 characters, 1 up to 8,
/// 2 from 9 (Elasticsearch's `AUTO:5,9`).
pub(crate) fn typo_distance(term: &str) -> u8 {
    match term.chars().count() {
        0..=4 => 0,
        5..=8 => 1,
        _ => 2,
    }
}

/// Longest suggestion key kept, in characters.
pub(crate) const MAX_SUGGESTION_CHARS: usize = 100;

/// Lowercase, whitespace collapsed and trimmed, cut at
/// [`MAX_SUGGESTION_CHARS`].
pub(crate) fn normalize_suggestion(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    match out.char_indices().nth(MAX_SUGGESTION_CHARS) {
        Some((cut, _)) => out[..cut].trim_end().to_owned(),
        None => out,
    }
}

/// Like [`normalize_suggestion`], but a trailing space the user typed is
/// kept (as one space), so `"logo "` does not suggest `"logos"`.
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let mut out = normalize_suggestion(prefix);
    if !out.is_empty() && prefix.ends_with(char::is_whitespace) {
        out.push(' ');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_drop_stop_words_and_punctuation() {
        assert_eq!(
            terms("I will design a LOGO, for you!"),
            ["i", "design", "logo", "you"]
        );
        assert_eq!(terms("node.js + c++"), ["node", "js", "c"]);
        assert!(terms("  the of  ").is_empty());
        assert_eq!(terms(&"w ".repeat(50)).len(), MAX_TERMS);
    }

    #[test]
    fn typo_distance_grows_with_length() {
        assert_eq!(typo_distance("logo"), 0);
        assert_eq!(typo_distance("pyhton"), 1);
        assert_eq!(typo_distance("wordpress"), 2);
    }

    #[test]
    fn normalisation_is_case_and_space_insensitive() {
        assert_eq!(normalize_suggestion("  Logo   DESIGN "), "logo design");
        assert_eq!(normalize_prefix("Logo "), "logo ");
        assert_eq!(normalize_prefix("   "), "");
        assert_eq!(normalize_suggestion(&"é".repeat(150)).chars().count(), 100);
    }
}
