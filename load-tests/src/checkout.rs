//! `loadgen checkout`: C HTTP clients placing and paying orders in a loop
//! (`POST /api/v1/checkout` with a test card), for the end-to-end rate of
//! checkouts and their latency. Each checkout is a random buyer from the
//! token file buying the basic package of a random gig from the gig file
//! (never the buyer's own), with a fresh `Idempotency-Key`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::idle::print_failures;
use crate::report::{latency_histogram, percentiles, StatusLine, Tally};
use crate::system::{self, mib};
use crate::tokens::{self, Account};

/// The order status a paid checkout of a gig package answers with.
const PAID: &str = "awaiting_requirements";

#[derive(Debug, Args)]
pub struct CheckoutArgs {
    /// The server's base URL (the API is under `/api/v1`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Token file of the buyers: `<user_id> <username> <access_token>` per
    /// line (`marketplace seed --load-users N --tokens-out FILE`).
    #[arg(long, value_name = "FILE")]
    pub tokens: PathBuf,
    /// Gig file: `<gig_id> <seller_id>` per line (`marketplace seed
    /// --load-gigs K --gigs-out FILE`).
    #[arg(long, value_name = "FILE")]
    pub gigs: PathBuf,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, value_name = "C", default_value_t = 16)]
    pub clients: usize,
    /// How long checkouts are counted, after the warmup.
    #[arg(long, value_name = "SECS", default_value_t = 20)]
    pub duration_secs: u64,
    /// Checkouts start this long before counting does.
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub warmup_secs: u64,
    /// The package bought: `basic`, `standard` or `premium`.
    #[arg(long, default_value = "basic")]
    pub package: String,
    /// The payment method (a test card of the development provider).
    #[arg(long, default_value = "4242424242424242")]
    pub payment_method: String,
    /// Time allowed for one checkout.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout_secs: u64,
    /// The server's process id: its resident memory is reported.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
}

/// One line of the gig file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gig {
    pub id: String,
    pub seller_id: String,
}

/// What a client tells the collector about one checkout.
enum Note {
    /// Answered 201 with a paid order, in this many microseconds.
    Placed { latency: u64, counted: bool },
    /// Anything else: the kind and an example.
    Failed {
        kind: String,
        example: String,
        counted: bool,
    },
}

/// What every client shares.
struct Shared {
    http: reqwest::Client,
    endpoint: String,
    run_id: String,
    package: String,
    payment_method: String,
    buyers: Vec<Account>,
    gigs: Vec<Gig>,
    warm: Instant,
    until: Instant,
    notes: mpsc::UnboundedSender<Note>,
}

