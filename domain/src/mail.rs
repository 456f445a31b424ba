//! The e-mails the marketplace sends about an account.

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
}

impl AccountMail {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountMail::VerifyEmail { .. } => "verify_email",
            AccountMail::ResetPassword { .. } => "reset_password",
            AccountMail::PasswordChanged { .. } => "password_changed",
        }
    }

    /// The link inside the mail, if it carries one.
    pub fn link(&self) -> Option<&str> {
        match self {
            AccountMail::VerifyEmail { link, .. } | AccountMail::ResetPassword { link, .. } => {
                Some(link)
            }
            AccountMail::PasswordChanged { .. } => None,
        }
    }
}
