//! Notification read state scenarios of the store suite, on SQLite
//! (`store::notifications::sqlite::*`) and PostgreSQL
//! (`store::notifications::postgres::*`): the list pages newest first with
//! read flags, single marks are idempotent and refuse other users' or
//! non-notification cursors, marking all moves forward only, and every mark
//! appends `notification.read` to the user's own log.

use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use domain::ids::{ConversationId, UserId};
use domain::live::{LiveEvent, Notification};
use domain::ports::{EventLog, NotificationStore};

use super::{create, is_not_found, secs, t0, Result};

/// Each scenario once per backend, as the main suite does.
macro_rules! notifications_suite {
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

notifications_suite!(list_pages_and_read_flags, marks_are_idempotent_and_checked);

fn notification(n: i64) -> LiveEvent {
    LiveEvent::Notification(Notification {
        kind: "order.delivered".into(),
        title: format!("Order {n} delivered"),
        body: "Check the delivery.".into(),
        order_id: None,
        offer_id: None,
        conversation_id: None,
        gig_id: None,
    })
}

/// Appends notification `n` for `user`; returns its cursor.
async fn notify(store: &SqlStore, user: UserId, n: i64) -> anyhow::Result<i64> {
    let stored = store
        .append(&[user], &notification(n), t0() + secs(n))
        .await?;
    Ok(stored.first().context("one stored event")?.cursor)
}

async fn list_pages_and_read_flags(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    let mut cursors = Vec::new();
    for n in 1..=5 {
        cursors.push(notify(&store, ada, n).await?);
        // Other events in between are not notifications.
        store
            .append(
                &[ada],
                &LiveEvent::ChatRead {
                    conversation_id: ConversationId::new(),
                    user_id: ada,
                    last_read_seq: n,
                },
                t0(),
            )
            .await?;
    }
    let first = store.notifications(ada, None, 3).await?;
    let got: Vec<i64> = first.iter().map(|item| item.cursor).collect();
    ensure!(
        got == vec![cursors[4], cursors[3], cursors[2]],
        "newest first: {got:?}"
    );
    ensure!(first.iter().all(|item| !item.read), "all unread");
    ensure!(first[0].notification.title == "Order 5 delivered");
    ensure!(first[0].created_at == t0() + secs(5));
    let rest = store.notifications(ada, Some(cursors[2]), 3).await?;
    let got: Vec<i64> = rest.iter().map(|item| item.cursor).collect();
    ensure!(
        got == vec![cursors[1], cursors[0]],
        "the older page: {got:?}"
    );
    ensure!(store.unread_notifications(ada).await? == 5);

    let (unread, events) = store
        .mark_notification_read(ada, cursors[3], t0())
        .await?
        .context("the first mark reads it")?;
    ensure!(unread == 4);
    ensure!(events.len() == 1 && events[0].user_id == ada);
    ensure!(
        events[0].event
            == LiveEvent::NotificationsRead {
                cursors: vec![cursors[3]],
                through: None,
                unread: 4,
            }
    );
    let page = store.notifications(ada, None, 10).await?;
    let read: Vec<i64> = page.iter().filter(|i| i.read).map(|i| i.cursor).collect();
    ensure!(read == vec![cursors[3]], "one read: {read:?}");

    // Through the second: the first two become read.
    let (marked, unread, events) = store
        .mark_all_notifications_read(ada, cursors[1], t0())
        .await?;
    ensure!(
        (marked, unread) == (2, 2),
        "marked {marked}, unread {unread}"
    );
    ensure!(
        events.len() == 1
            && events[0].event
                == LiveEvent::NotificationsRead {
                    cursors: Vec::new(),
                    through: Some(cursors[1]),
                    unread: 2,
                }
    );
    // Backwards or again: nothing.
    let (marked, unread, events) = store
        .mark_all_notifications_read(ada, cursors[0], t0())
        .await?;
    ensure!((marked, unread, events.len()) == (0, 2, 0));
    // Everything: the one read singly is not counted again.
    let head = store.head(ada).await?;
    let (marked, unread, _) = store
        .mark_all_notifications_read(ada, i64::MAX, t0())
        .await?;
    ensure!(
        (marked, unread) == (2, 0),
        "marked {marked}, unread {unread}"
    );
    ensure!(store.head(ada).await? == head + 1, "one event appended");
    let page = store.notifications(ada, None, 10).await?;
    ensure!(page.len() == 5 && page.iter().all(|item| item.read));
    // Later notifications are unread even though `through` was huge.
    let later = notify(&store, ada, 6).await?;
    ensure!(store.unread_notifications(ada).await? == 1);
    let page = store.notifications(ada, None, 1).await?;
    ensure!(page[0].cursor == later && !page[0].read);
    Ok(())
}

async fn marks_are_idempotent_and_checked(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    let bob = create(&store, "bob").await?.id;
    let mine = notify(&store, ada, 1).await?;
    let theirs = notify(&store, bob, 1).await?;
    let other = store
        .append(
            &[ada],
            &LiveEvent::ChatRead {
                conversation_id: ConversationId::new(),
                user_id: ada,
                last_read_seq: 1,
            },
            t0(),
        )
        .await?[0]
        .cursor;
    ensure!(store
        .mark_notification_read(ada, mine, t0())
        .await?
        .is_some());
    let head = store.head(ada).await?;
    ensure!(
        store
            .mark_notification_read(ada, mine, t0())
            .await?
            .is_none(),
        "a second mark changes nothing"
    );
    ensure!(store.head(ada).await? == head, "and appends nothing");
    // Bob's cursor number is not one of Ada's notifications (Ada's log has
    // no event there, or a different one).
    let beyond = store.head(ada).await? + 10;
    ensure!(is_not_found(
        &store.mark_notification_read(ada, beyond, t0()).await
    ));
    ensure!(is_not_found(
        &store.mark_notification_read(ada, other, t0()).await
    ));
    ensure!(store.unread_notifications(bob).await? == 1);
    ensure!(store
        .mark_notification_read(bob, theirs, t0())
        .await?
        .is_some());
    ensure!(store.unread_notifications(bob).await? == 0);
    ensure!(store.unread_notifications(ada).await? == 0);
    Ok(())
}
