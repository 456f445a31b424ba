//! Accounts: who someone is on the marketplace and what they may do.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::validation::{text, FieldError};

/// An e-mail address, syntactically valid and stored lowercased so two
/// spellings of one address cannot own two accounts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_lowercase();
        if value.is_empty() {
            return Err(FieldError::new("email", "required", "must not be empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                "email",
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        let plain = !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        let valid = plain
            && email_address::EmailAddress::from_str(&value)
                .ok()
                .filter(|address| {
                    // A marketplace account needs a routable address: a dotted
                    // domain, no IP literal, no display name.
                    let domain = address.domain();
                    address.as_str() == value
                        && domain.contains('.')
                        && !domain.starts_with('[')
                        && !domain.ends_with('.')
                })
                .is_some();
        if valid {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                "email",
                "invalid",
                "is not a valid e-mail address",
            ))
        }
    }

    /// Restores an address read back from storage, where it was stored valid.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A username: 3 to 30 of `a-z 0-9 _ -`. Input is lowercased first, so
/// usernames are unique regardless of case.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub const MIN_LEN: usize = 3;
    pub const MAX_LEN: usize = 30;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_lowercase();
        let len = value.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(FieldError::new(
                "username",
                if len < Self::MIN_LEN {
                    "too_short"
                } else {
                    "too_long"
                },
                format!(
                    "must be {} to {} characters long",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(FieldError::new(
                "username",
                "invalid",
                "may only contain letters a-z, digits, '_' and '-'",
            ));
        }
        Ok(Self(value))
    }

    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password as typed, 8 to 128 characters. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;
    pub const MAX_LEN: usize = 128;

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(FieldError::new(
                field,
                "too_short",
                format!("must be at least {} characters", Self::MIN_LEN),
            ));
        }
        if len > Self::MAX_LEN {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        Ok(Self(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// What an account may do. Every account can buy; a seller profile makes a
/// seller; admins are created by an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// An ISO 3166-1 alpha-2 country code, stored uppercase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Country(String);

impl Country {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_ascii_uppercase();
        if value.len() == 2 && value.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(Self(value))
        } else {
            Err(FieldError::new(
                "country",
                "invalid",
                "must be a two-letter ISO 3166-1 country code",
            ))
        }
    }

    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name shown instead of the username, 1 to 50 characters.
pub fn parse_display_name(raw: &str) -> Result<String, FieldError> {
    text("display_name", raw, 1, 50)
}

/// A short public text about the person, up to 600 characters.
pub fn parse_bio(raw: &str) -> Result<String, FieldError> {
    text("bio", raw, 0, 600)
}

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
    pub display_name: Option<String>,
    pub country: Option<Country>,
    pub bio: Option<String>,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub suspended_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// Whether this account may sign in and act: not suspended, not deleted.
    pub fn can_sign_in(&self) -> bool {
        self.suspended_at.is_none() && self.deleted_at.is_none()
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A new account about to be stored.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
    /// Set for accounts created by an operator, whose address is trusted.
    pub email_verified_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A change to the editable parts of an account. `None` leaves a field alone;
/// `Some(None)` clears it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    pub display_name: Option<Option<String>>,
    pub country: Option<Option<Country>>,
    pub bio: Option<Option<String>>,
}

impl ProfileUpdate {
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.country.is_none() && self.bio.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(
            Username::parse(" Alice_01 ").map(|u| u.0),
            Ok("alice_01".into())
        );
        assert_eq!(Username::parse("ab").map_err(|e| e.code), Err("too_short"));
        assert_eq!(
            Username::parse(&"a".repeat(31)).map_err(|e| e.code),
            Err("too_long")
        );
        assert_eq!(
            Username::parse("al ice").map_err(|e| e.code),
            Err("invalid")
        );
        assert_eq!(Username::parse("ålice").map_err(|e| e.code), Err("invalid"));
        assert!(Username::parse(&"a".repeat(30)).is_ok());
    }

    #[test]
    fn emails_are_lowercased_and_need_a_dotted_domain() {
        assert_eq!(
            Email::parse(" Bob@Example.COM ").map(|e| e.0),
            Ok("bob@example.com".into())
        );
        for bad in [
            "",
            "bob",
            "bob@",
            "@example.com",
            "bob@localhost",
            "Bob <bob@example.com>",
            "bob@[127.0.0.1]",
            "a b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn passwords_count_characters_not_bytes() {
        assert!(Password::parse("password", "short").is_err());
        assert!(Password::parse("password", "éééééééé").is_ok());
        assert!(Password::parse("password", &"x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("p", "hunter2hunter2")),
            "Ok(Password([redacted]))"
        );
    }

    #[test]
    fn countries_are_two_letters() {
        assert_eq!(Country::parse("de").map(|c| c.0), Ok("DE".into()));
        assert!(Country::parse("DEU").is_err());
        assert!(Country::parse("1A").is_err());
    }
}
