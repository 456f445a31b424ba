//! Custom offers: terms a seller proposes to a buyer inside a conversation.
//! The buyer accepts (and then checks out), declines or lets it expire; the
//! seller may withdraw it while it waits.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ConversationId, GigId, OfferId, OrderId, UserId};
use crate::money::{Currency, Money};
use crate::validation::{FieldError, ValidationErrors};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    Pending,
    Accepted,
    Declined,
    Withdrawn,
    Expired,
}

impl OfferStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferStatus::Pending => "pending",
            OfferStatus::Accepted => "accepted",
            OfferStatus::Declined => "declined",
            OfferStatus::Withdrawn => "withdrawn",
            OfferStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            OfferStatus::Pending,
            OfferStatus::Accepted,
            OfferStatus::Declined,
            OfferStatus::Withdrawn,
            OfferStatus::Expired,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub id: OfferId,
    pub conversation_id: ConversationId,
    pub seller_id: UserId,
    pub buyer_id: UserId,
    /// The gig the offer is based on, if any.
    pub gig_id: Option<GigId>,
    pub title: String,
    pub description: String,
    pub price: Money,
    pub delivery_days: u32,
    pub revisions: u32,
    pub expires_at: DateTime<Utc>,
    pub status: OfferStatus,
    /// The order checked out from the accepted offer.
    pub order_id: Option<OrderId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// The least and most an offer may cost, in minor units: $5.00 to
/// $50,000.00, as gig packages.
pub const PRICE_MINOR: (i64, i64) = (500, 5_000_000);
pub const MAX_DELIVERY_DAYS: i64 = 90;
pub const MAX_REVISIONS: i64 = 20;
/// How long an offer may stay open: 1 to 30 days (7 unless said).
pub const EXPIRY_DAYS: (i64, i64) = (1, 30);
pub const DEFAULT_EXPIRY_DAYS: i64 = 7;
pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// An offer as a seller sends it, before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferInput {
    pub gig_id: Option<GigId>,
    pub title: String,
    pub description: String,
    pub price_minor: i64,
    pub currency: String,
    pub delivery_days: i64,
    pub revisions: i64,
    pub expires_in_days: Option<i64>,
}

/// A validated offer, ready to be sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferTerms {
    pub gig_id: Option<GigId>,
    pub title: String,
    pub description: String,
    pub price: Money,
    pub delivery_days: u32,
    pub revisions: u32,
    pub expires_in: TimeDelta,
}

fn bounded(field: &str, value: i64, (min, max): (i64, i64)) -> Result<u32, FieldError> {
    if (min..=max).contains(&value) {
        u32::try_from(value).map_err(|_| FieldError::new(field, "out_of_range", "out of range"))
    } else {
        Err(FieldError::new(
            field,
            "out_of_range",
            format!("must be from {min} to {max}"),
        ))
    }
}

fn words(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        Err(FieldError::new(field, "required", "must not be empty"))
    } else if value.chars().count() > max {
        Err(FieldError::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ))
    } else {
        Ok(value.to_owned())
    }
}

impl OfferInput {
    pub fn validate(&self) -> Result<OfferTerms, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let title = errors.check(words("title", &self.title, MAX_TITLE_CHARS));
        let description = errors.check(words(
            "description",
            &self.description,
            MAX_DESCRIPTION_CHARS,
        ));
        let currency = errors.check(
            Currency::parse(&self.currency)
                .filter(|c| *c == Currency::MARKETPLACE)
                .ok_or_else(|| {
                    FieldError::new(
                        "currency",
                        "unsupported",
                        format!("prices are in {}", Currency::MARKETPLACE.code()),
                    )
                }),
        );
        let price = errors.check(bounded("price_minor", self.price_minor, PRICE_MINOR));
        let delivery_days = errors.check(bounded(
            "delivery_days",
            self.delivery_days,
            (1, MAX_DELIVERY_DAYS),
        ));
        let revisions = errors.check(bounded("revisions", self.revisions, (0, MAX_REVISIONS)));
        let expiry = errors.check(bounded(
            "expires_in_days",
            self.expires_in_days.unwrap_or(DEFAULT_EXPIRY_DAYS),
            EXPIRY_DAYS,
        ));
        errors.finish(|| {
            Some(OfferTerms {
                gig_id: self.gig_id,
                title: title?,
                description: description?,
                price: Money {
                    amount_minor: i64::from(price?),
                    currency: currency?,
                },
                delivery_days: delivery_days?,
                revisions: revisions?,
                expires_in: TimeDelta::days(i64::from(expiry?)),
            })
        })
    }
}

