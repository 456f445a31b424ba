//! `loadgen chat`: P pairs of sessions, each pair in its own conversation,
//! every session sending `chat.send` at a fixed rate. The body starts with
//! the send time (microseconds since a shared `Instant`), so the partner can
//! time delivery; the sender times its reply (the acknowledgement).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt as _;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

use crate::idle::print_failures;
use crate::report::{latency_histogram, percentiles, StatusLine, Tally};
use crate::session::{self, Failure, Hello, Target, Ws};
use crate::system::{self, mib};
use crate::{fleet, tokens, Common};

/// The longest message body the server accepts, in characters.
const MAX_BODY: usize = 5000;
/// Time allowed for every conversation to open.
const PAIRING_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub common: Common,
    /// Pairs of sessions (uses 2P tokens: lines 2k+1 and 2k+2 chat together).
    #[arg(long, value_name = "P")]
    pub pairs: usize,
    /// Messages per second each session sends.
    #[arg(long, value_name = "PER_SEC", default_value_t = 1.0)]
    pub rate: f64,
    /// How long latencies are recorded, after the warmup.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub duration_secs: u64,
    /// Sending starts this long before recording does.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub warmup_secs: u64,
    /// Size of each message body (the send time, padded).
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    pub body_bytes: usize,
    /// After the last send, how long to wait for outstanding replies and
    /// deliveries.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub drain_secs: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Pairing,
    Go {
        start: Instant,
        /// Latencies of messages sent from here on are recorded.
        warm: Instant,
        /// No sends from here on.
        until: Instant,
    },
    Stop,
}

/// What every session task shares.
struct Shared {
    epoch: Instant,
    /// Starts every `client_id` of this run, so that runs on the same
    /// accounts (and so the same conversations) never send the same one.
    run_id: String,
    rate: f64,
    body_bytes: usize,
    phase: watch::Receiver<Phase>,
    notes: mpsc::UnboundedSender<Note>,
}

/// A session's part in its pair.
enum Role {
    /// Opens the conversation with `partner` and tells the other session.
    Opener {
        partner: String,
        conversation: oneshot::Sender<String>,
    },
    /// Learns the conversation from its opener.
    Joiner {
        conversation: oneshot::Receiver<String>,
    },
}

