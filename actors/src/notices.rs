//! What each side of an order or an offer is told when it changes: the
//! in-app notification and the e-mail say the same thing.

use domain::ids::UserId;
use domain::live::Notification;
use domain::mail::AccountMail;
use domain::offer::{Offer, OfferStatus};
use domain::order::{Order, OrderChange, Side};
use domain::ports::AccountStore;

use crate::mail::MailQueue;

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

/// Queues the e-mail of a notice, keyed by `source` (what caused it), the
/// notice's kind and the user, so handling the same cause twice queues the
/// mail once. Returns whether it was new (false also when the user cannot
/// be mailed: unknown, deleted or suspended). Failures are logged: the
/// change the notice is about is stored already.
pub async fn mail_notice(
    accounts: &dyn AccountStore,
    mail: &MailQueue,
    base: &str,
    notice: &Notice,
    source: &str,
) -> bool {
    let user = match accounts.user_by_id(notice.user).await {
        Ok(Some(user)) if user.can_sign_in() => user,
        Ok(_) => return false,
        Err(error) => {
            tracing::warn!(%error, "reading a user to e-mail failed");
            return false;
        }
    };
    let n = &notice.notification;
    let base = base.trim_end_matches('/');
    let (link, action) = match (n.order_id, n.conversation_id) {
        (Some(order), _) => (format!("{base}/orders/{order}"), "View the order"),
        (None, Some(conversation)) => (
            format!("{base}/conversations/{conversation}"),
            "Open the conversation",
        ),
        (None, None) => (base.to_owned(), "Open Marketplace"),
    };
    let key = format!("notice:{source}:{}:{}", n.kind, user.id);
    let queued = AccountMail::Notice {
        username: user.username.as_str().to_owned(),
        kind: n.kind.clone(),
        subject: n.title.clone(),
        body: n.body.clone(),
        action: action.to_owned(),
        link,
    };
    match mail.enqueue(key, &user, queued).await {
        Ok(new) => new,
        Err(error) => {
            tracing::error!(%error, kind = %n.kind, user_id = %user.id, "queueing a notice e-mail failed");
            false
        }
    }
}

#[cfg(test)]
mod coverage_tests {
    //! Every order change and offer event someone should hear of tells
    //! them; the e-mail (`OrderService::mail`) goes out for each notice.

    use chrono::{TimeDelta, TimeZone, Utc};
    use domain::ids::ConversationId;
    use domain::mail::MailCategory;
    use domain::money::{Currency, Money};
    use domain::offer::OfferTerms;
    use domain::order::{place, OrderTerms};

    use super::*;

    /// Every change; a new variant fails to compile here until it is
    /// listed (and its notices thought about).
    fn every_change() -> Vec<OrderChange> {
        use OrderChange::*;
        let all = vec![
            Placed,
            Paid,
            PaymentFailed,
            RequirementsSubmitted,
            Delivered,
            RevisionRequested,
            ExtensionRequested,
            ExtensionApproved,
            ExtensionRejected,
            CancellationRequested,
            CancellationDeclined,
            Cancelled,
            Late,
            Completed,
            Disputed,
            DisputeResolved,
            Cleared,
        ];
        for change in &all {
            match change {
                Placed
                | Paid
                | PaymentFailed
                | RequirementsSubmitted
                | Delivered
                | RevisionRequested
                | ExtensionRequested
                | ExtensionApproved
                | ExtensionRejected
                | CancellationRequested
                | CancellationDeclined
                | Cancelled
                | Late
                | Completed
                | Disputed
                | DisputeResolved
                | Cleared => {}
            }
        }
        all
    }

    fn usd(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: Currency::MARKETPLACE,
        }
    }

    #[test]
    fn every_order_change_but_placing_tells_a_party() {
        let now = Utc.with_ymd_and_hms(2030, 1, 2, 12, 0, 0).unwrap();
        let (buyer, seller) = (UserId::new(), UserId::new());
        let order = place(
            buyer,
            seller,
            Some(ConversationId::new()),
            OrderTerms {
                title: "A logo".into(),
                description: "A round logo".into(),
                gig_id: None,
                package: None,
                offer_id: None,
                delivery_days: 3,
                revisions: 2,
            },
            usd(2500),
            now,
        );
        for change in every_change() {
            let told = notices(&order, change);
            if change == OrderChange::Placed {
                // Not news until it is paid.
                assert!(told.is_empty());
                continue;
            }
            assert!(!told.is_empty(), "{change:?} tells nobody");
            for notice in told {
                let n = &notice.notification;
                assert!(order.parties().contains(&notice.user), "{change:?}");
                assert_eq!(n.kind, format!("order.{}", change.as_str()));
                assert_eq!(MailCategory::of_event(&n.kind), MailCategory::Orders);
                assert!(!n.title.is_empty() && !n.body.is_empty(), "{change:?}");
                assert_eq!(n.order_id, Some(order.id));
            }
        }
    }

    #[test]
    fn every_offer_event_tells_the_other_party() {
        let now = Utc.with_ymd_and_hms(2030, 1, 2, 12, 0, 0).unwrap();
        let (buyer, seller) = (UserId::new(), UserId::new());
        let pending = Offer::new(
            ConversationId::new(),
            seller,
            buyer,
            OfferTerms {
                gig_id: None,
                title: "A logo".into(),
                description: "Three concepts".into(),
                price: usd(9000),
                delivery_days: 5,
                revisions: 2,
                expires_in: TimeDelta::days(7),
            },
            now,
        );
        for (status, to, kind) in [
            (OfferStatus::Pending, buyer, "offer.received"),
            (OfferStatus::Accepted, seller, "offer.accepted"),
            (OfferStatus::Declined, seller, "offer.declined"),
            (OfferStatus::Expired, seller, "offer.expired"),
            (OfferStatus::Withdrawn, buyer, "offer.withdrawn"),
        ] {
            let offer = Offer {
                status,
                ..pending.clone()
            };
            let told = offer_notices(&offer);
            assert_eq!(told.len(), 1, "{status:?}");
            assert_eq!(told[0].user, to, "{status:?}");
            let n = &told[0].notification;
            assert_eq!(n.kind, kind);
            assert_eq!(MailCategory::of_event(&n.kind), MailCategory::Offers);
            assert_eq!(n.offer_id, Some(offer.id));
            assert_eq!(n.conversation_id, Some(offer.conversation_id));
        }
    }
}
