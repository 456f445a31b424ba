//! The live socket at `/ws` (protocol: `docs/protocol.md`).
//!
//! Each connection is served by one session actor ([`session`]): a task
//! that owns the socket, the user's subscription to the event bus through a
//! bounded inbox, and the requests in progress. It reads frames, answers
//! requests, and writes events in cursor order. It is a plain task rather
//! than a ractor actor because its mailbox must be bounded (ractor's is not)
//! and it must wait on the socket and its mailbox at once; an idle session
//! then costs a few KiB.
//!
//! Layout:
//! - [`frames`]: the wire frames and the request types.
//! - [`session`]: the session actor: handshake, limits, ordering, resume.
//! - [`requests`]: carrying out each request type.

pub(crate) mod frames;
mod requests;
mod session;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

/// Largest frame or message the WebSocket layer reads at all; larger ones
/// close the connection (1009). Below it, the protocol's own
/// `max_frame_bytes` answers with an error frame and keeps the session.
pub const HARD_FRAME_LIMIT: usize = 1024 * 1024;

/// The protocol version this server speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Counters of the live sockets, for tests and metrics.
#[derive(Debug, Default)]
pub struct SocketStats {
    pub open: AtomicU64,
    pub authenticated: AtomicU64,
    pub opened_total: AtomicU64,
    /// Sessions cut off because they did not read (close 4008).
    pub slow_consumers: AtomicU64,
    /// Sessions closed for bad frames or flooding (4400, 4429).
    pub abusive: AtomicU64,
}

impl SocketStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// What a connection's heartbeat asks for now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Nothing to do yet.
    Wait,
    /// The client was quiet for a heartbeat: ping it.
    Ping,
    /// A ping went unanswered for a heartbeat: the connection is dead.
    Dead,
}

/// The heartbeat shared by the user and the admin sockets: ping after a
/// quiet `heartbeat`, give up a `heartbeat` after an unanswered ping.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Heartbeat {
    pub every: std::time::Duration,
    pub last_inbound: tokio::time::Instant,
    pub ping_sent: Option<tokio::time::Instant>,
}

impl Heartbeat {
    pub fn new(every: std::time::Duration) -> Self {
        Self {
            every,
            last_inbound: tokio::time::Instant::now(),
            ping_sent: None,
        }
    }

    /// The client sent something.
    pub fn heard(&mut self) {
        self.last_inbound = tokio::time::Instant::now();
        self.ping_sent = None;
    }

    /// When the heartbeat next needs looking at.
    pub fn deadline(&self) -> tokio::time::Instant {
        self.ping_sent.unwrap_or(self.last_inbound) + self.every
    }

    pub fn check(&mut self, now: tokio::time::Instant) -> Beat {
        match self.ping_sent {
            Some(at) if now.duration_since(at) >= self.every => Beat::Dead,
            None if now.duration_since(self.last_inbound) >= self.every => {
                self.ping_sent = Some(now);
                Beat::Ping
            }
            _ => Beat::Wait,
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

async fn upgrade(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let realtime = &state.settings.realtime;
    upgrade
        // The buffers start small so that many idle connections stay cheap;
        // they grow for larger frames.
        .read_buffer_size(realtime.read_buffer_bytes.max(256))
        .write_buffer_size(0)
        .max_write_buffer_size(HARD_FRAME_LIMIT * 2)
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .on_failed_upgrade(|error| tracing::debug!(%error, "websocket upgrade failed"))
        .on_upgrade(move |socket| session::run(socket, state))
}
