//! E-mail through the durable outbox: [`MailQueue`] stores a mail
//! (`MailOutbox::enqueue`, idempotent by a caller-chosen key) and wakes its
//! worker, a background task that sends what is due with the configured
//! `Mailer`.
//!
//! The worker sleeps until the earliest stored `next_attempt_at`, a wake-up
//! (something was enqueued) or the poll interval, whichever comes first.
//! It then leases each due mail (`MailOutbox::claim`: one winner among
//! workers and nodes; the lease counts an attempt), sends it, and marks it
//! sent; a failure is rescheduled with exponential backoff and jitter
//! ([`backoff`]), and after `max_attempts` the mail is marked dead (kept,
//! and logged at error level). It starts with a pass, so mail stored before
//! a restart goes out at once; a lease that ran out (a worker that died
//! mid-send) makes its mail due again, and the poll picks it up.
//!
//! E-mail preferences are honoured once, when a mail is sent: a mail
//! queued for a user ([`Recipient`]) whose optional category that user
//! turned off is settled as skipped (`MailOutbox::mark_skipped`) instead
//! of sent; every other optional mail to a user goes out with the
//! link that turns its category off (`UnsubscribeLinks`), made here and
//! not stored, so queued rows stay small. Essential mail is always sent.
//!
//! Delivery is at least once, not exactly once: a crash (or a lost store
//! write) after the SMTP server accepted a message and before it is marked
//! sent sends it again when the lease runs out. Every attempt carries the
//! same `Message-ID`, derived from the outbox row's id
//! (`Mailer::send_with_id`), so receiving systems can drop the repeat.
//!
//! The worker holds its queue weakly: it stops at its next wake-up once
//! the last [`MailQueue`] handle is dropped (or with the runtime).

use std::sync::{Arc, Weak};
use std::time::Duration;

use chrono::TimeDelta;
use domain::account::{Email, User};
use domain::ids::UserId;
use domain::mail::AccountMail;
use domain::ports::{
    Clock, EmailPreferences, MailOutbox, Mailer, QueuedMail, StoreError, UnsubscribeLinks,
};
use tokio::sync::Notify;

/// How the worker paces itself.
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// The outbox is read at least this often (leases that ran out on
    /// another node, mail enqueued by another node).
    pub poll: Duration,
    /// Attempts before a mail is given up on.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles with each further one.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// How long a worker holds a mail it is sending; longer than a send
    /// may take (the SMTP timeout), or another worker could send it too.
    pub lease: Duration,
    /// Mails read per pass.
    pub batch: u32,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            max_attempts: 12,
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(3600),
            lease: Duration::from_secs(120),
            batch: 50,
        }
    }
}

/// The wait after `attempts` failed attempts (one or more): `base × 2^(attempts
/// - 1)`, at most `max`, then shortened by up to a fifth by `jitter` (in
/// `[0, 1)`), so mails that failed together do not retry together.
pub fn backoff(attempts: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(31);
    let full = base.saturating_mul(1u32 << doublings).min(max);
    full.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
}

/// A number in `[0, 1)` from a fresh random UUID: enough for jitter
/// without another dependency.
fn jitter() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() & 0xFFFF;
    bits as f64 / 65536.0
}

/// What the worker needs to honour each user's e-mail preferences.
#[derive(Clone)]
pub struct Preferences {
    pub store: Arc<dyn EmailPreferences>,
    /// Makes the unsubscribe link of each optional mail.
    pub links: Arc<dyn UnsubscribeLinks>,
}

/// Who a mail is for: an address, and the account whose e-mail
/// preferences apply, when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub user: Option<UserId>,
    pub email: Email,
}

/// An address alone: the mail is sent as it is.
impl From<Email> for Recipient {
    fn from(email: Email) -> Self {
        Self { user: None, email }
    }
}

/// An account: its address, and its preferences decide.
impl From<&User> for Recipient {
    fn from(user: &User) -> Self {
        Self {
            user: Some(user.id),
            email: user.email.clone(),
        }
    }
}

