//! The automatic checks on chat messages: contact details that would take
//! a deal off the marketplace, and words from a configurable list.
//!
//! [`scan`] is a small hand-rolled scanner. The text is first normalised
//! into a vector of characters: invisible characters (zero-width spaces,
//! soft hyphens) are dropped, full-width forms (`＠`, `．`, `５`) become
//! ASCII, curly apostrophes become `'`, and every character is lowercased
//! one to one. All the rules below work on that vector, so nothing ever
//! slices a `str` and matching is case-insensitive. Each rule looks at a
//! bounded neighbourhood of each position, so a scan is linear-ish in the
//! length of the message.
//!
//! The rules, in the order their flags are reported:
//!
//! - `email`: a local part, an "at" and a domain of at least two labels.
//!   The "at" is `@`, a bracketed `[at]` / `(at)` / `{at}` / `<at>` / `[@]`,
//!   or the word ` at `; the dots are `.`, a bracketed `[dot]` / `(dot)` /
//!   `[.]`, or the word ` dot `. The last label is 2 to 24 ASCII letters.
//!   The spelled-out ` at ` counts only with at least one non-plain dot and a
//!   last label of 2 to 10 letters (`name at example dot com`, not `look at
//!   example.com`), and an `@` with spaces around it only with a known TLD.
//! - `phone`: the message is cut into whitespace-separated chunks. A chunk
//!   is phone-like when it holds only digits and `+ - . ( )` (after dropping
//!   quotes, trailing sentence punctuation and a `tel:`-like label). Chunks
//!   that are dates (`2026-11-26`, `26.11.2026`), decimal amounts
//!   (`150.00`, `10.30`), IPv4 addresses or ranges (`1500-2000`,
//!   `2019-2024`, `10.30-11.30`) are not phone-like, and anything with
//!   letters, `/`, `:`, `,`, `$`, `%` or `#` inside is not either (uuids,
//!   times, `1,500`, `26/11/2026`). Consecutive phone-like chunks separated
//!   by at most three spaces on one line form a run; a run (or one chunk of
//!   a longer run) with 7 to 15 digits is a phone number, unless its digits
//!   end in four zeros (a round amount), it touches a currency symbol or
//!   code (`$`, `€`, `USD`, `dollars`, `%`), or it follows a word naming an
//!   identifier (`order`, `invoice`, `#`, `order no.`, `version`, ...).
//! - `link`: `http://`, `https://` or `www.` at the start of a word, or a
//!   domain name (labels joined by `.` or a bracketed `[.]` / `(dot)`) whose
//!   last label is a known TLD such as `com`, `io`, `me`, `co.uk`. File
//!   names (`logo.png`, `main.rs`), abbreviations (`e.g.`), `.NET` and
//!   `ASP.NET` are not links, nor is the domain of an e-mail address.
//! - `handle`: a messenger or payment service or a phrase asking to move
//!   off the platform (`whatsapp`, `t.me`, `paypal`, `text me`, ...) as a
//!   whole word, or an `@handle`: an `@` at the start of a word followed by
//!   a letter or `_` and at least three word characters in all.
//! - `word:<word>`: each entry of [`FlagPolicy::words`], trimmed and
//!   lowercased, found as a whole word or phrase (not preceded or followed
//!   by a letter or digit; a space in the entry matches any run of
//!   whitespace), in the policy's order.

/// What the checks look for besides contact details.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagPolicy {
    /// Words and phrases that flag a message, matched case-insensitively
    /// as whole words. Entries are trimmed; empty ones are ignored.
    pub words: Vec<String>,
}

/// What the checks found in `text`, each once, in a fixed order: `email`,
/// `phone`, `link`, `handle`, then `word:<listed word>` per listed word.
///
/// Never panics, whatever the input; see the [module docs](self) for the
/// rules.
pub fn scan(text: &str, policy: &FlagPolicy) -> Vec<String> {
    let t = normalize(text);
    let mut in_email = vec![false; t.len()];
    for span in email_spans(&t) {
        for covered in in_email.iter_mut().take(span.end).skip(span.start) {
            *covered = true;
        }
    }

    let mut flags: Vec<String> = Vec::new();
    let checks = [
        ("email", in_email.contains(&true)),
        ("phone", has_phone(&t)),
        ("link", has_link(&t, &in_email)),
        ("handle", has_handle(&t, &in_email)),
    ];
    for (flag, found) in checks {
        if found {
            flags.push(flag.to_owned());
        }
    }
    for entry in &policy.words {
        let entry = entry.trim();
        let pattern = normalize(entry);
        let pattern = trim_chars(&pattern);
        if pattern.is_empty() {
            continue;
        }
        let flag = format!("word:{}", entry.to_lowercase());
        if !flags.contains(&flag) && contains_phrase(&t, pattern) {
            flags.push(flag);
        }
    }
    flags
}

