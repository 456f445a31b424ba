//! Carrying out the socket's requests. Each request that needs I/O becomes a
//! future the session polls alongside its socket, so a slow request never
//! holds up events or other requests. The work itself is shared with REST
//! (`routes::conversations`, `routes::notifications`, `routes::orders`,
//! `routes::search`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::error::ErrorCode;
use domain::ids::{ConversationId, OrderId, UserId};
use domain::offer::OfferCommand;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::routes::conversations::{
    self, HistoryParams, ListParams, OpenRequest, ReadRequest, SendRequest,
};
use crate::routes::notifications::{self, NotificationParams, ReadAllRequest};
use crate::routes::orders::{
    self, ActionRequest, CheckoutRequest, OfferRequest, OrderListParams, PayRequest,
};
use crate::routes::reviews;
use crate::routes::search::{self, AutocompleteParams, SearchParams};
use crate::state::AppState;
use crate::ws::frames::{self, Request};

/// A request in progress: resolves to its id and its reply data.
pub type Pending = Pin<Box<dyn Future<Output = (Value, ApiResult<Value>)> + Send>>;

/// The request types handled here (the session handles `hello`, `ping` and
/// `auth.refresh` itself).
pub const KINDS: &[&str] = &[
    "conversation.open",
    "conversation.list",
    "conversation.get",
    "chat.history",
    "chat.send",
    "chat.typing",
    "chat.read",
    "search.autocomplete",
    "search.query",
    "offer.send",
    "offer.list",
    "offer.get",
    "offer.answer",
    "checkout",
    "order.get",
    "order.list",
    "order.pay",
    "order.act",
    "report.file",
    "review.write",
    "review.reply",
    "review.order",
    "notification.list",
    "notification.unread",
    "notification.read",
    "notification.read_all",
    "favourite.add",
    "favourite.remove",
    "favourite.list",
    "saved_search.list",
    "saved_search.create",
    "saved_search.update",
    "saved_search.delete",
];

/// Starts carrying out a request of one of the [`KINDS`] for `user`.
pub fn start(state: Arc<AppState>, user: UserId, request: Request) -> Pending {
    Box::pin(async move {
        let Request { id, kind, data } = request;
        let result = carry_out(&state, user, &kind, data).await;
        (id, result)
    })
}