struct Inner {
    outbox: Arc<dyn MailOutbox>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    config: MailConfig,
    /// `None`: every mail is sent as it is, none with an unsubscribe link.
    preferences: Option<Preferences>,
    wake: Arc<Notify>,
}

/// What became of one leased mail.
enum Outcome {
    Sent,
    /// Its recipient turned its category off.
    Skipped,
}

/// The handle: enqueues mail and wakes the worker. Cloning is cheap.
#[derive(Clone)]
pub struct MailQueue {
    inner: Arc<Inner>,
}

impl MailQueue {
    /// Starts the worker, which first sends whatever is due, every mail
    /// as it is (no preferences, no unsubscribe links).
    pub fn start(
        config: MailConfig,
        outbox: Arc<dyn MailOutbox>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self::spawn(config, outbox, mailer, clock, None)
    }

    /// [`MailQueue::start`], honouring each recipient's e-mail preferences.
    pub fn start_with_preferences(
        config: MailConfig,
        outbox: Arc<dyn MailOutbox>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        preferences: Preferences,
    ) -> Self {
        Self::spawn(config, outbox, mailer, clock, Some(preferences))
    }

    fn spawn(
        config: MailConfig,
        outbox: Arc<dyn MailOutbox>,
        mailer: Arc<dyn Mailer>,
        clock: Arc<dyn Clock>,
        preferences: Option<Preferences>,
    ) -> Self {
        let queue = Self {
            inner: Arc::new(Inner {
                outbox,
                mailer,
                clock,
                config,
                preferences,
                wake: Arc::new(Notify::new()),
            }),
        };
        tokio::spawn(run(Arc::downgrade(&queue.inner)));
        queue
    }

    pub fn outbox(&self) -> &Arc<dyn MailOutbox> {
        &self.inner.outbox
    }

    /// Stores the mail (durably, before returning) under `key` and wakes
    /// the worker. `Ok(false)`: the key was enqueued before, nothing
    /// written. Mail to an account (`&User`) follows its preferences.
    pub async fn enqueue(
        &self,
        key: String,
        to: impl Into<Recipient>,
        mail: AccountMail,
    ) -> Result<bool, StoreError> {
        let Recipient { user, email } = to.into();
        if user.is_none() && !mail.category().is_essential() {
            // Sent all the same, but the user cannot turn it off.
            tracing::warn!(
                key = %key,
                kind = mail.kind(),
                "optional mail queued without its recipient's account: their e-mail preferences cannot apply"
            );
        }
        let mut queued = QueuedMail::new(key, email, mail, self.inner.clock.now());
        if let Some(user) = user {
            queued = queued.for_user(user);
        }
        let written = self.inner.outbox.enqueue(&queued).await?;
        if written {
            tracing::debug!(mail_id = %queued.id, key = %queued.key, kind = queued.mail.kind(), "mail queued");
            self.wake();
        }
        Ok(written)
    }

    /// Makes the worker look at the outbox now (after a test moved time).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// One pass: sends every mail due now that this worker can lease;
    /// returns how long to sleep before the next pass.
    async fn pass(&self) -> Result<Duration, StoreError> {
        let inner = &self.inner;
        let now = inner.clock.now();
        let due = inner.outbox.due(now, inner.config.batch).await?;
        for mail in &due {
            let now = inner.clock.now();
            let lease_until = now + to_delta(inner.config.lease);
            // Another worker may have taken it since it was read.
            if let Some(mail) = inner.outbox.claim(mail.id, now, lease_until).await? {
                self.deliver(mail).await;
            }
        }
        if due.len() == inner.config.batch as usize {
            return Ok(Duration::ZERO);
        }
        let poll = inner.config.poll;
        let wait = inner.outbox.next_due().await?.map_or(poll, |at| {
            (at - inner.clock.now()).to_std().unwrap_or(Duration::ZERO)
        });
        Ok(wait.min(poll))
    }

