//! The automatic chat checks (`domain::flag::scan`) run on every message a
//! user sends, before the sender is answered. This prints how long one scan
//! takes over a mix of ordinary and flagged freelance messages of realistic
//! sizes, and over the largest message the chat accepts. Run with
//! `cargo bench -p domain --bench flag`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use domain::flag::{scan, FlagPolicy};

const ROUNDS: usize = 200;

fn corpus() -> Vec<String> {
    let ordinary = [
        "Hi! I can deliver the landing page in 3 days for $150, with 2 revisions.",
        "See the attached logo.png and the brief.pdf; version 2.1.3 is the latest.",
        "Order 0192f0c4-9a01-7c3d-8e4f-a1b2c3d4e5f6 is due on 2026-11-26 at 10:30.",
        "Thanks, that looks great. Could you make the header a bit darker, e.g. #222?",
        "The budget is 1,500 USD for the whole project, paid through the order.",
    ];
    let flagged = [
        "Email me at someone@example.com and we can skip the fees.",
        "Call me on +44 20 7946 0958 or whatsapp, it's easier.",
        "My site is www.example.dev, pay me directly on paypal.",
        "Add me on telegram @designer_pro, the venmo is cheaper.",
    ];
    let mut messages = Vec::new();
    for i in 0..1_000 {
        let base = if i % 10 == 0 {
            flagged[i % flagged.len()]
        } else {
            ordinary[i % ordinary.len()]
        };
        // A few sentences each, as chat messages are.
        messages.push(base.repeat(1 + i % 4));
    }
    messages
}

fn report(name: &str, samples: &mut [Duration], bytes: usize) {
    samples.sort();
    let total: Duration = samples.iter().sum();
    let per = total / samples.len() as u32;
    let p99 = samples[samples.len() * 99 / 100];
    let mib_s = bytes as f64 * samples.len() as f64 / total.as_secs_f64() / (1024.0 * 1024.0);
    println!(
        "{name}: mean {per:?}, p99 {p99:?}, {mib_s:.1} MiB/s over {} scans",
        samples.len()
    );
}

fn main() {
    let policy = FlagPolicy {
        words: ["venmo", "crypto wallet", "gift card", "scam"]
            .map(String::from)
            .to_vec(),
    };
    let messages = corpus();
    let bytes: usize = messages.iter().map(String::len).sum::<usize>() / messages.len();
    let mut samples = Vec::with_capacity(ROUNDS * messages.len());
    let mut flagged = 0;
    for _ in 0..ROUNDS {
        for message in &messages {
            let started = Instant::now();
            let flags = scan(black_box(message), &policy);
            samples.push(started.elapsed());
            flagged += usize::from(!flags.is_empty());
        }
    }
    println!(
        "{} messages of {bytes} bytes on average, {} flagged per round",
        messages.len(),
        flagged / ROUNDS
    );
    report("chat message", &mut samples, bytes);

    // The largest body the chat accepts (`domain::chat::MAX_MESSAGE_CHARS`), mixed text.
    let large: String = messages
        .iter()
        .flat_map(|m| m.chars())
        .take(domain::chat::MAX_MESSAGE_CHARS)
        .collect();
    let mut samples: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            black_box(scan(black_box(&large), &policy));
            started.elapsed()
        })
        .collect();
    report("largest message", &mut samples, large.len());
}
