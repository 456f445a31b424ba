//! Unsubscribe links that work without signing in.
//!
//! A token names a user and one optional [`MailCategory`] and carries an
//! HMAC-SHA256 of both: `<user id>.<category>.<signature>`, the user id and
//! the signature in unpadded URL-safe base64, so the token needs no
//! escaping in a URL. The key is derived from the server's secret, never
//! the secret itself, so a token is no use against anything else the
//! secret signs.
//!
//! Tokens are never stored and never expire. That is acceptable because a
//! token can do one thing only: switch one category of optional mail of
//! one user off (and back on, from the confirmation page). It signs no one
//! in, shows nothing about the account, and cannot touch essential mail;
//! and mail in an inbox keeps its link for years, which RFC 8058's
//! one-click unsubscribe expects to keep working. Forging one for another
//! user or category needs the key; changing the server's secret makes
//! every link already sent invalid.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use domain::ids::UserId;
use domain::mail::MailCategory;
use domain::ports::UnsubscribeLinks;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What the key is derived for; a new version makes every older token
/// invalid.
const PURPOSE: &[u8] = b"marketplace unsubscribe link v1";

/// Signs and checks unsubscribe tokens, and builds the links.
#[derive(Clone)]
pub struct UnsubscribeTokens {
    key: Hmac<Sha256>,
    /// `<public_url>/unsubscribe`.
    page: String,
}

impl fmt::Debug for UnsubscribeTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnsubscribeTokens")
            .field("page", &self.page)
            .finish_non_exhaustive()
    }
}

/// Why a token was refused (for logs; the page says only that the link is
/// not valid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadToken {
    #[error("not a token")]
    Malformed,
    #[error("the category cannot be unsubscribed from")]
    Category,
    #[error("the signature does not match")]
    Signature,
}

impl UnsubscribeTokens {
    /// `secret` is the server's signing secret; links lead to
    /// `<public_url>/unsubscribe`.
    pub fn new(secret: &[u8], public_url: &str) -> Self {
        let derived = keyed(secret).chain_update(PURPOSE).finalize().into_bytes();
        Self {
            key: keyed(&derived),
            page: format!("{}/unsubscribe", public_url.trim_end_matches('/')),
        }
    }

    /// The token for `user` and `category`; the same every time.
    pub fn token(&self, user: UserId, category: MailCategory) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(user.as_uuid().as_bytes()),
            category.as_str()
        );
        let signature = self.sign(&signed);
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The user and the optional category a token names, if this server
    /// signed it. The signature is compared in constant time.
    pub fn verify(&self, token: &str) -> Result<(UserId, MailCategory), BadToken> {
        let (signed, signature) = token.rsplit_once('.').ok_or(BadToken::Malformed)?;
        let (user, category) = signed.split_once('.').ok_or(BadToken::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| BadToken::Malformed)?;
        let user: [u8; 16] = URL_SAFE_NO_PAD
            .decode(user)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(BadToken::Malformed)?;
        let mut mac = self.key.clone();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| BadToken::Signature)?;
        // Signed, so made here: a category this build does not know (or an
        // essential one) is refused all the same.
        let category = MailCategory::parse(category)
            .filter(|c| !c.is_essential())
            .ok_or(BadToken::Category)?;
        Ok((UserId::from_uuid(uuid::Uuid::from_bytes(user)), category))
    }

    fn sign(&self, signed: &str) -> Vec<u8> {
        let mut mac = self.key.clone();
        mac.update(signed.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 accepts every key length"),
    }
}

impl UnsubscribeLinks for UnsubscribeTokens {
    fn unsubscribe_link(&self, user: UserId, category: MailCategory) -> String {
        format!("{}?token={}", self.page, self.token(user, category))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a server secret of at least thirty-two bytes";

    fn tokens() -> UnsubscribeTokens {
        UnsubscribeTokens::new(SECRET, "https://marketplace.example/")
    }

    #[test]
    fn a_token_names_its_user_and_category() {
        let tokens = tokens();
        let user = UserId::new();
        for category in MailCategory::ALL.into_iter().filter(|c| !c.is_essential()) {
            let token = tokens.token(user, category);
            assert_eq!(tokens.verify(&token), Ok((user, category)));
            assert_eq!(token, tokens.token(user, category), "stable");
            assert!(
                token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{token}"
            );
        }
        let link = tokens.unsubscribe_link(user, MailCategory::Orders);
        assert_eq!(
            link,
            format!(
                "https://marketplace.example/unsubscribe?token={}",
                tokens.token(user, MailCategory::Orders)
            )
        );
    }

    #[test]
    fn forged_and_damaged_tokens_are_refused() {
        let tokens = tokens();
        let (ada, bob) = (UserId::new(), UserId::new());
        let token = tokens.token(ada, MailCategory::Orders);
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let (user, _) = signed.split_once('.').unwrap();
        let bob_b64 = URL_SAFE_NO_PAD.encode(bob.as_uuid().as_bytes());

        // Another user or category under ada's signature.
        let other_user = format!("{bob_b64}.orders.{signature}");
        assert_eq!(tokens.verify(&other_user), Err(BadToken::Signature));
        let other_category = format!("{user}.offers.{signature}");
        assert_eq!(tokens.verify(&other_category), Err(BadToken::Signature));
        // Signed with another secret.
        let elsewhere = UnsubscribeTokens::new(b"another secret, also long enough!!", "https://x");
        assert_eq!(
            tokens.verify(&elsewhere.token(ada, MailCategory::Orders)),
            Err(BadToken::Signature)
        );
        // Truncated anywhere, or garbage.
        for cut in 1..token.len() {
            assert!(tokens.verify(&token[..cut]).is_err(), "{}", &token[..cut]);
        }
        for garbage in ["", ".", "..", "a.b.c", "%%%.orders.%%%", "x.account.y"] {
            assert_eq!(
                tokens.verify(garbage),
                Err(BadToken::Malformed),
                "{garbage}"
            );
        }
        // One flipped signature character.
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(tokens.verify(&flipped).is_err());
    }

    #[test]
    fn essential_categories_are_refused_even_when_signed() {
        let tokens = tokens();
        let user = UserId::new();
        for category in [MailCategory::Account, MailCategory::Moderation] {
            assert_eq!(
                tokens.verify(&tokens.token(user, category)),
                Err(BadToken::Category)
            );
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let shown = format!("{:?}", tokens());
        assert!(shown.contains("marketplace.example/unsubscribe"));
        assert!(!shown.contains("key"), "{shown}");
    }
}
