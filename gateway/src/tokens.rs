//! Access tokens: short-lived JWTs (HS256) naming the user and the session
//! they came from. Every request that presents one also checks that the
//! session is still open, so logout and revocation take effect at once.

use chrono::{DateTime, TimeDelta, Utc};
use domain::ids::{SessionId, UserId};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const ISSUER: &str = "marketplace";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: Uuid,
    sid: Uuid,
    iat: i64,
    exp: i64,
}

/// What a valid access token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessClaims {
    pub user_id: UserId,
    pub session_id: SessionId,
    /// When the token stops being accepted (whole seconds).
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenRejection {
    Invalid,
    Expired,
}

pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: TimeDelta,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    pub fn new(secret: &[u8], ttl: TimeDelta) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["iss", "sub", "exp"]);
        // Expiry is checked against the server's clock below, so tests can move time.
        validation.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn ttl(&self) -> TimeDelta {
        self.ttl
    }

    /// The same signing key with another lifetime: tokens it issues verify
    /// wherever this one's do (long-lived tokens for load tests, minted by
    /// `marketplace seed --load-users`).
    pub fn with_ttl(&self, ttl: TimeDelta) -> Self {
        Self {
            encoding: self.encoding.clone(),
            decoding: self.decoding.clone(),
            validation: self.validation.clone(),
            ttl,
        }
    }

    pub fn issue(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            iss: ISSUER.into(),
            sub: user_id.as_uuid(),
            sid: session_id.as_uuid(),
            iat: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, TokenRejection> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenRejection::Invalid)?;
        if data.claims.exp <= now.timestamp() {
            return Err(TokenRejection::Expired);
        }
        Ok(AccessClaims {
            user_id: UserId::from_uuid(data.claims.sub),
            session_id: SessionId::from_uuid(data.claims.sid),
            expires_at: DateTime::from_timestamp(data.claims.exp, 0).unwrap_or(now),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn tokens_verify_until_they_expire_and_only_with_their_key() {
        let tokens = AccessTokens::new(&[7; 32], TimeDelta::minutes(15));
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let (user, session) = (UserId::new(), SessionId::new());
        let token = tokens.issue(user, session, now).unwrap();
        assert_eq!(
            tokens.verify(&token, now + TimeDelta::minutes(14)),
            Ok(AccessClaims {
                user_id: user,
                session_id: session,
                expires_at: now + TimeDelta::minutes(15),
            })
        );
        assert_eq!(
            tokens.verify(&token, now + TimeDelta::minutes(15)),
            Err(TokenRejection::Expired)
        );
        let other = AccessTokens::new(&[8; 32], TimeDelta::minutes(15));
        assert_eq!(other.verify(&token, now), Err(TokenRejection::Invalid));
        assert_eq!(
            tokens.verify("not.a.token", now),
            Err(TokenRejection::Invalid)
        );
    }

    #[test]
    fn a_longer_lived_copy_signs_with_the_same_key() {
        let tokens = AccessTokens::new(&[7; 32], TimeDelta::minutes(15));
        let long = tokens.with_ttl(TimeDelta::hours(2));
        assert_eq!(long.ttl(), TimeDelta::hours(2));
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let (user, session) = (UserId::new(), SessionId::new());
        let token = long.issue(user, session, now).unwrap();
        let later = now + TimeDelta::minutes(90);
        assert_eq!(tokens.verify(&token, later).map(|c| c.user_id), Ok(user));
        assert_eq!(
            tokens.verify(&token, now + TimeDelta::hours(2)),
            Err(TokenRejection::Expired)
        );
    }
}
