//! The mail outbox worker (`actors::mail::MailQueue`) end to end: a SQLite
//! outbox, the real `SmtpMailer` and a real `aiosmtpd`. While nothing
//! listens on the SMTP port the mail stays pending with growing attempts;
//! once the server is up it arrives once; a new worker on the same
//! database sends what was pending (and a lease a crashed worker left) once
//! and nothing that was sent. Also measures how fast the worker drains the
//! outbox into the file mailer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::mail::{MailConfig, MailQueue};
use adapters::clock::SystemClock;
use adapters::mail::{FileMailer, SmtpMailer, SmtpSettings, SmtpTls};
use adapters::sql::SqlStore;
use chrono::{TimeDelta, Utc};
use domain::account::Email;
use domain::mail::AccountMail;
use domain::ports::{MailOutbox, MailStatus, QueuedMail};
use tempfile::TempDir;
use testkit::{aiosmtpd, free_port, maildir_messages, Service};

const FROM: &str = "Marketplace <no-reply@marketplace.example>";
const WAIT: Duration = Duration::from_secs(20);

/// Quick retries, so the test sees several attempts in little time.
fn config() -> MailConfig {
    MailConfig {
        poll: Duration::from_millis(200),
        max_attempts: 1000,
        retry_base: Duration::from_millis(100),
        retry_max: Duration::from_millis(300),
        lease: Duration::from_secs(30),
        batch: 50,
    }
}

fn smtp_mailer(port: u16) -> Arc<SmtpMailer> {
    Arc::new(
        SmtpMailer::new(SmtpSettings {
            host: "127.0.0.1".into(),
            port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: FROM.into(),
            timeout: Duration::from_secs(5),
        })
        .unwrap(),
    )
}

async fn sqlite(dir: &TempDir) -> SqlStore {
    let url = format!("sqlite://{}", dir.path().join("outbox.db").display());
    let store = SqlStore::connect(&url, 5).await.unwrap();
    store.migrate().await.unwrap();
    store
}

fn verify(n: usize) -> AccountMail {
    AccountMail::VerifyEmail {
        username: format!("user{n}"),
        link: format!("https://marketplace.example/verify-email?token=token-{n}"),
        valid_hours: 24,
    }
}

fn to(n: usize) -> Email {
    Email::parse(&format!("user{n}@example.com")).unwrap()
}

fn start(store: &SqlStore, mailer: Arc<dyn domain::ports::Mailer>) -> MailQueue {
    MailQueue::start(
        config(),
        Arc::new(store.clone()),
        mailer,
        Arc::new(SystemClock),
    )
}

/// Polls `check` every 25 ms until it returns `Some`, for at most [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn stored(store: &SqlStore, key: &str) -> QueuedMail {
    store
        .mail_by_key(key)
        .await
        .unwrap()
        .expect("the mail is stored")
}

/// Waits until the outbox marked `key` sent.
async fn sent(store: &SqlStore, key: &str) -> QueuedMail {
    eventually(&format!("{key} to be sent"), || async {
        let mail = stored(store, key).await;
        (mail.status == MailStatus::Sent).then_some(mail)
    })
    .await
}

/// Waits until the server holds `count` mails, and returns them.
async fn received(smtp: &Service, count: usize) -> Vec<String> {
    eventually(&format!("{count} mails at the server"), || async {
        let mails = maildir_messages(smtp);
        (mails.len() >= count).then_some(mails)
    })
    .await
}

