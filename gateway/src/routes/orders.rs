//! `/checkout`, `/orders`, `/offers` and the seller's earnings: buying,
//! the order lifecycle and its money. Every action goes through the orders
//! service (and so the order's actor), over REST here and over the socket
//! (`ws::requests`) with the same operations.

use actors::order::{Caller, CheckoutError, OrderFailure};
use actors::orders::{Checkout, CheckoutItem};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use domain::error::ErrorCode;
use domain::gig::PackageTier;
use domain::ids::{ConversationId, GigId, OfferId, OrderId, UserId};
use domain::ledger::{Balance, Transaction, Withdrawal};
use domain::offer::{Offer, OfferCommand, OfferError, OfferInput};
use domain::order::{Order, OrderCommand, OrderError, OrderStatus, Side};
use domain::payment::PaymentIntent;
use domain::validation::FieldError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult, ErrorBody, Json, Query};
use crate::extract::AuthUser;
use crate::routes::conversations::parse_conversation_id;
use crate::state::AppState;

pub fn router(max_upload_bytes: usize) -> OpenApiRouter<AppState> {
    use axum::extract::DefaultBodyLimit;
    use utoipa_axum::router::UtoipaMethodRouterExt as _;
    OpenApiRouter::new()
        .routes(routes!(upload_file).layer(DefaultBodyLimit::max(max_upload_bytes)))
        .routes(routes!(download_file))
        .routes(routes!(checkout))
        .routes(routes!(list_orders))
        .routes(routes!(get_order))
        .routes(routes!(pay_order))
        .routes(routes!(submit_requirements))
        .routes(routes!(deliver))
        .routes(routes!(accept_delivery))
        .routes(routes!(request_revision))
        .routes(routes!(request_extension))
        .routes(routes!(answer_extension))
        .routes(routes!(request_cancellation))
        .routes(routes!(answer_cancellation))
        .routes(routes!(open_dispute))
        .routes(routes!(order_ledger))
        .routes(routes!(list_offers, send_offer))
        .routes(routes!(get_offer))
        .routes(routes!(accept_offer))
        .routes(routes!(decline_offer))
        .routes(routes!(withdraw_offer))
        .routes(routes!(earnings))
        .routes(routes!(list_withdrawals, request_withdrawal))
}

// ------------------------------------------------------------------ views

#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyView {
    /// Integer minor units (cents).
    pub amount_minor: i64,
    pub currency: &'static str,
}