// ---------------------------------------------------------------------------
// Normalisation and small helpers on the character vector.

/// The characters of `text`, lowercased one to one, without invisible
/// characters, with full-width forms and curly apostrophes made ASCII.
fn normalize(text: &str) -> Vec<char> {
    text.chars()
        .filter(|c| !is_invisible(*c))
        .map(fold)
        .collect()
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
    )
}

fn fold(c: char) -> char {
    let c = match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        '\u{2018}' | '\u{2019}' | '\u{02BC}' => '\'',
        _ => c,
    };
    c.to_lowercase().next().unwrap_or(c)
}

fn trim_chars(chars: &[char]) -> &[char] {
    let start = chars
        .iter()
        .position(|c| !c.is_whitespace())
        .unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|c| !c.is_whitespace())
        .map_or(start, |i| i + 1);
    chars.get(start..end).unwrap_or(&[])
}

fn get(t: &[char], i: usize) -> Option<char> {
    t.get(i).copied()
}

fn before(t: &[char], i: usize) -> Option<char> {
    i.checked_sub(1).and_then(|j| get(t, j))
}

fn is_alnum(c: char) -> bool {
    c.is_alphanumeric()
}

/// Whitespace within a line.
fn is_space(c: char) -> bool {
    c.is_whitespace() && c != '\n'
}

/// How many spaces may surround an obfuscated "at" or "dot".
const GAP: usize = 3;

fn skip_spaces(t: &[char], mut i: usize, max: usize) -> usize {
    let limit = i.saturating_add(max);
    while i < limit && get(t, i).is_some_and(is_space) {
        i += 1;
    }
    i
}

fn skip_spaces_back(t: &[char], mut i: usize, max: usize) -> usize {
    let limit = i.saturating_sub(max);
    while i > limit && before(t, i).is_some_and(is_space) {
        i -= 1;
    }
    i
}

/// The end of `word` (ASCII, lowercase) if it occurs at `i`.
fn literal(t: &[char], i: usize, word: &str) -> Option<usize> {
    let mut j = i;
    for w in word.chars() {
        if get(t, j)? != w {
            return None;
        }
        j += 1;
    }
    Some(j)
}

/// The end of `pattern` if it occurs at `i`; whitespace in the pattern
/// matches any non-empty run of whitespace.
fn phrase_end(t: &[char], i: usize, pattern: &[char]) -> Option<usize> {
    let (mut ti, mut pi) = (i, 0);
    while let Some(&p) = pattern.get(pi) {
        if p.is_whitespace() {
            while pattern.get(pi).is_some_and(|c| c.is_whitespace()) {
                pi += 1;
            }
            let start = ti;
            while get(t, ti).is_some_and(char::is_whitespace) {
                ti += 1;
            }
            if ti == start {
                return None;
            }
        } else {
            if get(t, ti)? != p {
                return None;
            }
            ti += 1;
            pi += 1;
        }
    }
    Some(ti)
}

/// Whether `pattern` occurs in `t` neither preceded nor followed by a
/// letter or digit.
fn contains_phrase(t: &[char], pattern: &[char]) -> bool {
    let Some(&first) = pattern.first() else {
        return false;
    };
    t.iter().enumerate().any(|(i, &c)| {
        c == first
            && !before(t, i).is_some_and(is_alnum)
            && phrase_end(t, i, pattern).is_some_and(|end| !get(t, end).is_some_and(is_alnum))
    })
}

// ---------------------------------------------------------------------------
// E-mail addresses and domain names.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    /// `@` or `.`.
    Plain,
    /// `[at]`, `(dot)`, `{.}`, ...
    Bracketed,
    /// The word ` at ` or ` dot `.
    Spelled,
}

/// The most labels a domain name is followed through.
const MAX_LABELS: usize = 12;

const KNOWN_TLDS: &[&str] = &[
    "com", "net", "org", "io", "me", "co", "app", "dev", "ly", "gg", "info", "biz", "xyz", "edu",
    "gov", "tv", "site", "online", "store", "shop", "link", "uk", "us", "de", "fr", "ca", "eu",
    "nl", "ru", "ch", "au", "es", "br", "jp", "cn",
];

/// Names that look like domains but are technologies.
const NOT_LINKS: &[&str] = &["asp.net", "ado.net", "vb.net"];

