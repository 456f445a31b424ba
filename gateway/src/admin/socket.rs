//! The admin socket at `/admin/ws` (`docs/admin.md`).
//!
//! The upgrade request carries the admin's access token (an
//! `Authorization: Bearer` header, or `?token=` where a browser cannot set
//! headers): 401 without a valid one, 403 for anyone who is not an admin,
//! before any WebSocket is opened. `?cursor=N` resumes after feed event N.
//!
//! One task per connection writes, in feed order with no gaps and no
//! repeats: first `admin.ready` (the feed head and the statistics), then
//! the feed events after the client's cursor, then each new one as it is
//! stored. It subscribes to the feed before reading the head, so nothing
//! falls between the two; an event older than the next expected number is
//! dropped, a newer one is preceded by what is missing, read from the
//! store (also when the in-process channel lagged). Statistics are pushed
//! as `admin.stats` when they change. Requests use the same frames as the
//! user socket and call the same operations as REST.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use cluster::{Subscriber, SubscriptionId};
use domain::account::User;
use domain::error::ErrorCode;
use domain::ids::SessionId;
use domain::live::{Delivery, LiveEvent};
use domain::moderation::FeedRecord;
use domain::validation::FieldError;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use uuid::Uuid;

use crate::admin::admin_only;
use crate::admin::ops::{self, feed_event_view, StatsView};
use crate::error::{ApiError, ApiResult, Query};
use crate::extract::authenticate;
use crate::state::AppState;
use crate::ws::frames::{self, Request};
use crate::ws::{Beat, Heartbeat, HARD_FRAME_LIMIT};

/// Feed events read from the store per page when catching up.
const REPLAY_PAGE: u32 = 500;
/// Bad frames tolerated per connection before it is closed.
const MAX_BAD_FRAMES: u32 = 20;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin/ws", get(upgrade))
}

/// The query string, read only after the token was checked, so that
/// whoever is not an admin learns nothing else.
type Params = std::collections::HashMap<String, String>;

async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match accept(&state, &headers, params).await {
        Ok(accepted) => match upgrade {
            Ok(upgrade) => upgrade
                .max_message_size(HARD_FRAME_LIMIT)
                .max_frame_size(HARD_FRAME_LIMIT)
                .on_upgrade(move |socket| run(socket, state, accepted)),
            Err(_) => ApiError::new(
                ErrorCode::BadRequest,
                "this is a WebSocket endpoint: connect with an upgrade request",
            )
            .into_response(),
        },
        Err(error) => error.into_response(),
    }
}

struct Accepted {
    admin: User,
    session_id: SessionId,
    expires_at: DateTime<Utc>,
    cursor: Option<i64>,
}

/// Checks the token, the role and the cursor before the upgrade.
async fn accept(state: &AppState, headers: &HeaderMap, mut params: Params) -> ApiResult<Accepted> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(|token| token.trim().to_string());
    let token = header
        .or_else(|| params.remove("token"))
        .ok_or_else(|| ApiError::unauthorized("sign in first: missing bearer token"))?;
    let (auth, expires_at) = authenticate(state, &token).await?;
    let session_id = auth.session_id;
    let admin = admin_only(auth.user)?.0;
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "cursor") {
        return Err(FieldError::new(
            unknown.as_str(),
            "unknown",
            "the admin socket takes only token and cursor",
        )
        .into());
    }
    let cursor = params
        .get("cursor")
        .map(|raw| {
            raw.parse::<i64>().map_err(|_| {
                ApiError::from(FieldError::new("cursor", "invalid", "must be an integer"))
            })
        })
        .transpose()?;
    if let Some(cursor) = cursor {
        let head = state.feed.store().feed_head().await?;
        if cursor < 0 || cursor > head {
            return Err(ApiError::new(
                ErrorCode::CursorExpired,
                "that cursor is not in the feed; connect without one",
            ));
        }
    }
    Ok(Accepted {
        admin,
        session_id,
        expires_at,
        cursor,
    })
}

