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
    /// Reviews received and reminders to review.
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
}

impl AccountMail {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountMail::VerifyEmail { .. } => "verify_email",
            AccountMail::ResetPassword { .. } => "reset_password",
            AccountMail::PasswordChanged { .. } => "password_changed",
            AccountMail::Notice { .. } => "notice",
        }
    }

    /// The link inside the mail, if it carries one.
    pub fn link(&self) -> Option<&str> {
        match self {
            AccountMail::VerifyEmail { link, .. }
            | AccountMail::ResetPassword { link, .. }
            | AccountMail::Notice { link, .. } => Some(link),
            AccountMail::PasswordChanged { .. } => None,
        }
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