/// What sessions tell the collector.
enum Note {
    /// An opener's `conversation.open` went through (a failure ends the
    /// session: `Ended`).
    Paired,
    Sent,
    /// A `chat.send` was answered `ok`; the latency if it was sent after the warmup.
    Acked(Option<u64>),
    /// A partner's message arrived; the latency if it was sent after the warmup.
    Delivered(Option<u64>),
    /// A `chat.send` was answered with an error; the latency if it was sent
    /// after the warmup.
    Refused(Failure, Option<u64>),
    /// Something went wrong but the session goes on.
    Problem(String, String),
    /// The session ended before it was told to stop.
    Ended(Failure),
    /// At the end of a session: events received by type, and sends that got
    /// no reply.
    Summary(BTreeMap<String, u64>, u64),
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let common = &args.common;
    anyhow::ensure!(args.pairs > 0, "--pairs must be at least 1");
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be a positive number of messages per second"
    );
    anyhow::ensure!(
        (1..=MAX_BODY).contains(&args.body_bytes),
        "--body-bytes must be 1 to {MAX_BODY} (the server's longest message)"
    );
    anyhow::ensure!(args.duration_secs > 0, "--duration-secs must be at least 1");
    let n = args
        .pairs
        .checked_mul(2)
        .ok_or_else(|| anyhow::anyhow!("--pairs is too large"))?;
    let accounts = tokens::read(&common.tokens, n)?;
    for pair in accounts.chunks(2) {
        anyhow::ensure!(
            pair[0].user_id != pair[1].user_id,
            "{} appears twice in a row in the token file: a user cannot chat with itself",
            pair[0].username
        );
    }
    fleet::preflight(common, n)?;
    let target = Arc::new(Target::resolve(&common.url, common.source_addrs).await?);
    let server_before = common
        .server_pid
        .map(|pid| system::rss_kib(Some(pid)))
        .transpose()?;

    let epoch = Instant::now();
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);
    let (notes_tx, mut notes) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        epoch,
        run_id: run_id(),
        rate: args.rate,
        body_bytes: args.body_bytes,
        phase: phase_rx,
        notes: notes_tx,
    });
    let mut roles = Vec::with_capacity(n);
    for pair in accounts.chunks(2) {
        let (tx, rx) = oneshot::channel();
        roles.push(Role::Opener {
            partner: pair[1].user_id.clone(),
            conversation: tx,
        });
        roles.push(Role::Joiner { conversation: rx });
    }
    let opening = {
        let shared = shared.clone();
        fleet::open_all(
            common,
            target,
            &accounts,
            roles,
            move |i, ws, hello, role| session_task(i, ws, hello, role, shared.clone()),
        )
        .await
    };
    drop(shared);
    opening.print(n);
    let failed = opening.failed();
    if failed > 0 {
        stop(&phase_tx, opening.tasks).await;
        anyhow::bail!("{failed} of {n} sessions failed to open");
    }
    let limit = opening
        .hellos
        .iter()
        .flatten()
        .find_map(|h| h.requests_per_sec);
    if let Some(limit) = limit.filter(|limit| args.rate > *limit) {
        eprintln!(
            "warning: --rate {} is over the server's limit of {limit} requests per second \
             per session: expect rate_limited replies",
            args.rate
        );
    }

    // Every pair opens its conversation.
    let _ = phase_tx.send(Phase::Pairing);
    let started = Instant::now();
    let mut paired = 0;
    let mut pairing_failures = Tally::default();
    let deadline = tokio::time::sleep(PAIRING_TIMEOUT);
    tokio::pin!(deadline);
    while paired + pairing_failures.total() < args.pairs as u64 {
        tokio::select! {
            note = notes.recv() => match note {
                Some(Note::Paired) => paired += 1,
                Some(Note::Ended(failure)) => {
                    pairing_failures.add(failure.kind(), failure.to_string());
                }
                Some(_) => {}
                None => break,
            },
            _ = &mut deadline => {
                pairing_failures.add(
                    "timeout: conversation.open".into(),
                    format!("{} conversations not open after {PAIRING_TIMEOUT:?}", args.pairs as u64 - paired),
                );
                break;
            }
        }
    }
    println!(
        "opened {paired} of {} conversations in {:.1} s",
        args.pairs,
        started.elapsed().as_secs_f64()
    );
    print_failures("conversation.open failed", &pairing_failures);
    if pairing_failures.total() > 0 {
        stop(&phase_tx, opening.tasks).await;
        anyhow::bail!("{} conversations failed to open", pairing_failures.total());
    }

    // Chat.
    let start = Instant::now() + Duration::from_millis(200);
    let warm = start + Duration::from_secs(args.warmup_secs);
    let until = warm + Duration::from_secs(args.duration_secs);
    let _ = phase_tx.send(Phase::Go { start, warm, until });
    let mut totals = Totals::new()?;
    let mut status = StatusLine::new();
    let mut tick = tokio::time::interval_at(
        (start + Duration::from_secs(1)).into(),
        Duration::from_secs(1),
    );
    let drain_end = until + Duration::from_secs(args.drain_secs);
    loop {
        tokio::select! {
            note = notes.recv() => match note {
                Some(note) => totals.take(note),
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let stage = if now < warm { "warmup" } else if now < until { "measuring" } else { "draining" };
                status.show(&totals.status(stage, now.saturating_duration_since(start)));
                totals.second.reset();
                if now >= drain_end || (now >= until && totals.settled()) {
                    break;
                }
            }
        }
    }
    status.finish();
    stop(&phase_tx, opening.tasks).await;
    while let Ok(note) = notes.try_recv() {
        totals.take(note);
    }
    totals.report(&args, n);
    if let (Some(pid), Some(before)) = (common.server_pid, server_before) {
        let after = system::rss_kib(Some(pid))?;
        println!("server RSS before: {}  after: {}", mib(before), mib(after));
    }
    println!("loadgen RSS: {}", mib(system::rss_kib(None)?));
    anyhow::ensure!(totals.delivered > 0, "no message was delivered");
    Ok(())
}

