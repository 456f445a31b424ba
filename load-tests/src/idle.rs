//! `loadgen idle`: N authenticated sessions held open and read (so the
//! server's pings are answered), and what they cost the server in memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::{mpsc, watch};

use crate::report::{StatusLine, Tally};
use crate::session::{self, Failure, Hello, Target, Ws};
use crate::system::{self, mib};
use crate::{fleet, tokens, Common};

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Sessions to open (one token each).
    #[arg(long, value_name = "N")]
    pub sessions: usize,
    /// How long to hold them open before measuring.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub hold_secs: u64,
}

pub async fn run(args: IdleArgs) -> anyhow::Result<()> {
    let common = &args.common;
    let n = args.sessions;
    anyhow::ensure!(n > 0, "--sessions must be at least 1");
    let accounts = tokens::read(&common.tokens, n)?;
    fleet::preflight(common, n)?;
    let target = Arc::new(Target::resolve(&common.url, common.source_addrs).await?);
    let server_before = server_rss(common)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let (ended_tx, mut ended_rx) = mpsc::unbounded_channel::<Failure>();
    let live = Arc::new(AtomicUsize::new(0));
    let hold = {
        let live = live.clone();
        move |_i: usize, ws: Ws, _hello: Hello, (): ()| {
            hold(ws, stop_rx.clone(), ended_tx.clone(), live.clone())
        }
    };
    let opening = fleet::open_all(common, target, &accounts, vec![(); n], hold).await;
    opening.print(n);
    if opening.opened == 0 {
        let _ = stop_tx.send(true);
        fleet::join_all(opening.tasks, Duration::from_secs(5)).await;
        anyhow::bail!("no session opened");
    }

    // Hold, reading every connection.
    let mut ended = Tally::default();
    let mut status = StatusLine::new();
    let until = Instant::now() + Duration::from_secs(args.hold_secs);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => break,
            Some(failure) = ended_rx.recv() => ended.add(failure.kind(), failure.to_string()),
            _ = tick.tick() => status.show(&format!(
                "holding: {} open, {} ended by the server, {} s left",
                live.load(Ordering::Relaxed),
                ended.total(),
                until.saturating_duration_since(Instant::now()).as_secs_f64().ceil()
            )),
        }
    }
    status.finish();
    while let Ok(failure) = ended_rx.try_recv() {
        ended.add(failure.kind(), failure.to_string());
    }
    let open_now = live.load(Ordering::Relaxed);
    let server_after = server_rss(common)?;
    let own = system::rss_kib(None)?;

    println!("sessions open after {} s: {open_now}", args.hold_secs);
    if ended.total() > 0 {
        println!("sessions ended by the server while held: {}", ended.total());
        print_failures("ended", &ended);
    }
    if let (Some(before), Some(after)) = (server_before, server_after) {
        println!("server RSS before: {}  after: {}", mib(before), mib(after));
        if open_now > 0 {
            println!(
                "KiB per idle session: {:.1}  ((after - before) / {open_now} open sessions)",
                (after as f64 - before as f64) / open_now as f64
            );
        }
    }
    println!(
        "loadgen RSS: {} ({:.1} KiB per session)",
        mib(own),
        own as f64 / open_now.max(1) as f64
    );

    let failed = opening.failed();
    let _ = stop_tx.send(true);
    fleet::join_all(opening.tasks, Duration::from_secs(30)).await;
    anyhow::ensure!(
        failed == 0 && ended.total() == 0,
        "{failed} sessions failed to open and {} ended early",
        ended.total()
    );
    Ok(())
}

/// Reads the session until told to stop, then closes it; reports an early
/// end.
async fn hold(
    mut ws: Ws,
    mut stop: watch::Receiver<bool>,
    ended: mpsc::UnboundedSender<Failure>,
    live: Arc<AtomicUsize>,
) {
    live.fetch_add(1, Ordering::Relaxed);
    let stopped = async { stop.wait_for(|stop| *stop).await.map(|_| ()) };
    let held = session::read_until(&mut ws, stopped).await;
    live.fetch_sub(1, Ordering::Relaxed);
    match held {
        Ok(_) => session::close(ws).await,
        Err(failure) => {
            let _ = ended.send(failure);
        }
    }
}

fn server_rss(common: &Common) -> anyhow::Result<Option<u64>> {
    common
        .server_pid
        .map(|pid| system::rss_kib(Some(pid)))
        .transpose()
}

/// `what, by kind:` and a line per kind, if there was any.
pub fn print_failures(what: &str, tally: &Tally) {
    if tally.total() > 0 {
        println!("{what}, by kind:");
        for line in tally.lines() {
            println!("{line}");
        }
    }
}
