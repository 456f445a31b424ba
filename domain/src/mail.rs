//! The e-mails the marketplace sends about an account and what happens in
//! it (orders, offers).

use chrono::{DateTime, Utc};

/// An account e-mail, with what its templates need.
#[derive(Clone, Debug, PartialEq, Eq)]
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
        /// What happened (`order.delivered`), for logs and metrics.
        kind: &'static str,
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
