//! Carrying out the socket's requests. Each request that needs I/O becomes a
//! future the session polls alongside its socket, so a slow request never
//! holds up events or other requests. The work itself is shared with REST
//! (`routes::conversations`, `routes::search`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use domain::error::ErrorCode;
use domain::ids::{ConversationId, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::routes::conversations::{
    self, HistoryParams, ListParams, OpenRequest, ReadRequest, SendRequest,
};
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
        _ => Err(unknown(kind)),
    }
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
    let Value::Object(mut fields) = data else {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "data must be an object",
        ));
    };
    let id = match fields.remove("conversation_id") {
        Some(Value::String(raw)) => conversations::parse_conversation_id(&raw)?,
        _ => {
            return Err(domain::validation::FieldError::new(
                "conversation_id",
                "required",
                "the conversation's id is required",
            )
            .into())
        }
    };
    Ok((id, frames::data(kind, Value::Object(fields))?))
}

fn json(value: &impl Serialize) -> ApiResult<Value> {
    serde_json::to_value(value).map_err(ApiError::internal)
}
