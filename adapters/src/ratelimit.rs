//! Failed-login limiting in process memory.
//!
//! Each key gets a fixed window: `max_failures` failures within `window`
//! block the key for `lockout`. A success clears the key. Entries that can no
//! longer block anything are dropped as the map grows, so memory stays
//! bounded by the number of keys seen in one window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use domain::ports::LoginLimiter;

#[derive(Clone, Copy, Debug)]
pub struct LimitPolicy {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    window_start: DateTime<Utc>,
    failures: u32,
    blocked_until: Option<DateTime<Utc>>,
}

/// A [`LoginLimiter`] for one process. A shared one (Redis) replaces it when
/// several pods serve logins.
#[derive(Debug)]
pub struct InMemoryLimiter {
    policy: LimitPolicy,
    window: TimeDelta,
    lockout: TimeDelta,
    entries: Mutex<HashMap<String, Entry>>,
}

/// Above this many keys, stale entries are swept on the next failure.
const SWEEP_THRESHOLD: usize = 10_000;

impl InMemoryLimiter {
    pub fn new(policy: LimitPolicy) -> Self {
        Self {
            policy,
            window: TimeDelta::from_std(policy.window).unwrap_or(TimeDelta::MAX),
            lockout: TimeDelta::from_std(policy.lockout).unwrap_or(TimeDelta::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> LimitPolicy {
        self.policy
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock cannot leave an entry half-written,
        // so a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_stale(&self, entry: &Entry, now: DateTime<Utc>) -> bool {
        entry.blocked_until.is_none_or(|until| until <= now)
            && entry.window_start + self.window <= now
    }
}

#[async_trait]
impl LoginLimiter for InMemoryLimiter {
    async fn check(&self, key: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        let entries = self.entries();
        match entries.get(key).and_then(|e| e.blocked_until) {
            Some(until) if until > now => Err((until - now).to_std().unwrap_or_default()),
            _ => Ok(()),
        }
    }

    async fn record_failure(&self, key: &str, now: DateTime<Utc>) {
        let mut entries = self.entries();
        if entries.len() >= SWEEP_THRESHOLD {
            entries.retain(|_, entry| !self.is_stale(entry, now));
        }
        let entry = entries.entry(key.to_string()).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if entry.window_start + self.window <= now {
            entry.window_start = now;
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= self.policy.max_failures {
            entry.blocked_until = Some(now + self.lockout);
            entry.window_start = now;
            entry.failures = 0;
        }
    }

    async fn clear(&self, key: &str) {
        self.entries().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn limiter() -> InMemoryLimiter {
        InMemoryLimiter::new(LimitPolicy {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(300),
        })
    }

    #[tokio::test]
    async fn blocks_after_max_failures_until_lockout_ends() {
        let limiter = limiter();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for i in 0..2 {
            limiter
                .record_failure("k", t0 + TimeDelta::seconds(i))
                .await;
            assert!(limiter.check("k", t0 + TimeDelta::seconds(i)).await.is_ok());
        }
        limiter
            .record_failure("k", t0 + TimeDelta::seconds(2))
            .await;
        let retry = limiter
            .check("k", t0 + TimeDelta::seconds(2))
            .await
            .unwrap_err();
        assert_eq!(retry, Duration::from_secs(300));
        assert!(limiter.check("other", t0).await.is_ok());
        assert!(limiter
            .check("k", t0 + TimeDelta::seconds(302))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn failures_outside_the_window_do_not_add_up() {
        let limiter = limiter();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        for i in 0..6 {
            limiter
                .record_failure("k", t0 + TimeDelta::seconds(i * 40))
                .await;
        }
        assert!(limiter
            .check("k", t0 + TimeDelta::seconds(200))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn success_clears_the_count() {
        let limiter = limiter();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        limiter.record_failure("k", t0).await;
        limiter.record_failure("k", t0).await;
        limiter.clear("k").await;
        limiter.record_failure("k", t0).await;
        assert!(limiter.check("k", t0).await.is_ok());
    }
}
