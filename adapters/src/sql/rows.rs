//! Rows as the backends return them, and their conversion into domain types.
//! The `FromRow` derives are generic over the row type, so one struct decodes
//! from SQLite and from PostgreSQL.

use chrono::{DateTime, Utc};
use domain::account::{Country, Email, Role, User, Username};
use domain::auth::Session;
use domain::gig::{Faq, Gig, GigContent, GigMedia, GigStatus, Package};
use domain::ids::{GigId, SessionId, UserId};
use domain::ports::{OutboxEntry, SellerProfileRecord, StoreError};
use domain::seller::{Certificate, Education, Language, SellerProfile};
use sqlx::types::Json;
use uuid::Uuid;

/// The columns of `users`, in `UserRow`'s order.
macro_rules! user_columns {
    () => {
        "id, email, username, password_hash, role, display_name, country, bio, \
         email_verified_at, suspended_at, deleted_at, created_at, updated_at"
    };
}
pub(crate) use user_columns;

/// The columns of `seller_profiles`.
macro_rules! seller_profile_columns {
    () => {
        "user_id, full_name, one_liner, description, languages, skills, education, \
         certificates, links, created_at, updated_at"
    };
}
pub(crate) use seller_profile_columns;

/// The columns of `sessions`.
macro_rules! session_columns {
    () => {
        "id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip"
    };
}
pub(crate) use session_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    password_hash: String,
    role: String,
    display_name: Option<String>,
    country: Option<String>,
    bio: Option<String>,
    email_verified_at: Option<DateTime<Utc>>,
    suspended_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        Ok(User {
            id: UserId::from_uuid(row.id),
            email: Email::from_trusted(row.email),
            username: Username::from_trusted(row.username),
            password_hash: row.password_hash,
            role: row
                .role
                .parse::<Role>()
                .map_err(|e| StoreError::Backend(format!("stored user {}: {e}", row.id)))?,
            display_name: row.display_name,
            country: row.country.map(Country::from_trusted),
            bio: row.bio,
            email_verified_at: row.email_verified_at,
            suspended_at: row.suspended_at,
            deleted_at: row.deleted_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SellerProfileRow {
    user_id: Uuid,
    full_name: String,
    one_liner: String,
    description: String,
    languages: Json<Vec<Language>>,
    skills: Json<Vec<String>>,
    education: Json<Vec<Education>>,
    certificates: Json<Vec<Certificate>>,
    links: Json<Vec<String>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<SellerProfileRow> for SellerProfileRecord {
    fn from(row: SellerProfileRow) -> Self {
        SellerProfileRecord {
            user_id: UserId::from_uuid(row.user_id),
            profile: SellerProfile {
                full_name: row.full_name,
                one_liner: row.one_liner,
                description: row.description,
                languages: row.languages.0,
                skills: row.skills.0,
                education: row.education.0,
                certificates: row.certificates.0,
                links: row.links.0,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    user_agent: Option<String>,
    ip: Option<String>,
}

impl From<SessionRow> for Session {
    fn from(row: SessionRow) -> Self {
        Session {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            user_agent: row.user_agent,
            ip: row.ip,
        }
    }
}

/// The columns of `gigs`, in `GigRow`'s order.
macro_rules! gig_columns {
    () => {
        "id, seller_id, title, description, category, subcategory, tags, faq, packages, \
         media, status, version, created_at, updated_at, deleted_at"
    };
}
pub(crate) use gig_columns;

/// A JSON column that does not decode fails the whole row with a decode
/// error, which the store reports as `StoreError::Backend`.
#[derive(sqlx::FromRow)]
pub(crate) struct GigRow {
    id: Uuid,
    seller_id: Uuid,
    title: String,
    description: String,
    category: String,
    subcategory: String,
    tags: Json<Vec<String>>,
    faq: Json<Vec<Faq>>,
    packages: Json<Vec<Package>>,
    media: Json<Vec<GigMedia>>,
    status: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<GigRow> for Gig {
    type Error = StoreError;

    fn try_from(row: GigRow) -> Result<Self, Self::Error> {
        let status = row.status.parse::<GigStatus>().map_err(|()| {
            StoreError::Backend(format!(
                "stored gig {}: unknown status {:?}",
                row.id, row.status
            ))
        })?;
        Ok(Gig {
            id: GigId::from_uuid(row.id),
            seller_id: UserId::from_uuid(row.seller_id),
            content: GigContent {
                title: row.title,
                description: row.description,
                category: row.category,
                subcategory: row.subcategory,
                tags: row.tags.0,
                faq: row.faq.0,
                packages: row.packages.0,
            },
            media: row.media.0,
            status,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    id: i64,
    gig_id: Uuid,
    created_at: DateTime<Utc>,
}

impl From<OutboxRow> for OutboxEntry {
    fn from(row: OutboxRow) -> Self {
        OutboxEntry {
            id: row.id,
            gig_id: GigId::from_uuid(row.gig_id),
            created_at: row.created_at,
        }
    }
}
