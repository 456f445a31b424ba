//! The session actor: one task per connection.
//!
//! It waits on four things at once: the next frame from the client, the
//! requests it has in progress, its inbox of live events, and its timer
//! (hello deadline, heartbeat, token expiry). Its inbox is bounded: the bus
//! hands it events without waiting, and a session whose inbox fills because
//! its client does not read is cut off (close 4008) instead of slowing
//! anyone down or growing without limit.
//!
//! Durable events are written in cursor order with no gaps and no repeats:
//! an event older than the next expected cursor is dropped, and a newer one
//! is preceded by what is missing, read from the user's event log. The same
//! path replays what a reconnecting client missed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use chrono::{DateTime, Utc};
use cluster::{Subscriber, SubscriptionId};
use domain::error::ErrorCode;
use domain::ids::{SessionId, UserId};
use domain::live::{Delivery, LiveEvent};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use crate::error::{ApiError, ApiResult};
use crate::extract::authenticate;
use crate::state::AppState;
use crate::ws::frames::{self, Request};
use crate::ws::requests::{self, Pending};
use crate::ws::{Beat, Heartbeat, PROTOCOL_VERSION};

/// Events replayed per read from the event log.
const REPLAY_PAGE: u32 = 500;
/// Bad frames, and requests over the rate limit, are counted per minute.
const STRIKE_WINDOW: Duration = Duration::from_secs(60);
const MAX_BAD_FRAMES: u32 = 20;
const MAX_RATE_LIMITED: u32 = 100;

/// How a session ends.
#[derive(Debug)]
enum Close {
    /// The connection is gone (or the client closed it): nothing to send.
    Gone,
    /// Close with this code and reason.
    Code(u16, &'static str),
}

const SLOW: Close = Close::Code(4008, "too slow: the outbound queue overflowed");

/// The bounded inbox the bus delivers a session's events to.
struct Inbox {
    tx: mpsc::Sender<Arc<Delivery>>,
    overflowed: AtomicBool,
    overflow: Notify,
}

impl Subscriber for Inbox {
    fn deliver(&self, delivery: &Arc<Delivery>) -> bool {
        match self.tx.try_send(delivery.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Release);
                self.overflow.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// What a session knows once `hello` succeeded.
struct Authed {
    user: UserId,
    /// The login session the socket was opened with (or refreshed to).
    session_id: SessionId,
    token_deadline: Instant,
    subscription: SubscriptionId,
    inbox: Arc<Inbox>,
    events: mpsc::Receiver<Arc<Delivery>>,
    /// The cursor of the next durable event to write.
    next_cursor: i64,
}

/// A token bucket: `rate` per second, at most `burst` at once.
struct Bucket {
    tokens: f64,
    updated: Instant,
}

struct Strikes {
    since: Instant,
    bad_frames: u32,
    rate_limited: u32,
}

struct Session {
    state: Arc<AppState>,
    socket: WebSocket,
    authed: Option<Authed>,
    pending: FuturesUnordered<Pending>,
    bucket: Bucket,
    strikes: Strikes,
    hello_deadline: Instant,
    heartbeat: Heartbeat,
}

#[derive(Deserialize)]
struct Hello {
    protocol: u32,
    token: String,
    cursor: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    token: String,
}

/// Serves one connection until it ends.
pub async fn run(socket: WebSocket, state: AppState) {
    let stats = state.sockets.clone();
    stats.open.fetch_add(1, Ordering::Relaxed);
    stats.opened_total.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let hello_timeout = Duration::from_secs(state.settings.realtime.hello_timeout_secs.max(1));
    let burst = f64::from(state.settings.realtime.burst.max(1));
    let heartbeat_secs = state.settings.realtime.heartbeat_secs.max(1);
    let mut session = Session {
        state: Arc::new(state),
        socket,
        authed: None,
        pending: FuturesUnordered::new(),
        bucket: Bucket {
            tokens: burst,
            updated: now,
        },
        strikes: Strikes {
            since: now,
            bad_frames: 0,
            rate_limited: 0,
        },
        hello_deadline: now + hello_timeout,
        heartbeat: Heartbeat::new(Duration::from_secs(heartbeat_secs)),
    };
    let close = session.serve().await;
    session.finish(close).await;
    stats.open.fetch_sub(1, Ordering::Relaxed);
}

impl Session {
    fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.state.settings.realtime.write_timeout_secs.max(1))
    }

