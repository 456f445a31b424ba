//! The e-mails the marketplace sends about an account and what happens in
//! it (orders, offers).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What an e-mail is about, for the user's e-mail preferences. Essential
/// mail (the account's security, moderation) is always sent; the rest can be
/// turned off per category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailCategory {
    /// Verification, password reset, password changed.
    Account,
    /// Suspension, reinstatement, warnings, removed gigs.
    Moderation,
    /// Every order transition.
    Orders,
    /// Custom offers received, accepted, declined, withdrawn, expired.
    Offers,
    /// Reviews received, reminders to review, and the seller's level
    /// changing.
    Reviews,
    /// The daily digest of new gigs matching saved searches.
    SavedSearches,
}

impl MailCategory {
    pub const ALL: [MailCategory; 6] = [
        MailCategory::Account,
        MailCategory::Moderation,
        MailCategory::Orders,
        MailCategory::Offers,
        MailCategory::Reviews,
        MailCategory::SavedSearches,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailCategory::Account => "account",
            MailCategory::Moderation => "moderation",
            MailCategory::Orders => "orders",
            MailCategory::Offers => "offers",
            MailCategory::Reviews => "reviews",
            MailCategory::SavedSearches => "saved_searches",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Sent whatever the user's preferences say.
    pub fn is_essential(self) -> bool {
        matches!(self, MailCategory::Account | MailCategory::Moderation)
    }

    /// What mail of this category is about, to finish "You receive ..."
    /// or "You will no longer receive ..." (mail footers, the unsubscribe
    /// page, the preference list).
    pub fn summary(self) -> &'static str {
        match self {
            MailCategory::Account => "e-mails about the security of your account",
            MailCategory::Moderation => "notices from the Marketplace team",
            MailCategory::Orders => "e-mails about your orders",
            MailCategory::Offers => "e-mails about custom offers",
            MailCategory::Reviews => "e-mails about reviews",
            MailCategory::SavedSearches => "digests of your saved searches",
        }
    }

    /// The category of a notice, by the prefix of its event kind
    /// (`order.delivered`). Notices of any other kind come from the
    /// Marketplace team (`account.suspended`, `gig.removed`): moderation,
    /// which is essential, so an unknown kind is never silenced.
    pub fn of_event(kind: &str) -> Self {
        match kind.split_once('.').map(|(prefix, _)| prefix) {
            Some("order") => MailCategory::Orders,
            Some("offer") => MailCategory::Offers,
            Some("review" | "level") => MailCategory::Reviews,
            Some("saved_search") => MailCategory::SavedSearches,
            _ => MailCategory::Moderation,
        }
    }
}

/// An account e-mail, with what its templates need.
///
/// Stored as JSON in the mail outbox until it is sent, tagged by `kind`
/// (the same names [`AccountMail::kind`] returns): tag and field names are
/// stored, so add variants and optional fields, never rename them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountMail {
    /// Confirms the address after registration; `link` holds a single-use token.
    VerifyEmail {
        username: String,
        link: String,
        valid_hours: i64,
    },
    /// Lets the owner choose a new password; `link` holds a single-use token.
    ResetPassword {
        username: String,
        link: String,
        valid_minutes: i64,
    },
    /// Tells the owner their password changed, in case it was not them.
    PasswordChanged {
        username: String,
        changed_at: DateTime<Utc>,
    },
    /// Something happened that the user should hear about (an order was
    /// placed, delivered, completed...): one headline, one paragraph, one
    /// link.
    Notice {
        username: String,
        /// What happened (`order.delivered`), for logs and metrics. Stored
        /// as `event`, since `kind` is the tag.
        #[serde(rename = "event")]
        kind: String,
        subject: String,
        body: String,
        /// The button's label.
        action: String,
        link: String,
    },
    /// The daily digest of new gigs that matched the user's saved searches
    /// (event `saved_search.digest`): one section per search.
    SavedSearchDigest {
        username: String,
        sections: Vec<DigestSection>,
        /// Where the user manages their saved searches.
        link: String,
    },
}

/// One saved search in a digest: its name and the new gigs it matched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestSection {
    pub name: String,
    pub gigs: Vec<DigestGig>,
    /// More gigs matched than are listed.
    #[serde(default)]
    pub more: u32,
}

/// One gig in a digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestGig {
    pub title: String,
    /// The "starting at" price.
    pub price: crate::money::Money,
    pub link: String,
}

impl AccountMail {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountMail::VerifyEmail { .. } => "verify_email",
            AccountMail::ResetPassword { .. } => "reset_password",
            AccountMail::PasswordChanged { .. } => "password_changed",
            AccountMail::Notice { .. } => "notice",
            AccountMail::SavedSearchDigest { .. } => "saved_search_digest",
        }
    }

    /// The link inside the mail, if it carries one.
    pub fn link(&self) -> Option<&str> {
        match self {
            AccountMail::VerifyEmail { link, .. }
            | AccountMail::ResetPassword { link, .. }
            | AccountMail::Notice { link, .. }
            | AccountMail::SavedSearchDigest { link, .. } => Some(link),
            AccountMail::PasswordChanged { .. } => None,
        }
    }

    /// What the mail is about, for the recipient's e-mail preferences.
    pub fn category(&self) -> MailCategory {
        match self {
            AccountMail::VerifyEmail { .. }
            | AccountMail::ResetPassword { .. }
            | AccountMail::PasswordChanged { .. } => MailCategory::Account,
            AccountMail::Notice { kind, .. } => MailCategory::of_event(kind),
            AccountMail::SavedSearchDigest { .. } => MailCategory::SavedSearches,
        }
    }
}

