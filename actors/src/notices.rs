//! What each side of an order or an offer is told when it changes: the
//! in-app notification and the e-mail say the same thing.

use domain::ids::UserId;
use domain::live::Notification;
use domain::offer::{Offer, OfferStatus};
use domain::order::{Order, OrderChange, Side};

/// One notification for one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub user: UserId,
    pub notification: Notification,
}

fn order_notice(order: &Order, to: Side, kind: &str, title: &str, body: String) -> Notice {
    Notice {
        user: match to {
            Side::Buyer => order.buyer_id,
            Side::Seller => order.seller_id,
        },
        notification: Notification {
            kind: format!("order.{kind}"),
            title: title.to_owned(),
            body,
            order_id: Some(order.id),
            offer_id: order.terms.offer_id,
            conversation_id: order.conversation_id,
            gig_id: None,
        },
    }
}

/// Who hears about an order change, and what they read.
pub fn notices(order: &Order, change: OrderChange) -> Vec<Notice> {
    let title = &order.terms.title;
    let total = order.amounts.total;
    let n = |to, title: &str, body: String| order_notice(order, to, change.as_str(), title, body);
    match change {
        // Placing is not news until it is paid.
        OrderChange::Placed => Vec::new(),
        OrderChange::Cleared => vec![n(
            Side::Seller,
            "Earnings cleared",
            format!("Your earnings from \"{title}\" are now available to withdraw."),
        )],
        OrderChange::Paid => vec![
            n(
                Side::Seller,
                "New order",
                format!(
                    "You have a new order: \"{title}\". It starts when the buyer sends the requirements."
                ),
            ),
            n(
                Side::Buyer,
                "Order placed",
                format!(
                    "Your payment of {total} for \"{title}\" went through. Send the seller your requirements to start the order."
                ),
            ),
        ],
        OrderChange::PaymentFailed => vec![n(
            Side::Buyer,
            "Payment failed",
            format!(
                "Your payment for \"{title}\" did not go through: {}. Try another card.",
                order.payment_error.as_deref().unwrap_or("declined")
            ),
        )],
        OrderChange::RequirementsSubmitted => vec![n(
            Side::Seller,
            "Requirements submitted",
            format!(
                "The buyer sent the requirements for \"{title}\". The order is due {}.",
                due(order)
            ),
        )],
        OrderChange::Delivered => vec![n(
            Side::Buyer,
            "Your order was delivered",
            format!(
                "The seller delivered \"{title}\". Accept it or ask for a revision; it completes by itself after a few days without an answer."
            ),
        )],
        OrderChange::RevisionRequested => vec![n(
            Side::Seller,
            "Revision requested",
            format!(
                "The buyer asked for a revision of \"{title}\" ({} of {} used).",
                order.revisions_used, order.terms.revisions
            ),
        )],
        OrderChange::ExtensionRequested => vec![n(
            Side::Buyer,
            "Extension requested",
            format!(
                "The seller asked for {} more day(s) for \"{title}\". Approve or reject it.",
                order.extension.as_ref().map_or(0, |e| e.days)
            ),
        )],
        OrderChange::ExtensionApproved => vec![n(
            Side::Seller,
            "Extension approved",
            format!("The buyer approved your extension. \"{title}\" is now due {}.", due(order)),
        )],
        OrderChange::ExtensionRejected => vec![n(
            Side::Seller,
            "Extension rejected",
            format!("The buyer rejected your extension. \"{title}\" is still due {}.", due(order)),
        )],
        OrderChange::CancellationRequested => {
            let by = order.cancellation.as_ref().map_or(Side::Buyer, |c| c.by);
            let to = match by {
                Side::Buyer => Side::Seller,
                Side::Seller => Side::Buyer,
            };
            vec![n(
                to,
                "Cancellation requested",
                format!("The other side asked to cancel \"{title}\". Accept or decline."),
            )]
        }
        // The request is gone from the order by now: both sides hear it.
        OrderChange::CancellationDeclined => both(
            order,
            change,
            "Cancellation declined",
            format!("The request to cancel \"{title}\" was declined; the order goes on."),
        ),
        OrderChange::Cancelled => both(
            order,
            change,
            "Order cancelled",
            if order.refunded_minor > 0 {
                format!(
                    "\"{title}\" was cancelled. The buyer is refunded {}.",
                    money(order, order.refunded_minor)
                )
            } else {
                format!("\"{title}\" was cancelled.")
            },
        ),
        OrderChange::Late => both(
            order,
            change,
            "Order is late",
            format!(
                "\"{title}\" is past its delivery date. The buyer may now cancel it for a full refund."
            ),
        ),
        OrderChange::Completed => both(
            order,
            change,
            "Order completed",
            format!("\"{title}\" is complete. Thank you!"),
        ),
        OrderChange::Disputed => both(
            order,
            change,
            "Order disputed",
            format!("A dispute was opened on \"{title}\". An admin will resolve it; the order is on hold until then."),
        ),
        OrderChange::DisputeResolved => both(
            order,
            change,
            "Dispute resolved",
            if order.refunded_minor > 0 {
                format!(
                    "The dispute on \"{title}\" was resolved: the buyer is refunded {}.",
                    money(order, order.refunded_minor)
                )
            } else {
                format!("The dispute on \"{title}\" was resolved: the order is complete.")
            },
        ),
    }
}

fn both(order: &Order, change: OrderChange, title: &str, body: String) -> Vec<Notice> {
    [Side::Buyer, Side::Seller]
        .into_iter()
        .map(|to| order_notice(order, to, change.as_str(), title, body.clone()))
        .collect()
}

fn due(order: &Order) -> String {
    order.due_at.map_or_else(
        || "later".to_owned(),
        |at| at.format("on %-d %B %Y at %H:%M UTC").to_string(),
    )
}

fn money(order: &Order, minor: i64) -> domain::money::Money {
    domain::money::Money {
        amount_minor: minor,
        currency: order.amounts.total.currency,
    }
}

/// Who hears about an offer change.
pub fn offer_notices(offer: &Offer) -> Vec<Notice> {
    let (to, kind, title, body) = match offer.status {
        OfferStatus::Pending => (
            offer.buyer_id,
            "received",
            "New offer",
            format!(
                "You received an offer: \"{}\" for {}, delivered in {} day(s).",
                offer.title, offer.price, offer.delivery_days
            ),
        ),
        OfferStatus::Accepted => (
            offer.seller_id,
            "accepted",
            "Offer accepted",
            format!("Your offer \"{}\" was accepted.", offer.title),
        ),
        OfferStatus::Declined => (
            offer.seller_id,
            "declined",
            "Offer declined",
            format!("Your offer \"{}\" was declined.", offer.title),
        ),
        OfferStatus::Expired => (
            offer.seller_id,
            "expired",
            "Offer expired",
            format!("Your offer \"{}\" expired without an answer.", offer.title),
        ),
        OfferStatus::Withdrawn => (
            offer.buyer_id,
            "withdrawn",
            "Offer withdrawn",
            format!("The offer \"{}\" was withdrawn.", offer.title),
        ),
    };
    vec![Notice {
        user: to,
        notification: Notification {
            kind: format!("offer.{kind}"),
            title: title.to_owned(),
            body,
            order_id: offer.order_id,
            offer_id: Some(offer.id),
            conversation_id: Some(offer.conversation_id),
            gig_id: None,
        },
    }]
}
