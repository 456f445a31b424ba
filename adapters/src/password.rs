//! Password hashing with argon2id.
//!
//! Hashing is deliberately slow and memory-hard, so it runs on tokio's
//! blocking pool, never on an async worker, and a semaphore bounds how many
//! hashes run at once: a burst of logins queues instead of exhausting memory.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use domain::account::Password;
use tokio::sync::Semaphore;

/// Cost parameters of argon2id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Cost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Cost {
    /// OWASP's recommended minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Hashes and verifies passwords off the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified against when the account does
    /// not exist so that unknown users take as long as wrong passwords.
    dummy_hash: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", self.argon2.params())
            .field("available_permits", &self.permits.available_permits())
            .finish()
    }
}

impl PasswordHasher {
    /// `max_concurrent` hashes run at once (at least one).
    pub fn new(cost: Argon2Cost, max_concurrent: usize) -> Result<Self, PasswordError> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy_hash = hash_with(&argon2, &crate::token::generate())?;
        Ok(Self {
            argon2: Arc::new(argon2),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// A PHC string (`$argon2id$v=19$m=...`) with a fresh random salt.
    pub async fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        let password = password.expose().to_string();
        self.blocking(move |argon2| hash_with(argon2, &password))
            .await
    }

    /// Whether `password` matches `phc`. A malformed or empty stored hash
    /// (an anonymised account) never matches.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, PasswordError> {
        let password = password.to_string();
        let phc = phc.to_string();
        self.blocking(move |argon2| Ok(verify_with(argon2, &password, &phc)))
            .await
    }

    /// Spends the time of one verification and returns `false`.
    pub async fn verify_nothing(&self, password: &str) -> Result<bool, PasswordError> {
        let dummy = self.dummy_hash.clone();
        self.verify(password, &dummy).await.map(|_| false)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?;
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || work(&argon2))
            .await
            .map_err(|e| PasswordError::Hash(e.to_string()))?
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn verify_with(argon2: &Argon2<'_>, password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|parsed| argon2.verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(
            Argon2Cost {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            2,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_salts_differ() {
        let hasher = cheap();
        let password = Password::parse("password", "correct horse").unwrap();
        let a = hasher.hash(&password).await.unwrap();
        let b = hasher.hash(&password).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_ne!(a, b);
        assert!(hasher.verify("correct horse", &a).await.unwrap());
        assert!(!hasher.verify("wrong horse", &a).await.unwrap());
    }

    #[tokio::test]
    async fn empty_or_garbage_hashes_never_match() {
        let hasher = cheap();
        assert!(!hasher.verify("anything", "").await.unwrap());
        assert!(!hasher
            .verify("anything", "$argon2id$garbage")
            .await
            .unwrap());
        assert!(!hasher.verify_nothing("anything").await.unwrap());
    }

    #[test]
    fn default_cost_is_owasp_minimum() {
        assert!(PasswordHasher::new(Argon2Cost::default(), 1).is_ok());
    }
}