#[cfg(test)]
mod category_tests {
    use super::{AccountMail, MailCategory};

    fn notice(kind: &str) -> AccountMail {
        AccountMail::Notice {
            username: "ada".into(),
            kind: kind.into(),
            subject: "s".into(),
            body: "b".into(),
            action: "a".into(),
            link: "https://marketplace.example/".into(),
        }
    }

    #[test]
    fn account_mail_is_account() {
        let account = [
            AccountMail::VerifyEmail {
                username: "ada".into(),
                link: "l".into(),
                valid_hours: 24,
            },
            AccountMail::ResetPassword {
                username: "ada".into(),
                link: "l".into(),
                valid_minutes: 30,
            },
            AccountMail::PasswordChanged {
                username: "ada".into(),
                changed_at: chrono::DateTime::UNIX_EPOCH,
            },
        ];
        for mail in account {
            assert_eq!(mail.category(), MailCategory::Account, "{mail:?}");
            assert!(mail.category().is_essential());
        }
    }

    #[test]
    fn notices_go_by_their_kind() {
        for (kind, category) in [
            ("order.paid", MailCategory::Orders),
            ("order.dispute_resolved", MailCategory::Orders),
            ("offer.received", MailCategory::Offers),
            ("offer.expired", MailCategory::Offers),
            ("review.received", MailCategory::Reviews),
            ("review.reminder", MailCategory::Reviews),
            ("level.changed", MailCategory::Reviews),
            ("saved_search.digest", MailCategory::SavedSearches),
            // What the Marketplace team sends (`gateway::admin::ops`).
            ("account.suspended", MailCategory::Moderation),
            ("account.reinstated", MailCategory::Moderation),
            ("account.warning", MailCategory::Moderation),
            ("gig.removed", MailCategory::Moderation),
            ("gig.restored", MailCategory::Moderation),
            // Unknown or malformed kinds are never silenced.
            ("orders.paid", MailCategory::Moderation),
            ("order", MailCategory::Moderation),
            ("", MailCategory::Moderation),
            ("ORDER.paid", MailCategory::Moderation),
        ] {
            assert_eq!(notice(kind).category(), category, "{kind}");
        }
    }

    #[test]
    fn only_account_and_moderation_are_essential() {
        let essential: Vec<_> = MailCategory::ALL
            .into_iter()
            .filter(|c| c.is_essential())
            .collect();
        assert_eq!(essential, [MailCategory::Account, MailCategory::Moderation]);
        for category in MailCategory::ALL {
            assert_eq!(MailCategory::parse(category.as_str()), Some(category));
            assert!(!category.summary().is_empty());
        }
        assert_eq!(MailCategory::parse("Orders"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::AccountMail;

    /// The stored form: changing it strands mail already in outboxes.
    #[test]
    fn stored_form_is_stable() {
        let mail = AccountMail::Notice {
            username: "ada".into(),
            kind: "order.delivered".into(),
            subject: "Delivered".into(),
            body: "Your order was delivered.".into(),
            action: "View the order".into(),
            link: "https://marketplace.example/orders/1".into(),
        };
        let json = serde_json::to_value(&mail).unwrap();
        assert_eq!(json["kind"], "notice");
        assert_eq!(json["event"], "order.delivered");
        assert_eq!(serde_json::from_value::<AccountMail>(json).unwrap(), mail);
        let verify = AccountMail::VerifyEmail {
            username: "ada".into(),
            link: "l".into(),
            valid_hours: 24,
        };
        let json = serde_json::to_value(&verify).unwrap();
        assert_eq!(json["kind"], verify.kind());
        assert_eq!(serde_json::from_value::<AccountMail>(json).unwrap(), verify);
    }
}

#[cfg(test)]
mod digest_tests {
    use super::{AccountMail, DigestGig, DigestSection, MailCategory};
    use crate::money::{Currency, Money};

    /// The stored form of the saved-search digest.
    #[test]
    fn digest_stored_form_is_stable() {
        let mail = AccountMail::SavedSearchDigest {
            username: "ada".into(),
            sections: vec![DigestSection {
                name: "Logos".into(),
                gigs: vec![DigestGig {
                    title: "I will design your logo".into(),
                    price: Money {
                        amount_minor: 2500,
                        currency: Currency::Usd,
                    },
                    link: "https://marketplace.example/gigs/1".into(),
                }],
                more: 0,
            }],
            link: "https://marketplace.example/saved-searches".into(),
        };
        let json = serde_json::to_value(&mail).unwrap();
        assert_eq!(json["kind"], "saved_search_digest");
        assert_eq!(json["kind"], mail.kind());
        assert_eq!(
            json["sections"][0]["gigs"][0]["price"]["amount_minor"],
            2500
        );
        assert_eq!(serde_json::from_value::<AccountMail>(json).unwrap(), mail);
        assert_eq!(mail.category(), MailCategory::SavedSearches);
        assert_eq!(
            mail.link(),
            Some("https://marketplace.example/saved-searches")
        );
    }
}