/// Tells every session to stop, and waits (bounded) for them to close.
async fn stop(phase: &watch::Sender<Phase>, tasks: tokio::task::JoinSet<()>) {
    let _ = phase.send(Phase::Stop);
    fleet::join_all(tasks, Duration::from_secs(30)).await;
}

/// Everything the collector counts.
struct Totals {
    sent: u64,
    acked: u64,
    refused: u64,
    delivered: u64,
    delivery: Histogram<u64>,
    ack: Histogram<u64>,
    /// Send to error reply.
    refusal: Histogram<u64>,
    /// Deliveries of the last second, for the status line.
    second: Histogram<u64>,
    problems: Tally,
    events: BTreeMap<String, u64>,
    unanswered: u64,
}

impl Totals {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            sent: 0,
            acked: 0,
            refused: 0,
            delivered: 0,
            delivery: latency_histogram()?,
            ack: latency_histogram()?,
            refusal: latency_histogram()?,
            second: latency_histogram()?,
            problems: Tally::default(),
            events: BTreeMap::new(),
            unanswered: 0,
        })
    }

    fn take(&mut self, note: Note) {
        match note {
            Note::Sent => self.sent += 1,
            Note::Acked(latency) => {
                self.acked += 1;
                if let Some(latency) = latency {
                    self.ack.saturating_record(latency.max(1));
                }
            }
            Note::Delivered(latency) => {
                self.delivered += 1;
                if let Some(latency) = latency {
                    self.delivery.saturating_record(latency.max(1));
                    self.second.saturating_record(latency.max(1));
                }
            }
            Note::Refused(failure, latency) => {
                self.refused += 1;
                if let Some(latency) = latency {
                    self.refusal.saturating_record(latency.max(1));
                }
                self.problems.add(failure.kind(), failure.to_string());
            }
            Note::Problem(kind, example) => self.problems.add(kind, example),
            Note::Ended(failure) => self.problems.add(
                format!("session ended: {}", failure.kind()),
                failure.to_string(),
            ),
            Note::Paired => {}
            Note::Summary(events, unanswered) => {
                for (event, count) in events {
                    *self.events.entry(event).or_default() += count;
                }
                self.unanswered += unanswered;
            }
        }
    }

    /// Every send answered and every message delivered.
    fn settled(&self) -> bool {
        self.acked + self.refused >= self.sent && self.delivered >= self.acked
    }

    fn status(&self, stage: &str, elapsed: Duration) -> String {
        let p99 = crate::report::last_second_p99(&self.second);
        format!(
            "{:>4} s {stage:<9} sent {}  acked {}  delivered {}  errors {}  delivery p99 (last second) {p99}",
            elapsed.as_secs(),
            self.sent,
            self.acked,
            self.delivered,
            self.problems.total()
        )
    }

    fn report(&mut self, args: &ChatArgs, sessions: usize) {
        if self.unanswered > 0 {
            self.problems.add(
                "chat.send without a reply by the end".into(),
                format!("{} sends", self.unanswered),
            );
        }
        println!(
            "chat: {} pairs ({sessions} sessions), {} messages/s per session, {}-byte bodies; \
             {} s warmup, {} s measured",
            args.pairs, args.rate, args.body_bytes, args.warmup_secs, args.duration_secs
        );
        println!(
            "sent {}, acknowledged {}, delivered to the partner {}, errors {}",
            self.sent,
            self.acked,
            self.delivered,
            self.problems.total()
        );
        let secs = args.duration_secs as f64;
        println!(
            "throughput (measured window): {:.1} messages/s delivered, {:.1} acknowledged",
            self.delivery.len() as f64 / secs,
            self.ack.len() as f64 / secs
        );
        println!("{}", percentiles("delivery latency", &self.delivery));
        println!("{}", percentiles("ack latency", &self.ack));
        if !self.refusal.is_empty() {
            println!("{}", percentiles("error reply", &self.refusal));
        }
        if !self.events.is_empty() {
            let events: Vec<String> = self
                .events
                .iter()
                .map(|(event, count)| format!("{event} {count}"))
                .collect();
            println!("events received: {}", events.join(", "));
        }
        print_failures("errors", &self.problems);
    }
}

