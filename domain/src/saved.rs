//! Favourites and saved searches: gigs a buyer keeps to come back to, and
//! searches that tell them about new gigs, live and in a daily e-mail.
//!
//! The search of a saved search is opaque here: [`SavedQuery`] holds its
//! parameters as the gateway wrote them (a JSON object with the names
//! `GET /search/gigs` takes); the gateway parses them and the search tier
//! matches them. What is decided here: names and limits, the edits a saved
//! search takes, when a gig counts as new for a search, and when the next
//! daily digest is due.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Days, NaiveTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{GigId, UserId};
use crate::validation::{text, FieldError};

/// Longest saved search name, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// Saved searches one user may keep, unless configured otherwise.
pub const DEFAULT_MAX_SAVED_SEARCHES: u32 = 50;
/// Favourites one user may keep, unless configured otherwise.
pub const DEFAULT_MAX_FAVOURITES: u32 = 1000;

/// Identifies a saved search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SavedSearchId(Uuid);

impl SavedSearchId {
    /// A new, time-ordered identifier (UUID v7).
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for SavedSearchId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SavedSearchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for SavedSearchId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A saved search's name: 1 to [`MAX_NAME_CHARS`] characters, trimmed,
/// without control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchName(String);

impl SearchName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        text("name", raw, 1, MAX_NAME_CHARS).map(Self)
    }

    /// A name read back from the store, valid when it was written.
    pub fn from_trusted(name: String) -> Self {
        Self(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SearchName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The search parameters of a saved search: a JSON object with the names
/// of `GET /search/gigs`, written by the gateway once it parsed them, and
/// stored as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedQuery(String);

impl SavedQuery {
    pub fn from_json(json: String) -> Self {
        Self(json)
    }

    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// A search a user saved, and what it tells them about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedSearch {
    pub id: SavedSearchId,
    pub user_id: UserId,
    pub name: SearchName,
    pub query: SavedQuery,
    /// A live notification for each new gig that matches.
    pub alerts: bool,
    /// New matching gigs in the daily e-mail digest.
    pub email_digest: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The digest covered the gigs matched up to this time.
    pub last_digest_at: Option<DateTime<Utc>>,
}

impl SavedSearch {
    pub fn new(
        user_id: UserId,
        name: SearchName,
        query: SavedQuery,
        alerts: bool,
        email_digest: bool,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: SavedSearchId::new(),
            user_id,
            name,
            query,
            alerts,
            email_digest,
            created_at: now,
            updated_at: now,
            last_digest_at: None,
        }
    }

    /// Whether new gigs are matched against it at all (with neither alerts
    /// nor the digest it is only a bookmark).
    pub fn watches(&self) -> bool {
        self.alerts || self.email_digest
    }

    /// Whether a gig that first became public at `first_public_at` is new
    /// to this search: it was published once the search was saved. Gigs
    /// that were public before are not news, however they change later.
    pub fn is_new(&self, first_public_at: DateTime<Utc>) -> bool {
        first_public_at >= self.created_at
    }

    /// The search after `edit` at `now`. Turning the digest on starts it
    /// from `now`: gigs matched before (for alerts only) are not mailed.
    pub fn edited(&self, edit: &SavedSearchEdit, now: DateTime<Utc>) -> SavedSearch {
        let mut next = self.clone();
        if let Some(name) = &edit.name {
            next.name = name.clone();
        }
        if let Some(alerts) = edit.alerts {
            next.alerts = alerts;
        }
        if let Some(digest) = edit.email_digest {
            if digest && !self.email_digest {
                next.last_digest_at = Some(now);
            }
            next.email_digest = digest;
        }
        next.updated_at = now;
        next
    }
}

/// What the owner may change in a saved search; the query is fixed (save
/// another search instead).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedSearchEdit {
    pub name: Option<SearchName>,
    pub alerts: Option<bool>,
    pub email_digest: Option<bool>,
}

/// A gig a user keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Favourite {
    pub user_id: UserId,
    pub gig_id: GigId,
    pub created_at: DateTime<Utc>,
}

/// The user already keeps as many favourites or saved searches as allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at most {limit} may be kept")]
pub struct LimitReached {
    pub limit: u32,
}

/// How many favourites and saved searches one user may keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub saved_searches: u32,
    pub favourites: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            saved_searches: DEFAULT_MAX_SAVED_SEARCHES,
            favourites: DEFAULT_MAX_FAVOURITES,
        }
    }
}