    async fn serve(&mut self) -> Close {
        let mut closing = self.state.closing.subscribe();
        let timer = tokio::time::sleep_until(self.next_deadline());
        tokio::pin!(timer);
        loop {
            if self
                .authed
                .as_ref()
                .is_some_and(|a| a.inbox.overflowed.load(Ordering::Acquire))
            {
                return SLOW;
            }
            let outcome = tokio::select! {
                biased;
                _ = closing.changed() => Err(Close::Code(1001, "the server is shutting down")),
                frame = self.socket.next() => match frame {
                    Some(Ok(message)) => {
                        self.heartbeat.heard();
                        self.on_message(message).await
                    }
                    // The client went away (or broke the protocol so badly
                    // that the WebSocket layer gave up).
                    Some(Err(_)) | None => Err(Close::Gone),
                },
                Some((id, result)) = self.pending.next(), if !self.pending.is_empty() => {
                    self.write(frames::reply(&id, result)).await
                }
                Some(delivery) = next_event(&mut self.authed) => self.on_event(delivery).await,
                () = &mut timer => {
                    let outcome = self.on_timer().await;
                    timer.as_mut().reset(self.next_deadline());
                    outcome
                }
            };
            if let Err(close) = outcome {
                return close;
            }
        }
    }

    /// When the timer must next look at the session.
    fn next_deadline(&self) -> Instant {
        let beat = self.heartbeat.deadline();
        match &self.authed {
            None => beat.min(self.hello_deadline),
            Some(authed) => beat.min(authed.token_deadline),
        }
    }

    async fn on_timer(&mut self) -> Result<(), Close> {
        let now = Instant::now();
        match &self.authed {
            None if now >= self.hello_deadline => {
                return Err(Close::Code(4408, "no hello in time"));
            }
            Some(authed) if now >= authed.token_deadline => {
                return Err(Close::Code(
                    4401,
                    "the access token expired; reconnect with a new one",
                ));
            }
            _ => {}
        }
        match self.heartbeat.check(now) {
            Beat::Dead => Err(Close::Code(4408, "no answer to heartbeats")),
            Beat::Ping => self.send(Message::Ping(Default::default())).await,
            Beat::Wait => Ok(()),
        }
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Close> {
        match message {
            Message::Text(text) => {
                if text.len() > self.state.settings.realtime.max_frame_bytes {
                    let limit = self.state.settings.realtime.max_frame_bytes;
                    return self
                        .refuse(
                            Value::Null,
                            ApiError::new(
                                ErrorCode::PayloadTooLarge,
                                format!("a frame may be at most {limit} bytes"),
                            ),
                        )
                        .await;
                }
                match frames::parse(text.as_str()) {
                    Ok(request) => self.on_request(request).await,
                    Err(bad) => self.refuse(bad.id, bad.error).await,
                }
            }
            Message::Binary(_) => {
                self.refuse(
                    Value::Null,
                    ApiError::new(
                        ErrorCode::BadRequest,
                        "binary frames are not part of the protocol; send JSON text",
                    ),
                )
                .await
            }
            // The WebSocket layer answers pings and close frames itself.
            Message::Ping(_) | Message::Pong(_) => Ok(()),
            Message::Close(_) => Err(Close::Gone),
        }
    }

    /// Answers a frame that is not a valid request, and closes the session
    /// if it keeps sending them.
    async fn refuse(&mut self, id: Value, error: ApiError) -> Result<(), Close> {
        self.strike_window();
        self.strikes.bad_frames += 1;
        if self.strikes.bad_frames > MAX_BAD_FRAMES {
            self.state.sockets.abusive.fetch_add(1, Ordering::Relaxed);
            return Err(Close::Code(4400, "too many bad frames"));
        }
        self.write(frames::reply(&id, Err(error))).await
    }

    fn strike_window(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.strikes.since) >= STRIKE_WINDOW {
            self.strikes = Strikes {
                since: now,
                bad_frames: 0,
                rate_limited: 0,
            };
        }
    }

