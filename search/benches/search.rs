//! Search tier benchmark over 100k synthetic gigs on a temp-dir tantivy index.
//!
//! Prints indexing throughput, index size on disk, and p50/p99 latencies of
//! autocomplete (1 to 3 letter prefixes) and of filtered searches (text +
//! category + price range + sort). Run with
//! `cargo bench -p search --bench search` (optionally `-- <gig count>`).

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use search::synthetic::{synthetic_gigs, TAXONOMY};
use search::{GigDocument, SearchBackend, SearchQuery, Sort, TantivyIndex};

const SEED: u64 = 20_261_125;
const BATCH: usize = 5_000;
const AUTOCOMPLETE_QUERIES: usize = 5_000;
const SEARCH_QUERIES: usize = 3_000;
const WARMUP: usize = 300;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

fn main() -> Result<()> {
    let count: usize = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(count))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown cpu".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores available")
}

fn dir_size(path: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let sum: Duration = samples.iter().sum();
    Stats {
        p50: at(0.50),
        p99: at(0.99),
        max: samples[samples.len() - 1],
        mean: sum / samples.len() as u32,
    }
}

fn print_stats(name: &str, n: usize, s: &Stats) {
    println!(
        "{name:<28} n={n:<5} p50={:>8.3} ms  p99={:>8.3} ms  mean={:>8.3} ms  max={:>8.3} ms",
        s.p50.as_secs_f64() * 1e3,
        s.p99.as_secs_f64() * 1e3,
        s.mean.as_secs_f64() * 1e3,
        s.max.as_secs_f64() * 1e3,
    );
}

/// 1 to 3 letter prefixes of words users would type: titles (after
/// "I will"), tags and category names.
fn prefixes(gigs: &[GigDocument], rng: &mut ChaCha8Rng) -> Vec<String> {
    (0..AUTOCOMPLETE_QUERIES + WARMUP)
        .map(|_| {
            let gig = &gigs[rng.gen_range(0..gigs.len())];
            let source = match rng.gen_range(0..3) {
                0 => gig.title.trim_start_matches("I will ").to_owned(),
                1 => gig.tags.choose(rng).cloned().unwrap_or_default(),
                _ => gig.category_name.clone(),
            };
            let len = rng.gen_range(1..=3);
            source.chars().take(len).collect::<String>().to_lowercase()
        })
        .collect()
}

/// Text + category + price range + sort, as a buyer's filtered search.
fn queries(rng: &mut ChaCha8Rng) -> Vec<SearchQuery> {
    let prices = [
        (0, 5_000),
        (2_000, 10_000),
        (5_000, 25_000),
        (10_000, 100_000),
        (0, 2_500),
    ];
    let sorts = [
        Sort::Relevance,
        Sort::PriceAsc,
        Sort::PriceDesc,
        Sort::Rating,
        Sort::Newest,
    ];
    (0..SEARCH_QUERIES + WARMUP)
        .map(|_| {
            let category = &TAXONOMY[rng.gen_range(0..TAXONOMY.len())];
            let sub = &category.subcategories[rng.gen_range(0..category.subcategories.len())];
            let noun = sub.nouns.choose(rng).copied().unwrap_or("logo");
            let mut words: Vec<&str> = noun.split(' ').collect();
            words.truncate(rng.gen_range(1..=2));
            let (price_min, price_max) = prices[rng.gen_range(0..prices.len())];
            SearchQuery {
                text: Some(words.join(" ")),
                category: Some(category.slug.to_owned()),
                price_min: Some(price_min),
                price_max: Some(price_max),
                sort: sorts[rng.gen_range(0..sorts.len())],
                limit: 20,
                ..SearchQuery::default()
            }
        })
        .collect()
}

async fn run(count: usize) -> Result<()> {
    println!("search benchmark: {count} synthetic gigs, seed {SEED}");
    println!("machine: {}", machine());

    let started = Instant::now();
    let gigs: Vec<GigDocument> = synthetic_gigs(SEED, count).collect();
    println!("generated in {:.2} s", started.elapsed().as_secs_f64());

    let dir = tempfile::tempdir()?;
    let opened = TantivyIndex::open(dir.path())?;
    let index = opened.index;
    let started = Instant::now();
    for batch in gigs.chunks(BATCH) {
        index.upsert(batch).await?;
    }
    let elapsed = started.elapsed();
    println!(
        "indexing: {count} gigs in {:.2} s = {:.0} gigs/s (batches of {BATCH}, commit + reload per batch)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
    println!("index count: {}", index.count().await?);
    println!(
        "index size on disk: {:.1} MiB",
        dir_size(dir.path())? as f64 / (1024.0 * 1024.0)
    );

    let mut rng = ChaCha8Rng::seed_from_u64(SEED + 1);

    // Autocomplete.
    let prefixes = prefixes(&gigs, &mut rng);
    let mut samples = Vec::with_capacity(AUTOCOMPLETE_QUERIES);
    let mut returned = 0usize;
    for (i, prefix) in prefixes.iter().enumerate() {
        let started = Instant::now();
        let found = index.autocomplete(prefix, 10).await?;
        let took = started.elapsed();
        if i >= WARMUP {
            samples.push(took);
            returned += found.len();
        }
    }
    print_stats("autocomplete (1-3 letters)", samples.len(), &stats(samples));
    println!(
        "  mean suggestions returned: {:.1}",
        returned as f64 / AUTOCOMPLETE_QUERIES as f64
    );

    // Filtered search.
    let queries = queries(&mut rng);
    let mut samples = Vec::with_capacity(SEARCH_QUERIES);
    let mut totals = 0u64;
    for (i, query) in queries.iter().enumerate() {
        let started = Instant::now();
        let page = index.search(query).await?;
        let took = started.elapsed();
        if i >= WARMUP {
            samples.push(took);
            totals += page.total;
        }
    }
    print_stats("filtered search", samples.len(), &stats(samples));
    println!(
        "  mean matches per query: {:.0}",
        totals as f64 / SEARCH_QUERIES as f64
    );

    // The same queries' second pages, through the cursor.
    let mut samples = Vec::with_capacity(SEARCH_QUERIES);
    for (i, query) in queries.iter().enumerate() {
        let first = index.search(query).await?;
        let Some(cursor) = first.next_cursor else {
            continue;
        };
        let next = SearchQuery {
            cursor: Some(cursor),
            ..query.clone()
        };
        let started = Instant::now();
        index.search(&next).await?;
        let took = started.elapsed();
        if i >= WARMUP {
            samples.push(took);
        }
    }
    if !samples.is_empty() {
        print_stats("filtered search, page 2", samples.len(), &stats(samples));
    }

    // Browsing without text: a whole category, newest first.
    let mut samples = Vec::new();
    for (i, category) in TAXONOMY.iter().cycle().take(WARMUP + 1_000).enumerate() {
        let query = SearchQuery {
            category: Some(category.slug.to_owned()),
            ..SearchQuery::default()
        };
        let started = Instant::now();
        index.search(&query).await?;
        if i >= WARMUP {
            samples.push(started.elapsed());
        }
    }
    print_stats("category browse, no text", samples.len(), &stats(samples));
    Ok(())
}