/// The admin's own login sessions ending (sign-out, password change,
/// their account suspended) closes the socket.
struct Ended {
    tx: mpsc::Sender<LiveEvent>,
}

impl Subscriber for Ended {
    fn deliver(&self, delivery: &Arc<Delivery>) -> bool {
        if let LiveEvent::SessionsEnded(_) = delivery.event {
            // Full means one is already waiting: the socket closes anyway.
            let _ = self.tx.try_send(delivery.event.clone());
        }
        !self.tx.is_closed()
    }
}

type Pending = Pin<Box<dyn Future<Output = (Value, ApiResult<Value>)> + Send>>;

enum Close {
    Gone,
    Code(u16, &'static str),
}

struct Session {
    state: AppState,
    socket: WebSocket,
    admin: User,
    session_id: SessionId,
    token_deadline: Instant,
    feed: broadcast::Receiver<Arc<FeedRecord>>,
    ended: mpsc::Receiver<LiveEvent>,
    subscription: SubscriptionId,
    /// The number of the next feed event to write.
    next_seq: i64,
    pending: FuturesUnordered<Pending>,
    stats: Option<StatsView>,
    bad_frames: u32,
    heartbeat: Heartbeat,
}

#[derive(Serialize)]
struct EventFrame<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<i64>,
    data: T,
}

fn event_frame<T: Serialize>(event: &str, cursor: Option<i64>, data: T) -> String {
    serde_json::to_string(&EventFrame {
        kind: "event",
        event,
        cursor,
        data,
    })
    .unwrap_or_else(|_| String::from("{}"))
}

fn feed_frame(record: &FeedRecord) -> String {
    let view = feed_event_view(record);
    event_frame(
        view.event,
        Some(view.seq),
        serde_json::json!({ "at": view.at, "item": view.data }),
    )
}