    /// Sends one leased mail, unless its recipient turned its category
    /// off, and records the outcome.
    async fn deliver(&self, mail: QueuedMail) {
        let inner = &self.inner;
        let config = &inner.config;
        let outcome = self.send(&mail).await;
        let now = inner.clock.now();
        let recorded = match outcome {
            Ok(Outcome::Sent) => inner.outbox.mark_sent(mail.id, now).await,
            Ok(Outcome::Skipped) => {
                tracing::info!(
                    mail_id = %mail.id,
                    kind = mail.mail.kind(),
                    category = mail.mail.category().as_str(),
                    "mail not sent: its recipient turned its category off"
                );
                inner.outbox.mark_skipped(mail.id).await
            }
            Err(error) if mail.attempts >= config.max_attempts => {
                tracing::error!(
                    mail_id = %mail.id,
                    key = %mail.key,
                    kind = mail.mail.kind(),
                    attempts = mail.attempts,
                    %error,
                    "giving up on a mail"
                );
                inner.outbox.mark_dead(mail.id, &error).await
            }
            Err(error) => {
                let wait = backoff(mail.attempts, config.retry_base, config.retry_max, jitter());
                tracing::warn!(
                    mail_id = %mail.id,
                    kind = mail.mail.kind(),
                    attempts = mail.attempts,
                    retry_in = ?wait,
                    %error,
                    "sending a mail failed, will retry"
                );
                inner
                    .outbox
                    .mark_failed(mail.id, &error, now + to_delta(wait))
                    .await
            }
        };
        if let Err(error) = recorded {
            // The lease runs out and the mail is tried again: at least once.
            tracing::warn!(mail_id = %mail.id, %error, "recording a mail's outcome failed");
        }
    }

    /// Reads the recipient's preference for optional mail (a failure to
    /// read it fails the attempt, like a failed send: the mail is never
    /// sent unchecked) and sends the mail with its unsubscribe link.
    async fn send(&self, mail: &QueuedMail) -> Result<Outcome, String> {
        let inner = &self.inner;
        let category = mail.mail.category();
        let mut unsubscribe = None;
        if let (Some(preferences), Some(user)) = (&inner.preferences, mail.user_id) {
            if !category.is_essential() {
                let enabled = preferences
                    .store
                    .mail_enabled(user, category)
                    .await
                    .map_err(|e| {
                        format!("reading the recipient's e-mail preferences failed: {e}")
                    })?;
                if !enabled {
                    return Ok(Outcome::Skipped);
                }
                unsubscribe = Some(preferences.links.unsubscribe_link(user, category));
            }
        }
        inner
            .mailer
            .send_with_id(mail.id, &mail.to, &mail.mail, unsubscribe.as_deref())
            .await
            .map(|()| Outcome::Sent)
            .map_err(|e| e.to_string())
    }
}

fn to_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

/// The worker: passes over the outbox until the queue is dropped.
async fn run(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let queue = MailQueue { inner: strong };
        let wait = match queue.pass().await {
            Ok(wait) => wait,
            Err(error) => {
                tracing::warn!(%error, "reading the mail outbox failed, trying again");
                Duration::from_secs(1)
            }
        };
        let wake = queue.inner.wake.clone();
        drop(queue);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = wake.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_secs(5);
        let max = Duration::from_secs(3600);
        assert_eq!(backoff(1, base, max, 0.0), Duration::from_secs(5));
        assert_eq!(backoff(2, base, max, 0.0), Duration::from_secs(10));
        assert_eq!(backoff(4, base, max, 0.0), Duration::from_secs(40));
        assert_eq!(backoff(11, base, max, 0.0), max);
        assert_eq!(backoff(u32::MAX, base, max, 0.0), max);
        // Jitter only shortens, by at most a fifth.
        let jittered = backoff(3, base, max, 0.999);
        assert!(jittered <= Duration::from_secs(20) && jittered > Duration::from_secs(16));
        assert_eq!(backoff(0, base, max, 0.0), base);
    }
}