/// Waits until `phase` satisfies `ready`; `None` if the sender is gone.
async fn wait_phase(
    phase: &mut watch::Receiver<Phase>,
    ready: impl FnMut(&Phase) -> bool,
) -> Option<Phase> {
    phase.wait_for(ready).await.ok().map(|p| *p)
}

async fn session_task(i: usize, mut ws: Ws, hello: Hello, role: Role, shared: Arc<Shared>) {
    let notes = shared.notes.clone();
    let mut phase = shared.phase.clone();
    match set_up(&mut ws, role, &mut phase, &notes).await {
        Ok(Some((conversation, Phase::Go { start, warm, until }))) => {
            let run = Run {
                i,
                run_id: shared.run_id.clone(),
                me: hello.user_id,
                conversation,
                epoch: shared.epoch,
                warm: micros(shared.epoch, warm),
                body_bytes: shared.body_bytes,
                notes: notes.clone(),
            };
            let period = Duration::from_secs_f64(1.0 / shared.rate);
            if run.chat(&mut ws, &mut phase, start, until, period).await {
                session::close(ws).await;
            }
        }
        Ok(_) => session::close(ws).await,
        Err(failure) => {
            let _ = notes.send(Note::Ended(failure));
        }
    }
}

/// Pairing and the wait for the start, reading all along: the conversation
/// and the `Go` phase, or `None` when told to stop first.
async fn set_up(
    ws: &mut Ws,
    role: Role,
    phase: &mut watch::Receiver<Phase>,
    notes: &mpsc::UnboundedSender<Note>,
) -> Result<Option<(String, Phase)>, Failure> {
    let pairing = wait_phase(phase, |p| *p != Phase::Connecting);
    match session::read_until(ws, pairing).await? {
        Some(Phase::Pairing) => {}
        _ => return Ok(None),
    }
    let conversation = match role {
        Role::Opener {
            partner,
            conversation,
        } => {
            let opened = tokio::time::timeout(PAIRING_TIMEOUT, open_conversation(ws, &partner))
                .await
                .unwrap_or(Err(Failure::Timeout("conversation.open")));
            match opened {
                Ok(id) => {
                    let _ = conversation.send(id.clone());
                    let _ = notes.send(Note::Paired);
                    id
                }
                Err(failure) => return Err(failure),
            }
        }
        Role::Joiner { conversation } => match session::read_until(ws, conversation).await? {
            Ok(id) => id,
            // The opener failed and says so.
            Err(_) => return Ok(None),
        },
    };
    let go = wait_phase(phase, |p| matches!(p, Phase::Go { .. } | Phase::Stop));
    match session::read_until(ws, go).await? {
        Some(go @ Phase::Go { .. }) => Ok(Some((conversation, go))),
        _ => Ok(None),
    }
}

/// `conversation.open` with `partner`: the conversation's id.
async fn open_conversation(ws: &mut Ws, partner: &str) -> Result<String, Failure> {
    session::send(
        ws,
        &json!({"id": "open", "type": "conversation.open", "data": {"user_id": partner}}),
    )
    .await?;
    loop {
        let frame = session::next_json(ws).await?;
        if frame["type"] != "reply" || frame["id"] != "open" {
            continue;
        }
        if frame["ok"] != true {
            return Err(session::refusal("conversation.open", &frame));
        }
        return frame["data"]["conversation"]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| {
                Failure::Protocol(format!(
                    "conversation.open reply without data.conversation.id: {frame}"
                ))
            });
    }
}