/// The first time at `hour`:00 UTC strictly after `after`: when the daily
/// digest runs next. Hours past 23 count as 23.
pub fn next_digest_at(after: DateTime<Utc>, hour: u32) -> DateTime<Utc> {
    let at = NaiveTime::from_hms_opt(hour.min(23), 0, 0).unwrap_or(NaiveTime::MIN);
    let today = Utc.from_utc_datetime(&after.date_naive().and_time(at));
    if today > after {
        today
    } else {
        today
            .checked_add_days(Days::new(1))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 5, 6, 7, 30, 0).unwrap()
    }

    fn search() -> SavedSearch {
        SavedSearch::new(
            UserId::new(),
            SearchName::parse("Logos").unwrap(),
            SavedQuery::from_json(r#"{"q":"logo"}"#.into()),
            true,
            false,
            t0(),
        )
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            SearchName::parse("  Logo work ").unwrap().as_str(),
            "Logo work"
        );
        assert_eq!(SearchName::parse("   ").unwrap_err().code, "required");
        assert_eq!(
            SearchName::parse(&"n".repeat(81)).unwrap_err().code,
            "too_long"
        );
        assert!(SearchName::parse(&"n".repeat(80)).is_ok());
        assert_eq!(SearchName::parse("a\u{7}b").unwrap_err().field, "name");
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = SavedSearchId::new();
        assert_eq!(id.to_string().parse::<SavedSearchId>().unwrap(), id);
        assert!("nope".parse::<SavedSearchId>().is_err());
    }

    #[test]
    fn only_gigs_published_once_saved_are_new() {
        let saved = search();
        assert!(saved.is_new(t0()));
        assert!(saved.is_new(t0() + TimeDelta::seconds(1)));
        assert!(!saved.is_new(t0() - TimeDelta::microseconds(1)));
    }

    #[test]
    fn edits_change_only_what_they_name() {
        let saved = search();
        let later = t0() + TimeDelta::hours(1);
        let renamed = saved.edited(
            &SavedSearchEdit {
                name: Some(SearchName::parse("Logo design").unwrap()),
                ..SavedSearchEdit::default()
            },
            later,
        );
        assert_eq!(renamed.name.as_str(), "Logo design");
        assert_eq!((renamed.alerts, renamed.email_digest), (true, false));
        assert_eq!(renamed.updated_at, later);
        assert_eq!(renamed.created_at, saved.created_at);
        assert_eq!(renamed.last_digest_at, None);

        // Turning the digest on starts it now; turning it on again keeps it.
        let digest = saved.edited(
            &SavedSearchEdit {
                alerts: Some(false),
                email_digest: Some(true),
                ..SavedSearchEdit::default()
            },
            later,
        );
        assert!(!digest.alerts && digest.email_digest && digest.watches());
        assert_eq!(digest.last_digest_at, Some(later));
        let again = digest.edited(
            &SavedSearchEdit {
                email_digest: Some(true),
                ..SavedSearchEdit::default()
            },
            later + TimeDelta::hours(1),
        );
        assert_eq!(again.last_digest_at, Some(later));
        let off = digest.edited(
            &SavedSearchEdit {
                email_digest: Some(false),
                ..SavedSearchEdit::default()
            },
            later,
        );
        assert!(!off.watches());
    }

    #[test]
    fn the_digest_runs_at_the_next_full_hour_given() {
        let at = |d, h, m| Utc.with_ymd_and_hms(2030, 5, d, h, m, 0).unwrap();
        assert_eq!(next_digest_at(at(6, 7, 30), 8), at(6, 8, 0));
        assert_eq!(next_digest_at(at(6, 8, 0), 8), at(7, 8, 0));
        assert_eq!(next_digest_at(at(6, 9, 0), 8), at(7, 8, 0));
        assert_eq!(next_digest_at(at(6, 23, 59), 0), at(7, 0, 0));
        assert_eq!(next_digest_at(at(6, 1, 0), 99), at(6, 23, 0));
        // Month ends roll over.
        assert_eq!(
            next_digest_at(Utc.with_ymd_and_hms(2030, 5, 31, 9, 0, 0).unwrap(), 8),
            Utc.with_ymd_and_hms(2030, 6, 1, 8, 0, 0).unwrap()
        );
    }
}
