//! Opening many sessions at once: checks before starting, a bounded number
//! of handshakes in flight, and a running count while they open.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use crate::report::{StatusLine, Tally};
use crate::session::{self, Failure, Hello, Target, Ws};
use crate::system;
use crate::tokens::Account;
use crate::Common;

/// Checks, before opening anything, that `sessions` connections fit: this
/// process's open-files limit (raised to the hard limit), the server's when
/// its pid is known, and the local ports of the source addresses.
pub fn preflight(common: &Common, sessions: usize) -> anyhow::Result<()> {
    system::raise_open_files_limit(sessions)?;
    if let Some(pid) = common.server_pid {
        let (soft, hard) = system::open_files_limit_of(pid)?;
        system::check_files(
            &format!("the server (pid {pid})"),
            soft,
            hard,
            sessions,
            system::SERVER_SPARE_FILES,
        )?;
    }
    let ports = system::ephemeral_ports()?;
    let per_source = sessions.div_ceil(usize::from(common.source_addrs.max(1)));
    anyhow::ensure!(
        u64::try_from(per_source).unwrap_or(u64::MAX) <= ports,
        "{sessions} sessions over {} source address(es) need {per_source} local ports each, \
         but the ephemeral port range has {ports}: raise --source-addrs",
        common.source_addrs.max(1)
    );
    Ok(())
}

/// How opening went.
pub struct Opening {
    /// `hellos[i]` is session `i`'s hello reply, `None` if it failed.
    pub hellos: Vec<Option<Hello>>,
    pub opened: usize,
    pub failures: Tally,
    /// From the first connect to the last outcome.
    pub elapsed: Duration,
    /// Opening stopped early after too many failures.
    pub gave_up: bool,
    /// The session tasks (each runs `run` once its session is open).
    pub tasks: JoinSet<()>,
}

impl Opening {
    pub fn failed(&self) -> u64 {
        self.failures.total()
    }

    /// Sessions opened per second.
    pub fn rate(&self) -> f64 {
        self.opened as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The summary lines: how many of `total` opened, how fast, what failed.
    pub fn print(&self, total: usize) {
        println!(
            "opened {} of {total} sessions in {:.1} s ({:.0} sessions/s), {} failed{}",
            self.opened,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.failed(),
            if self.gave_up {
                " (gave up: --max-failures reached)"
            } else {
                ""
            }
        );
        crate::idle::print_failures("failed to open", &self.failures);
    }
}

/// Opens one session per account (`accounts[i]` for session `i`), at most
/// `common.connect_concurrency` handshakes at a time, and hands each open
/// one to `run` with its payload, in a task of [`Opening::tasks`]. Prints a status
/// line each second until every session has opened or failed; gives up
/// after `common.max_failures` failures.
pub async fn open_all<P, F, Fut>(
    common: &Common,
    target: Arc<Target>,
    accounts: &[Account],
    payloads: Vec<P>,
    run: F,
) -> Opening
where
    P: Send + 'static,
    F: Fn(usize, Ws, Hello, P) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let total = accounts.len();
    let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel::<(usize, Result<Hello, Failure>)>();
    let permits = Arc::new(Semaphore::new(common.connect_concurrency.max(1)));
    let launched = Arc::new(AtomicUsize::new(0));
    let give_up = Arc::new(AtomicBool::new(false));
    let run = Arc::new(run);
    let timeout = Duration::from_secs(common.connect_timeout_secs.max(1));
    let started = Instant::now();

    // The launcher: one task per session, as permits allow.
    let launcher = {
        let (launched, give_up) = (launched.clone(), give_up.clone());
        let tokens: Vec<String> = accounts.iter().map(|a| a.token.clone()).collect();
        let mut spawned = JoinSet::new();
        tokio::spawn(async move {
            for (i, (token, payload)) in tokens.into_iter().zip(payloads).enumerate() {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                if give_up.load(Ordering::Relaxed) {
                    break;
                }
                launched.fetch_add(1, Ordering::Relaxed);
                let (target, outcomes_tx, run) = (target.clone(), outcomes_tx.clone(), run.clone());
                spawned.spawn(async move {
                    let opened = session::open(&target, i, &token, timeout).await;
                    drop(permit);
                    match opened {
                        Ok((ws, hello)) => {
                            let _ = outcomes_tx.send((i, Ok(hello.clone())));
                            run(i, ws, hello, payload).await;
                        }
                        Err(failure) => {
                            let _ = outcomes_tx.send((i, Err(failure)));
                        }
                    }
                });
            }
            spawned
        })
    };

    let mut hellos = vec![None; total];
    let mut opened = 0;
    let mut failures = Tally::default();
    let mut received = 0;
    let mut status = StatusLine::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    tokio::pin!(launcher);
    let mut launcher_done = false;
    let mut tasks = JoinSet::new();
    loop {
        if launcher_done && received >= launched.load(Ordering::Relaxed) {
            break;
        }
        tokio::select! {
            spawned = &mut launcher, if !launcher_done => {
                launcher_done = true;
                match spawned {
                    Ok(spawned) => tasks = spawned,
                    Err(e) => failures.add("launcher failed".into(), e.to_string()),
                }
            }
            outcome = outcomes.recv() => {
                let Some((i, outcome)) = outcome else { break };
                received += 1;
                match outcome {
                    Ok(hello) => {
                        opened += 1;
                        hellos[i] = Some(hello);
                    }
                    Err(failure) => {
                        failures.add(failure.kind(), failure.to_string());
                        if failures.total() >= common.max_failures && !give_up.swap(true, Ordering::Relaxed) {
                            status.finish();
                            eprintln!("giving up: {} sessions failed to open", failures.total());
                        }
                    }
                }
            }
            _ = tick.tick() => {
                let secs = started.elapsed().as_secs_f64();
                status.show(&format!(
                    "opening: {opened} open, {} failed of {total} ({:.0}/s)",
                    failures.total(),
                    opened as f64 / secs
                ));
            }
        }
    }
    status.finish();
    Opening {
        hellos,
        opened,
        failures,
        elapsed: started.elapsed(),
        gave_up: give_up.load(Ordering::Relaxed),
        tasks,
    }
}

/// Waits up to `limit` for the session tasks to end, then ends the rest.
pub async fn join_all(mut tasks: JoinSet<()>, limit: Duration) {
    let all = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(limit, all).await.is_err() {
        tasks.shutdown().await;
    }
}
