//! What puts items in the moderation queue from the gateway's side: gigs
//! published or edited, chat messages the automatic checks flag, and
//! reports users file. Each is raised after the change it describes is
//! stored, with a source key that makes raising it twice harmless.

use actors::conversation::Sent;
use domain::account::User;
use domain::flag::scan;
use domain::gig::{Gig, GigStatus};
use domain::ids::{ConversationId, GigId, MessageId, UserId};
use domain::moderation::{Item, ItemKind, NewItem, ReportDraft, ReportReason, Target};
use domain::ports::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use domain::error::ErrorCode;
use domain::validation::FieldError;

/// A gig write went through: a gig that became public for the first time
/// (created active, or a draft published) or a public or paused gig whose
/// content changed goes to the queue.
pub fn gig_written(state: &AppState, before: Option<&Gig>, after: &Gig) {
    let kind = match before {
        None if after.status == GigStatus::Active => ItemKind::GigPublished,
        Some(old) if old.status == GigStatus::Draft && after.status == GigStatus::Active => {
            ItemKind::GigPublished
        }
        Some(old)
            if matches!(old.status, GigStatus::Active | GigStatus::Paused)
                && old.content != after.content =>
        {
            ItemKind::GigEdited
        }
        _ => return,
    };
    let verb = match kind {
        ItemKind::GigPublished => "published",
        _ => "edited",
    };
    state.feed.raise_later(NewItem {
        kind,
        target: Target::Gig { id: after.id },
        subject_user: Some(after.seller_id),
        summary: format!("Gig {verb}: \"{}\"", after.content.title),
        excerpt: Some(after.content.description.clone()),
        flags: scan(
            &format!("{}\n{}", after.content.title, after.content.description),
            &state.flag_policy,
        ),
        reporter: None,
        reason: None,
        amount: None,
        source_key: format!("gig:{}:{}", after.id, after.version),
    });
}

/// A chat message was stored: if the automatic checks find contact
/// details or listed words, it goes to the queue.
pub fn message_sent(state: &AppState, sent: &Sent) {
    if sent.duplicate {
        return;
    }
    let message = &sent.message;
    let flags = scan(&message.body, &state.flag_policy);
    if flags.is_empty() {
        return;
    }
    state.feed.raise_later(NewItem {
        kind: ItemKind::MessageFlagged,
        target: Target::Message {
            id: message.id,
            conversation_id: message.conversation_id,
        },
        subject_user: Some(message.sender),
        summary: format!("A chat message was flagged: {}", flags.join(", ")),
        excerpt: Some(message.body.clone()),
        flags,
        reporter: None,
        reason: None,
        amount: None,
        source_key: format!("message:{}", message.id),
    });
}

/// What a user reports.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReportTarget {
    User { id: Uuid },
    Gig { id: Uuid },
    Message { id: Uuid, conversation_id: Uuid },
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    pub target: ReportTarget,
    /// `spam`, `fraud`, `off_platform`, `inappropriate`,
    /// `intellectual_property` or `other`.
    pub reason: String,
    /// Up to 2000 characters; required with `other`.
    #[serde(default)]
    pub details: String,
}

/// A filed report, as its reporter sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub id: Uuid,
    pub reason: &'static str,
    pub status: &'static str,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A user reports a gig, a user or a message: it goes to the admins'
/// queue at once. One open report per reporter and target.
pub async fn file_report(
    state: &AppState,
    reporter: &User,
    request: ReportRequest,
) -> ApiResult<ReportView> {
    let reason: ReportReason = request.reason.parse().map_err(|()| {
        ApiError::from(FieldError::new(
            "reason",
            "invalid",
            "must be spam, fraud, off_platform, inappropriate, intellectual_property or other",
        ))
    })?;
    let target = match request.target {
        ReportTarget::User { id } => Target::User {
            id: UserId::from_uuid(id),
        },
        ReportTarget::Gig { id } => Target::Gig {
            id: GigId::from_uuid(id),
        },
        ReportTarget::Message {
            id,
            conversation_id,
        } => Target::Message {
            id: MessageId::from_uuid(id),
            conversation_id: ConversationId::from_uuid(conversation_id),
        },
    };
    let draft = ReportDraft::parse(reporter.id, target, reason, &request.details)?;
    let (owner, what) = reported(state, reporter, &draft.target).await?;
    let excerpt = if draft.details.is_empty() {
        None
    } else {
        Some(draft.details.clone())
    };
    let new = NewItem {
        kind: ItemKind::Report,
        target: draft.target,
        subject_user: Some(owner),
        summary: format!(
            "{} reported {what} for {}",
            reporter.username,
            reason.as_str().replace('_', " ")
        ),
        excerpt,
        flags: Vec::new(),
        reporter: Some(reporter.id),
        reason: Some(reason),
        amount: None,
        source_key: format!("report:{}", Uuid::now_v7()),
    };
    match state.feed.raise(new).await {
        Ok(Some(item)) => Ok(report_view(&item)),
        Ok(None) => Err(ApiError::internal("a new report's key was taken")),
        Err(StoreError::Conflict("report")) => Err(ApiError::new(
            ErrorCode::Conflict,
            "you have already reported this; the team is looking at it",
        )),
        Err(error) => Err(error.into()),
    }
}

fn report_view(item: &Item) -> ReportView {
    ReportView {
        id: item.id.as_uuid(),
        reason: item.reason.map_or("other", ReportReason::as_str),
        status: item.status.as_str(),
        created_at: item.created_at,
    }
}

/// The owner of what is reported, and how to name it; 404 for what the
/// reporter cannot see.
async fn reported(
    state: &AppState,
    reporter: &User,
    target: &Target,
) -> ApiResult<(UserId, String)> {
    match *target {
        Target::User { id } => {
            let user = state
                .accounts
                .user_by_id(id)
                .await?
                .filter(|u| u.deleted_at.is_none())
                .ok_or_else(|| ApiError::not_found("no such user"))?;
            Ok((user.id, format!("the user {}", user.username)))
        }
        Target::Gig { id } => {
            let gig = state
                .gigs
                .gig(id)
                .await?
                .filter(|g| g.is_public())
                .ok_or_else(|| ApiError::not_found("no such gig"))?;
            if gig.seller_id == reporter.id {
                return Err(
                    FieldError::new("target", "invalid", "you cannot report your own gig").into(),
                );
            }
            Ok((gig.seller_id, format!("the gig \"{}\"", gig.content.title)))
        }
        Target::Message {
            id,
            conversation_id,
        } => {
            let not_found = || ApiError::not_found("no such message");
            let conversation = state
                .chat
                .store()
                .conversation(conversation_id)
                .await?
                .filter(|c| c.is_participant(reporter.id))
                .ok_or_else(not_found)?;
            let message = state
                .chat
                .store()
                .message(conversation.id, id)
                .await?
                .ok_or_else(not_found)?;
            if message.sender == reporter.id {
                return Err(FieldError::new(
                    "target",
                    "invalid",
                    "you cannot report your own message",
                )
                .into());
            }
            Ok((message.sender, "a chat message".to_string()))
        }
        Target::Order { .. } => Err(ApiError::not_found("orders are not reported")),
    }
}