    /// Takes one request from the bucket; `false` when it is empty.
    fn take_token(&mut self) -> bool {
        let realtime = &self.state.settings.realtime;
        let rate = f64::from(realtime.requests_per_sec.max(1));
        let burst = f64::from(realtime.burst.max(1));
        let now = Instant::now();
        let elapsed = now.duration_since(self.bucket.updated).as_secs_f64();
        self.bucket.tokens = (self.bucket.tokens + elapsed * rate).min(burst);
        self.bucket.updated = now;
        if self.bucket.tokens >= 1.0 {
            self.bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    async fn on_request(&mut self, request: Request) -> Result<(), Close> {
        let Some(authed) = &self.authed else {
            if request.kind == "hello" {
                return self.hello(request).await;
            }
            return self
                .refuse(
                    request.id,
                    ApiError::unauthorized("say hello first, with an access token"),
                )
                .await;
        };
        let user = authed.user;
        if !self.take_token() {
            self.strike_window();
            self.strikes.rate_limited += 1;
            if self.strikes.rate_limited > MAX_RATE_LIMITED {
                self.state.sockets.abusive.fetch_add(1, Ordering::Relaxed);
                return Err(Close::Code(4429, "kept sending over the rate limit"));
            }
            let error = ApiError::new(ErrorCode::RateLimited, "too many requests: slow down");
            return self.write(frames::reply(&request.id, Err(error))).await;
        }
        match request.kind.as_str() {
            "ping" => {
                self.write(frames::reply(
                    &request.id,
                    Ok(Value::Object(Default::default())),
                ))
                .await
            }
            "hello" => {
                let error = ApiError::new(ErrorCode::BadRequest, "this session already said hello");
                self.write(frames::reply(&request.id, Err(error))).await
            }
            "auth.refresh" => {
                let result = self.refresh(request.data).await;
                self.write(frames::reply(&request.id, result)).await
            }
            kind if requests::KINDS.contains(&kind) => {
                if self.pending.len() >= self.state.settings.realtime.max_in_flight {
                    let error = ApiError::new(
                        ErrorCode::RateLimited,
                        "too many requests in progress: wait for replies",
                    );
                    return self.write(frames::reply(&request.id, Err(error))).await;
                }
                self.pending
                    .push(requests::start(self.state.clone(), user, request));
                Ok(())
            }
            kind => {
                let error = requests::unknown(kind);
                self.refuse(request.id, error).await
            }
        }
    }

    async fn hello(&mut self, request: Request) -> Result<(), Close> {
        let hello: Hello = match frames::data("hello", request.data) {
            Ok(hello) => hello,
            Err(error) => return self.refuse(request.id, error).await,
        };
        if hello.protocol != PROTOCOL_VERSION {
            let error = ApiError::new(
                ErrorCode::BadRequest,
                format!("unsupported protocol version; this server speaks {PROTOCOL_VERSION}"),
            );
            self.write(frames::reply(&request.id, Err(error))).await?;
            return Err(Close::Code(4426, "unsupported protocol version"));
        }
        let (auth, expires_at) = match authenticate(&self.state, &hello.token).await {
            Ok(auth) => auth,
            Err(error) => {
                self.write(frames::reply(&request.id, Err(error))).await?;
                return Err(Close::Code(4401, "not authenticated"));
            }
        };
        let user = auth.user.id;
        // Subscribe before reading the head, so no event falls between the
        // two: anything published from here on is in the inbox, and what is
        // older is in the log.
        let (tx, events) = mpsc::channel(self.state.settings.realtime.outbound_queue.max(1));
        let inbox = Arc::new(Inbox {
            tx,
            overflowed: AtomicBool::new(false),
            overflow: Notify::new(),
        });
        let bus = self.state.chat.live().bus().clone();
        let subscription = bus.subscribe(user, inbox.clone());
        let started = Self::start_stream(self.state.clone(), user, hello.cursor).await;
        let (head, replay) = match started {
            Ok(started) => started,
            Err(error) => {
                bus.unsubscribe(user, subscription);
                // Counted like a bad frame: a client cannot make the server
                // read the log over and over.
                return self.refuse(request.id, error).await;
            }
        };
        let unread = match self.state.chat.store().total_unread(user).await {
            Ok(unread) => unread,
            Err(error) => {
                bus.unsubscribe(user, subscription);
                return self
                    .write(frames::reply(&request.id, Err(error.into())))
                    .await;
            }
        };
        let notifications_unread =
            match domain::ports::NotificationStore::unread_notifications(&self.state.store, user)
                .await
            {
                Ok(unread) => unread,
                Err(error) => {
                    bus.unsubscribe(user, subscription);
                    return self
                        .write(frames::reply(&request.id, Err(error.into())))
                        .await;
                }
            };
        self.authed = Some(Authed {
            user,
            session_id: auth.session_id,
            token_deadline: deadline_of(expires_at),
            subscription,
            inbox,
            events,
            next_cursor: head + 1,
        });
        self.state.chat.connected(user);
        self.state
            .sockets
            .authenticated
            .fetch_add(1, Ordering::Relaxed);
        let realtime = &self.state.settings.realtime;
        let data = serde_json::json!({
            "user_id": user,
            "cursor": head,
            "unread": unread,
            "notifications_unread": notifications_unread,
            "heartbeat_secs": realtime.heartbeat_secs,
            "token_expires_at": expires_at,
            "limits": {
                "max_frame_bytes": realtime.max_frame_bytes,
                "requests_per_sec": realtime.requests_per_sec,
                "burst": realtime.burst,
            },
        });
        self.write(frames::reply(&request.id, Ok(data))).await?;
        if let Some(after) = replay {
            self.replay(user, after, head).await?;
        }
        Ok(())
    }

    /// The user's head cursor, and where to replay from: checks that a
    /// client's cursor can be resumed from.
    async fn start_stream(
        state: Arc<AppState>,
        user: UserId,
        cursor: Option<i64>,
    ) -> ApiResult<(i64, Option<i64>)> {
        let log = state.chat.live().log();
        let head = log.head(user).await?;
        let Some(cursor) = cursor else {
            return Ok((head, None));
        };
        let expired = || {
            ApiError::new(
                ErrorCode::CursorExpired,
                "that cursor cannot be resumed from; reload and say hello without one",
            )
        };
        if cursor < 0 || cursor > head {
            return Err(expired());
        }
        if cursor < head {
            let first = log.events_after(user, cursor, 1).await?;
            if first.first().is_none_or(|e| e.cursor != cursor + 1) {
                return Err(expired());
            }
        }
        Ok((head, Some(cursor)))
    }

    /// Writes the user's durable events after `after` up to `until`, and
    /// on to whatever arrives meanwhile: live events that come in during a
    /// replay are taken from the inbox as they arrive (so a long replay
    /// cannot overflow it); durable ones only move the end of the replay
    /// (the log has them), ephemeral ones are stale by then and dropped.
    async fn replay(&mut self, user: UserId, after: i64, until: i64) -> Result<(), Close> {
        let log = self.state.chat.live().log().clone();
        let (mut after, mut until) = (after, until);
        loop {
            if let Some(authed) = &mut self.authed {
                while let Ok(delivery) = authed.events.try_recv() {
                    if let Some(cursor) = delivery.cursor {
                        until = until.max(cursor);
                    }
                }
            }
            if after >= until {
                break;
            }
            let limit = u32::try_from(until - after)
                .unwrap_or(REPLAY_PAGE)
                .min(REPLAY_PAGE);
            let events = match log.events_after(user, after, limit).await {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(%error, user_id = %user, "reading events to replay failed");
                    return Err(Close::Code(1011, "cannot read missed events, reconnect"));
                }
            };
            let Some(last) = events.last() else {
                break;
            };
            after = last.cursor;
            for event in events {
                self.write(frames::event(&Delivery::from(event))).await?;
            }
        }
        if let Some(authed) = &mut self.authed {
            authed.next_cursor = authed.next_cursor.max(after.max(until) + 1);
        }
        Ok(())
    }

    async fn on_event(&mut self, delivery: Arc<Delivery>) -> Result<(), Close> {
        let Some(authed) = &self.authed else {
            return Ok(());
        };
        if let LiveEvent::SessionsEnded(ended) = &delivery.event {
            if ended.includes(authed.session_id) {
                return Err(Close::Code(4401, "the session has ended; sign in again"));
            }
            return Ok(());
        }
        let Some(cursor) = delivery.cursor else {
            return self.write(frames::event(&delivery)).await;
        };
        let (user, next) = (authed.user, authed.next_cursor);
        if cursor < next {
            // Already written (replayed, or filled in before).
            return Ok(());
        }
        if cursor > next {
            // Something was published out of order or lost: the log has it
            // and everything before it.
            return self.replay(user, next - 1, cursor).await;
        }
        self.write(frames::event(&delivery)).await?;
        if let Some(authed) = &mut self.authed {
            authed.next_cursor = cursor + 1;
        }
        Ok(())
    }

    async fn refresh(&mut self, data: Value) -> ApiResult<Value> {
        let refresh: Refresh = frames::data("auth.refresh", data)?;
        let (auth, expires_at) = authenticate(&self.state, &refresh.token).await?;
        let Some(authed) = &mut self.authed else {
            return Err(ApiError::unauthorized("say hello first"));
        };
        if auth.user.id != authed.user {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "the token belongs to another account",
            ));
        }
        authed.session_id = auth.session_id;
        authed.token_deadline = deadline_of(expires_at);
        Ok(serde_json::json!({ "token_expires_at": expires_at }))
    }