async fn run(socket: WebSocket, state: AppState, accepted: Accepted) {
    // Subscribe first, then read the head: whatever is stored after the
    // head arrives through the channel.
    let feed = state.feed.subscribe();
    let (tx, ended) = mpsc::channel(4);
    let bus = state.chat.live().bus().clone();
    let subscription = bus.subscribe(accepted.admin.id, Arc::new(Ended { tx }));
    let left = (accepted.expires_at - Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let heartbeat_secs = state.settings.realtime.heartbeat_secs.max(1);
    let token_deadline = Instant::now() + left;
    let mut session = Session {
        token_deadline,
        state,
        socket,
        admin: accepted.admin,
        session_id: accepted.session_id,
        feed,
        ended,
        subscription,
        next_seq: 1,
        pending: FuturesUnordered::new(),
        stats: None,
        bad_frames: 0,
        heartbeat: Heartbeat::new(Duration::from_secs(heartbeat_secs)),
    };
    tracing::info!(admin_id = %session.admin.id, "admin socket opened");
    let close = match session.start(accepted.cursor).await {
        Ok(()) => session.serve().await,
        Err(close) => Err(close),
    };
    session.finish(close).await;
}

impl Session {
    async fn start(&mut self, cursor: Option<i64>) -> Result<(), Close> {
        let head = match self.state.feed.store().feed_head().await {
            Ok(head) => head,
            Err(error) => {
                tracing::error!(%error, "reading the feed head failed");
                return Err(Close::Code(1011, "cannot read the feed, reconnect"));
            }
        };
        let stats = ops::stats(&self.state).await.ok();
        let ready = event_frame(
            "admin.ready",
            None,
            serde_json::json!({
                "admin_id": self.admin.id,
                "cursor": head,
                "heartbeat_secs": self.state.settings.realtime.heartbeat_secs,
                "stats": stats,
            }),
        );
        self.stats = stats;
        self.write(ready).await?;
        match cursor {
            Some(after) => {
                self.next_seq = after + 1;
                self.catch_up(head).await
            }
            None => {
                self.next_seq = head + 1;
                Ok(())
            }
        }
    }

    async fn serve(&mut self) -> Result<(), Close> {
        let mut closing = self.state.closing.subscribe();
        let interval =
            Duration::from_millis(self.state.settings.moderation.stats_interval_ms.max(100));
        let mut stats_tick = tokio::time::interval(interval);
        stats_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let timer = tokio::time::sleep_until(self.next_deadline());
        tokio::pin!(timer);
        loop {
            tokio::select! {
                biased;
                _ = closing.changed() => return Err(Close::Code(1001, "the server is shutting down")),
                Some(event) = self.ended.recv() => {
                    if let LiveEvent::SessionsEnded(ended) = event {
                        if ended.includes(self.session_id) {
                            return Err(Close::Code(4401, "the session has ended; sign in again"));
                        }
                    }
                }
                frame = self.socket.next() => match frame {
                    Some(Ok(message)) => {
                        self.heartbeat.heard();
                        self.on_message(message).await?;
                    }
                    Some(Err(_)) | None => return Err(Close::Gone),
                },
                Some((id, result)) = self.pending.next(), if !self.pending.is_empty() => {
                    self.write(frames::reply(&id, result)).await?;
                }
                received = self.feed.recv() => match received {
                    Ok(record) => self.on_feed(&record).await?,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let head = self.head().await?;
                        self.catch_up(head).await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(Close::Code(1011, "the feed stopped"));
                    }
                },
                _ = stats_tick.tick() => self.push_stats().await?,
                () = &mut timer => {
                    self.on_timer().await?;
                    timer.as_mut().reset(self.next_deadline());
                }
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let beat = self.heartbeat.deadline();
        beat.min(self.token_deadline)
    }

    async fn on_timer(&mut self) -> Result<(), Close> {
        let now = Instant::now();
        if now >= self.token_deadline {
            return Err(Close::Code(
                4401,
                "the access token expired; reconnect with a new one",
            ));
        }
        match self.heartbeat.check(now) {
            Beat::Dead => Err(Close::Code(4408, "no answer to heartbeats")),
            Beat::Ping => self.send(Message::Ping(Default::default())).await,
            Beat::Wait => Ok(()),
        }
    }

    async fn head(&mut self) -> Result<i64, Close> {
        let store = self.state.feed.store().clone();
        store.feed_head().await.map_err(|error| {
            tracing::error!(%error, "reading the feed head failed");
            Close::Code(1011, "cannot read the feed, reconnect")
        })
    }

    /// Writes the stored feed events from `next_seq` up to `until`.
    async fn catch_up(&mut self, until: i64) -> Result<(), Close> {
        while self.next_seq <= until {
            let limit = u32::try_from(until - self.next_seq + 1)
                .unwrap_or(REPLAY_PAGE)
                .min(REPLAY_PAGE);
            let records = match self
                .state
                .feed
                .store()
                .feed_after(self.next_seq - 1, limit)
                .await
            {
                Ok(records) => records,
                Err(error) => {
                    tracing::error!(%error, "reading missed feed events failed");
                    return Err(Close::Code(1011, "cannot read missed events, reconnect"));
                }
            };
            if records.is_empty() {
                break;
            }
            for record in records {
                if record.seq >= self.next_seq {
                    self.write(feed_frame(&record)).await?;
                    self.next_seq = record.seq + 1;
                }
            }
        }
        Ok(())
    }

    async fn on_feed(&mut self, record: &FeedRecord) -> Result<(), Close> {
        if record.seq < self.next_seq {
            return Ok(());
        }
        if record.seq > self.next_seq {
            // Published out of order: the store has everything before it.
            self.catch_up(record.seq - 1).await?;
        }
        if record.seq == self.next_seq {
            self.write(feed_frame(record)).await?;
            self.next_seq = record.seq + 1;
        }
        Ok(())
    }

    async fn push_stats(&mut self) -> Result<(), Close> {
        let stats = match ops::stats(&self.state).await {
            Ok(stats) => stats,
            Err(error) => {
                tracing::warn!(%error, "computing admin statistics failed");
                return Ok(());
            }
        };
        if self.stats.as_ref() == Some(&stats) {
            return Ok(());
        }
        let frame = event_frame("admin.stats", None, &stats);
        self.stats = Some(stats);
        self.write(frame).await
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Close> {
        match message {
            Message::Text(text) => {
                if text.len() > self.state.settings.realtime.max_frame_bytes {
                    let error = ApiError::new(ErrorCode::PayloadTooLarge, "the frame is too large");
                    return self.refuse(Value::Null, error).await;
                }
                match frames::parse(text.as_str()) {
                    Ok(request) => self.on_request(request).await,
                    Err(bad) => self.refuse(bad.id, bad.error).await,
                }
            }
            Message::Binary(_) => {
                let error = ApiError::new(ErrorCode::BadRequest, "send JSON text frames");
                self.refuse(Value::Null, error).await
            }
            Message::Ping(_) | Message::Pong(_) => Ok(()),
            Message::Close(_) => Err(Close::Gone),
        }
    }

    async fn refuse(&mut self, id: Value, error: ApiError) -> Result<(), Close> {
        self.bad_frames += 1;
        if self.bad_frames > MAX_BAD_FRAMES {
            return Err(Close::Code(4400, "too many bad frames"));
        }
        self.write(frames::reply(&id, Err(error))).await
    }

    async fn on_request(&mut self, request: Request) -> Result<(), Close> {
        if request.kind == "ping" {
            return self
                .write(frames::reply(
                    &request.id,
                    Ok(Value::Object(Default::default())),
                ))
                .await;
        }
        if !KINDS.contains(&request.kind.as_str()) {
            let error = ApiError::new(
                ErrorCode::BadRequest,
                format!("unknown request type {:?}", request.kind),
            );
            return self.refuse(request.id, error).await;
        }
        if self.pending.len() >= self.state.settings.realtime.max_in_flight {
            let error = ApiError::new(
                ErrorCode::RateLimited,
                "too many requests in progress: wait for replies",
            );
            return self.write(frames::reply(&request.id, Err(error))).await;
        }
        let state = self.state.clone();
        let admin = self.admin.id;
        self.pending.push(Box::pin(async move {
            // The account is read again for every request: an admin who
            // lost the role or the account since connecting is refused.
            let result = match still_admin(&state, admin).await {
                Ok(admin) => handle(&state, &admin, &request.kind, request.data).await,
                Err(error) => Err(error),
            };
            (request.id, result)
        }));
        Ok(())
    }

    async fn write(&mut self, text: String) -> Result<(), Close> {
        self.send(Message::Text(text.into())).await
    }

    async fn send(&mut self, message: Message) -> Result<(), Close> {
        let timeout = Duration::from_secs(self.state.settings.realtime.write_timeout_secs.max(1));
        match tokio::time::timeout(timeout, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Close::Gone),
            Err(_) => Err(Close::Code(4008, "too slow: writes timed out")),
        }
    }

    async fn finish(&mut self, close: Result<(), Close>) {
        if let Err(Close::Code(code, reason)) = close {
            let frame = Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            let timeout =
                Duration::from_secs(self.state.settings.realtime.write_timeout_secs.max(1));
            let _ = tokio::time::timeout(timeout, self.socket.send(frame)).await;
        }
        self.state
            .chat
            .live()
            .bus()
            .unsubscribe(self.admin.id, self.subscription);
        tracing::info!(admin_id = %self.admin.id, "admin socket closed");
    }
}

/// The admin as they are now.
async fn still_admin(state: &AppState, id: domain::ids::UserId) -> ApiResult<User> {
    let user = state
        .accounts
        .user_by_id(id)
        .await?
        .filter(User::can_sign_in)
        .ok_or_else(|| ApiError::unauthorized("the account can no longer sign in"))?;
    Ok(admin_only(user)?.0)
}

/// The request types of the admin socket.
pub const KINDS: &[&str] = &[
    "items.list",
    "reports.list",
    "disputes.list",
    "users.list",
    "gigs.list",
    "orders.list",
    "audit.list",
    "feed.list",
    "stats.get",
    "item.claim",
    "item.release",
    "report.dismiss",
    "item.dismiss",
    "user.suspend",
    "user.reinstate",
    "user.warn",
    "gig.remove",
    "gig.restore",
    "order.resolve",
    "order.cancel",
];

/// Takes the id field out of a request's data; the rest is the body the
/// REST route takes.
fn take_id(kind: &str, data: &mut Value, key: &str) -> ApiResult<Uuid> {
    let raw = data
        .as_object_mut()
        .and_then(|object| object.remove(key))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ValidationFailed,
                format!("the data of {kind} needs {key}"),
            )
        })?;
    raw.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::not_found(format!("no such {}", key.trim_end_matches("_id"))))
}

