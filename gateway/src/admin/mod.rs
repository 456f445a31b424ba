//! Admin: the moderation queue, actions, the audit log and live
//! statistics, over REST under `/api/v1/admin` and the live socket at
//! `/admin/ws` (`docs/admin.md`).
//!
//! Layout:
//! - [`ops`]: every admin operation, shared by REST and the socket.
//! - [`routes`]: the REST handlers.
//! - [`socket`]: the admin socket: the live feed with resume, requests,
//!   statistics.
//! - [`sources`]: what raises queue items (gigs published or edited,
//!   flagged chat messages, reports); disputes, failed payments and
//!   refunds are raised by the order actors.

pub mod ops;
pub mod routes;
pub mod socket;
pub mod sources;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::account::User;

use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::state::AppState;

/// A request from a signed-in admin: 401 without a valid token, 403 for
/// everyone else.
#[derive(Clone, Debug)]
pub struct AdminUser(pub User);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth =
            <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        admin_only(auth.user)
    }
}

/// The user, if they are an admin; 403 otherwise.
pub fn admin_only(user: User) -> Result<AdminUser, ApiError> {
    if user.is_admin() {
        Ok(AdminUser(user))
    } else {
        Err(ApiError::forbidden("only admins may do this"))
    }
}