/// One session's part of the chat.
struct Run {
    i: usize,
    run_id: String,
    me: String,
    conversation: String,
    epoch: Instant,
    /// Sends from this time on (µs since `epoch`) are recorded.
    warm: u64,
    body_bytes: usize,
    notes: mpsc::UnboundedSender<Note>,
}

impl Run {
    /// Sends every `period` from `start` (plus this session's offset) until
    /// `until`, and reads until told to stop; true if the session is still
    /// open at the end.
    async fn chat(
        &self,
        ws: &mut Ws,
        phase: &mut watch::Receiver<Phase>,
        start: Instant,
        until: Instant,
        period: Duration,
    ) -> bool {
        // Spread the sessions' first sends over one period.
        let first = start + period.mul_f64(spread(self.i));
        let mut ticker = tokio::time::interval_at(first.into(), period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pending: HashMap<u64, u64> = HashMap::new();
        let mut sent = 0u64;
        let mut sending = true;
        let mut events = BTreeMap::new();
        let mut last_cursor = None;
        let open = loop {
            tokio::select! {
                _ = ticker.tick(), if sending => {
                    if Instant::now() >= until {
                        sending = false;
                        continue;
                    }
                    sent += 1;
                    let at = micros(self.epoch, Instant::now());
                    let frame = json!({
                        "id": sent,
                        "type": "chat.send",
                        "data": {
                            "conversation_id": self.conversation,
                            "client_id": format!("{}-{}-{sent}", self.run_id, self.i),
                            "body": body(at, self.body_bytes),
                        }
                    });
                    if let Err(failure) = session::send(ws, &frame).await {
                        self.note(Note::Ended(failure));
                        break false;
                    }
                    pending.insert(sent, at);
                    self.note(Note::Sent);
                }
                message = ws.next() => match session::decode(message) {
                    Ok(Some(frame)) => self.on_frame(&frame, &mut pending, &mut events, &mut last_cursor),
                    Ok(None) => {}
                    Err(failure) => {
                        self.note(Note::Ended(failure));
                        break false;
                    }
                },
                changed = phase.changed() => {
                    let stop = changed.is_err() || *phase.borrow() == Phase::Stop;
                    if stop {
                        break true;
                    }
                }
            }
        };
        self.note(Note::Summary(events, pending.len() as u64));
        open
    }

    fn on_frame(
        &self,
        frame: &Value,
        pending: &mut HashMap<u64, u64>,
        events: &mut BTreeMap<String, u64>,
        last_cursor: &mut Option<i64>,
    ) {
        let now = micros(self.epoch, Instant::now());
        match frame["type"].as_str() {
            Some("reply") => {
                let Some(sent) = frame["id"].as_u64().and_then(|id| pending.remove(&id)) else {
                    return self.problem("a reply to no outstanding request", frame);
                };
                let recorded = sent >= self.warm;
                let latency = recorded.then(|| now.saturating_sub(sent));
                if frame["ok"] != true {
                    let failure = session::refusal("chat.send", frame);
                    return self.note(Note::Refused(failure, latency));
                }
                if frame["data"]["duplicate"] == true {
                    self.problem("chat.send answered as a duplicate", frame);
                }
                self.note(Note::Acked(latency));
            }
            Some("event") => {
                let name = frame["event"].as_str().unwrap_or("(no name)");
                *events.entry(name.to_string()).or_default() += 1;
                if let Some(cursor) = frame["cursor"].as_i64() {
                    if let Some(last) = *last_cursor {
                        if cursor != last + 1 {
                            self.note(Note::Problem(
                                "event cursors not consecutive".into(),
                                format!("{last} then {cursor} ({name})"),
                            ));
                        }
                    }
                    *last_cursor = Some(cursor);
                }
                if name == "chat.message" {
                    self.on_message(&frame["data"], now, frame);
                }
            }
            _ => self.problem("a frame that is neither reply nor event", frame),
        }
    }

    fn on_message(&self, message: &Value, now: u64, frame: &Value) {
        let Some(sender) = message["sender_id"].as_str() else {
            return self.problem("chat.message without data.sender_id", frame);
        };
        if sender == self.me {
            // The server's copy of our own message, for our other devices.
            return;
        }
        if message["conversation_id"] != self.conversation.as_str() {
            return self.problem("chat.message from another conversation", frame);
        }
        match message["body"].as_str().and_then(sent_at) {
            Some(sent) => {
                let recorded = sent >= self.warm;
                self.note(Note::Delivered(recorded.then(|| now.saturating_sub(sent))));
            }
            None => self.problem("chat.message with a body this tool did not send", frame),
        }
    }

    fn note(&self, note: Note) {
        let _ = self.notes.send(note);
    }

    fn problem(&self, kind: &str, frame: &Value) {
        let mut example = frame.to_string();
        if example.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|i| example.is_char_boundary(*i))
                .unwrap_or(0);
            example.truncate(cut);
            example.push('…');
        }
        self.note(Note::Problem(kind.to_string(), example));
    }
}