pub async fn run(args: CheckoutArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(args.duration_secs > 0, "--duration-secs must be at least 1");
    anyhow::ensure!(
        ["basic", "standard", "premium"].contains(&args.package.as_str()),
        "--package must be basic, standard or premium"
    );
    let buyers = tokens::read_all(&args.tokens)?;
    let gigs = read_gigs(&args.gigs)?;
    anyhow::ensure!(
        buyers
            .iter()
            .all(|b| gigs.iter().any(|g| g.seller_id != b.user_id)),
        "some buyer owns every gig in {}: nothing to buy",
        args.gigs.display()
    );
    let base = args.url.trim_end_matches('/');
    anyhow::ensure!(
        base.starts_with("http://") || base.starts_with("https://"),
        "--url must be an http:// or https:// URL, not {base}"
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs))
        .pool_max_idle_per_host(args.clients)
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")?;
    let ready = format!("{base}/readyz");
    let answer = http
        .get(&ready)
        .send()
        .await
        .with_context(|| format!("GET {ready}"))?;
    anyhow::ensure!(
        answer.status().is_success(),
        "GET {ready} answered {}: is the server up?",
        answer.status()
    );

    let start = Instant::now();
    let warm = start + Duration::from_secs(args.warmup_secs);
    let until = warm + Duration::from_secs(args.duration_secs);
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        http,
        endpoint: format!("{base}/api/v1/checkout"),
        run_id: crate::chat::run_id(),
        package: args.package.clone(),
        payment_method: args.payment_method.clone(),
        buyers,
        gigs,
        warm,
        until,
        notes: notes_tx,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..args.clients {
        tasks.spawn(client_task(client, shared.clone()));
    }
    let (buyer_count, gig_count) = (shared.buyers.len(), shared.gigs.len());
    drop(shared);

    let mut totals = Totals::new()?;
    let mut status = StatusLine::new();
    let mut tick = tokio::time::interval_at(
        (start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            note = notes.recv() => match note {
                Some(note) => totals.take(note),
                // Every client has stopped.
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                // The stage the second that just ended began in.
                let began = now.checked_sub(Duration::from_secs(1)).unwrap_or(now);
                let stage = if began < warm { "warmup" } else if began < until { "measuring" } else { "finishing" };
                status.show(&totals.status(stage, now.saturating_duration_since(start)));
                totals.second.reset();
                totals.second_errors = 0;
            }
        }
    }
    status.finish();
    while tasks.join_next().await.is_some() {}

    println!(
        "checkout: {} clients, {} s warmup, {} s measured; {} package, {} buyers, {} gigs",
        args.clients, args.warmup_secs, args.duration_secs, args.package, buyer_count, gig_count
    );
    let secs = args.duration_secs as f64;
    println!(
        "checkouts {}, errors {} (measured window; warmup: {} checkouts, {} errors)",
        totals.latency.len(),
        totals.measured_errors,
        totals.warmup_placed,
        totals.warmup_errors
    );
    println!(
        "throughput: {:.1} checkouts/s",
        totals.latency.len() as f64 / secs
    );
    println!("{}", percentiles("checkout latency", &totals.latency));
    print_failures("errors (warmup included)", &totals.errors);
    if let Some(pid) = args.server_pid {
        println!("server RSS: {}", mib(system::rss_kib(Some(pid))?));
    }
    anyhow::ensure!(!totals.latency.is_empty(), "no checkout succeeded");
    Ok(())
}

/// Checkouts one after another until the end of the measured window.
async fn client_task(client: usize, shared: Arc<Shared>) {
    let mut random = SplitMix64(
        u64::try_from(client)
            .unwrap_or(0)
            .wrapping_add(0x9e37_79b9_7f4a_7c15),
    );
    let mut n: u64 = 0;
    while Instant::now() < shared.until {
        n += 1;
        let buyer = &shared.buyers[random.below(shared.buyers.len())];
        let gig = loop {
            let gig = &shared.gigs[random.below(shared.gigs.len())];
            if gig.seller_id != buyer.user_id {
                break gig;
            }
        };
        let key = format!("{}-{client}-{n}", shared.run_id);
        let sent = Instant::now();
        let outcome = checkout(&shared, buyer, gig, &key).await;
        let done = Instant::now();
        let counted = done >= shared.warm && done < shared.until;
        let note = match outcome {
            Ok(()) => Note::Placed {
                latency: u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(u64::MAX),
                counted,
            },
            Err((kind, example)) => Note::Failed {
                kind,
                example,
                counted,
            },
        };
        if shared.notes.send(note).is_err() {
            return;
        }
    }
}

/// One checkout; a failure as its kind and an example.
async fn checkout(
    shared: &Shared,
    buyer: &Account,
    gig: &Gig,
    key: &str,
) -> Result<(), (String, String)> {
    let body = json!({
        "gig_id": gig.id,
        "package": shared.package,
        "payment_method": shared.payment_method,
    });
    let response = shared
        .http
        .post(&shared.endpoint)
        .bearer_auth(&buyer.token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .map_err(transport)?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(transport)?;
    let reply: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if status != reqwest::StatusCode::CREATED {
        let code = reply["code"].as_str().unwrap_or("-");
        let message = reply["message"].as_str().map_or_else(
            || String::from_utf8_lossy(&bytes).into_owned(),
            str::to_string,
        );
        return Err((format!("HTTP {} {code}", status.as_u16()), message));
    }
    match reply["order"]["status"].as_str() {
        Some(PAID) => Ok(()),
        Some(other) => Err((
            format!("201 with order status {other}"),
            format!(
                "payment error: {}",
                reply["order"]["payment_error"].as_str().unwrap_or("none")
            ),
        )),
        None => Err((
            "201 without order.status".into(),
            String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        )),
    }
}

fn transport(error: reqwest::Error) -> (String, String) {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection refused or failed"
    } else {
        "request failed"
    };
    (kind.to_string(), format!("{error:#}"))
}