fn is_known_tld(label: &[char]) -> bool {
    KNOWN_TLDS
        .iter()
        .any(|tld| tld.chars().eq(label.iter().copied()))
}

fn is_tld_like(label: &[char], max: usize) -> bool {
    (2..=max).contains(&label.len()) && label.iter().all(char::is_ascii_alphabetic)
}

fn is_local(c: char) -> bool {
    is_alnum(c) || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_open(c: char) -> bool {
    matches!(c, '[' | '(' | '{' | '<')
}

fn is_close(c: char) -> bool {
    matches!(c, ']' | ')' | '}' | '>')
}

/// The end of a bracketed marker such as `[at]` or `( dot )` at `i`.
fn bracketed(t: &[char], i: usize, words: &[&str]) -> Option<usize> {
    if !get(t, i).is_some_and(is_open) {
        return None;
    }
    let j = skip_spaces(t, i + 1, GAP);
    words.iter().find_map(|word| {
        let end = skip_spaces(t, literal(t, j, word)?, GAP);
        get(t, end).filter(|c| is_close(*c)).map(|_| end + 1)
    })
}

/// The end of `word` at `i` if whitespace surrounds it.
fn spelled(t: &[char], i: usize, word: &str) -> Option<usize> {
    before(t, i).filter(|c| c.is_whitespace())?;
    let end = literal(t, i, word)?;
    get(t, end).filter(|c| c.is_whitespace())?;
    Some(end)
}

fn at_marker(t: &[char], i: usize) -> Option<(usize, Marker)> {
    if get(t, i)? == '@' {
        return Some((i + 1, Marker::Plain));
    }
    if let Some(end) = bracketed(t, i, &["at", "@"]) {
        return Some((end, Marker::Bracketed));
    }
    spelled(t, i, "at").map(|end| (end, Marker::Spelled))
}

/// A dot marker right after a label ending at `i`.
fn dot_marker(t: &[char], i: usize, spelled_ok: bool) -> Option<(usize, Marker)> {
    if get(t, i)? == '.' {
        return Some((i + 1, Marker::Plain));
    }
    let j = skip_spaces(t, i, GAP);
    if let Some(end) = bracketed(t, j, &["dot", "."]) {
        return Some((end, Marker::Bracketed));
    }
    if spelled_ok && j > i {
        return spelled(t, j, "dot").map(|end| (end, Marker::Spelled));
    }
    None
}

/// The end of a domain label (letters, digits, inner `-`) starting at `i`.
fn label(t: &[char], i: usize) -> Option<usize> {
    if !get(t, i).is_some_and(is_alnum) {
        return None;
    }
    let mut j = i + 1;
    while get(t, j).is_some_and(|c| is_alnum(c) || c == '-') {
        j += 1;
    }
    Some(j)
}

/// Follows labels joined by dot markers from `i` and returns the end of
/// the longest chain of at least two labels that `accept` takes, given the
/// last label and whether any dot so far was obfuscated.
fn domain(
    t: &[char],
    i: usize,
    spelled_ok: bool,
    accept: impl Fn(&[char], bool) -> bool,
) -> Option<usize> {
    let mut end = label(t, i)?;
    let mut obfuscated = false;
    let mut best = None;
    for _ in 1..MAX_LABELS {
        let Some((after, marker)) = dot_marker(t, end, spelled_ok) else {
            break;
        };
        let start = match marker {
            Marker::Plain => after,
            Marker::Bracketed | Marker::Spelled => skip_spaces(t, after, GAP),
        };
        let Some(next) = label(t, start) else {
            break;
        };
        obfuscated |= marker != Marker::Plain;
        if accept(t.get(start..next).unwrap_or(&[]), obfuscated) {
            best = Some(next);
        }
        end = next;
    }
    best
}

/// The span of an e-mail address whose "at" marker starts at `i`.
fn email_at(t: &[char], i: usize) -> Option<std::ops::Range<usize>> {
    let (after, marker) = at_marker(t, i)?;
    let local_end = skip_spaces_back(t, i, GAP);
    let mut start = local_end;
    while before(t, start).is_some_and(is_local) {
        start -= 1;
    }
    if !t.get(start..local_end)?.iter().copied().any(is_alnum) {
        return None;
    }
    let spaced = local_end < i || get(t, after).is_some_and(is_space);
    let end = domain(
        t,
        skip_spaces(t, after, GAP),
        true,
        |tld, obfuscated| match marker {
            Marker::Spelled => obfuscated && is_tld_like(tld, 10),
            Marker::Plain if spaced => is_known_tld(tld),
            Marker::Plain | Marker::Bracketed => is_tld_like(tld, 24),
        },
    )?;
    Some(start..end)
}

fn email_spans(t: &[char]) -> Vec<std::ops::Range<usize>> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < t.len() {
        match email_at(t, i) {
            Some(span) => {
                i = span.end.max(i + 1);
                spans.push(span);
            }
            None => i += 1,
        }
    }
    spans
}