/// This run's prefix of client ids: the wall clock in milliseconds, base 36.
pub(crate) fn run_id() -> String {
    let mut millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut digits = Vec::new();
    loop {
        let digit = u32::try_from(millis % 36).unwrap_or(0);
        digits.push(char::from_digit(digit, 36).unwrap_or('0'));
        millis /= 36;
        if millis == 0 {
            break;
        }
    }
    digits.iter().rev().collect()
}

/// Microseconds from `epoch` to `at`.
fn micros(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_micros()).unwrap_or(u64::MAX)
}

/// A message body: the send time, a space, then padding to `bytes`.
fn body(sent: u64, bytes: usize) -> String {
    let mut body = format!("{sent} ");
    while body.len() < bytes {
        body.push('x');
    }
    if body.len() > bytes {
        body = sent.to_string();
    }
    body
}

/// The send time at the start of a body [`body`] made.
fn sent_at(body: &str) -> Option<u64> {
    let digits = body.split(' ').next()?;
    digits.parse().ok()
}

/// Where in its period session `i` sends: evenly spread fractions in [0, 1)
/// (the golden-ratio sequence), so sessions do not fire together.
fn spread(i: usize) -> f64 {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    (i as f64 * GOLDEN).fract()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_the_send_time() {
        let b = body(123_456_789, 100);
        assert_eq!(b.len(), 100);
        assert!(b.starts_with("123456789 xxx"));
        assert_eq!(sent_at(&b), Some(123_456_789));
        assert_eq!(body(123_456_789, 4), "123456789");
        assert_eq!(sent_at("123456789"), Some(123_456_789));
        assert_eq!(sent_at("hello there"), None);
    }

    #[test]
    fn client_ids_differ_between_runs() {
        let first = run_id();
        std::thread::sleep(Duration::from_millis(2));
        let second = run_id();
        assert_ne!(first, second);
        assert!(first.chars().all(|c| c.is_ascii_alphanumeric()), "{first}");
        assert!(first.len() <= 10, "{first}");
    }

    #[test]
    fn sessions_start_spread_over_the_period() {
        let mut starts: Vec<f64> = (0..1000).map(spread).collect();
        assert!(starts.iter().all(|s| (0.0..1.0).contains(s)));
        starts.sort_by(f64::total_cmp);
        let widest = starts.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(widest < 0.01, "gap {widest}");
    }

    #[test]
    fn a_run_is_settled_when_every_send_is_answered_and_delivered() {
        let mut totals = Totals::new().unwrap();
        totals.take(Note::Sent);
        totals.take(Note::Sent);
        assert!(!totals.settled());
        totals.take(Note::Acked(Some(900)));
        totals.take(Note::Refused(
            Failure::Refused("chat.send", "rate_limited".into(), "slow down".into()),
            Some(300),
        ));
        assert!(!totals.settled());
        totals.take(Note::Delivered(Some(1500)));
        assert!(totals.settled());
        assert_eq!(totals.delivery.len(), 1);
        assert!(totals
            .status("measuring", Duration::from_secs(3))
            .contains("delivered 1"));
    }
}
