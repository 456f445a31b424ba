//! Login throughput of the real server: starts the marketplace on the
//! embedded defaults (SQLite in a temporary directory, the configured argon2id
//! cost), registers one account, then keeps `--concurrency` clients logging
//! in over HTTP for `--seconds` and prints logins per second and latency.
//!
//! ```sh
//! cargo run --release -p gateway --example login_throughput -- --seconds 10 --concurrency 8
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway::config::Settings;
use gateway::AppState;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = arg("--seconds", 10);
    let concurrency = arg("--concurrency", 8);
    let dir = tempfile::tempdir()?;
    let mut settings = Settings::load(None).map_err(|e| anyhow::anyhow!("{e}"))?;
    settings.server.data_dir = dir.path().to_path_buf();
    settings.log.filter = "warn".into();
    let auth = settings.auth.clone();
    let state = AppState::build(settings).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/v1", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway::run(listener, state, async {
        let _ = stop_rx.await;
    }));

    let client = reqwest::Client::new();
    let password = "benchmark password 1";
    let response = client
        .post(format!("{base}/auth/register"))
        .json(&serde_json::json!({"email": "bench@example.com", "username": "bench", "password": password}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 201,
        "register failed: {}",
        response.status()
    );

    let running = Arc::new(AtomicBool::new(true));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, base, running) = (client.clone(), base.clone(), running.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while running.load(Ordering::Relaxed) {
                let t = Instant::now();
                let response = client
                    .post(format!("{base}/auth/login"))
                    .json(&serde_json::json!({"login": "bench", "password": password}))
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => latencies.push(t.elapsed()),
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    running.store(false, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (l, f) = worker.await?;
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "argon2id m={} KiB t={} p={}, {} CPUs, concurrency {}, {:.1} s",
        auth.argon2_memory_kib,
        auth.argon2_iterations,
        auth.argon2_parallelism,
        std::thread::available_parallelism().map_or(1, usize::from),
        concurrency,
        elapsed
    );
    println!(
        "logins: {} ok, {} failed, {:.1} logins/s, latency p50 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        failures,
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}