// ---------------------------------------------------------------------------
// Links.

fn has_link(t: &[char], in_email: &[bool]) -> bool {
    (0..t.len()).any(|i| !in_email.get(i).copied().unwrap_or(false) && link_at(t, i))
}

fn link_at(t: &[char], i: usize) -> bool {
    if !get(t, i).is_some_and(is_alnum)
        || before(t, i).is_some_and(|c| is_alnum(c) || matches!(c, '-' | '.' | '@'))
    {
        return false;
    }
    if literal(t, i, "http://").is_some() || literal(t, i, "https://").is_some() {
        return true;
    }
    if literal(t, i, "www.").is_some_and(|end| get(t, end).is_some_and(is_alnum)) {
        return true;
    }
    domain(t, i, false, |tld, _| is_known_tld(tld)).is_some_and(|end| {
        let name: String = t.get(i..end).unwrap_or(&[]).iter().collect();
        !NOT_LINKS.contains(&name.as_str())
    })
}

// ---------------------------------------------------------------------------
// Handles and off-platform phrases.

const HANDLE_PHRASES: &[&str] = &[
    "whatsapp",
    "whats app",
    "what's app",
    "wa.me",
    "telegram",
    "t.me",
    "skype",
    "signal",
    "wechat",
    "discord",
    "viber",
    "paypal",
    "venmo",
    "cashapp",
    "cash app",
    "zelle",
    "western union",
    "pay me directly",
    "pay outside",
    "outside the platform",
    "outside of the platform",
    "outside this platform",
    "off the platform",
    "off platform",
    "off-platform",
    "my number",
    "text me",
    "call me on",
];

fn has_handle(t: &[char], in_email: &[bool]) -> bool {
    HANDLE_PHRASES.iter().any(|phrase| {
        let pattern: Vec<char> = phrase.chars().collect();
        contains_phrase(t, &pattern)
    }) || (0..t.len()).any(|i| !in_email.get(i).copied().unwrap_or(false) && handle_at(t, i))
}

fn is_word_char(c: char) -> bool {
    is_alnum(c) || c == '_'
}

fn handle_at(t: &[char], i: usize) -> bool {
    get(t, i) == Some('@')
        && !before(t, i).is_some_and(is_local)
        && get(t, i + 1).is_some_and(|c| c.is_alphabetic() || c == '_')
        && (i + 1..)
            .take_while(|&j| get(t, j).is_some_and(is_word_char))
            .take(3)
            .count()
            == 3
}

// ---------------------------------------------------------------------------
// Phone numbers.

const CURRENCY_WORDS: &[&str] = &[
    "usd", "eur", "gbp", "cad", "aud", "nzd", "chf", "jpy", "cny", "inr", "rub", "brl", "mxn",
    "sek", "nok", "dkk", "pln", "uah", "zar", "sgd", "hkd", "dollar", "dollars", "euro", "euros",
    "pound", "pounds", "bucks", "rupees", "rs",
];

/// Words after which a number is an identifier, not a phone number.
const ID_WORDS: &[&str] = &[
    "order",
    "invoice",
    "ticket",
    "ref",
    "reference",
    "id",
    "tracking",
    "transaction",
    "txn",
    "receipt",
    "case",
    "project",
    "job",
    "gig",
    "item",
    "sku",
    "po",
    "booking",
    "confirmation",
    "version",
    "ver",
    "v",
    "build",
    "release",
];

/// Words that may sit between an [`ID_WORDS`] word and the number.
const NUMBER_WORDS: &[&str] = &["no", "nr", "num", "number", "id"];

fn is_currency_symbol(c: char) -> bool {
    matches!(
        c,
        '$' | '€'
            | '£'
            | '¥'
            | '₹'
            | '₽'
            | '₩'
            | '₺'
            | '₴'
            | '₦'
            | '¢'
            | '₱'
            | '₫'
            | '₪'
            | '%'
    )
}

/// One whitespace-separated chunk of the message.
struct Chunk {
    /// Where the chunk starts and ends in the text.
    start: usize,
    end: usize,
    /// Its letters and digits only, to compare with word lists.
    word: String,
    first: Option<char>,
    last: Option<char>,
    has_hash: bool,
    /// The letters before a `:` that were cut off (`tel:`, `order:`).
    label: Option<String>,
    /// Quotes or a label were cut from the front: it starts a run.
    cut_front: bool,
    /// Sentence punctuation was cut from the back: it ends a run.
    cut_back: bool,
    /// Only digits and `+ - . ( )`, and not a date, amount, address or range.
    phone_like: bool,
    digits: Vec<char>,
}

