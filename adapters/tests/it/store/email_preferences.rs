//! E-mail preference scenarios of the store suite, on SQLite
//! (`store::email_preferences::sqlite::*`) and PostgreSQL
//! (`store::email_preferences::postgres::*`): every optional category is on
//! until turned off, changes are per user and all or nothing, essential
//! mail cannot be turned off, unknown users are not found; and the mail
//! outbox keeps each mail's recipient account and settles a mail as
//! skipped, never due again.

use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use domain::account::Email;
use domain::ids::UserId;
use domain::mail::{AccountMail, MailCategory};
use domain::ports::{EmailPreferences, MailOutbox, MailStatus, QueuedMail, StoreError};

use super::{create, is_not_found, secs, t0, Result};

/// Each scenario once per backend, as the main suite does.
macro_rules! preferences_suite {
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

preferences_suite!(
    everything_is_on_until_turned_off,
    essential_mail_cannot_be_turned_off,
    unknown_users_are_not_found,
    outbox_keeps_the_recipient_and_skips_for_good,
);

const OPTIONAL: [MailCategory; 4] = [
    MailCategory::Orders,
    MailCategory::Offers,
    MailCategory::Reviews,
    MailCategory::SavedSearches,
];

async fn enabled(store: &SqlStore, user: UserId) -> anyhow::Result<Vec<MailCategory>> {
    let mut on = Vec::new();
    for category in MailCategory::ALL {
        if store.mail_enabled(user, category).await? {
            on.push(category);
        }
    }
    Ok(on)
}

async fn everything_is_on_until_turned_off(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    let bob = create(&store, "bob").await?.id;
    ensure!(store.disabled_mail(ada).await?.is_empty());
    ensure!(enabled(&store, ada).await? == MailCategory::ALL);

    // Listed out of order: read back in `MailCategory::ALL` order.
    store
        .set_mail_enabled(
            ada,
            &[
                (MailCategory::SavedSearches, false),
                (MailCategory::Orders, false),
            ],
            t0(),
        )
        .await?;
    let off = store.disabled_mail(ada).await?;
    ensure!(
        off == [MailCategory::Orders, MailCategory::SavedSearches],
        "{off:?}"
    );
    ensure!(!store.mail_enabled(ada, MailCategory::Orders).await?);
    ensure!(store.mail_enabled(ada, MailCategory::Offers).await?);
    // Another user's choice is their own.
    ensure!(store.disabled_mail(bob).await?.is_empty());
    ensure!(enabled(&store, bob).await? == MailCategory::ALL);

    // The same again changes nothing; turning one back on keeps the other.
    store
        .set_mail_enabled(ada, &[(MailCategory::Orders, false)], t0() + secs(1))
        .await?;
    ensure!(store.disabled_mail(ada).await? == off);
    store
        .set_mail_enabled(ada, &[(MailCategory::Orders, true)], t0() + secs(2))
        .await?;
    ensure!(store.disabled_mail(ada).await? == [MailCategory::SavedSearches]);
    ensure!(store.mail_enabled(ada, MailCategory::Orders).await?);

    // Everything off, then everything on; nothing listed changes nothing.
    let all_off: Vec<_> = OPTIONAL.iter().map(|c| (*c, false)).collect();
    store
        .set_mail_enabled(ada, &all_off, t0() + secs(3))
        .await?;
    ensure!(store.disabled_mail(ada).await? == OPTIONAL);
    ensure!(enabled(&store, ada).await? == [MailCategory::Account, MailCategory::Moderation]);
    store.set_mail_enabled(ada, &[], t0() + secs(4)).await?;
    ensure!(store.disabled_mail(ada).await? == OPTIONAL);
    let all_on: Vec<_> = OPTIONAL.iter().map(|c| (*c, true)).collect();
    store.set_mail_enabled(ada, &all_on, t0() + secs(5)).await?;
    ensure!(store.disabled_mail(ada).await?.is_empty());
    Ok(())
}

async fn essential_mail_cannot_be_turned_off(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    for essential in [MailCategory::Account, MailCategory::Moderation] {
        // Refused with an optional change beside it: neither is stored.
        let refused = store
            .set_mail_enabled(
                ada,
                &[(MailCategory::Orders, false), (essential, false)],
                t0(),
            )
            .await;
        ensure!(
            matches!(refused, Err(StoreError::Backend(_))),
            "{refused:?}"
        );
        ensure!(store.disabled_mail(ada).await?.is_empty());
        ensure!(store.mail_enabled(ada, essential).await?);
        // On is what it always is: accepted, nothing to store.
        store
            .set_mail_enabled(ada, &[(essential, true)], t0())
            .await?;
        ensure!(store.disabled_mail(ada).await?.is_empty());
    }
    Ok(())
}

async fn unknown_users_are_not_found(store: SqlStore) -> Result {
    let nobody = UserId::new();
    ensure!(is_not_found(
        &store
            .set_mail_enabled(nobody, &[(MailCategory::Orders, false)], t0())
            .await
    ));
    ensure!(is_not_found(
        &store
            .set_mail_enabled(nobody, &[(MailCategory::Account, true)], t0())
            .await
    ));
    ensure!(is_not_found(
        &store.set_mail_enabled(nobody, &[], t0()).await
    ));
    ensure!(store.disabled_mail(nobody).await?.is_empty());
    ensure!(store.mail_enabled(nobody, MailCategory::Orders).await?);
    Ok(())
}

fn order_notice() -> AccountMail {
    AccountMail::Notice {
        username: "ada".into(),
        kind: "order.delivered".into(),
        subject: "Your order was delivered".into(),
        body: "Check the delivery.".into(),
        action: "View the order".into(),
        link: "https://marketplace.example/orders/1".into(),
    }
}

async fn outbox_keeps_the_recipient_and_skips_for_good(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?;
    let to = Email::parse("ada@example.com")?;
    let mail =
        QueuedMail::new("notice:1".into(), to.clone(), order_notice(), t0()).for_user(ada.id);
    ensure!(store.enqueue(&mail).await?);
    let stored = store.mail_by_key("notice:1").await?.context("stored")?;
    ensure!(
        stored == mail && stored.user_id == Some(ada.id),
        "{stored:?}"
    );
    // Mail for no account keeps none.
    let plain = QueuedMail::new("plain".into(), to.clone(), order_notice(), t0());
    store.enqueue(&plain).await?;
    ensure!(store
        .mail_by_key("plain")
        .await?
        .context("stored")?
        .user_id
        .is_none());
    // An account that does not exist is refused.
    let stray = QueuedMail::new("stray".into(), to, order_notice(), t0()).for_user(UserId::new());
    ensure!(is_not_found(&store.enqueue(&stray).await));
    ensure!(store.mail_by_key("stray").await?.is_none());

    let claimed = store
        .claim(mail.id, t0(), t0() + secs(60))
        .await?
        .context("due")?;
    ensure!(
        claimed.user_id == Some(ada.id),
        "the claim returns the account"
    );
    store.mark_skipped(mail.id).await?;
    let skipped = store.mail_by_key("notice:1").await?.context("kept")?;
    ensure!(skipped.status == MailStatus::Skipped, "{skipped:?}");
    ensure!(skipped.leased_until.is_none() && skipped.sent_at.is_none());
    ensure!(skipped.attempts == 1);
    // Final: never due, never claimed, not marked again.
    ensure!(store
        .due(t0() + secs(86_400), 10)
        .await?
        .iter()
        .all(|m| m.key == "plain"));
    ensure!(store
        .claim(mail.id, t0() + secs(3600), t0() + secs(3660))
        .await?
        .is_none());
    ensure!(is_not_found(&store.mark_skipped(mail.id).await));
    ensure!(is_not_found(
        &store.mark_skipped(uuid::Uuid::now_v7()).await
    ));
    Ok(())
}