impl Offer {
    /// A new pending offer from `seller_id` to `buyer_id`.
    pub fn new(
        conversation_id: ConversationId,
        seller_id: UserId,
        buyer_id: UserId,
        terms: OfferTerms,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: OfferId::new(),
            conversation_id,
            seller_id,
            buyer_id,
            gig_id: terms.gig_id,
            title: terms.title,
            description: terms.description,
            price: terms.price,
            delivery_days: terms.delivery_days,
            revisions: terms.revisions,
            expires_at: now + terms.expires_in,
            status: OfferStatus::Pending,
            order_id: None,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn parties(&self) -> [UserId; 2] {
        [self.buyer_id, self.seller_id]
    }

    /// Whether `user` may see the offer.
    pub fn is_party(&self, user: UserId) -> bool {
        user == self.buyer_id || user == self.seller_id
    }
}

/// A change to an offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferCommand {
    Accept,
    Decline,
    Withdraw,
    /// The clock: a pending offer past its expiry.
    Expire,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("no such offer")]
    NotFound,
    #[error("only the {0} may do this")]
    NotAllowed(&'static str),
    #[error("the offer is {0}")]
    NotPending(&'static str),
    #[error("the offer expired")]
    Expired,
}

/// The rule for answering an offer. `by` is `None` for the clock.
/// `Ok(None)`: nothing to do (the clock ticked early or late).
pub fn decide(
    offer: &Offer,
    by: Option<UserId>,
    command: OfferCommand,
    now: DateTime<Utc>,
) -> Result<Option<Offer>, OfferError> {
    if let Some(user) = by {
        if !offer.is_party(user) {
            return Err(OfferError::NotFound);
        }
    }
    let expired = now >= offer.expires_at;
    let status = match command {
        OfferCommand::Expire => {
            if by.is_some() || offer.status != OfferStatus::Pending || !expired {
                return Ok(None);
            }
            OfferStatus::Expired
        }
        OfferCommand::Accept | OfferCommand::Decline | OfferCommand::Withdraw => {
            let (who, allowed, next) = match command {
                OfferCommand::Accept => ("buyer", offer.buyer_id, OfferStatus::Accepted),
                OfferCommand::Decline => ("buyer", offer.buyer_id, OfferStatus::Declined),
                _ => ("seller", offer.seller_id, OfferStatus::Withdrawn),
            };
            if by != Some(allowed) {
                return Err(OfferError::NotAllowed(who));
            }
            if offer.status != OfferStatus::Pending {
                return Err(OfferError::NotPending(offer.status.as_str()));
            }
            if expired {
                return Err(OfferError::Expired);
            }
            next
        }
    };
    Ok(Some(Offer {
        status,
        updated_at: now,
        ..offer.clone()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> OfferInput {
        OfferInput {
            gig_id: None,
            title: "Logo with three concepts".into(),
            description: "Three concepts, two rounds of changes.".into(),
            price_minor: 15_000,
            currency: "USD".into(),
            delivery_days: 5,
            revisions: 2,
            expires_in_days: None,
        }
    }

    fn offer(now: DateTime<Utc>) -> Offer {
        Offer::new(
            ConversationId::new(),
            UserId::new(),
            UserId::new(),
            input().validate().unwrap(),
            now,
        )
    }

    #[test]
    fn validation_reports_every_bad_field() {
        let bad = OfferInput {
            title: " ".into(),
            price_minor: 499,
            currency: "EUR".into(),
            delivery_days: 0,
            revisions: 21,
            expires_in_days: Some(31),
            ..input()
        };
        let errors = bad.validate().unwrap_err();
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "title",
                "currency",
                "price_minor",
                "delivery_days",
                "revisions",
                "expires_in_days"
            ]
        );
        let terms = input().validate().unwrap();
        assert_eq!(terms.expires_in, TimeDelta::days(7));
    }

    #[test]
    fn only_the_right_side_answers() {
        let now = Utc::now();
        let offer = offer(now);
        let stranger = UserId::new();
        assert_eq!(
            decide(&offer, Some(stranger), OfferCommand::Accept, now),
            Err(OfferError::NotFound)
        );
        assert_eq!(
            decide(&offer, Some(offer.seller_id), OfferCommand::Accept, now),
            Err(OfferError::NotAllowed("buyer"))
        );
        assert_eq!(
            decide(&offer, Some(offer.buyer_id), OfferCommand::Withdraw, now),
            Err(OfferError::NotAllowed("seller"))
        );
        let accepted = decide(&offer, Some(offer.buyer_id), OfferCommand::Accept, now)
            .unwrap()
            .unwrap();
        assert_eq!(accepted.status, OfferStatus::Accepted);
        assert_eq!(
            decide(
                &accepted,
                Some(accepted.seller_id),
                OfferCommand::Withdraw,
                now
            ),
            Err(OfferError::NotPending("accepted"))
        );
    }

    #[test]
    fn expiry_ends_a_pending_offer() {
        let now = Utc::now();
        let offer = offer(now);
        assert_eq!(decide(&offer, None, OfferCommand::Expire, now), Ok(None));
        let later = offer.expires_at;
        assert_eq!(
            decide(&offer, Some(offer.buyer_id), OfferCommand::Accept, later),
            Err(OfferError::Expired)
        );
        let expired = decide(&offer, None, OfferCommand::Expire, later)
            .unwrap()
            .unwrap();
        assert_eq!(expired.status, OfferStatus::Expired);
        assert_eq!(
            decide(&expired, None, OfferCommand::Expire, later),
            Ok(None)
        );
    }
}