fn is_quote(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '“' | '”' | '«' | '»' | '[' | ']' | '{' | '}'
    )
}

impl Chunk {
    fn new(t: &[char], start: usize, end: usize) -> Self {
        let raw = t.get(start..end).unwrap_or(&[]);
        let mut core = raw;
        while let [c, rest @ ..] = core {
            if !is_quote(*c) {
                break;
            }
            core = rest;
        }
        let mut cut_front = core.len() < raw.len();
        let front_len = core.len();
        while let [rest @ .., c] = core {
            if !(is_quote(*c) || matches!(c, '.' | ',' | ';' | ':' | '!' | '?')) {
                break;
            }
            core = rest;
        }
        let cut_back = core.len() < front_len;
        let mut label = None;
        if let Some(colon) = core.iter().rposition(|&c| c == ':') {
            let (name, rest) = core.split_at(colon);
            if !name.is_empty() && name.iter().all(|c| c.is_alphabetic()) {
                label = Some(name.iter().collect());
                core = rest.get(1..).unwrap_or(&[]);
                cut_front = true;
            }
        }
        Chunk {
            start,
            end,
            word: raw.iter().filter(|c| is_alnum(**c)).collect(),
            first: raw.first().copied(),
            last: raw.last().copied(),
            has_hash: raw.iter().any(|&c| c == '#' || c == '№'),
            label,
            cut_front,
            cut_back,
            phone_like: is_phone_like(core),
            digits: core.iter().copied().filter(char::is_ascii_digit).collect(),
        }
    }
}

fn chunks(t: &[char]) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if get(t, i).is_some_and(char::is_whitespace) {
            i += 1;
            continue;
        }
        let start = i;
        while get(t, i).is_some_and(|c| !c.is_whitespace()) {
            i += 1;
        }
        chunks.push(Chunk::new(t, start, i));
    }
    chunks
}

fn is_digits(s: &[char]) -> bool {
    !s.is_empty() && s.iter().all(char::is_ascii_digit)
}

/// The value of a short run of ASCII digits (saturating, never panics).
fn value(s: &[char]) -> u64 {
    s.iter()
        .filter_map(|c| c.to_digit(10))
        .fold(0, |n: u64, d| {
            n.saturating_mul(10).saturating_add(u64::from(d))
        })
}

fn split(s: &[char], sep: char) -> Vec<&[char]> {
    s.split(|&c| c == sep).collect()
}

fn is_year(s: &[char]) -> bool {
    s.len() == 4 && (1900..=2100).contains(&value(s))
}

fn is_phone_like(core: &[char]) -> bool {
    !core.is_empty()
        && core.iter().enumerate().all(|(i, &c)| {
            c.is_ascii_digit()
                || matches!(c, '-' | '.' | '(' | ')')
                || (c == '+' && (i == 0 || before(core, i) == Some('(')))
        })
        && !is_date(core)
        && !is_decimal(core)
        && !is_ipv4(core)
        && !is_range(core)
}

/// `2026-11-26`, `26.11.2026`, `11-26-26`, with plausible values.
fn is_date(s: &[char]) -> bool {
    ['-', '.'].iter().any(|&sep| {
        let parts = split(s, sep);
        let &[a, b, c] = parts.as_slice() else {
            return false;
        };
        if !(is_digits(a) && is_digits(b) && is_digits(c)) {
            return false;
        }
        let short = |p: &[char]| (1..=2).contains(&p.len());
        let day = |p: &[char]| (1..=31).contains(&value(p));
        let month = |p: &[char]| (1..=12).contains(&value(p));
        let ymd = is_year(a) && short(b) && short(c) && month(b) && day(c);
        let dmy = short(a)
            && short(b)
            && (is_year(c) || c.len() == 2)
            && day(a)
            && day(b)
            && (month(a) || month(b));
        ymd || dmy
    })
}

/// `150.00`, `10.30`, `2.5`.
fn is_decimal(s: &[char]) -> bool {
    matches!(split(s, '.').as_slice(), [whole, cents] if is_digits(whole) && is_digits(cents) && cents.len() <= 2)
}

fn is_ipv4(s: &[char]) -> bool {
    let parts = split(s, '.');
    parts.len() == 4
        && parts
            .iter()
            .all(|p| is_digits(p) && p.len() <= 3 && value(p) <= 255)
}