/// Everything the collector counts.
struct Totals {
    /// Checkouts of the measured window.
    latency: Histogram<u64>,
    /// Errors of the measured window.
    measured_errors: u64,
    /// Every error, warmup included, by kind.
    errors: Tally,
    warmup_placed: u64,
    warmup_errors: u64,
    /// Checkouts of the last second, for the status line.
    second: Histogram<u64>,
    second_errors: u64,
    placed: u64,
}

impl Totals {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: latency_histogram()?,
            measured_errors: 0,
            errors: Tally::default(),
            warmup_placed: 0,
            warmup_errors: 0,
            second: latency_histogram()?,
            second_errors: 0,
            placed: 0,
        })
    }

    fn take(&mut self, note: Note) {
        match note {
            Note::Placed { latency, counted } => {
                self.placed += 1;
                self.second.saturating_record(latency.max(1));
                if counted {
                    self.latency.saturating_record(latency.max(1));
                } else {
                    self.warmup_placed += 1;
                }
            }
            Note::Failed {
                kind,
                example,
                counted,
            } => {
                self.second_errors += 1;
                self.errors.add(kind, example);
                if counted {
                    self.measured_errors += 1;
                } else {
                    self.warmup_errors += 1;
                }
            }
        }
    }

    fn status(&self, stage: &str, elapsed: Duration) -> String {
        let p99 = crate::report::last_second_p99(&self.second);
        format!(
            "{:>4} s {stage:<9} checkouts {}  last second: {} checkouts, {} errors, p99 {p99}",
            elapsed.as_secs(),
            self.placed,
            self.second.len(),
            self.second_errors,
        )
    }
}

/// Reads the gig file: `<gig_id> <seller_id>` per line; blank lines and
/// `#` comments are skipped.
pub fn read_gigs(path: &Path) -> anyhow::Result<Vec<Gig>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the gig file {}", path.display()))?;
    let gigs =
        parse_gigs(&text).with_context(|| format!("reading the gig file {}", path.display()))?;
    anyhow::ensure!(
        !gigs.is_empty(),
        "{} has no gigs; make some with `marketplace seed --load-gigs K --gigs-out {}`",
        path.display(),
        path.display()
    );
    Ok(gigs)
}

fn parse_gigs(text: &str) -> anyhow::Result<Vec<Gig>> {
    let mut gigs = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [id, seller_id] = fields[..] else {
            anyhow::bail!(
                "line {}: expected `<gig_id> <seller_id>`, found {} fields",
                number + 1,
                fields.len()
            );
        };
        anyhow::ensure!(
            tokens::is_uuid(id) && tokens::is_uuid(seller_id),
            "line {}: expected two UUIDs",
            number + 1
        );
        gigs.push(Gig {
            id: id.to_string(),
            seller_id: seller_id.to_string(),
        });
    }
    Ok(gigs)
}

/// A small, fast, seedable random sequence (splitmix64): which buyer buys
/// which gig.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform enough in `0..n` for `n` far below 2^64; `n` must not be 0.
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap_or(u64::MAX)).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIG: &str = "0192f0c4-1b2a-7c3d-8e4f-a1b2c3d4e5f6";
    const SELLER: &str = "0192f0c4-1b2a-7c3d-8e4f-a1b2c3d4e5f7";

    #[test]
    fn gig_lines_are_read() {
        let gigs = parse_gigs(&format!("# gigs\n{GIG} {SELLER}\n\n")).unwrap();
        assert_eq!(
            gigs,
            vec![Gig {
                id: GIG.into(),
                seller_id: SELLER.into()
            }]
        );
        let error = parse_gigs(&format!("{GIG} {SELLER}\n{GIG}\n")).unwrap_err();
        assert!(error.to_string().starts_with("line 2:"), "{error}");
        assert!(parse_gigs(&format!("{GIG} seller")).is_err());
    }

    #[test]
    fn picks_stay_in_range_and_vary() {
        let mut random = SplitMix64(1);
        let picks: Vec<usize> = (0..1000).map(|_| random.below(7)).collect();
        assert!(picks.iter().all(|&p| p < 7));
        for value in 0..7 {
            assert!(picks.contains(&value), "{value} never picked");
        }
    }
}
