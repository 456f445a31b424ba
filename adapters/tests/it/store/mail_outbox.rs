//! Mail outbox scenarios of the store suite, on SQLite
//! (`store::mail_outbox::sqlite::*`) and PostgreSQL
//! (`store::mail_outbox::postgres::*`): enqueueing is idempotent by key,
//! due mail comes earliest first, a lease has one winner and is taken
//! again once it ran out, failures reschedule, and dead or sent mail is
//! never due again.

use std::collections::HashSet;
use std::sync::Arc;

use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use chrono::{DateTime, Utc};
use domain::account::Email;
use domain::mail::AccountMail;
use domain::ports::{MailOutbox, MailStatus, QueuedMail, StoreError};

use super::{secs, t0, Result};

/// Each scenario once per backend, as the main suite does.
macro_rules! outbox_suite {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::super::harness::run_sqlite(super::$scenario).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::super::harness::run_postgres(super::$scenario).await;
                }
            )*
        }
    };
}

outbox_suite!(
    enqueue_is_idempotent_by_key,
    due_mail_comes_earliest_first,
    lease_has_one_winner,
    expired_lease_is_taken_again,
    failure_reschedules,
    dead_and_sent_mail_is_never_due,
);

fn notice(n: u32) -> AccountMail {
    AccountMail::Notice {
        username: "ada".into(),
        kind: "order.delivered".into(),
        subject: format!("Order {n} delivered"),
        body: "Your order was delivered: <b>check it</b>.".into(),
        action: "View the order".into(),
        link: format!("https://marketplace.example/orders/{n}"),
    }
}

fn queued(key: &str, n: u32, at: DateTime<Utc>) -> QueuedMail {
    QueuedMail::new(
        key.into(),
        Email::parse("ada@example.com").unwrap(),
        notice(n),
        at,
    )
}

async fn by_key(store: &SqlStore, key: &str) -> anyhow::Result<QueuedMail> {
    store.mail_by_key(key).await?.context("the mail is stored")
}

async fn enqueue_is_idempotent_by_key(store: SqlStore) -> Result {
    let first = queued("notice:order:1:2:ada", 1, t0());
    ensure!(store.enqueue(&first).await?, "the first enqueue writes");
    let again = queued("notice:order:1:2:ada", 2, t0() + secs(5));
    ensure!(
        !store.enqueue(&again).await?,
        "a second enqueue with the key writes nothing"
    );
    let stored = by_key(&store, "notice:order:1:2:ada").await?;
    ensure!(stored == first, "read back as enqueued: {stored:?}");
    ensure!(store.due(t0() + secs(60), 10).await?.len() == 1);
    let verify = QueuedMail::new(
        "account:verify".into(),
        Email::parse("bob@example.com").unwrap(),
        AccountMail::VerifyEmail {
            username: "bob".into(),
            link: "https://marketplace.example/verify-email?token=abc".into(),
            valid_hours: 24,
        },
        t0(),
    );
    ensure!(store.enqueue(&verify).await?);
    ensure!(by_key(&store, "account:verify").await? == verify);
    ensure!(store.mail_by_key("missing").await?.is_none());
    Ok(())
}

async fn due_mail_comes_earliest_first(store: SqlStore) -> Result {
    for (key, at) in [
        ("c", t0() + secs(2)),
        ("a", t0()),
        ("later", t0() + secs(100)),
        ("b", t0() + secs(1)),
    ] {
        store.enqueue(&queued(key, 1, at)).await?;
    }
    let keys = |mails: Vec<QueuedMail>| mails.into_iter().map(|m| m.key).collect::<Vec<_>>();
    ensure!(keys(store.due(t0() + secs(10), 10).await?) == ["a", "b", "c"]);
    ensure!(keys(store.due(t0() + secs(10), 2).await?) == ["a", "b"]);
    ensure!(keys(store.due(t0() - secs(1), 10).await?).is_empty());
    ensure!(store.next_due().await? == Some(t0()));
    Ok(())
}

async fn lease_has_one_winner(store: SqlStore) -> Result {
    let mail = queued("contested", 1, t0());
    store.enqueue(&mail).await?;
    let store = Arc::new(store);
    let mut claims = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        claims.push(tokio::spawn(async move {
            let now = t0() + secs(1);
            store.claim(mail.id, now, now + secs(60 + i)).await
        }));
    }
    let mut winners = Vec::new();
    for claim in claims {
        if let Some(won) = claim.await?? {
            winners.push(won);
        }
    }
    ensure!(winners.len() == 1, "{} winners", winners.len());
    let won = &winners[0];
    ensure!(won.attempts == 1 && won.status == MailStatus::Pending);
    ensure!(won
        .leased_until
        .is_some_and(|until| until >= t0() + secs(61)));
    ensure!(by_key(&store, "contested").await?.attempts == 1);
    ensure!(store.due(t0() + secs(2), 10).await?.is_empty(), "leased");
    ensure!(
        store.next_due().await?.is_none(),
        "leased mail is not waited for"
    );
    Ok(())
}