/// `1500-2000`, `2019-2024`, `10.30-11.30`.
fn is_range(s: &[char]) -> bool {
    let parts = split(s, '-');
    let &[a, b] = parts.as_slice() else {
        return false;
    };
    let round = |p: &[char]| is_digits(p) && p.len() <= 6 && p.last() == Some(&'0');
    (is_decimal(a) && is_decimal(b)) || (round(a) && round(b)) || (is_year(a) && is_year(b))
}

/// 7 to 15 digits, not ending in four zeros.
fn is_phone_digits(digits: &[char]) -> bool {
    (7..=15).contains(&digits.len()) && !digits.ends_with(&['0'; 4])
}

fn has_phone(t: &[char]) -> bool {
    let chunks = chunks(t);
    let mut a = 0;
    while a < chunks.len() {
        if !chunks.get(a).is_some_and(|c| c.phone_like) {
            a += 1;
            continue;
        }
        let mut b = a;
        while let (Some(x), Some(y)) = (chunks.get(b), chunks.get(b + 1)) {
            if !joins(t, x, y) {
                break;
            }
            b += 1;
        }
        let run = chunks.get(a..=b).unwrap_or(&[]);
        let digits: Vec<char> = run.iter().flat_map(|c| c.digits.iter().copied()).collect();
        let number = is_phone_digits(&digits)
            || (digits.len() > 15 && run.iter().any(|c| is_phone_digits(&c.digits)));
        if number && !is_amount_or_id(&chunks, a, b) {
            return true;
        }
        a = b + 1;
    }
    false
}

/// Whether phone-like chunk `y` continues the run that `x` ends.
fn joins(t: &[char], x: &Chunk, y: &Chunk) -> bool {
    let gap = t.get(x.end..y.start).unwrap_or(&[]);
    y.phone_like && !x.cut_back && !y.cut_front && gap.len() <= GAP && !gap.contains(&'\n')
}