async fn carry_out(state: &AppState, user: UserId, kind: &str, data: Value) -> ApiResult<Value> {
    match kind {
        "conversation.open" => {
            let request: OpenRequest = frames::data(kind, data)?;
            let (conversation, _) = conversations::open(state, user, request).await?;
            json(&serde_json::json!({ "conversation": conversation }))
        }
        "conversation.list" => {
            let params: ListParams = frames::data(kind, data)?;
            json(&conversations::list(state, user, params).await?)
        }
        "conversation.get" => {
            let (id, _): (_, Empty) = in_conversation(kind, data)?;
            let conversation = conversations::conversation_view(state, user, id).await?;
            json(&serde_json::json!({ "conversation": conversation }))
        }
        "chat.history" => {
            let (id, params): (_, HistoryParams) = in_conversation(kind, data)?;
            json(&conversations::load_history(state, user, id, params).await?)
        }
        "chat.send" => {
            let (id, request): (_, SendRequest) = in_conversation(kind, data)?;
            let sent = conversations::send(state, user, id, request).await?;
            json(&conversations::sent_view(&sent))
        }
        "chat.typing" => {
            let (id, _): (_, Empty) = in_conversation(kind, data)?;
            state.chat.typing(id, user).await?;
            Ok(Value::Object(Default::default()))
        }
        "chat.read" => {
            let (id, request): (_, ReadRequest) = in_conversation(kind, data)?;
            json(&conversations::read(state, user, id, request).await?)
        }
        "search.autocomplete" => {
            let params: AutocompleteParams = frames::data(kind, data)?;
            let items = search::suggest(state, params).await?;
            json(&serde_json::json!({ "items": items }))
        }
        "search.query" => {
            let params: SearchParams = frames::data(kind, data)?;
            json(&search::search(state, params).await?)
        }
        "offer.send" => {
            let (id, request): (_, OfferRequest) = in_conversation(kind, data)?;
            json(&orders::send_offer_in(state, user, id, request).await?)
        }
        "offer.list" => {
            let (id, _): (_, Empty) = in_conversation(kind, data)?;
            let offers = state.orders.offers_in(user, id).await?;
            let items: Vec<_> = offers.iter().map(orders::offer_view).collect();
            json(&serde_json::json!({ "items": items }))
        }
        "offer.get" => {
            let request: OfferRef = frames::data(kind, data)?;
            let id = orders::parse_offer_id(&request.offer_id)?;
            json(&orders::offer_view(&state.orders.offer(user, id).await?))
        }
        "offer.answer" => {
            let request: OfferAnswer = frames::data(kind, data)?;
            let id = orders::parse_offer_id(&request.offer_id)?;
            let command = match request.answer.as_str() {
                "accept" => OfferCommand::Accept,
                "decline" => OfferCommand::Decline,
                "withdraw" => OfferCommand::Withdraw,
                _ => {
                    return Err(domain::validation::FieldError::new(
                        "answer",
                        "invalid",
                        "accept, decline or withdraw",
                    )
                    .into())
                }
            };
            json(&orders::answer_offer(state, user, id, command).await?)
        }
        "checkout" => {
            let Value::Object(mut fields) = data else {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    "data must be an object",
                ));
            };
            let key = match fields.remove("idempotency_key") {
                Some(Value::String(key)) => key,
                _ => {
                    return Err(domain::validation::FieldError::new(
                        "idempotency_key",
                        "required",
                        "a key unique to this checkout is required",
                    )
                    .into())
                }
            };
            let request: CheckoutRequest = frames::data(kind, Value::Object(fields))?;
            let done = orders::place(state, user, &key, request).await?;
            let mut view = json(&orders::checkout_view(&done))?;
            if let Value::Object(fields) = &mut view {
                fields.insert("replayed".into(), Value::Bool(done.replayed));
            }
            Ok(view)
        }
        "order.get" => {
            let (id, _): (_, Empty) = in_order(kind, data)?;
            json(&orders::order_view(
                &state.orders.order(user, false, id).await?,
            ))
        }
        "order.list" => {
            let params: OrderListParams = frames::data(kind, data)?;
            json(&orders::list(state, user, params).await?)
        }
        "order.pay" => {
            let (id, request): (_, PayRequest) = in_order(kind, data)?;
            json(&orders::pay(state, user, id, request).await?)
        }
        "order.act" => {
            let (id, action): (_, ActionRequest) = in_order(kind, data)?;
            // Admin actions go through the admin interfaces.
            json(&orders::act(state, user, id, action).await?)
        }
        "report.file" => {
            let request: crate::admin::sources::ReportRequest = frames::data(kind, data)?;
            let reporter = state
                .accounts
                .user_by_id(user)
                .await?
                .ok_or_else(|| crate::error::ApiError::unauthorized("the account is gone"))?;
            json(&crate::admin::sources::file_report(state, &reporter, request).await?)
        }
        "review.write" => {
            let (id, request): (_, reviews::ReviewRequest) = in_order(kind, data)?;
            json(&reviews::write(state, user, id, request).await?)
        }
        "review.reply" => {
            let (id, request): (_, reviews::ReplyRequest) = in_order(kind, data)?;
            json(&reviews::reply(state, user, id, request).await?)
        }
        "review.order" => {
            let (id, _): (_, Empty) = in_order(kind, data)?;
            json(&reviews::of_order(state, user, id).await?)
        }
        "notification.list" => {
            let params: NotificationParams = frames::data(kind, data)?;
            json(&notifications::list(state, user, params).await?)
        }
        "notification.unread" => {
            let _: Empty = frames::data(kind, data)?;
            json(&notifications::unread(state, user).await?)
        }
        "notification.read" => {
            let request: NotificationRef = frames::data(kind, data)?;
            json(&notifications::mark_read(state, user, request.cursor).await?)
        }
        "notification.read_all" => {
            let request: ReadAllRequest = frames::data(kind, data)?;
            json(&notifications::mark_all_read(state, user, request).await?)
        }
        kind if crate::routes::saved::SOCKET_KINDS.contains(&kind) => {
            crate::routes::saved::socket_request(state, user, kind, data).await
        }
        _ => Err(unknown(kind)),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationRef {
    cursor: i64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferRef {
    offer_id: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferAnswer {
    offer_id: String,
    /// `accept`, `decline` or `withdraw`.
    answer: String,
}

pub fn unknown(kind: &str) -> ApiError {
    let shown: String = kind.chars().take(40).collect();
    ApiError::new(
        ErrorCode::BadRequest,
        format!("unknown request type {shown:?}"),
    )
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// Splits `conversation_id` off a request's data and reads the rest as `T`.
fn in_conversation<T: DeserializeOwned>(kind: &str, data: Value) -> ApiResult<(ConversationId, T)> {
    split_id(
        kind,
        data,
        "conversation_id",
        conversations::parse_conversation_id,
    )
}

/// Splits `order_id` off a request's data and reads the rest as `T`.
fn in_order<T: DeserializeOwned>(kind: &str, data: Value) -> ApiResult<(OrderId, T)> {
    split_id(kind, data, "order_id", orders::parse_order_id)
}

fn split_id<I, T: DeserializeOwned>(
    kind: &str,
    data: Value,
    field: &'static str,
    parse: fn(&str) -> ApiResult<I>,
) -> ApiResult<(I, T)> {
    let Value::Object(mut fields) = data else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "data must be an object",
        ));
    };
    let id = match fields.remove(field) {
        Some(Value::String(raw)) => parse(&raw)?,
        _ => {
            return Err(domain::validation::FieldError::new(
                field,
                "required",
                format!("{field} is required"),
            )
            .into())
        }
    };
    Ok((id, frames::data(kind, Value::Object(fields))?))
}

fn json(value: &impl Serialize) -> ApiResult<Value> {
    serde_json::to_value(value).map_err(ApiError::internal)
}