fn money(amount_minor: i64) -> MoneyView {
    MoneyView {
        amount_minor,
        currency: domain::money::Currency::MARKETPLACE.code(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub message: String,
    pub files: Vec<String>,
    pub delivered_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionView {
    pub days: u32,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CancellationView {
    /// `buyer` or `seller`.
    pub requested_by: &'static str,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisputeView {
    pub opened_by: &'static str,
    pub reason: String,
    pub opened_at: DateTime<Utc>,
}

/// An order as its buyer, its seller and admins see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: Uuid,
    /// `awaiting_payment`, `awaiting_requirements`, `in_progress`,
    /// `delivered`, `revision_requested`, `completed`, `cancelled`,
    /// `disputed`.
    pub status: &'static str,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub title: String,
    pub description: String,
    pub gig_id: Option<Uuid>,
    /// `basic`, `standard` or `premium` for a gig package.
    pub package: Option<&'static str>,
    pub offer_id: Option<Uuid>,
    pub conversation_id: Option<Uuid>,
    pub delivery_days: u32,
    pub revisions: u32,
    pub revisions_used: u32,
    /// The package or offer price.
    pub price: MoneyView,
    /// The buyer's service fee: 5.5% of the price, at least 1.00.
    pub service_fee: MoneyView,
    /// What the buyer pays: price plus service fee.
    pub total: MoneyView,
    pub refunded: MoneyView,
    /// `dev` or `stripe`.
    pub payment_provider: Option<String>,
    pub payment_error: Option<String>,
    pub requirements: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    /// The delivery date passed before a delivery.
    pub late: bool,
    pub deliveries: Vec<DeliveryView>,
    /// The seller's pending extension request.
    pub extension: Option<ExtensionView>,
    pub cancellation: Option<CancellationView>,
    pub dispute: Option<DisputeView>,
    pub created_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When the seller's earnings became available.
    pub cleared_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

pub fn order_view(order: &Order) -> OrderView {
    OrderView {
        id: order.id.as_uuid(),
        status: order.status.as_str(),
        buyer_id: order.buyer_id.as_uuid(),
        seller_id: order.seller_id.as_uuid(),
        title: order.terms.title.clone(),
        description: order.terms.description.clone(),
        gig_id: order.terms.gig_id.map(|id| id.as_uuid()),
        package: order.terms.package.map(PackageTier::as_str),
        offer_id: order.terms.offer_id.map(|id| id.as_uuid()),
        conversation_id: order.conversation_id.map(|id| id.as_uuid()),
        delivery_days: order.terms.delivery_days,
        revisions: order.terms.revisions,
        revisions_used: order.revisions_used,
        price: money(order.amounts.price.amount_minor),
        service_fee: money(order.amounts.buyer_fee.amount_minor),
        total: money(order.amounts.total.amount_minor),
        refunded: money(order.refunded_minor),
        payment_provider: order.payment.as_ref().map(|p| p.provider.clone()),
        payment_error: order.payment_error.clone(),
        requirements: order.requirements.clone(),
        due_at: order.due_at,
        late: order.late,
        deliveries: order
            .deliveries
            .iter()
            .map(|d| DeliveryView {
                message: d.message.clone(),
                files: d.files.clone(),
                delivered_at: d.delivered_at,
            })
            .collect(),
        extension: order.extension.as_ref().map(|e| ExtensionView {
            days: e.days,
            reason: e.reason.clone(),
            requested_at: e.requested_at,
        }),
        cancellation: order.cancellation.as_ref().map(|c| CancellationView {
            requested_by: c.by.as_str(),
            reason: c.reason.clone(),
            requested_at: c.requested_at,
        }),
        dispute: order.dispute.as_ref().map(|d| DisputeView {
            opened_by: d.opened_by.as_str(),
            reason: d.reason.clone(),
            opened_at: d.opened_at,
        }),
        created_at: order.created_at,
        paid_at: order.paid_at,
        started_at: order.started_at,
        completed_at: order.completed_at,
        cancelled_at: order.cancelled_at,
        cleared_at: order.cleared_at,
        updated_at: order.updated_at,
        version: order.version,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    /// The provider's payment intent id.
    pub intent_id: String,
    /// `requires_payment_method`, `requires_confirmation`,
    /// `requires_action`, `processing`, `succeeded`, `canceled`.
    pub status: String,
    pub amount: MoneyView,
    /// For Stripe.js, to confirm the payment in the buyer's browser.
    pub client_secret: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
}

pub fn payment_view(intent: &PaymentIntent) -> PaymentView {
    PaymentView {
        intent_id: intent.id.clone(),
        status: serde_json::to_value(intent.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        amount: money(intent.amount.amount_minor),
        client_secret: intent.client_secret.clone(),
        error: intent.last_error.clone(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutView {
    pub order: OrderView,
    /// Where the payment stands; absent if the provider could not be asked.
    pub payment: Option<PaymentView>,
}

pub fn checkout_view(checkout: &Checkout) -> CheckoutView {
    CheckoutView {
        order: order_view(&checkout.order),
        payment: checkout.payment.as_ref().map(payment_view),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPageView {
    pub items: Vec<OrderView>,
    /// Pass as `before` for the next page.
    pub next: Option<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferView {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub seller_id: Uuid,
    pub buyer_id: Uuid,
    pub gig_id: Option<Uuid>,
    pub title: String,
    pub description: String,
    pub price: MoneyView,
    pub delivery_days: u32,
    pub revisions: u32,
    pub expires_at: DateTime<Utc>,
    /// `pending`, `accepted`, `declined`, `withdrawn`, `expired`.
    pub status: &'static str,
    /// The order checked out from it.
    pub order_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub fn offer_view(offer: &Offer) -> OfferView {
    OfferView {
        id: offer.id.as_uuid(),
        conversation_id: offer.conversation_id.as_uuid(),
        seller_id: offer.seller_id.as_uuid(),
        buyer_id: offer.buyer_id.as_uuid(),
        gig_id: offer.gig_id.map(|id| id.as_uuid()),
        title: offer.title.clone(),
        description: offer.description.clone(),
        price: money(offer.price.amount_minor),
        delivery_days: offer.delivery_days,
        revisions: offer.revisions,
        expires_at: offer.expires_at,
        status: offer.status.as_str(),
        order_id: offer.order_id.map(|id| id.as_uuid()),
        created_at: offer.created_at,
        updated_at: offer.updated_at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostingView {
    /// `provider`, `escrow`, `platform_revenue`, `seller_pending:<id>`,
    /// `seller_available:<id>`, `seller_withdrawn:<id>`.
    pub account: String,
    /// Debit positive, credit negative.
    pub amount_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionView {
    /// `payment`, `settlement`, `refund`, `clearance`, `withdrawal`.
    pub kind: &'static str,
    pub currency: &'static str,
    pub postings: Vec<PostingView>,
    pub at: DateTime<Utc>,
}

fn transaction_view(transaction: &Transaction) -> TransactionView {
    TransactionView {
        kind: transaction.kind.as_str(),
        currency: transaction.currency.code(),
        postings: transaction
            .postings
            .iter()
            .map(|p| PostingView {
                account: p.account.to_string(),
                amount_minor: p.amount_minor,
            })
            .collect(),
        at: transaction.at,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceView {
    /// Earnings from completed orders, not yet cleared.
    pub pending: MoneyView,
    /// Cleared earnings that may be withdrawn.
    pub available: MoneyView,
    /// Withdrawals requested so far.
    pub withdrawn: MoneyView,
}

fn balance_view(balance: &Balance) -> BalanceView {
    BalanceView {
        pending: money(balance.pending_minor),
        available: money(balance.available_minor),
        withdrawn: money(balance.withdrawn_minor),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawalView {
    pub id: Uuid,
    pub amount: MoneyView,
    pub requested_at: DateTime<Utc>,
}

fn withdrawal_view(withdrawal: &Withdrawal) -> WithdrawalView {
    WithdrawalView {
        id: withdrawal.id.as_uuid(),
        amount: money(withdrawal.amount.amount_minor),
        requested_at: withdrawal.requested_at,
    }
}

// ------------------------------------------------------------ errors

impl From<OrderFailure> for ApiError {
    fn from(failure: OrderFailure) -> Self {
        match failure {
            OrderFailure::NotFound => ApiError::not_found("no such order"),
            OrderFailure::Rule(rule) => match rule {
                OrderError::NotAllowed { .. } => ApiError::forbidden(rule.to_string()),
                OrderError::WrongState { .. } | OrderError::Refused(_) => {
                    ApiError::new(ErrorCode::Conflict, rule.to_string())
                }
                OrderError::Invalid { field, message } => {
                    FieldError::new(field, "invalid", message).into()
                }
            },
            OrderFailure::Offer(error) => match error {
                OfferError::NotFound => ApiError::not_found("no such offer"),
                OfferError::NotAllowed(_) => ApiError::forbidden(error.to_string()),
                OfferError::NotPending(_) | OfferError::Expired => {
                    ApiError::new(ErrorCode::Conflict, error.to_string())
                }
            },
            OrderFailure::Checkout(error) => match error {
                CheckoutError::GigUnavailable => ApiError::not_found(error.to_string()),
                CheckoutError::BadKey => ApiError::new(ErrorCode::BadRequest, error.to_string()),
                CheckoutError::NoSuchPackage(_) => {
                    FieldError::new("package", "not_found", error.to_string()).into()
                }
                CheckoutError::OwnGig => ApiError::forbidden(error.to_string()),
                CheckoutError::KeyReused
                | CheckoutError::OfferNotAccepted
                | CheckoutError::OfferAlreadyOrdered
                | CheckoutError::NotAwaitingPayment => {
                    ApiError::new(ErrorCode::Conflict, error.to_string())
                }
            },
            OrderFailure::Invalid(errors) => errors.into(),
            OrderFailure::Payment(error) => match error {
                domain::payment::PaymentError::Declined(why) => {
                    FieldError::new("payment_method", "declined", why).into()
                }
                domain::payment::PaymentError::Invalid(why) => {
                    FieldError::new("payment_method", "invalid", why).into()
                }
                domain::payment::PaymentError::Unavailable(why) => {
                    tracing::warn!(%why, "payment provider unavailable");
                    ApiError::new(
                        ErrorCode::Unavailable,
                        "payments are unavailable for a moment, try again",
                    )
                }
            },
            OrderFailure::Withdrawal(error) => {
                FieldError::new("amount_minor", "invalid", error.to_string()).into()
            }
            OrderFailure::Store(error) => error.into(),
            OrderFailure::Unavailable => ApiError::new(
                ErrorCode::Unavailable,
                "orders are unavailable for a moment, try again",
            ),
        }
    }
}

// ------------------------------------------------------------ operations
//
// Shared by the REST handlers below and the socket's requests.

/// What to buy: a gig package, or an accepted offer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    pub gig_id: Option<Uuid>,
    /// `basic`, `standard` or `premium`, with `gig_id`.
    pub package: Option<String>,
    pub offer_id: Option<Uuid>,
    /// Pay at once with this payment method (a test card with the
    /// development provider; a PaymentMethod id with Stripe). Without it,
    /// pay later with `POST /orders/{id}/payment` or Stripe.js and the
    /// `client_secret`.
    pub payment_method: Option<String>,
}

pub async fn place(
    state: &AppState,
    buyer: UserId,
    key: &str,
    request: CheckoutRequest,
) -> ApiResult<Checkout> {
    let item = match (request.gig_id, request.package.as_deref(), request.offer_id) {
        (Some(gig_id), Some(package), None) => CheckoutItem::Package {
            gig_id: GigId::from_uuid(gig_id),
            tier: package.parse().map_err(|()| {
                FieldError::new("package", "invalid", "basic, standard or premium")
            })?,
        },
        (None, None, Some(offer_id)) => CheckoutItem::Offer(OfferId::from_uuid(offer_id)),
        _ => {
            return Err(FieldError::new(
                "gig_id",
                "required",
                "give gig_id and package, or offer_id",
            )
            .into())
        }
    };
    let method = payment_method(request.payment_method.as_deref())?;
    Ok(state.orders.checkout(buyer, item, key, method).await?)
}

fn payment_method(raw: Option<&str>) -> ApiResult<Option<&str>> {
    match raw.map(str::trim) {
        None => Ok(None),
        Some(method) if !method.is_empty() && method.len() <= 255 => Ok(Some(method)),
        Some(_) => Err(FieldError::new("payment_method", "invalid", "1 to 255 characters").into()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayRequest {
    pub payment_method: String,
}

pub async fn pay(
    state: &AppState,
    buyer: UserId,
    id: OrderId,
    request: PayRequest,
) -> ApiResult<CheckoutView> {
    let method = payment_method(Some(&request.payment_method))?.unwrap_or_default();
    let (order, payment) = state.orders.pay(buyer, id, method).await?;
    Ok(CheckoutView {
        order: order_view(&order),
        payment: payment.as_ref().map(payment_view),
    })
}

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderListParams {
    /// `buyer` (default: orders you bought) or `seller` (orders you sell).
    pub role: Option<String>,
    /// Only orders in this status.
    pub status: Option<String>,
    /// `next` of the previous page.
    pub before: Option<Uuid>,
    /// 1 to 100, default 20.
    pub limit: Option<u32>,
}

pub async fn list(
    state: &AppState,
    user: UserId,
    params: OrderListParams,
) -> ApiResult<OrderPageView> {
    let side = match params.role.as_deref() {
        None | Some("buyer") => Side::Buyer,
        Some("seller") => Side::Seller,
        Some(_) => return Err(FieldError::new("role", "invalid", "buyer or seller").into()),
    };
    let status = match params.status.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            OrderStatus::parse(raw)
                .ok_or_else(|| FieldError::new("status", "invalid", "not an order status"))?,
        ),
    };
    let limit = match params.limit {
        None => 20,
        Some(n) if (1..=100).contains(&n) => n,
        Some(_) => return Err(FieldError::new("limit", "out_of_range", "must be 1 to 100").into()),
    };
    let page = state
        .orders
        .list(
            user,
            side,
            status,
            params.before.map(OrderId::from_uuid),
            limit,
        )
        .await?;
    Ok(OrderPageView {
        items: page.orders.iter().map(order_view).collect(),
        next: page.next.map(|id| id.as_uuid()),
    })
}

/// An action on an order, as the socket's `order.act` names it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionRequest {
    SubmitRequirements {
        text: String,
    },
    Deliver {
        message: String,
        #[serde(default)]
        files: Vec<String>,
    },
    Accept,
    RequestRevision {
        reason: String,
    },
    RequestExtension {
        days: u32,
        reason: String,
    },
    AnswerExtension {
        approve: bool,
    },
    Cancel {
        #[serde(default)]
        reason: String,
    },
    AnswerCancellation {
        accept: bool,
    },
    OpenDispute {
        reason: String,
    },
}

impl ActionRequest {
    fn command(self) -> ApiResult<OrderCommand> {
        Ok(match self {
            ActionRequest::SubmitRequirements { text } => OrderCommand::SubmitRequirements { text },
            ActionRequest::Deliver { message, files } => OrderCommand::Deliver { message, files },
            ActionRequest::Accept => OrderCommand::Accept,
            ActionRequest::RequestRevision { reason } => OrderCommand::RequestRevision { reason },
            ActionRequest::RequestExtension { days, reason } => {
                OrderCommand::RequestExtension { days, reason }
            }
            ActionRequest::AnswerExtension { approve } => OrderCommand::AnswerExtension { approve },
            ActionRequest::Cancel { reason } => OrderCommand::Cancel { reason },
            ActionRequest::AnswerCancellation { accept } => {
                OrderCommand::AnswerCancellation { accept }
            }
            ActionRequest::OpenDispute { reason } => OrderCommand::OpenDispute { reason },
        })
    }
}

/// Applies an action as `user`, one of the order's parties.
pub async fn act(
    state: &AppState,
    user: UserId,
    id: OrderId,
    action: ActionRequest,
) -> ApiResult<OrderView> {
    if let ActionRequest::Deliver { files, .. } = &action {
        check_files(state, id, files).await?;
    }
    let command = action.command()?;
    let order = state
        .orders
        .act(
            Caller::User {
                id: user,
                admin: false,
            },
            id,
            command,
        )
        .await?;
    Ok(order_view(&order))
}

/// Where an order's files are kept.
fn file_prefix(id: OrderId) -> String {
    format!("orders/{id}/")
}

/// Whether `name` can be the name of an order's file: uploads are named
/// with lowercase hex, and media keys allow no capitals.
fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// A delivery only names files uploaded to its own order.
async fn check_files(state: &AppState, id: OrderId, files: &[String]) -> ApiResult<()> {
    let prefix = file_prefix(id);
    for (i, key) in files.iter().enumerate() {
        let uploaded = match key.strip_prefix(&prefix) {
            Some(name) if is_file_name(name) => state.media.fetch(key).await?.is_some(),
            _ => false,
        };
        if !uploaded {
            return Err(FieldError::new(
                format!("files[{i}]"),
                "not_found",
                "no such file uploaded to this order",
            )
            .into());
        }
    }
    Ok(())
}

pub fn parse_order_id(raw: &str) -> ApiResult<OrderId> {
    raw.parse()
        .map_err(|_| ApiError::not_found("no such order"))
}

pub fn parse_offer_id(raw: &str) -> ApiResult<OfferId> {
    raw.parse()
        .map_err(|_| ApiError::not_found("no such offer"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferRequest {
    /// The gig the offer is based on (one of yours), if any.
    pub gig_id: Option<Uuid>,
    pub title: String,
    pub description: String,
    pub price_minor: i64,
    #[serde(default = "usd")]
    pub currency: String,
    pub delivery_days: i64,
    #[serde(default)]
    pub revisions: i64,
    /// 1 to 30, default 7.
    pub expires_in_days: Option<i64>,
}

fn usd() -> String {
    "USD".into()
}

pub async fn send_offer_in(
    state: &AppState,
    seller: UserId,
    conversation: ConversationId,
    request: OfferRequest,
) -> ApiResult<OfferView> {
    let input = OfferInput {
        gig_id: request.gig_id.map(GigId::from_uuid),
        title: request.title,
        description: request.description,
        price_minor: request.price_minor,
        currency: request.currency,
        delivery_days: request.delivery_days,
        revisions: request.revisions,
        expires_in_days: request.expires_in_days,
    };
    let offer = state.orders.send_offer(seller, conversation, input).await?;
    Ok(offer_view(&offer))
}

pub async fn answer_offer(
    state: &AppState,
    user: UserId,
    id: OfferId,
    command: OfferCommand,
) -> ApiResult<OfferView> {
    // Outsiders learn nothing, not even that the offer exists.
    state.orders.offer(user, id).await?;
    Ok(offer_view(
        &state.orders.answer_offer(Some(user), id, command).await?,
    ))
}

pub async fn withdraw(
    state: &AppState,
    seller: UserId,
    request: WithdrawalRequest,
) -> ApiResult<WithdrawalView> {
    let withdrawal = state.orders.withdraw(seller, request.amount_minor).await?;
    Ok(withdrawal_view(&withdrawal))
}

// ------------------------------------------------------------------ REST

/// Places an order for a gig package or an accepted offer; amounts are
/// computed by the server. Send an `Idempotency-Key` header: a retry with
/// the same key and body returns the same order (200) and never charges
/// twice; the same key with another body is refused (409).
#[utoipa::path(post, path = "/checkout", tag = "checkout",
    request_body = CheckoutRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "1 to 255 visible ASCII characters, unique per checkout")),
    responses(
        (status = 201, body = CheckoutView, description = "placed (and paid, with a payment method that succeeded)"),
        (status = 200, body = CheckoutView, description = "placed before with this key"),
        (status = 400, body = ErrorBody, description = "missing or bad Idempotency-Key"),
        (status = 403, body = ErrorBody, description = "your own gig"),
        (status = 404, body = ErrorBody, description = "no such gig or offer"),
        (status = 409, body = ErrorBody, description = "key reused with another body; offer not accepted or already ordered"),
        (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn checkout(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Json(request): Json<CheckoutRequest>,
) -> ApiResult<(StatusCode, Json<CheckoutView>)> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                "send an Idempotency-Key header, unique to this checkout",
            )
        })?;
    let done = place(&state, auth.user.id, key, request).await?;
    let status = if done.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(checkout_view(&done))))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderFileView {
    /// Name it in a delivery's `files`.
    pub key: String,
    pub content_type: String,
    pub bytes: u64,
    /// Where the order's parties download it (with their bearer token).
    pub url: String,
}

/// The seller uploads a file (an image or a PDF) to deliver with the
/// order: the body is the file. Name its `key` in a delivery's `files`.
#[utoipa::path(post, path = "/orders/{id}/files", tag = "orders",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, body = OrderFileView),
        (status = 403, body = ErrorBody, description = "not the seller"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the order is over"),
        (status = 413, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "not an image or a PDF")))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn upload_file(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<(StatusCode, Json<OrderFileView>)> {
    use crate::routes::conversations::{upload_body, upload_type};
    let id = parse_order_id(&id)?;
    let bytes = upload_body(body)?;
    let order = state.orders.order(auth.user.id, false, id).await?;
    if order.seller_id != auth.user.id {
        return Err(ApiError::forbidden(
            "only the seller uploads files to an order",
        ));
    }
    if order.status.is_final() {
        return Err(ApiError::new(ErrorCode::Conflict, "the order is over"));
    }
    let content_type = upload_type(&state, &bytes).await?;
    let name = Uuid::now_v7().simple().to_string();
    let key = format!("{}{name}", file_prefix(id));
    state.media.put(&key, content_type, bytes.to_vec()).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrderFileView {
            url: format!("/api/v1/orders/{id}/files/{name}"),
            key,
            content_type: content_type.to_owned(),
            bytes: bytes.len() as u64,
        }),
    ))
}

/// Downloads an order's file (its buyer, its seller and admins).
#[utoipa::path(get, path = "/orders/{id}/files/{file}", tag = "orders",
    params(("id" = Uuid, Path), ("file" = String, Path)), security(("bearer" = [])),
    responses(
        (status = 200, description = "the file"),
        (status = 307, description = "redirect to a short-lived signed address"),
        (status = 404, body = ErrorBody)))]
async fn download_file(
    State(state): State<AppState>,
    auth: AuthUser,
    Path((id, file)): Path<(String, String)>,
) -> ApiResult<axum::response::Response> {
    let id = parse_order_id(&id)?;
    state
        .orders
        .order(auth.user.id, auth.user.is_admin(), id)
        .await?;
    if !is_file_name(&file) {
        return Err(ApiError::not_found("no such file"));
    }
    let key = format!("{}{file}", file_prefix(id));
    Ok(crate::routes::gigs::media_response(&state, &key, "private, max-age=3600").await)
}

/// Your orders as buyer or seller, newest first.
#[utoipa::path(get, path = "/orders", tag = "orders",
    params(OrderListParams), security(("bearer" = [])),
    responses((status = 200, body = OrderPageView), (status = 422, body = ErrorBody)))]
async fn list_orders(
    State(state): State<AppState>,
    auth: AuthUser,
    Query(params): Query<OrderListParams>,
) -> ApiResult<Json<OrderPageView>> {
    Ok(Json(list(&state, auth.user.id, params).await?))
}

/// One order (its buyer, its seller and admins).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 404, body = ErrorBody)))]
async fn get_order(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    let id = parse_order_id(&id)?;
    let order = state
        .orders
        .order(auth.user.id, auth.user.is_admin(), id)
        .await?;
    Ok(Json(order_view(&order)))
}

/// Pays an order waiting for payment (the buyer). A declined card leaves
/// the order waiting, with the reason in `payment.error`.
#[utoipa::path(post, path = "/orders/{id}/payment", tag = "orders",
    params(("id" = Uuid, Path)), request_body = PayRequest, security(("bearer" = [])),
    responses((status = 200, body = CheckoutView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn pay_order(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<PayRequest>,
) -> ApiResult<Json<CheckoutView>> {
    let id = parse_order_id(&id)?;
    Ok(Json(pay(&state, auth.user.id, id, request).await?))
}

/// Runs one action through the order's actor for the signed-in user.
async fn rest_act(
    state: &AppState,
    auth: &AuthUser,
    id: &str,
    action: ActionRequest,
) -> ApiResult<Json<OrderView>> {
    let id = parse_order_id(id)?;
    // Admins act on orders through `/admin`, where every action is audited.
    Ok(Json(act(state, auth.user.id, id, action).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequirementsRequest {
    pub text: String,
}

/// The buyer answers the seller's questions; the delivery clock starts.
#[utoipa::path(post, path = "/orders/{id}/requirements", tag = "orders",
    params(("id" = Uuid, Path)), request_body = RequirementsRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn submit_requirements(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<RequirementsRequest>,
) -> ApiResult<Json<OrderView>> {
    let action = ActionRequest::SubmitRequirements { text: request.text };
    rest_act(&state, &auth, &id, action).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverRequest {
    pub message: String,
    /// Keys of files uploaded with `POST /orders/{id}/files`.
    #[serde(default)]
    pub files: Vec<String>,
}

/// The seller delivers the work.
#[utoipa::path(post, path = "/orders/{id}/deliveries", tag = "orders",
    params(("id" = Uuid, Path)), request_body = DeliverRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn deliver(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<DeliverRequest>,
) -> ApiResult<Json<OrderView>> {
    let action = ActionRequest::Deliver {
        message: request.message,
        files: request.files,
    };
    rest_act(&state, &auth, &id, action).await
}

/// The buyer accepts the delivery: the order completes.
#[utoipa::path(post, path = "/orders/{id}/acceptance", tag = "orders",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept_delivery(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OrderView>> {
    rest_act(&state, &auth, &id, ActionRequest::Accept).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    pub reason: String,
}

/// The buyer asks for a revision of the delivery (limited by the package).
#[utoipa::path(post, path = "/orders/{id}/revisions", tag = "orders",
    params(("id" = Uuid, Path)), request_body = ReasonRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn request_revision(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<ReasonRequest>,
) -> ApiResult<Json<OrderView>> {
    let action = ActionRequest::RequestRevision {
        reason: request.reason,
    };
    rest_act(&state, &auth, &id, action).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRequest {
    /// 1 to 30 more days.
    pub days: u32,
    pub reason: String,
}

/// The seller asks for more time; the buyer approves or rejects.
#[utoipa::path(post, path = "/orders/{id}/extension", tag = "orders",
    params(("id" = Uuid, Path)), request_body = ExtensionRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn request_extension(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<ExtensionRequest>,
) -> ApiResult<Json<OrderView>> {
    let action = ActionRequest::RequestExtension {
        days: request.days,
        reason: request.reason,
    };
    rest_act(&state, &auth, &id, action).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    pub approve: bool,
}

/// The buyer approves or rejects the seller's extension request.
#[utoipa::path(post, path = "/orders/{id}/extension/answer", tag = "orders",
    params(("id" = Uuid, Path)), request_body = ApproveRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn answer_extension(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<ApproveRequest>,
) -> ApiResult<Json<OrderView>> {
    let action = ActionRequest::AnswerExtension {
        approve: request.approve,
    };
    rest_act(&state, &auth, &id, action).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[serde(default)]
    pub reason: String,
}

/// Cancels, or asks to. Before payment the buyer abandons the order. After
/// it: the buyer cancels a late order at once; otherwise the other side
/// must agree (`/cancellation/answer`, or by asking too); an admin cancels
/// at once. Paid money goes back to the buyer.
#[utoipa::path(post, path = "/orders/{id}/cancellation", tag = "orders",
    params(("id" = Uuid, Path)), request_body = CancelRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn request_cancellation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<CancelRequest>,
) -> ApiResult<Json<OrderView>> {
    let action = ActionRequest::Cancel {
        reason: request.reason,
    };
    rest_act(&state, &auth, &id, action).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    pub accept: bool,
}

/// The other side accepts (full refund) or declines a cancellation request.
#[utoipa::path(post, path = "/orders/{id}/cancellation/answer", tag = "orders",
    params(("id" = Uuid, Path)), request_body = AcceptRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn answer_cancellation(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<AcceptRequest>,
) -> ApiResult<Json<OrderView>> {
    let action = ActionRequest::AnswerCancellation {
        accept: request.accept,
    };
    rest_act(&state, &auth, &id, action).await
}

/// The buyer or the seller opens a dispute: the order freezes until an
/// admin resolves it.
#[utoipa::path(post, path = "/orders/{id}/dispute", tag = "orders",
    params(("id" = Uuid, Path)), request_body = ReasonRequest, security(("bearer" = [])),
    responses((status = 200, body = OrderView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn open_dispute(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<ReasonRequest>,
) -> ApiResult<Json<OrderView>> {
    let action = ActionRequest::OpenDispute {
        reason: request.reason,
    };
    rest_act(&state, &auth, &id, action).await
}

/// The order's ledger transactions (its parties and admins).
#[utoipa::path(get, path = "/orders/{id}/ledger", tag = "orders",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<TransactionView>), (status = 404, body = ErrorBody)))]
async fn order_ledger(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<TransactionView>>> {
    let id = parse_order_id(&id)?;
    let transactions = state
        .orders
        .transactions(auth.user.id, auth.user.is_admin(), id)
        .await?;
    Ok(Json(transactions.iter().map(transaction_view).collect()))
}

/// The offers of a conversation (its participants), newest first.
#[utoipa::path(get, path = "/conversations/{id}/offers", tag = "offers",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<OfferView>), (status = 404, body = ErrorBody)))]
async fn list_offers(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<OfferView>>> {
    let id = parse_conversation_id(&id)?;
    let offers = state.orders.offers_in(auth.user.id, id).await?;
    Ok(Json(offers.iter().map(offer_view).collect()))
}

/// A seller sends the other participant a custom offer.
#[utoipa::path(post, path = "/conversations/{id}/offers", tag = "offers",
    params(("id" = Uuid, Path)), request_body = OfferRequest, security(("bearer" = [])),
    responses((status = 201, body = OfferView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn send_offer(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    Json(request): Json<OfferRequest>,
) -> ApiResult<(StatusCode, Json<OfferView>)> {
    let id = parse_conversation_id(&id)?;
    let offer = send_offer_in(&state, auth.user.id, id, request).await?;
    Ok((StatusCode::CREATED, Json(offer)))
}

/// One offer (its buyer and seller).
#[utoipa::path(get, path = "/offers/{id}", tag = "offers",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = OfferView), (status = 404, body = ErrorBody)))]
async fn get_offer(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OfferView>> {
    let id = parse_offer_id(&id)?;
    Ok(Json(offer_view(
        &state.orders.offer(auth.user.id, id).await?,
    )))
}

/// The buyer accepts the offer; then checks it out with `POST /checkout`.
#[utoipa::path(post, path = "/offers/{id}/accept", tag = "offers",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = OfferView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept_offer(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OfferView>> {
    let id = parse_offer_id(&id)?;
    Ok(Json(
        answer_offer(&state, auth.user.id, id, OfferCommand::Accept).await?,
    ))
}

/// The buyer declines the offer.
#[utoipa::path(post, path = "/offers/{id}/decline", tag = "offers",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = OfferView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn decline_offer(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OfferView>> {
    let id = parse_offer_id(&id)?;
    Ok(Json(
        answer_offer(&state, auth.user.id, id, OfferCommand::Decline).await?,
    ))
}

/// The seller withdraws a pending offer.
#[utoipa::path(post, path = "/offers/{id}/withdraw", tag = "offers",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = OfferView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn withdraw_offer(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Json<OfferView>> {
    let id = parse_offer_id(&id)?;
    Ok(Json(
        answer_offer(&state, auth.user.id, id, OfferCommand::Withdraw).await?,
    ))
}

/// Your earnings as a seller: pending, available and withdrawn.
#[utoipa::path(get, path = "/me/earnings", tag = "me",
    security(("bearer" = [])),
    responses((status = 200, body = BalanceView), (status = 401, body = ErrorBody)))]
async fn earnings(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Json<BalanceView>> {
    Ok(Json(balance_view(
        &state.orders.balance(auth.user.id).await?,
    )))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalRequest {
    /// At least 500 (5.00), at most what is available.
    pub amount_minor: i64,
}

/// Your withdrawals, newest first.
#[utoipa::path(get, path = "/me/withdrawals", tag = "me",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<WithdrawalView>), (status = 401, body = ErrorBody)))]
async fn list_withdrawals(
    State(state): State<AppState>,
    auth: AuthUser,
) -> ApiResult<Json<Vec<WithdrawalView>>> {
    let withdrawals = state.orders.withdrawals(auth.user.id).await?;
    Ok(Json(withdrawals.iter().map(withdrawal_view).collect()))
}

/// Asks for available earnings to be paid out. It is recorded in the
/// ledger; the bank transfer itself is made outside the marketplace.
#[utoipa::path(post, path = "/me/withdrawals", tag = "me",
    request_body = WithdrawalRequest, security(("bearer" = [])),
    responses((status = 201, body = WithdrawalView), (status = 422, body = ErrorBody, description = "below the minimum or more than available")))]
#[tracing::instrument(skip_all, fields(user_id = %auth.user.id))]
async fn request_withdrawal(
    State(state): State<AppState>,
    auth: AuthUser,
    Json(request): Json<WithdrawalRequest>,
) -> ApiResult<(StatusCode, Json<WithdrawalView>)> {
    let withdrawal = withdraw(&state, auth.user.id, request).await?;
    Ok((StatusCode::CREATED, Json(withdrawal)))
}