/// Whether the run of chunks `a..=b` reads as an amount or an identifier
/// because of the chunks around it.
fn is_amount_or_id(chunks: &[Chunk], a: usize, b: usize) -> bool {
    let word = |k: Option<usize>| k.and_then(|k| chunks.get(k)).map(|c| c.word.as_str());
    let Some(first) = chunks.get(a) else {
        return false;
    };
    let prev = a.checked_sub(1).and_then(|k| chunks.get(k));
    let (word1, word2) = match &first.label {
        Some(label) => (Some(label.as_str()), word(a.checked_sub(1))),
        None => (word(a.checked_sub(1)), word(a.checked_sub(2))),
    };
    let listed = |list: &[&str], w: Option<&str>| w.is_some_and(|w| list.contains(&w));
    let prev_touches = first.label.is_none() && prev.is_some();
    let currency_before = (prev_touches
        && prev.and_then(|p| p.last).is_some_and(is_currency_symbol))
        || listed(CURRENCY_WORDS, word1);
    let currency_after = chunks.get(b + 1).is_some_and(|n| {
        n.first.is_some_and(is_currency_symbol) || listed(CURRENCY_WORDS, Some(n.word.as_str()))
    });
    let id = (prev_touches && prev.is_some_and(|p| p.has_hash))
        || listed(ID_WORDS, word1)
        || (listed(NUMBER_WORDS, word1) && listed(ID_WORDS, word2));
    currency_before || currency_after || id
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn flags(text: &str) -> Vec<String> {
        scan(text, &FlagPolicy::default())
    }

    fn words(text: &str, words: &[&str]) -> Vec<String> {
        let policy = FlagPolicy {
            words: words.iter().map(|w| (*w).to_owned()).collect(),
        };
        scan(text, &policy)
    }

    fn assert_flags(texts: &[&str], expected: &[&str]) {
        for text in texts {
            assert_eq!(flags(text), expected, "text: {text:?}");
        }
    }

    #[test]
    fn emails_are_flagged_in_plain_and_obfuscated_forms() {
        assert_flags(
            &[
                "name@example.com",
                "write to Name@Example.COM please",
                "john.doe+work@mail.co.uk",
                "first_last@studio.photography",
                "name [at] example [dot] com",
                "name(at)example(dot)com",
                "name (at) example (dot) com",
                "name {at} example {dot} com",
                "name [@] example [.] com",
                "name at example dot com",
                "NAME AT EXAMPLE DOT COM",
                "name at mail dot example dot org",
                "name@example [dot] com",
                "name ＠ example．com",
                "na\u{200B}me@exam\u{200B}ple.com",
            ],
            &["email"],
        );
    }

    #[test]
    fn spelled_out_at_needs_a_spelled_out_dot_and_a_word_tld() {
        assert_flags(
            &[
                "at the end of the day",
                "meet at noon",
                "look at example dot 123",
                "the polka dot pattern at the top",
                "user@localhost",
                "@ the office",
            ],
            &[],
        );
        // Not an e-mail address, but the domain is a link.
        assert_eq!(flags("name at example.com"), ["link"]);
        assert_eq!(flags("ping @john.smith"), ["handle"]);
        assert_eq!(flags("wa.me/15551234 or t.me/bob"), ["link", "handle"]);
    }

    #[test]
    fn phone_numbers_are_flagged_in_common_formats() {
        assert_flags(
            &[
                "+1 (555) 123-4567",
                "555-123-4567",
                "555.123.4567",
                "5551234567",
                "call 555 1234",
                "+44 20 7946 0958",
                "06 12 34 56 78",
                "06.12.34.56.78",
                "tel:+15551234567",
                "reach me on 555-1234.",
                "+49-30-1234567",
                "(555)1234567",
                "5 5 5 1 2 3 4",
                "it's 555 1234 or 555 9876",
                "on 2026-11-26 at 5551234",
                "\"5551234\"",
                "５５５１２３４",
            ],
            &["phone"],
        );
    }

    #[test]
    fn numbers_that_are_not_phone_numbers() {
        assert_flags(
            &[
                "1234567890123456789",
                "555 123",
                "10:30-17:30",
                "192.168.10.200",
                "card 4111 1111 1111 1111",
                "tracking 123456789",
                "order no. 12345678",
                "order number 20261126",
                "id:12345678",
                "US$ 2 512 345",
                "4 512 345 €",
                "1512345 dollars",
            ],
            &[],
        );
    }

    #[test]
    fn links_are_flagged() {
        assert_flags(
            &[
                "http://example.com",
                "see https://portfolio.example/work",
                "www.mysite",
                "example.com",
                "check mysite.io/portfolio",
                "go to bit.ly/abc123",
                "Example.COM",
                "shop.co.uk",
                "my-site.dev.",
                "example[.]com",
                "example (dot) net",
                "(foo.org)",
            ],
            &["link"],
        );
    }

    #[test]
    fn file_names_and_abbreviations_are_not_links() {
        assert_flags(
            &[
                "logo.png",
                "report.pdf",
                "main.rs",
                "setup.sh and build.py",
                "design.ai",
                "e.g. this, i.e. that",
                "a.m. or p.m.",
                "ASP.NET and .NET and Node.js",
                "the .com domain",
                "example dot com",
            ],
            &[],
        );
    }

    #[test]
    fn an_email_domain_is_not_also_a_link_or_handle() {
        assert_eq!(flags("name@example.com"), ["email"]);
        assert_eq!(flags("name [at] example.com"), ["email"]);
    }

    #[test]
    fn handles_and_off_platform_phrases_are_flagged() {
        assert_flags(
            &[
                "add me on WhatsApp",
                "whats app me",
                "What’s App?",
                "my Telegram is bob",
                "skype: bob",
                "use Signal",
                "WeChat id",
                "join my discord",
                "viber?",
                "PayPal is fine",
                "venmo me",
                "cashapp",
                "Cash  App",
                "zelle works",
                "via western union",
                "pay me directly",
                "we can pay outside",
                "let's do this outside the platform",
                "off the platform is cheaper",
                "my number is below",
                "text me later",
                "call me on monday",
                "ping @john_doe",
                "(@bobby)",
                "@_bob",
            ],
            &["handle"],
        );
    }

    #[test]
    fn near_misses_are_not_handles() {
        assert_flags(
            &[
                "call it done",
                "let's chat here",
                "text messages in 12pt",
                "payment via the platform",
                "meet @10am",
                "@ab",
                "signals and systems",
                "mywhatsapp",
            ],
            &[],
        );
    }

    #[test]
    fn ordinary_freelance_messages_are_not_flagged() {
        let messages = [
            "I can deliver in 3 days for $150",
            "The total is 150.00 USD including 3 revisions",
            "Budget is 1,500 for 5 pages",
            "Deadline: 2026-11-26 at 10:30",
            "Can you deliver by 26/11/2026?",
            "See attached logo.png and report.pdf",
            "I pushed the fix to main.rs",
            "Now on version 2.1.3",
            "Order 018f3a2c-7b1e-4c2d-9a8e-5f6a7b8c9d0e is delivered",
            "Order 12345678 was refunded",
            "Invoice #20261126 attached",
            "Let's call it done",
            "Let's chat here",
            "At the end of the day it's your call",
            "e.g. a minimalist logo, i.e. flat colours",
            "Delivery in 24 hours, 2 revisions, 5 pages",
            "Price range 1500-2000 depending on scope",
            "I worked there 2019-2024",
            "Meeting at 10.30 tomorrow, or 10.30-11.30",
            "The file is 1920x1080 and 2.5 MB",
            "I'll send 3 concepts by Friday 5pm",
            "Thanks! Five stars from me :)",
            "€1.200 for the full package",
            "It costs 2500000 USD, yes really",
            "Your account was created 26.11.2026 10:30",
            "We hit 1000000 views last month",
            "The backend runs on ASP.NET and Node.js",
            "Use 16px padding and #ff0000",
            "I will look at it tomorrow",
            "It's 2026-11-26 10:30 UTC",
            "The budget is $1,500.00 (50% upfront)",
            "Call me when you're done",
            "Available 9:00-17:00 CET",
            "See chapter 3.2.1, page 45",
            "Order no. 4821 shipped, 3 of 5 items",
            "Please use v10.0.19041 of the SDK",
            "Resolution 3840 x 2160 @ 60 fps",
            "I'm at home, will reply at 6",
        ];
        assert!(messages.len() >= 25);
        for message in messages {
            assert_eq!(flags(message), Vec::<String>::new(), "message: {message:?}");
        }
    }

    #[test]
    fn listed_words_match_whole_words_only() {
        assert_eq!(words("this is a SCAM!", &["scam"]), ["word:scam"]);
        assert_eq!(words("scampi for dinner", &["scam"]), Vec::<String>::new());
        assert_eq!(words("rescam", &["scam"]), Vec::<String>::new());
        assert_eq!(words("scam2", &["scam"]), Vec::<String>::new());
        assert_eq!(
            words("that is  Easy\nMoney for you", &["easy money"]),
            ["word:easy money"]
        );
        assert_eq!(words("ÉTÉ arrive", &["été"]), ["word:été"]);
        assert_eq!(words("çaété", &["été"]), Vec::<String>::new());
    }

    #[test]
    fn listed_words_are_trimmed_lowercased_and_deduplicated() {
        assert_eq!(
            words(
                "refund now, it's a scam",
                &["  Scam ", "", "   ", "refund", "scam", "SCAM", "missing"]
            ),
            ["word:scam", "word:refund"]
        );
    }

    #[test]
    fn flags_come_once_in_a_fixed_order() {
        let text = "scam! text me @bob, visit www.x.com or bob.io, \
                    mail a@b.com or c [at] d [dot] org, call 555-123-4567 or 555 987 6543 \
                    refund please, scam";
        assert_eq!(
            words(text, &["refund", "scam", "absent"]),
            [
                "email",
                "phone",
                "link",
                "handle",
                "word:refund",
                "word:scam"
            ]
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "",
            "@",
            "@@@",
            "[at]",
            "a [at",
            "x at",
            " at ",
            "a.",
            ".",
            "+",
            "(",
            "tel:",
            ":",
            "#",
            "İstanbul@ÖRNEK.com",
            "\u{FEFF}\u{200B}",
            "𝟓𝟓𝟓𝟏𝟐𝟑𝟒",
            "a\u{0301}@b.com",
        ] {
            let _ = words(text, &["İ", "\u{200B}", "a"]);
        }
    }

    fn check_flags(found: &[String]) -> Result<(), TestCaseError> {
        let rank = |flag: &String| match flag.as_str() {
            "email" => 0,
            "phone" => 1,
            "link" => 2,
            "handle" => 3,
            _ => 4,
        };
        for (i, flag) in found.iter().enumerate() {
            prop_assert!(!found[..i].contains(flag), "duplicate flag {flag:?}");
        }
        prop_assert!(found.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])));
        Ok(())
    }

    proptest! {
        #[test]
        fn scan_never_panics_and_flags_are_distinct(
            text in any::<String>(),
            listed in proptest::collection::vec(any::<String>(), 0..4),
        ) {
            let found = scan(&text, &FlagPolicy { words: listed });
            check_flags(&found)?;
        }

        #[test]
        fn scan_survives_marker_heavy_text(
            text in "[a-cA-Z0-9@.:#$€+()\\[\\] \n_'’-]{0,80}|([a-z]{1,4}|at|dot|com|[@.\\[\\]()]| ){0,40}",
            listed in proptest::collection::vec("[a-c .@]{0,5}", 0..4),
        ) {
            let found = scan(&text, &FlagPolicy { words: listed });
            check_flags(&found)?;
        }
    }
}