async fn expired_lease_is_taken_again(store: SqlStore) -> Result {
    let mail = queued("crashed", 1, t0());
    store.enqueue(&mail).await?;
    ensure!(store.claim(mail.id, t0(), t0() + secs(60)).await?.is_some());
    // The worker died mid-send: nobody marks the mail.
    ensure!(store
        .claim(mail.id, t0() + secs(30), t0() + secs(90))
        .await?
        .is_none());
    ensure!(store.due(t0() + secs(59), 10).await?.is_empty());
    let due = store.due(t0() + secs(60), 10).await?;
    ensure!(due.len() == 1 && due[0].id == mail.id);
    let retaken = store
        .claim(mail.id, t0() + secs(61), t0() + secs(121))
        .await?
        .context("the expired lease is taken again")?;
    ensure!(retaken.attempts == 2);
    Ok(())
}

async fn failure_reschedules(store: SqlStore) -> Result {
    let mail = queued("flaky", 1, t0());
    store.enqueue(&mail).await?;
    store.claim(mail.id, t0(), t0() + secs(60)).await?;
    store
        .mark_failed(mail.id, "smtp: connection refused", t0() + secs(10))
        .await?;
    let stored = by_key(&store, "flaky").await?;
    ensure!(stored.status == MailStatus::Pending && stored.attempts == 1);
    ensure!(stored.leased_until.is_none());
    ensure!(stored.last_error.as_deref() == Some("smtp: connection refused"));
    ensure!(stored.next_attempt_at == t0() + secs(10));
    ensure!(store.due(t0() + secs(9), 10).await?.is_empty());
    ensure!(store.next_due().await? == Some(t0() + secs(10)));
    let again = store
        .claim(mail.id, t0() + secs(10), t0() + secs(70))
        .await?
        .context("due again after the backoff")?;
    ensure!(again.attempts == 2);
    // A long error is clipped, not refused.
    store
        .mark_failed(mail.id, &"x".repeat(10_000), t0() + secs(30))
        .await?;
    ensure!(by_key(&store, "flaky").await?.last_error.map(|e| e.len()) == Some(2000));
    Ok(())
}

async fn dead_and_sent_mail_is_never_due(store: SqlStore) -> Result {
    const MAX_ATTEMPTS: u32 = 3;
    let doomed = queued("doomed", 1, t0());
    let fine = queued("fine", 2, t0());
    store.enqueue(&doomed).await?;
    store.enqueue(&fine).await?;
    let mut at = t0();
    let mut attempts = 0;
    while attempts < MAX_ATTEMPTS {
        let claimed = store
            .claim(doomed.id, at, at + secs(60))
            .await?
            .context("due")?;
        attempts = claimed.attempts;
        if attempts < MAX_ATTEMPTS {
            at += secs(5);
            store.mark_failed(doomed.id, "refused", at).await?;
        }
    }
    store.mark_dead(doomed.id, "refused for good").await?;
    let dead = by_key(&store, "doomed").await?;
    ensure!(dead.status == MailStatus::Dead && dead.attempts == MAX_ATTEMPTS);
    ensure!(dead.last_error.as_deref() == Some("refused for good"));
    ensure!(dead.leased_until.is_none());
    ensure!(store
        .claim(doomed.id, at + secs(3600), at + secs(3660))
        .await?
        .is_none());
    ensure!(matches!(
        store.mark_failed(doomed.id, "late", at).await,
        Err(StoreError::NotFound)
    ));

    store.claim(fine.id, at, at + secs(60)).await?;
    store.mark_sent(fine.id, at + secs(1)).await?;
    let sent = by_key(&store, "fine").await?;
    ensure!(sent.status == MailStatus::Sent && sent.sent_at == Some(at + secs(1)));
    let due: HashSet<_> = store
        .due(at + secs(86_400), 10)
        .await?
        .into_iter()
        .map(|m| m.key)
        .collect();
    ensure!(due.is_empty(), "{due:?}");
    ensure!(store.next_due().await?.is_none());
    Ok(())
}