fn message_id(raw: &str) -> &str {
    raw.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("message-id")
                .then(|| value.trim())
        })
        .expect("a Message-ID header")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_waits_for_the_smtp_server_and_arrives_once() {
    let dir = TempDir::new().unwrap();
    let store = sqlite(&dir).await;
    // Nothing listens here until the test starts the server.
    let port = free_port();
    let queue = start(&store, smtp_mailer(port));
    assert!(queue
        .enqueue("account:verify:1".into(), to(1), verify(1))
        .await
        .unwrap());

    let failing = eventually("three failed attempts", || async {
        let mail = stored(&store, "account:verify:1").await;
        (mail.attempts >= 3).then_some(mail)
    })
    .await;
    assert_eq!(failing.status, MailStatus::Pending);
    assert!(
        failing
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("smtp")),
        "{failing:?}"
    );

    let smtp = aiosmtpd(Some(port));
    let delivered = sent(&store, "account:verify:1").await;
    assert!(delivered.attempts > failing.attempts);
    let mails = received(&smtp, 1).await;
    assert_eq!(
        message_id(&mails[0]),
        format!("<{}@marketplace.example>", delivered.id)
    );

    // The same key again writes nothing; a later mail is the only other
    // one to arrive.
    assert!(!queue
        .enqueue("account:verify:1".into(), to(1), verify(1))
        .await
        .unwrap());
    queue
        .enqueue("account:verify:2".into(), to(2), verify(2))
        .await
        .unwrap();
    sent(&store, "account:verify:2").await;
    let mails = received(&smtp, 2).await;
    assert_eq!(mails.len(), 2, "{mails:#?}");
    assert!(mails[0].contains("user1@example.com") && mails[1].contains("user2@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_worker_sends_what_was_pending_once() {
    let dir = TempDir::new().unwrap();
    let store = sqlite(&dir).await;
    let smtp = aiosmtpd(None);
    let first = start(&store, smtp_mailer(smtp.port()));
    first
        .enqueue("before".into(), to(1), verify(1))
        .await
        .unwrap();
    sent(&store, "before").await;
    drop(first);

    // While no worker runs: a mail is queued, and another was leased by a
    // worker that died mid-send (its lease already ran out).
    let now = Utc::now();
    store
        .enqueue(&QueuedMail::new("pending".into(), to(2), verify(2), now))
        .await
        .unwrap();
    let crashed = QueuedMail::new("crashed".into(), to(3), verify(3), now);
    store.enqueue(&crashed).await.unwrap();
    store
        .claim(crashed.id, now, now - TimeDelta::seconds(1))
        .await
        .unwrap()
        .expect("leased by the worker that died");

    let second = start(&store, smtp_mailer(smtp.port()));
    let pending = sent(&store, "pending").await;
    let retaken = sent(&store, "crashed").await;
    assert_eq!(pending.attempts, 1);
    assert_eq!(retaken.attempts, 2, "the lost attempt counts");

    // A marker sent last: everything before it has arrived.
    second
        .enqueue("marker".into(), to(4), verify(4))
        .await
        .unwrap();
    sent(&store, "marker").await;
    let mails = received(&smtp, 4).await;
    assert_eq!(mails.len(), 4, "each mail exactly once: {mails:#?}");
    for n in 1..=4 {
        let count = mails
            .iter()
            .filter(|m| m.contains(&format!("user{n}@example.com")))
            .count();
        assert_eq!(count, 1, "mail {n} arrived {count} times");
    }
    let ids: std::collections::HashSet<_> = mails.iter().map(|m| message_id(m)).collect();
    assert_eq!(ids.len(), 4);
}

/// Prints how many mails per second the worker drains from a SQLite
/// outbox into the file mailer:
/// `cargo test -p adapters --test it mail_outbox::file_mailer_drain_rate -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_mailer_drain_rate() {
    const MAILS: usize = 300;
    let dir = TempDir::new().unwrap();
    let store = sqlite(&dir).await;
    let now = Utc::now();
    for n in 0..MAILS {
        store
            .enqueue(&QueuedMail::new(format!("bulk:{n}"), to(n), verify(n), now))
            .await
            .unwrap();
    }
    let outbox = dir.path().join("eml");
    let mailer = Arc::new(FileMailer::new(outbox.clone(), FROM).unwrap());
    let started = Instant::now();
    let _queue = start(&store, mailer);
    eventually("the outbox to drain", || async {
        let left = store.due(Utc::now(), 1).await.unwrap();
        let written = std::fs::read_dir(&outbox).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            })
            .count()
        });
        (left.is_empty() && written == MAILS).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    // The last row may still be marking itself sent.
    sent(&store, &format!("bulk:{}", MAILS - 1)).await;
    println!(
        "mail outbox: {MAILS} mails drained into the file mailer in {elapsed:?} ({:.0} mails/s, sqlite)",
        MAILS as f64 / elapsed.as_secs_f64()
    );
}