fn to_value<T: Serialize>(value: T) -> ApiResult<Value> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

async fn handle(state: &AppState, admin: &User, kind: &str, mut data: Value) -> ApiResult<Value> {
    match kind {
        "items.list" => to_value(ops::items(state, frames::data(kind, data)?).await?),
        "reports.list" => to_value(ops::reports(state, frames::data(kind, data)?).await?),
        "disputes.list" => to_value(ops::disputes(state, frames::data(kind, data)?).await?),
        "users.list" => to_value(ops::users(state, frames::data(kind, data)?).await?),
        "gigs.list" => to_value(ops::gigs(state, frames::data(kind, data)?).await?),
        "orders.list" => to_value(ops::orders(state, frames::data(kind, data)?).await?),
        "audit.list" => to_value(ops::audit(state, frames::data(kind, data)?).await?),
        "feed.list" => to_value(ops::feed(state, frames::data(kind, data)?).await?),
        "stats.get" => to_value(ops::stats(state).await?),
        "item.claim" => {
            let id = take_id(kind, &mut data, "item_id")?;
            to_value(ops::claim(state, admin, id).await?)
        }
        "item.release" => {
            let id = take_id(kind, &mut data, "item_id")?;
            to_value(ops::release(state, admin, id).await?)
        }
        "item.dismiss" => {
            let id = take_id(kind, &mut data, "item_id")?;
            to_value(ops::dismiss(state, admin, id, frames::data(kind, data)?).await?)
        }
        "report.dismiss" => {
            let id = take_id(kind, &mut data, "item_id")?;
            to_value(ops::dismiss_report(state, admin, id, frames::data(kind, data)?).await?)
        }
        "user.suspend" | "user.reinstate" | "user.warn" => {
            let id = take_id(kind, &mut data, "user_id")?;
            let request = frames::data(kind, data)?;
            to_value(match kind {
                "user.suspend" => ops::suspend(state, admin, id, request).await?,
                "user.reinstate" => ops::reinstate(state, admin, id, request).await?,
                _ => ops::warn(state, admin, id, request).await?,
            })
        }
        "gig.remove" | "gig.restore" => {
            let id = take_id(kind, &mut data, "gig_id")?;
            let request = frames::data(kind, data)?;
            to_value(match kind {
                "gig.remove" => ops::remove_gig(state, admin, id, request).await?,
                _ => ops::restore_gig(state, admin, id, request).await?,
            })
        }
        "order.resolve" => {
            let id = take_id(kind, &mut data, "order_id")?;
            to_value(ops::resolve_dispute(state, admin, id, frames::data(kind, data)?).await?)
        }
        "order.cancel" => {
            let id = take_id(kind, &mut data, "order_id")?;
            to_value(ops::cancel_order(state, admin, id, frames::data(kind, data)?).await?)
        }
        _ => Err(ApiError::new(ErrorCode::BadRequest, "unknown request type")),
    }
}
