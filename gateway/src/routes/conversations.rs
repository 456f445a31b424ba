//! `/conversations`: chat over REST, the fallback for clients without the
//! live socket. Every action goes through the same chat service (and so the
//! same conversation actors) as the socket, so REST and socket users see
//! each other live. The operations here are shared with the socket's
//! request handlers in `ws`.

use actors::conversation::{ChatFailure, Sent};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use domain::chat::{
    Attachment, ChatError, Conversation, ConversationSummary, Message, MessageDraft, ReadState,
    Subject,
};
use domain::error::ErrorCode;
use domain::ids::{ConversationId, GigId, UserId};
use domain::live::{LiveEvent, StoredEvent};
use domain::ports::ConversationPage;
use domain::validation::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody, Json, Query};
use crate::extract::AuthUser;
use crate::state::AppState;

pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    use axum::extract::DefaultBodyLimit;
    use utoipa_axum::router::UtoipaMethodRouterExt as _;
    OpenApiRouter::new()
        .routes(routes!(list_conversations, open_conversation))
        .routes(routes!(get_conversation))
        .routes(routes!(history, send_message))
        .routes(routes!(mark_read))
        .routes(routes!(typing))
        .routes(routes!(upload_attachment).layer(DefaultBodyLimit::max(max_upload_bytes)))
        .routes(routes!(download_attachment))
        .routes(routes!(events))
}

// ------------------------------------------------------------------ views