    /// Writes a text frame; a client that does not take it within the write
    /// timeout, or whose inbox overflows meanwhile, is too slow.
    async fn write(&mut self, text: String) -> Result<(), Close> {
        self.send(Message::Text(text.into())).await
    }

    async fn send(&mut self, message: Message) -> Result<(), Close> {
        let overflow = self.authed.as_ref().map(|a| a.inbox.clone());
        let overflowed = async {
            match &overflow {
                Some(inbox) => inbox.overflow.notified().await,
                None => std::future::pending().await,
            }
        };
        let write_timeout = self.write_timeout();
        tokio::select! {
            written = tokio::time::timeout(write_timeout, self.socket.send(message)) => match written {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Close::Gone),
                Err(_) => Err(SLOW),
            },
            () = overflowed => Err(SLOW),
        }
    }

    /// Sends the close frame (if any), then lets go of everything.
    async fn finish(&mut self, close: Close) {
        if let Close::Code(code, reason) = close {
            if code == 4008 {
                self.state
                    .sockets
                    .slow_consumers
                    .fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(code, reason, "closing live session");
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            // A client that does not read gets the close frame after what is
            // already queued for it, if it reads within the write timeout.
            let write_timeout = self.write_timeout();
            let _ = tokio::time::timeout(write_timeout, self.socket.send(frame)).await;
        }
        if let Some(authed) = self.authed.take() {
            self.state
                .chat
                .live()
                .bus()
                .unsubscribe(authed.user, authed.subscription);
            self.state
                .chat
                .disconnected(authed.user, self.state.clock.now());
            self.state
                .sockets
                .authenticated
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

async fn next_event(authed: &mut Option<Authed>) -> Option<Arc<Delivery>> {
    match authed {
        Some(authed) => authed.events.recv().await,
        None => std::future::pending().await,
    }
}

fn deadline_of(at: DateTime<Utc>) -> Instant {
    let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + left
}