#[derive(Debug, Serialize, ToSchema)]
pub struct AttachmentView {
    pub key: String,
    pub name: String,
    pub content_type: String,
    pub bytes: u64,
    /// Where participants download it (with their bearer token).
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// 1, 2, 3, ... per conversation.
    pub seq: i64,
    pub sender_id: Uuid,
    pub client_id: String,
    pub body: String,
    pub attachments: Vec<AttachmentView>,
    pub sent_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectView {
    /// `gig`.
    pub kind: &'static str,
    pub id: Uuid,
}

/// A conversation as every participant sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationCoreView {
    pub id: Uuid,
    pub participants: [Uuid; 2],
    pub subject: Option<SubjectView>,
    pub started_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_seq: i64,
    pub last_message_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantView {
    pub id: Uuid,
    pub username: String,
    pub display_name: Option<String>,
    pub online: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
}

/// A conversation as the signed-in user sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationView {
    #[serde(flatten)]
    pub core: ConversationCoreView,
    /// Messages past the viewer's read pointer.
    pub unread: i64,
    pub last_read_seq: i64,
    /// How far the other participant has read (read receipts).
    pub other_read_seq: i64,
    pub other: ParticipantView,
    pub last_message: Option<MessageView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadStateView {
    pub user_id: Uuid,
    pub last_read_seq: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPageView {
    pub items: Vec<ConversationView>,
    /// Pass as `before` for the next page; null on the last one.
    pub next: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenedView {
    pub conversation: ConversationView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryView {
    /// Newest first.
    pub items: Vec<MessageView>,
    pub read: Vec<ReadStateView>,
    /// Pass as `before_seq` for older messages; null when there are none.
    pub next_before_seq: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SentView {
    pub message: MessageView,
    /// The message had been stored by an earlier try with this `client_id`.
    pub duplicate: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadView {
    pub last_read_seq: i64,
}

/// A durable live event, as replayed over REST.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub cursor: i64,
    /// `conversation.started`, `chat.message`, `chat.read`, ...
    pub event: &'static str,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPageView {
    pub items: Vec<EventView>,
    /// The user's newest cursor.
    pub head: i64,
}

pub fn attachment_view(attachment: &Attachment, conversation: ConversationId) -> AttachmentView {
    let file = attachment
        .key
        .strip_prefix(&Attachment::prefix(conversation))
        .unwrap_or(&attachment.key);
    AttachmentView {
        key: attachment.key.clone(),
        name: attachment.name.clone(),
        content_type: attachment.content_type.clone(),
        bytes: attachment.bytes,
        url: format!("/api/v1/conversations/{conversation}/attachments/{file}"),
    }
}

pub fn message_view(message: &Message) -> MessageView {
    MessageView {
        id: message.id.as_uuid(),
        conversation_id: message.conversation_id.as_uuid(),
        seq: message.seq,
        sender_id: message.sender.as_uuid(),
        client_id: message.client_id.as_str().to_string(),
        body: message.body.clone(),
        attachments: message
            .attachments
            .iter()
            .map(|a| attachment_view(a, message.conversation_id))
            .collect(),
        sent_at: message.sent_at,
    }
}

pub fn core_view(conversation: &Conversation) -> ConversationCoreView {
    ConversationCoreView {
        id: conversation.id.as_uuid(),
        participants: conversation.participants.map(|p| p.as_uuid()),
        subject: conversation.subject.map(|subject| match subject {
            Subject::Gig(id) => SubjectView {
                kind: "gig",
                id: id.as_uuid(),
            },
        }),
        started_by: conversation.started_by.as_uuid(),
        created_at: conversation.created_at,
        last_seq: conversation.last_seq,
        last_message_at: conversation.last_message_at,
    }
}

fn read_view(state: &ReadState) -> ReadStateView {
    ReadStateView {
        user_id: state.user_id.as_uuid(),
        last_read_seq: state.last_read_seq,
    }
}

/// The JSON of a live event's `data`, the same over the socket and REST.
pub fn event_data(event: &LiveEvent) -> serde_json::Value {
    let value = match event {
        LiveEvent::ConversationStarted(conversation) => {
            serde_json::to_value(core_view(conversation))
        }
        LiveEvent::ChatMessage(message) => serde_json::to_value(message_view(message)),
        LiveEvent::ChatRead {
            conversation_id,
            user_id,
            last_read_seq,
        } => Ok(serde_json::json!({
            "conversation_id": conversation_id,
            "user_id": user_id,
            "last_read_seq": last_read_seq,
        })),
        LiveEvent::Typing {
            conversation_id,
            user_id,
        } => Ok(serde_json::json!({
            "conversation_id": conversation_id,
            "user_id": user_id,
        })),
        LiveEvent::Presence {
            user_id,
            online,
            last_seen_at,
        } => Ok(serde_json::json!({
            "user_id": user_id,
            "online": online,
            "last_seen_at": last_seen_at,
        })),
        LiveEvent::OrderUpdated { change, order } => Ok(serde_json::json!({
            "change": change.as_str(),
            "order": crate::routes::orders::order_view(order),
        })),
        LiveEvent::OfferUpdated(offer) => {
            serde_json::to_value(crate::routes::orders::offer_view(offer))
        }
        LiveEvent::Notification(notification) => serde_json::to_value(notification),
        LiveEvent::NotificationsRead {
            cursors,
            through,
            unread,
        } => Ok(serde_json::json!({
            "cursors": cursors,
            "through": through,
            "unread": unread,
        })),
        // Acted on by the session itself, never sent.
        LiveEvent::SessionsEnded(_) => Ok(serde_json::Value::Null),
    };
    // The views are plain data: serialising them cannot fail.
    value.unwrap_or(serde_json::Value::Null)
}

impl From<ChatFailure> for ApiError {
    fn from(failure: ChatFailure) -> Self {
        match failure {
            ChatFailure::Rule(ChatError::NotFound) => ApiError::not_found("no such conversation"),
            ChatFailure::Rule(ChatError::WithSelf) => FieldError::new(
                "user_id",
                "invalid",
                "you cannot start a conversation with yourself",
            )
            .into(),
            ChatFailure::Rule(ChatError::RecipientUnavailable) => {
                ApiError::not_found("no such user")
            }
            ChatFailure::Rule(ChatError::Invalid(errors)) => errors.into(),
            ChatFailure::Store(error) => error.into(),
            ChatFailure::Unavailable => ApiError::new(
                ErrorCode::Unavailable,
                "chat is unavailable for a moment, try again",
            ),
        }
    }
}

// ------------------------------------------------------------ operations
//
// Shared by the REST handlers below and the socket's requests.

/// Views of conversation summaries for `viewer`, with the other
/// participants' names and presence.
pub async fn conversation_views(
    state: &AppState,
    viewer: UserId,
    summaries: Vec<ConversationSummary>,
) -> ApiResult<Vec<ConversationView>> {
    let others: Vec<UserId> = summaries
        .iter()
        .map(|s| s.conversation.other(viewer))
        .collect();
    let presence = state.chat.presence_of(&others).await?;
    let mut views = Vec::with_capacity(summaries.len());
    for (summary, (other, online, last_seen_at)) in summaries.into_iter().zip(presence) {
        let user = state.accounts.user_by_id(other).await?;
        let (username, display_name) = match user {
            Some(user) if user.deleted_at.is_none() => {
                (user.username.as_str().to_string(), user.display_name)
            }
            Some(user) => (user.username.as_str().to_string(), None),
            None => (String::new(), None),
        };
        views.push(ConversationView {
            unread: summary.unread(),
            last_read_seq: summary.last_read_seq,
            other_read_seq: summary.other_read_seq,
            other: ParticipantView {
                id: other.as_uuid(),
                username,
                display_name,
                online,
                last_seen_at: if online { None } else { last_seen_at },
            },
            last_message: summary.last_message.as_ref().map(message_view),
            core: core_view(&summary.conversation),
        });
    }
    Ok(views)
}

pub async fn conversation_view(
    state: &AppState,
    viewer: UserId,
    id: ConversationId,
) -> ApiResult<ConversationView> {
    let summary = state.chat.summary(id, viewer).await?;
    conversation_views(state, viewer, vec![summary])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("a conversation view went missing"))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenRequest {
    /// Who to talk to: `user_id` or `username`.
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    /// What about (optional).
    pub gig_id: Option<Uuid>,
}

/// Finds or starts a conversation; `true` when started now.
pub async fn open(
    state: &AppState,
    user: UserId,
    request: OpenRequest,
) -> ApiResult<(ConversationView, bool)> {
    let with = match (request.user_id, request.username.as_deref()) {
        (Some(id), None) => UserId::from_uuid(id),
        (None, Some(name)) => {
            let username = domain::account::Username::parse(name)
                .map_err(|_| ApiError::not_found("no such user"))?;
            state
                .accounts
                .user_by_username(&username)
                .await?
                .ok_or_else(|| ApiError::not_found("no such user"))?
                .id
        }
        _ => {
            return Err(FieldError::new(
                "user_id",
                "required",
                "give exactly one of user_id and username",
            )
            .into())
        }
    };
    let subject = match request.gig_id {
        None => None,
        Some(id) => {
            let id = GigId::from_uuid(id);
            let gig = state.gigs.gig(id).await?;
            // Only gigs anyone can see can be talked about.
            if !gig.is_some_and(|g| g.is_public()) {
                return Err(FieldError::new("gig_id", "not_found", "no such gig").into());
            }
            Some(Subject::Gig(id))
        }
    };
    let now = state.clock.now();
    let (conversation, created) = state.chat.open(user, with, subject, now).await?;
    Ok((
        conversation_view(state, user, conversation.id).await?,
        created,
    ))
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `next` of the previous page.
    pub before: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<u32>,
}

pub async fn list(
    state: &AppState,
    user: UserId,
    params: ListParams,
) -> ApiResult<ConversationPageView> {
    let limit = bounded("limit", params.limit, 20, 100)?;
    let before = match params.before.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(parse_page_key(raw)?),
    };
    let summaries = state
        .chat
        .list(user, ConversationPage { before, limit })
        .await?;
    let next = (summaries.len() == limit as usize)
        .then(|| summaries.last().map(|s| page_key(&s.conversation)))
        .flatten();
    Ok(ConversationPageView {
        items: conversation_views(state, user, summaries).await?,
        next,
    })
}

fn page_key(conversation: &Conversation) -> String {
    let at = conversation
        .last_message_at
        .unwrap_or(conversation.created_at);
    format!("{}_{}", at.timestamp_micros(), conversation.id)
}

fn parse_page_key(raw: &str) -> ApiResult<(DateTime<Utc>, ConversationId)> {
    let invalid = || ApiError::from(FieldError::new("before", "invalid", "not a page key"));
    let (micros, id) = raw.split_once('_').ok_or_else(invalid)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(invalid)?;
    Ok((at, id.parse().map_err(|_| invalid())?))
}

pub(crate) fn bounded(field: &str, value: Option<u32>, default: u32, max: u32) -> ApiResult<u32> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => {
            Err(FieldError::new(field, "out_of_range", format!("must be 1 to {max}")).into())
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Only messages with a lower `seq` (older ones).
    pub before_seq: Option<i64>,
    /// 1 to 100, default 50.
    pub limit: Option<u32>,
}

pub async fn load_history(
    state: &AppState,
    user: UserId,
    id: ConversationId,
    params: HistoryParams,
) -> ApiResult<HistoryView> {
    let limit = bounded("limit", params.limit, 50, 100)?;
    let (messages, read) = state
        .chat
        .history(id, user, params.before_seq, limit)
        .await?;
    let next_before_seq = messages
        .last()
        .filter(|m| messages.len() == limit as usize && m.seq > 1)
        .map(|m| m.seq);
    Ok(HistoryView {
        items: messages.iter().map(message_view).collect(),
        read: read.iter().map(read_view).collect(),
        next_before_seq,
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The client's own id for this message (1 to 64 of `A-Za-z0-9-_.:`);
    /// sending again with it is a retry.
    pub client_id: String,
    #[serde(default)]
    pub body: String,
    /// Keys returned by the attachment upload.
    #[serde(default)]
    pub attachments: Vec<String>,
}

pub async fn send(
    state: &AppState,
    user: UserId,
    id: ConversationId,
    request: SendRequest,
) -> ApiResult<Sent> {
    if request.attachments.len() > domain::chat::MAX_ATTACHMENTS {
        return Err(FieldError::new(
            "attachments",
            "too_many",
            format!("at most {} attachments", domain::chat::MAX_ATTACHMENTS),
        )
        .into());
    }
    let attachments = if request.attachments.is_empty() {
        Vec::new()
    } else {
        // Only the sender's own uploads to this conversation.
        let found = state
            .chat
            .store()
            .attachments(id, user, &request.attachments)
            .await?;
        if let Some(i) = request
            .attachments
            .iter()
            .position(|key| !found.iter().any(|a| &a.key == key))
        {
            return Err(FieldError::new(
                format!("attachments[{i}]"),
                "not_found",
                "no such upload in this conversation",
            )
            .into());
        }
        found
    };
    let draft = MessageDraft::parse(id, &request.client_id, &request.body, attachments)?;
    let sent = state.chat.send(id, user, draft, state.clock.now()).await?;
    crate::admin::sources::message_sent(state, &sent);
    Ok(sent)
}

pub fn sent_view(sent: &Sent) -> SentView {
    SentView {
        message: message_view(&sent.message),
        duplicate: sent.duplicate,
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    /// Read up to and including this message.
    pub seq: i64,
}

pub async fn read(
    state: &AppState,
    user: UserId,
    id: ConversationId,
    request: ReadRequest,
) -> ApiResult<ReadView> {
    if request.seq < 0 {
        return Err(FieldError::new("seq", "out_of_range", "must not be negative").into());
    }
    let last_read_seq = state
        .chat
        .read(id, user, request.seq, state.clock.now())
        .await?;
    Ok(ReadView { last_read_seq })
}

pub fn parse_conversation_id(raw: &str) -> ApiResult<ConversationId> {
    raw.parse()
        .map_err(|_| ApiError::not_found("no such conversation"))
}

pub fn event_view(event: &StoredEvent) -> EventView {
    EventView {
        cursor: event.cursor,
        event: event.event.kind(),
        data: event_data(&event.event),
        created_at: event.created_at,
    }
}

// ------------------------------------------------------------------ REST

/// The signed-in user's conversations, latest activity first, with unread
/// counts.
#[utoipa::path(get, path = "/conversations", tag = "conversations",
    params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = ConversationPageView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_conversations(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<ConversationPageView>> {
    Ok(Json(list(&state, auth.user.id, params).await?))
}

/// Starts a conversation with another user (optionally about a gig), or
/// returns the one that exists.
#[utoipa::path(post, path = "/conversations", tag = "conversations",
    request_body = OpenRequest, security(("bearer" = [])),
    responses(
        (status = 201, body = OpenedView, description = "started"),
        (status = 200, body = OpenedView, description = "it existed"),
        (status = 404, body = ErrorBody, description = "no such user"),
        (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn open_conversation(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<OpenRequest>,
) -> ApiResult<(StatusCode, Json<OpenedView>)> {
    let (conversation, created) = open(&state, auth.user.id, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(OpenedView { conversation })))
}

/// One conversation (participants only).
#[utoipa::path(get, path = "/conversations/{id}", tag = "conversations",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = ConversationView), (status = 404, body = ErrorBody)))]
async fn get_conversation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<ConversationView>> {
    let id = parse_conversation_id(&id)?;
    Ok(Json(conversation_view(&state, auth.user.id, id).await?))
}

/// Messages, newest first, with both read pointers.
#[utoipa::path(get, path = "/conversations/{id}/messages", tag = "conversations",
    params(("id" = Uuid, Path), HistoryParams), security(("bearer" = [])),
    responses((status = 200, body = HistoryView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn history(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<HistoryParams>,
) -> ApiResult<Json<HistoryView>> {
    let id = parse_conversation_id(&id)?;
    Ok(Json(load_history(&state, auth.user.id, id, params).await?))
}

/// Sends a message. Answered once it is stored; the other participant's
/// sessions receive it live. Repeating a `client_id` returns the stored
/// message (200) instead of storing it twice.
#[utoipa::path(post, path = "/conversations/{id}/messages", tag = "conversations",
    params(("id" = Uuid, Path)), request_body = SendRequest, security(("bearer" = [])),
    responses(
        (status = 201, body = SentView, description = "stored"),
        (status = 200, body = SentView, description = "stored before, by a try with this client_id"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn send_message(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<SendRequest>,
) -> ApiResult<(StatusCode, Json<SentView>)> {
    let id = parse_conversation_id(&id)?;
    let sent = send(&state, auth.user.id, id, request).await?;
    let status = if sent.duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(sent_view(&sent))))
}

/// Moves the signed-in user's read pointer forward (read receipts).
#[utoipa::path(post, path = "/conversations/{id}/read", tag = "conversations",
    params(("id" = Uuid, Path)), request_body = ReadRequest, security(("bearer" = [])),
    responses((status = 200, body = ReadView), (status = 404, body = ErrorBody)))]
async fn mark_read(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<ReadRequest>,
) -> ApiResult<Json<ReadView>> {
    let id = parse_conversation_id(&id)?;
    Ok(Json(read(&state, auth.user.id, id, request).await?))
}

/// Tells the other participant the signed-in user is typing (throttled).
#[utoipa::path(post, path = "/conversations/{id}/typing", tag = "conversations",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn typing(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_conversation_id(&id)?;
    state.chat.typing(id, auth.user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The file's name, as shown to the other participant.
    pub name: Option<String>,
}

/// Uploads a file (an image or a PDF) to attach to a message: the body is
/// the file. Send its `key` in a message's `attachments`.
#[utoipa::path(post, path = "/conversations/{id}/attachments", tag = "conversations",
    params(("id" = Uuid, Path), UploadParams), security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = AttachmentView),
        (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not an image or a PDF")))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn upload_attachment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Query(params): Query<UploadParams>,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<AttachmentView>)> {
    let id = parse_conversation_id(&id)?;
    let bytes = upload_body(body)?;
    // Only participants may upload, checked before anything is stored.
    state.chat.conversation(id, auth.user.id).await?;
    let content_type = upload_type(&state, &bytes).await?;
    let name = attachment_name(params.name.as_deref(), content_type)?;
    let key = format!("{}{}", Attachment::prefix(id), Uuid::now_v7().simple());
    state.media.put(&key, content_type, bytes.to_vec()).await?;
    let attachment = Attachment {
        key,
        name,
        content_type: content_type.to_string(),
        bytes: bytes.len() as u64,
    };
    state
        .chat
        .store()
        .add_attachment(id, auth.user.id, &attachment, state.clock.now())
        .await?;
    Ok((StatusCode::CREATED, Json(attachment_view(&attachment, id))))
}

/// An uploaded file's bytes, or why the body could not be read.
pub(crate) fn upload_body(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                ErrorCode::PayloadTooLarge,
                "the file is larger than allowed",
            )
        } else {
            ApiError::new(ErrorCode::BadRequest, e.body_text())
        }
    })
}

/// The type of a file people may send each other: a PDF, or an image of
/// any size (gig images have a minimum size; attachments do not), checked
/// by a full decode.
pub(crate) async fn upload_type(state: &AppState, bytes: &Bytes) -> ApiResult<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        return Ok("application/pdf");
    }
    let limits = adapters::media::ImageLimits {
        min_side: 1,
        ..state.image_limits.clone()
    };
    let inspected = {
        let bytes = bytes.clone();
        tokio::task::spawn_blocking(move || adapters::media::inspect(&bytes, &limits))
            .await
            .map_err(ApiError::internal)?
    };
    Ok(inspected
        .map_err(|e| {
            ApiError::from(FieldError::new(
                "file",
                "invalid",
                format!("only images (JPEG, PNG, WebP) and PDF files can be attached: {e}"),
            ))
        })?
        .content_type)
}

pub(crate) fn attachment_name(raw: Option<&str>, content_type: &str) -> ApiResult<String> {
    let name = raw.map(str::trim).unwrap_or_default();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "name",
            "invalid",
            "must be at most 200 characters, without control characters",
        )
        .into());
    }
    if name.is_empty() {
        let extension = content_type.rsplit('/').next().unwrap_or("bin");
        return Ok(format!("attachment.{extension}"));
    }
    Ok(name.to_string())
}

/// Downloads an attachment (participants only).
#[utoipa::path(get, path = "/conversations/{id}/attachments/{file}", tag = "conversations",
    params(("id" = Uuid, Path), ("file" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 200, description = "the file"),
        (status = 307, description = "redirect to a short-lived signed address"),
        (status = 404, body = ErrorBody)))]
async fn download_attachment(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, file)): Path<(String, String)>,
) -> ApiResult<Response> {
    let id = parse_conversation_id(&id)?;
    state.chat.conversation(id, auth.user.id).await?;
    if file.is_empty() || !file.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ApiError::not_found("no such attachment"));
    }
    let key = format!("{}{}", Attachment::prefix(id), file);
    Ok(crate::routes::gigs::media_response(&state, &key, "private, max-age=3600").await)
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// The last cursor seen; events after it are returned.
    pub after: Option<i64>,
    /// 1 to 500, default 100.
    pub limit: Option<u32>,
}

/// The signed-in user's durable live events after a cursor, oldest first:
/// what the socket would have pushed, for clients that poll.
#[utoipa::path(get, path = "/me/events", tag = "conversations",
    params(EventParams), security(("bearer" = [])),
    responses((status = 200, body = EventPageView), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn events(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<EventParams>,
) -> ApiResult<Json<EventPageView>> {
    let limit = bounded("limit", params.limit, 100, 500)?;
    let after = params.after.unwrap_or(0).max(0);
    let log = state.chat.live().log();
    let head = log.head(auth.user.id).await?;
    let items = log.events_after(auth.user.id, after, limit).await?;
    if after < head && items.first().is_none_or(|e| e.cursor != after + 1) {
        return Err(ApiError::new(
            ErrorCode::CursorExpired,
            "events after this cursor are no longer kept; reload and start from the head",
        ));
    }
    Ok(Json(EventPageView {
        items: items.iter().map(event_view).collect(),
        head,
    }))
}
