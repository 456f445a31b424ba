//! Moderation scenarios of the store suite: items raised once per source
//! key and one unresolved report per reporter and target, versioned item
//! changes, admin actions recorded with their item change all or nothing,
//! the feed numbered without gaps under concurrency, the audit log's
//! filters and the database's refusal to change it, the admins' lists of
//! users, gigs and orders, the day's totals, re-indexing a seller's gigs,
//! and the status a removed gig remembers. Items and orders are driven with
//! the domain's own rules (`Item::raise`, `Item::claim`, `order::decide`).

use std::collections::HashSet;

use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use chrono::{DateTime, TimeDelta, Utc};
use domain::account::{Role, User};
use domain::gig::{Gig, GigContent, GigStatus, Package, PackageTier};
use domain::ids::{ConversationId, GigId, ItemId, MessageId, OrderId, UserId};
use domain::moderation::{
    AccountState, ActionRecord, AdminAction, AuditEntry, AuditFilter, FeedEvent, FeedRecord,
    GigFilter, Item, ItemChange, ItemFilter, ItemKind, ItemStatus, NewAudit, NewItem, OrderFilter,
    ReportReason, Target, Totals, UserFilter,
};
use domain::money::{Currency, Money};
use domain::order::{Actor, Order, OrderCommand, OrderStatus, Resolution};
use domain::ports::{AccountStore, GigStore, ModerationStore, StoreError};

use super::orders::{apply, gig_order, pay, place};
use super::{create, is_conflict, is_not_found, new_user, secs, t0, Result};

// ---------------------------------------------------------------- fixtures

fn usd(amount_minor: i64) -> Money {
    Money {
        amount_minor,
        currency: Currency::Usd,
    }
}

async fn create_admin(store: &SqlStore, name: &str) -> anyhow::Result<User> {
    let mut admin = new_user(name);
    admin.role = Role::Admin;
    Ok(store.create_user(&admin).await?)
}

fn new_item(kind: ItemKind, target: Target, subject: Option<UserId>, key: &str) -> NewItem {
    NewItem {
        kind,
        target,
        subject_user: subject,
        summary: format!("{} on {}", kind.as_str(), target.kind()),
        excerpt: None,
        flags: Vec::new(),
        reporter: None,
        reason: None,
        amount: None,
        source_key: key.into(),
    }
}

fn item(
    kind: ItemKind,
    target: Target,
    subject: Option<UserId>,
    key: &str,
    at: DateTime<Utc>,
) -> Item {
    Item::raise(new_item(kind, target, subject, key), at)
}

fn report(
    reporter: UserId,
    target: Target,
    subject: Option<UserId>,
    key: &str,
    at: DateTime<Utc>,
) -> Item {
    Item::raise(
        NewItem {
            reporter: Some(reporter),
            reason: Some(ReportReason::Spam),
            excerpt: Some("Sends the same offer to everyone".into()),
            ..new_item(ItemKind::Report, target, subject, key)
        },
        at,
    )
}

fn gig_target() -> Target {
    Target::Gig { id: GigId::new() }
}

/// `item` as stored after a change from `expected`, announced by `event`.
fn change(item: &Item, expected: i64, event: fn(Box<Item>) -> FeedEvent) -> ItemChange {
    ItemChange {
        item: item.clone(),
        expected_version: expected,
        event: event(Box::new(item.clone())),
    }
}

async fn raise(store: &SqlStore, item: &Item) -> anyhow::Result<FeedRecord> {
    store
        .raise(item)
        .await?
        .context("the item should be raised")
}

fn audit(admin: UserId, action: AdminAction, target: Target, at: DateTime<Utc>) -> NewAudit {
    NewAudit {
        admin_id: admin,
        action,
        target,
        reason: format!("{action} because the rules say so \u{e9}"),
        details: None,
        item_id: None,
        at,
    }
}

/// Records an action without an item change.
async fn record(store: &SqlStore, audit: NewAudit) -> anyhow::Result<AuditEntry> {
    let (entry, _) = store
        .record_action(&ActionRecord { audit, item: None })
        .await?;
    Ok(entry)
}

fn is_version_conflict<T>(result: &std::result::Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::VersionConflict))
}

fn seqs(records: &[FeedRecord]) -> Vec<i64> {
    records.iter().map(|r| r.seq).collect()
}

fn entry_ids(entries: &[AuditEntry]) -> Vec<i64> {
    entries.iter().map(|e| e.id).collect()
}

fn user_ids(users: &[User]) -> Vec<UserId> {
    users.iter().map(|u| u.id).collect()
}

fn gig_ids(gigs: &[Gig]) -> Vec<GigId> {
    gigs.iter().map(|g| g.id).collect()
}

fn order_ids(orders: &[Order]) -> Vec<OrderId> {
    orders.iter().map(|o| o.id).collect()
}

/// A gig in `programming-tech/web-development`, version 1.
fn gig(seller: UserId, title: &str, status: GigStatus, at: DateTime<Utc>) -> Gig {
    Gig {
        id: GigId::new(),
        seller_id: seller,
        content: GigContent {
            title: title.into(),
            description: "A fast, accessible landing page.".into(),
            category: "programming-tech".into(),
            subcategory: "web-development".into(),
            tags: vec!["rust".into()],
            faq: Vec::new(),
            packages: vec![Package {
                tier: PackageTier::Basic,
                name: "Basic".into(),
                description: "One page".into(),
                price: usd(5_000),
                delivery_days: 3,
                revisions: 1,
            }],
        },
        media: Vec::new(),
        status,
        version: 1,
        created_at: at,
        updated_at: at,
        deleted_at: None,
        removed_from: None,
    }
}

// ------------------------------------------------------------------ items

pub(super) async fn raise_is_idempotent_by_source_key(store: SqlStore) -> Result {
    let sender = create(&store, "alice").await?;
    let target = Target::Message {
        id: MessageId::new(),
        conversation_id: ConversationId::new(),
    };
    let new = NewItem {
        excerpt: Some("mail me at ada@example.com, \"quoted\" caf\u{e9} \u{1f680}".into()),
        flags: vec!["email".into(), "word:paypal".into()],
        amount: Some(usd(1_250)),
        ..new_item(
            ItemKind::MessageFlagged,
            target,
            Some(sender.id),
            "message:1",
        )
    };
    let item = Item::raise(new.clone(), t0());
    assert_eq!(store.feed_head().await?, 0);
    ensure!(
        store.feed_after(0, 10).await?.is_empty(),
        "the feed starts empty"
    );

    let record = raise(&store, &item).await?;
    assert_eq!(
        record,
        FeedRecord {
            seq: 1,
            at: t0(),
            event: FeedEvent::ItemRaised(Box::new(item.clone())),
        }
    );
    assert_eq!(store.item(item.id).await?, Some(item.clone()));

    // The same key under another id, or the same item again: nothing.
    let again = Item::raise(
        NewItem {
            summary: "raised twice".into(),
            ..new
        },
        t0() + secs(5),
    );
    assert_eq!(store.raise(&again).await?, None);
    assert_eq!(store.raise(&item).await?, None);
    assert_eq!(store.item(again.id).await?, None);
    assert_eq!(store.feed_head().await?, 1);
    assert_eq!(store.feed_after(0, 10).await?, [record]);
    assert_eq!(store.items(&ItemFilter::default()).await?, [item]);
    assert_eq!(store.item(ItemId::new()).await?, None);

    // An unknown user is refused, and takes no feed number.
    let stranger = self::item(
        ItemKind::GigEdited,
        gig_target(),
        Some(UserId::new()),
        "gig_edited:1",
        t0(),
    );
    let result = store.raise(&stranger).await;
    ensure!(is_not_found(&result), "unknown subject: {result:?}");
    assert_eq!(store.feed_head().await?, 1);
    let next = raise(
        &store,
        &self::item(
            ItemKind::GigEdited,
            gig_target(),
            None,
            "gig_edited:2",
            t0(),
        ),
    )
    .await?;
    assert_eq!(next.seq, 2);
    Ok(())
}

pub(super) async fn one_open_report_per_reporter_and_target(store: SqlStore) -> Result {
    let reporter = create(&store, "alice").await?;
    let other = create(&store, "bob").await?;
    let seller = create(&store, "carol").await?;
    let admin = create_admin(&store, "root").await?;
    let target = gig_target();
    let subject = Some(seller.id);

    let first = report(reporter.id, target, subject, "report:1", t0());
    raise(&store, &first).await?;
    let second = report(reporter.id, target, subject, "report:2", t0() + secs(1));
    let result = store.raise(&second).await;
    ensure!(is_conflict(&result, "report"), "second report: {result:?}");
    assert_eq!(store.item(second.id).await?, None);
    assert_eq!(store.feed_head().await?, 1);
    // The first report again is a repeat, not a conflict.
    assert_eq!(store.raise(&first).await?, None);

    // Someone else may report the gig, the reporter something else, and
    // items that are not reports are not limited.
    raise(
        &store,
        &report(other.id, target, subject, "report:3", t0() + secs(2)),
    )
    .await?;
    raise(
        &store,
        &report(
            reporter.id,
            Target::User { id: seller.id },
            subject,
            "report:4",
            t0() + secs(3),
        ),
    )
    .await?;
    raise(
        &store,
        &item(
            ItemKind::GigEdited,
            target,
            subject,
            "gig_edited:1",
            t0() + secs(4),
        ),
    )
    .await?;
    raise(
        &store,
        &item(
            ItemKind::GigEdited,
            target,
            subject,
            "gig_edited:2",
            t0() + secs(5),
        ),
    )
    .await?;

    // A claimed report is still unresolved.
    let claimed = first
        .claim(admin.id, t0() + secs(10))?
        .context("an open item can be claimed")?;
    store
        .update_item(&change(&claimed, 1, FeedEvent::ItemClaimed))
        .await?;
    let result = store
        .raise(&report(
            reporter.id,
            target,
            subject,
            "report:5",
            t0() + secs(11),
        ))
        .await;
    ensure!(is_conflict(&result, "report"), "while claimed: {result:?}");

    // Once it is resolved, the reporter may report the gig again, once.
    let resolved = claimed.resolve(admin.id, "dismissed", t0() + secs(12))?;
    store
        .update_item(&change(&resolved, 2, FeedEvent::ItemResolved))
        .await?;
    let third = report(reporter.id, target, subject, "report:6", t0() + secs(13));
    raise(&store, &third).await?;
    let result = store
        .raise(&report(
            reporter.id,
            target,
            subject,
            "report:7",
            t0() + secs(14),
        ))
        .await;
    ensure!(
        is_conflict(&result, "report"),
        "after a new one: {result:?}"
    );

    let reports = store
        .items(&ItemFilter {
            kind: Some(ItemKind::Report),
            target_type: Some("gig".into()),
            target_id: Some(target.id()),
            ..ItemFilter::default()
        })
        .await?;
    let keys: Vec<&str> = reports.iter().map(|i| i.source_key.as_str()).collect();
    assert_eq!(keys, ["report:6", "report:3", "report:1"]);
    Ok(())
}

pub(super) async fn update_item_checks_the_version(store: SqlStore) -> Result {
    let admin = create_admin(&store, "root").await?;
    let other = create_admin(&store, "ops").await?;
    let item = item(ItemKind::GigPublished, gig_target(), None, "gig:1", t0());
    raise(&store, &item).await?;

    let claimed = item
        .claim(admin.id, t0() + secs(1))?
        .context("an open item can be claimed")?;
    let record = store
        .update_item(&change(&claimed, 1, FeedEvent::ItemClaimed))
        .await?;
    assert_eq!(
        record,
        FeedRecord {
            seq: 2,
            at: t0() + secs(1),
            event: FeedEvent::ItemClaimed(Box::new(claimed.clone())),
        }
    );
    assert_eq!(store.item(item.id).await?, Some(claimed.clone()));
    assert_eq!(claimed.version, 2);

    // Another admin's claim, decided on version 1, is stale: nothing is
    // written and no feed number is taken.
    let stale = item
        .claim(other.id, t0() + secs(2))?
        .context("an open item can be claimed")?;
    let result = store
        .update_item(&change(&stale, 1, FeedEvent::ItemClaimed))
        .await;
    ensure!(is_version_conflict(&result), "stale claim: {result:?}");
    assert_eq!(store.item(item.id).await?, Some(claimed.clone()));
    assert_eq!(store.feed_head().await?, 2);
    assert_eq!(seqs(&store.feed_after(0, 10).await?), [1, 2]);

    // A change that does not move the version on is refused before it is
    // tried.
    let result = store
        .update_item(&change(&claimed, 2, FeedEvent::ItemClaimed))
        .await;
    ensure!(
        matches!(result, Err(StoreError::Backend(_))),
        "same version: {result:?}"
    );

    // An item never raised.
    let ghost = self::item(ItemKind::GigEdited, gig_target(), None, "ghost", t0());
    let ghost_claim = ghost
        .claim(admin.id, t0() + secs(3))?
        .context("an open item can be claimed")?;
    let result = store
        .update_item(&change(&ghost_claim, 1, FeedEvent::ItemClaimed))
        .await;
    ensure!(is_not_found(&result), "unknown item: {result:?}");
    assert_eq!(store.feed_head().await?, 2);

    // Released, then listed by status and claimer.
    assert_eq!(
        store
            .items(&ItemFilter {
                claimed_by: Some(admin.id),
                ..ItemFilter::default()
            })
            .await?,
        std::slice::from_ref(&claimed)
    );
    let released = claimed
        .release(admin.id, t0() + secs(4))?
        .context("the claimer can release")?;
    let record = store
        .update_item(&change(&released, 2, FeedEvent::ItemReleased))
        .await?;
    assert_eq!(record.seq, 3);
    assert_eq!(store.item(item.id).await?, Some(released.clone()));
    ensure!(
        store
            .items(&ItemFilter {
                claimed_by: Some(admin.id),
                ..ItemFilter::default()
            })
            .await?
            .is_empty(),
        "released items have no claimer"
    );
    assert_eq!(
        store
            .items(&ItemFilter {
                status: Some(ItemStatus::Open),
                ..ItemFilter::default()
            })
            .await?,
        std::slice::from_ref(&released)
    );
    // Unresolved: open or claimed, filtered by the store.
    let unresolved = ItemFilter {
        unresolved: true,
        ..ItemFilter::default()
    };
    assert_eq!(
        store.items(&unresolved).await?,
        std::slice::from_ref(&released)
    );
    let resolved = released.resolve(admin.id, "dismissed", t0() + secs(5))?;
    store
        .update_item(&change(&resolved, 3, FeedEvent::ItemResolved))
        .await?;
    ensure!(
        store.items(&unresolved).await?.is_empty(),
        "resolved items are not unresolved"
    );
    Ok(())
}

pub(super) async fn concurrent_claims_have_one_winner(store: SqlStore) -> Result {
    let mut admins = Vec::new();
    for n in 0..8 {
        admins.push(create_admin(&store, &format!("admin{n}")).await?);
    }
    let item = item(
        ItemKind::DisputeOpened,
        gig_target(),
        None,
        "dispute:1",
        t0(),
    );
    raise(&store, &item).await?;

    let tasks: Vec<_> = admins
        .iter()
        .map(|admin| {
            let store = store.clone();
            let claimed = item.claim(admin.id, t0() + secs(1));
            tokio::spawn(async move {
                let claimed = claimed?.context("an open item can be claimed")?;
                let result = store
                    .update_item(&change(&claimed, 1, FeedEvent::ItemClaimed))
                    .await;
                anyhow::Ok((claimed, result))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (claimed, result) = task.await??;
        match result {
            Ok(record) => winners.push((claimed, record)),
            Err(StoreError::VersionConflict) => {}
            Err(e) => return Err(e.into()),
        }
    }
    ensure!(winners.len() == 1, "{} claims won", winners.len());
    let (claimed, record) = &winners[0];
    assert_eq!(record.seq, 2);
    assert_eq!(store.item(item.id).await?.as_ref(), Some(claimed));
    assert_eq!(store.feed_head().await?, 2);
    assert_eq!(store.feed_after(0, 10).await?.len(), 2);
    Ok(())
}

// ---------------------------------------------------------------- actions

pub(super) async fn record_action_is_all_or_nothing(store: SqlStore) -> Result {
    let admin = create_admin(&store, "root").await?;
    let reporter = create(&store, "alice").await?;
    let seller = create(&store, "carol").await?;
    let target = Target::User { id: seller.id };
    let item = report(reporter.id, target, Some(seller.id), "report:1", t0());
    let raised = raise(&store, &item).await?;

    let resolved = item.resolve(admin.id, "warn_user", t0() + secs(1))?;
    let warn = NewAudit {
        details: Some("warned by e-mail".into()),
        item_id: Some(item.id),
        ..audit(admin.id, AdminAction::WarnUser, target, t0() + secs(1))
    };
    let (entry, records) = store
        .record_action(&ActionRecord {
            audit: warn.clone(),
            item: Some(change(&resolved, 1, FeedEvent::ItemResolved)),
        })
        .await?;
    assert_eq!(
        entry,
        AuditEntry {
            id: 1,
            admin_id: admin.id,
            action: AdminAction::WarnUser,
            target,
            reason: warn.reason.clone(),
            details: warn.details.clone(),
            item_id: Some(item.id),
            at: t0() + secs(1),
        }
    );
    assert_eq!(
        records,
        [
            FeedRecord {
                seq: 2,
                at: t0() + secs(1),
                event: FeedEvent::ItemResolved(Box::new(resolved.clone())),
            },
            FeedRecord {
                seq: 3,
                at: t0() + secs(1),
                event: FeedEvent::AuditRecorded(Box::new(entry.clone())),
            },
        ]
    );
    assert_eq!(store.item(item.id).await?, Some(resolved.clone()));
    assert_eq!(
        store.audit(&AuditFilter::default()).await?,
        std::slice::from_ref(&entry)
    );

    // A decision on a stale version of the item writes nothing at all.
    let stale = item.resolve(admin.id, "dismissed", t0() + secs(2))?;
    let result = store
        .record_action(&ActionRecord {
            audit: NewAudit {
                action: AdminAction::DismissReport,
                at: t0() + secs(2),
                ..warn.clone()
            },
            item: Some(change(&stale, 1, FeedEvent::ItemResolved)),
        })
        .await;
    ensure!(is_version_conflict(&result), "stale item: {result:?}");
    // So does one on an item that does not exist, or by an unknown admin.
    let ghost = report(reporter.id, gig_target(), None, "ghost", t0());
    let ghost_resolved = ghost.resolve(admin.id, "dismissed", t0() + secs(2))?;
    let result = store
        .record_action(&ActionRecord {
            audit: warn.clone(),
            item: Some(change(&ghost_resolved, 1, FeedEvent::ItemResolved)),
        })
        .await;
    ensure!(is_not_found(&result), "unknown item: {result:?}");
    let result = store
        .record_action(&ActionRecord {
            audit: audit(UserId::new(), AdminAction::WarnUser, target, t0()),
            item: None,
        })
        .await;
    ensure!(is_not_found(&result), "unknown admin: {result:?}");
    assert_eq!(
        store.audit(&AuditFilter::default()).await?,
        std::slice::from_ref(&entry)
    );
    assert_eq!(store.item(item.id).await?, Some(resolved));
    assert_eq!(store.feed_head().await?, 3);

    // Without an item: the entry and its one event, numbered on.
    let (second, more) = store
        .record_action(&ActionRecord {
            audit: audit(admin.id, AdminAction::SuspendUser, target, t0() + secs(3)),
            item: None,
        })
        .await?;
    assert_eq!(second.id, 2);
    assert_eq!(
        more,
        [FeedRecord {
            seq: 4,
            at: t0() + secs(3),
            event: FeedEvent::AuditRecorded(Box::new(second.clone())),
        }]
    );

    // The feed holds exactly what was returned, in order.
    let mut expected = vec![raised];
    expected.extend(records);
    expected.extend(more);
    assert_eq!(store.feed_after(0, 100).await?, expected);
    assert_eq!(store.feed_after(2, 1).await?, expected[2..3]);
    Ok(())
}

pub(super) async fn feed_has_no_gaps_under_concurrency(store: SqlStore) -> Result {
    let admin = create_admin(&store, "root").await?;
    let items: Vec<Item> = (0..10)
        .map(|n| {
            item(
                ItemKind::GigPublished,
                gig_target(),
                None,
                &format!("gig:{n}"),
                t0() + secs(n),
            )
        })
        .collect();
    let raises: Vec<_> = items
        .iter()
        .map(|item| {
            let (store, item) = (store.clone(), item.clone());
            tokio::spawn(async move { store.raise(&item).await })
        })
        .collect();
    let actions: Vec<_> = (0..5)
        .map(|n| {
            let store = store.clone();
            let audit = audit(
                admin.id,
                AdminAction::WarnUser,
                Target::User { id: admin.id },
                t0() + secs(n),
            );
            tokio::spawn(async move { record(&store, audit).await })
        })
        .collect();
    let mut taken = Vec::new();
    for task in raises {
        let record = task.await??.context("every item is new")?;
        taken.push(record.seq);
    }
    let mut audit_ids = Vec::new();
    for task in actions {
        audit_ids.push(task.await??.id);
    }
    audit_ids.sort_unstable();
    assert_eq!(audit_ids, [1, 2, 3, 4, 5]);

    let feed = store.feed_after(0, 100).await?;
    assert_eq!(seqs(&feed), (1..=15).collect::<Vec<i64>>());
    let raised: Vec<ItemId> = feed
        .iter()
        .filter_map(|r| match &r.event {
            FeedEvent::ItemRaised(item) => Some(item.id),
            _ => None,
        })
        .collect();
    let unique: HashSet<ItemId> = raised.iter().copied().collect();
    ensure!(raised.len() == 10 && unique.len() == 10, "each item once");
    ensure!(
        items.iter().all(|i| unique.contains(&i.id)),
        "every item raised"
    );
    for record in &feed {
        if let FeedEvent::ItemRaised(item) = &record.event {
            ensure!(taken.contains(&record.seq), "the raise was told its number");
            assert_eq!(store.item(item.id).await?.as_ref(), Some(&**item));
        }
    }
    assert_eq!(store.feed_head().await?, 15);
    assert_eq!(seqs(&store.feed_after(4, 3).await?), [5, 6, 7]);
    ensure!(
        store.feed_after(15, 10).await?.is_empty(),
        "nothing after the head"
    );
    Ok(())
}

pub(super) async fn audit_filters_and_pages(store: SqlStore) -> Result {
    let first = create_admin(&store, "root").await?;
    let second = create_admin(&store, "ops").await?;
    let user = create(&store, "alice").await?;
    let on_user = Target::User { id: user.id };
    let on_gig = gig_target();
    let on_message = Target::Message {
        id: MessageId::new(),
        conversation_id: ConversationId::new(),
    };
    let plan = [
        (first.id, AdminAction::SuspendUser, on_user),
        (first.id, AdminAction::WarnUser, on_user),
        (second.id, AdminAction::RemoveGig, on_gig),
        (second.id, AdminAction::RestoreGig, on_gig),
        (first.id, AdminAction::DismissReport, on_message),
        (second.id, AdminAction::SuspendUser, on_user),
    ];
    let mut entries = Vec::new();
    for (n, (admin, action, target)) in (0..).zip(plan) {
        entries.push(record(&store, audit(admin, action, target, t0() + secs(10 * n))).await?);
    }
    assert_eq!(entry_ids(&entries), [1, 2, 3, 4, 5, 6]);
    // A message keeps its conversation.
    assert_eq!(entries[4].target, on_message);

    let list = |filter: AuditFilter| {
        let store = store.clone();
        async move { anyhow::Ok(entry_ids(&store.audit(&filter).await?)) }
    };
    let all = store.audit(&AuditFilter::default()).await?;
    let mut newest_first = entries.clone();
    newest_first.reverse();
    assert_eq!(all, newest_first);
    assert_eq!(
        list(AuditFilter {
            admin_id: Some(first.id),
            ..AuditFilter::default()
        })
        .await?,
        [5, 2, 1]
    );
    assert_eq!(
        list(AuditFilter {
            action: Some(AdminAction::SuspendUser),
            ..AuditFilter::default()
        })
        .await?,
        [6, 1]
    );
    assert_eq!(
        list(AuditFilter {
            admin_id: Some(first.id),
            action: Some(AdminAction::SuspendUser),
            ..AuditFilter::default()
        })
        .await?,
        [1]
    );
    assert_eq!(
        list(AuditFilter {
            target_type: Some("user".into()),
            target_id: Some(user.id.as_uuid()),
            ..AuditFilter::default()
        })
        .await?,
        [6, 2, 1]
    );
    assert_eq!(
        list(AuditFilter {
            target_type: Some("gig".into()),
            ..AuditFilter::default()
        })
        .await?,
        [4, 3]
    );
    assert_eq!(
        list(AuditFilter {
            target_id: Some(on_message.id()),
            ..AuditFilter::default()
        })
        .await?,
        [5]
    );
    // `from` is inclusive, `to` exclusive.
    assert_eq!(
        list(AuditFilter {
            from: Some(t0() + secs(20)),
            to: Some(t0() + secs(40)),
            ..AuditFilter::default()
        })
        .await?,
        [4, 3]
    );
    assert_eq!(
        list(AuditFilter {
            from: Some(t0() + secs(20) + TimeDelta::microseconds(1)),
            ..AuditFilter::default()
        })
        .await?,
        [6, 5, 4]
    );
    // Pages.
    let page = |before: Option<i64>| AuditFilter {
        before,
        limit: 2,
        ..AuditFilter::default()
    };
    assert_eq!(list(page(None)).await?, [6, 5]);
    assert_eq!(list(page(Some(5))).await?, [4, 3]);
    assert_eq!(list(page(Some(3))).await?, [2, 1]);
    assert_eq!(list(page(Some(1))).await?, Vec::<i64>::new());
    Ok(())
}

pub(super) async fn audit_log_is_append_only(store: SqlStore) -> Result {
    let admin = create_admin(&store, "root").await?;
    let user = create(&store, "alice").await?;
    let entry = record(
        &store,
        audit(
            admin.id,
            AdminAction::SuspendUser,
            Target::User { id: user.id },
            t0(),
        ),
    )
    .await?;

    let mut refused = vec![
        "UPDATE audit_log SET reason = 'rewritten'",
        "UPDATE audit_log SET reason = 'rewritten' WHERE id = 1",
        "DELETE FROM audit_log WHERE id = 1",
        "DELETE FROM audit_log",
    ];
    if store.backend() == "postgres" {
        refused.push("TRUNCATE audit_log");
    }
    for sql in refused {
        let result = store.execute_raw(sql).await;
        ensure!(
            matches!(&result, Err(StoreError::Backend(message)) if message.contains("append-only")),
            "{sql:?} should be refused: {result:?}"
        );
    }
    assert_eq!(
        store.audit(&AuditFilter::default()).await?,
        std::slice::from_ref(&entry)
    );

    // Statements the triggers do not concern still run, and the log still
    // takes new entries.
    assert_eq!(
        store
            .execute_raw("UPDATE moderation_feed_head SET last_seq = last_seq")
            .await?,
        1
    );
    let next = record(
        &store,
        audit(
            admin.id,
            AdminAction::ReinstateUser,
            Target::User { id: user.id },
            t0() + secs(1),
        ),
    )
    .await?;
    assert_eq!(next.id, 2);
    assert_eq!(store.audit(&AuditFilter::default()).await?, [next, entry]);
    Ok(())
}

// ------------------------------------------------------------------ lists

pub(super) async fn users_filters_and_pages(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let root = create_admin(&store, "root_admin").await?;
    let carol = create(&store, "carol").await?;
    let dave = create(&store, "dave").await?;
    let ali_baba = create(&store, "ali_baba").await?;
    let alixbaba = create(&store, "alixbaba").await?;
    store.set_suspended(carol.id, true, t0() + secs(1)).await?;
    store.anonymise_user(dave.id, t0() + secs(2)).await?;

    let list = |filter: UserFilter| {
        let store = store.clone();
        async move { anyhow::Ok(user_ids(&store.users(&filter).await?)) }
    };
    let query = |text: &str| UserFilter {
        query: Some(text.into()),
        ..UserFilter::default()
    };
    assert_eq!(
        list(UserFilter::default()).await?,
        [
            alixbaba.id,
            ali_baba.id,
            dave.id,
            carol.id,
            root.id,
            alice.id
        ]
    );
    let users = store.users(&UserFilter::default()).await?;
    assert_eq!(users[5], alice);
    assert_eq!(
        list(UserFilter {
            role: Some(Role::Admin),
            ..UserFilter::default()
        })
        .await?,
        [root.id]
    );
    let state = |state| UserFilter {
        state: Some(state),
        ..UserFilter::default()
    };
    assert_eq!(
        list(state(AccountState::Active)).await?,
        [alixbaba.id, ali_baba.id, root.id, alice.id]
    );
    assert_eq!(list(state(AccountState::Suspended)).await?, [carol.id]);
    assert_eq!(list(state(AccountState::Deleted)).await?, [dave.id]);

    // Part of the username or the e-mail address, in any case; `_` and `%`
    // are themselves, not wildcards.
    assert_eq!(list(query("BaBa")).await?, [alixbaba.id, ali_baba.id]);
    assert_eq!(list(query("ali_")).await?, [ali_baba.id]);
    // "ali" is also in the deleted account's `@deleted.invalid`.
    assert_eq!(
        list(query("ALI")).await?,
        [alixbaba.id, ali_baba.id, dave.id, alice.id]
    );
    assert_eq!(list(query("%")).await?, Vec::<UserId>::new());
    assert_eq!(list(query("CAROL@EXAMPLE")).await?, [carol.id]);
    assert_eq!(list(query("@deleted.invalid")).await?, [dave.id]);
    assert_eq!(
        list(UserFilter {
            role: Some(Role::User),
            state: Some(AccountState::Active),
            query: Some("ali".into()),
            ..UserFilter::default()
        })
        .await?,
        [alixbaba.id, ali_baba.id, alice.id]
    );

    // Pages.
    let page = |before: Option<UserId>| UserFilter {
        before,
        limit: 4,
        ..UserFilter::default()
    };
    assert_eq!(
        list(page(None)).await?,
        [alixbaba.id, ali_baba.id, dave.id, carol.id]
    );
    assert_eq!(list(page(Some(carol.id))).await?, [root.id, alice.id]);
    assert_eq!(list(page(Some(alice.id))).await?, Vec::<UserId>::new());
    Ok(())
}

pub(super) async fn gigs_filters_and_pages(store: SqlStore) -> Result {
    let first = create(&store, "alice").await?;
    let second = create(&store, "bob").await?;
    let vector = gig(first.id, "Logo 100% vector", GigStatus::Active, t0());
    let design = gig(
        first.id,
        "Logo_design fast",
        GigStatus::Paused,
        t0() + secs(1),
    );
    let landing = gig(
        second.id,
        "Rust LANDING page",
        GigStatus::Active,
        t0() + secs(2),
    );
    let deleted = Gig {
        deleted_at: Some(t0() + secs(3)),
        ..gig(second.id, "Logo gone", GigStatus::Active, t0() + secs(3))
    };
    let removed = Gig {
        removed_from: Some(GigStatus::Active),
        ..gig(first.id, "Logo removed", GigStatus::Removed, t0() + secs(4))
    };
    for gig in [&vector, &design, &landing, &deleted, &removed] {
        store.save_gig(gig, None).await?;
    }

    let list = |filter: GigFilter| {
        let store = store.clone();
        async move { anyhow::Ok(gig_ids(&store.gigs(&filter).await?)) }
    };
    let query = |text: &str| GigFilter {
        query: Some(text.into()),
        ..GigFilter::default()
    };
    assert_eq!(
        store.gigs(&GigFilter::default()).await?,
        [
            removed.clone(),
            landing.clone(),
            design.clone(),
            vector.clone()
        ]
    );
    assert_eq!(
        list(GigFilter {
            include_deleted: true,
            ..GigFilter::default()
        })
        .await?,
        [removed.id, deleted.id, landing.id, design.id, vector.id]
    );
    assert_eq!(
        list(GigFilter {
            status: Some(GigStatus::Active),
            ..GigFilter::default()
        })
        .await?,
        [landing.id, vector.id]
    );
    assert_eq!(
        list(GigFilter {
            status: Some(GigStatus::Removed),
            ..GigFilter::default()
        })
        .await?,
        [removed.id]
    );
    assert_eq!(
        list(GigFilter {
            seller_id: Some(first.id),
            ..GigFilter::default()
        })
        .await?,
        [removed.id, design.id, vector.id]
    );
    assert_eq!(list(query("100%")).await?, [vector.id]);
    assert_eq!(list(query("logo_")).await?, [design.id]);
    assert_eq!(list(query("landing")).await?, [landing.id]);
    assert_eq!(list(query("%")).await?, [vector.id]);
    assert_eq!(
        list(GigFilter {
            query: Some("LOGO".into()),
            include_deleted: true,
            ..GigFilter::default()
        })
        .await?,
        [removed.id, deleted.id, design.id, vector.id]
    );

    // Pages.
    let page = |before: Option<GigId>| GigFilter {
        before,
        limit: 2,
        ..GigFilter::default()
    };
    assert_eq!(list(page(None)).await?, [removed.id, landing.id]);
    assert_eq!(list(page(Some(landing.id))).await?, [design.id, vector.id]);
    assert_eq!(list(page(Some(vector.id))).await?, Vec::<GigId>::new());
    Ok(())
}

/// An order placed, paid and disputed by its buyer.
async fn disputed_order(
    store: &SqlStore,
    buyer: UserId,
    seller: UserId,
    key: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Order> {
    let placed = gig_order(buyer, seller, 10_000, at);
    place(store, &placed, key).await?;
    let paid = pay(store, &placed, at + secs(1)).await?;
    apply(
        store,
        &paid,
        Actor::Buyer,
        OrderCommand::OpenDispute {
            reason: "Nothing was delivered".into(),
        },
        at + secs(2),
    )
    .await
}

pub(super) async fn orders_filters_and_pages(store: SqlStore) -> Result {
    let buyer = create(&store, "alice").await?;
    let first = create(&store, "bob").await?;
    let second = create(&store, "carol").await?;

    let unpaid = gig_order(buyer.id, first.id, 10_000, t0());
    place(&store, &unpaid, "k1").await?;
    let paid = gig_order(buyer.id, second.id, 20_000, t0() + secs(10));
    place(&store, &paid, "k2").await?;
    let paid = pay(&store, &paid, t0() + secs(11)).await?;
    // The second seller buys from the first.
    let disputed = disputed_order(&store, second.id, first.id, "k3", t0() + secs(20)).await?;
    let settled = disputed_order(&store, buyer.id, first.id, "k4", t0() + secs(30)).await?;
    let settled = apply(
        &store,
        &settled,
        Actor::Admin,
        OrderCommand::Resolve(Resolution::Complete),
        t0() + secs(40),
    )
    .await?;
    assert_eq!(disputed.status, OrderStatus::Disputed);
    assert_eq!(settled.status, OrderStatus::Completed);

    let list = |filter: OrderFilter| {
        let store = store.clone();
        async move { anyhow::Ok(order_ids(&store.orders(&filter).await?)) }
    };
    let all = store.orders(&OrderFilter::default()).await?;
    assert_eq!(
        order_ids(&all),
        [settled.id, disputed.id, paid.id, unpaid.id]
    );
    assert_eq!(all[0], settled);
    assert_eq!(all[1], disputed);
    assert_eq!(
        list(OrderFilter {
            status: Some(OrderStatus::Disputed),
            ..OrderFilter::default()
        })
        .await?,
        [disputed.id]
    );
    // Disputed: open or resolved.
    assert_eq!(
        list(OrderFilter {
            disputed: true,
            ..OrderFilter::default()
        })
        .await?,
        [settled.id, disputed.id]
    );
    assert_eq!(
        list(OrderFilter {
            disputed: true,
            status: Some(OrderStatus::Disputed),
            ..OrderFilter::default()
        })
        .await?,
        [disputed.id]
    );
    assert_eq!(
        list(OrderFilter {
            party: Some(second.id),
            ..OrderFilter::default()
        })
        .await?,
        [disputed.id, paid.id]
    );
    assert_eq!(
        list(OrderFilter {
            buyer_id: Some(buyer.id),
            ..OrderFilter::default()
        })
        .await?,
        [settled.id, paid.id, unpaid.id]
    );
    assert_eq!(
        list(OrderFilter {
            seller_id: Some(first.id),
            ..OrderFilter::default()
        })
        .await?,
        [settled.id, disputed.id, unpaid.id]
    );
    assert_eq!(
        list(OrderFilter {
            buyer_id: Some(buyer.id),
            seller_id: Some(first.id),
            ..OrderFilter::default()
        })
        .await?,
        [settled.id, unpaid.id]
    );
    assert_eq!(
        list(OrderFilter {
            party: Some(first.id),
            status: Some(OrderStatus::AwaitingPayment),
            ..OrderFilter::default()
        })
        .await?,
        [unpaid.id]
    );

    // Pages.
    let page = |before: Option<OrderId>| OrderFilter {
        before,
        limit: 2,
        ..OrderFilter::default()
    };
    assert_eq!(list(page(None)).await?, [settled.id, disputed.id]);
    assert_eq!(list(page(Some(disputed.id))).await?, [paid.id, unpaid.id]);
    assert_eq!(list(page(Some(unpaid.id))).await?, Vec::<OrderId>::new());
    Ok(())
}

pub(super) async fn totals_count_the_day(store: SqlStore) -> Result {
    let day = t0() + TimeDelta::hours(12) - TimeDelta::microseconds(250_000);
    assert_eq!(day.to_rfc3339(), "2030-01-03T00:00:00+00:00");
    assert_eq!(store.totals(day).await?, Totals::default());

    let admin = create_admin(&store, "root").await?;
    let buyer = create(&store, "alice").await?;
    let seller = create(&store, "bob").await?;

    // Paid the day before.
    let yesterday = gig_order(buyer.id, seller.id, 7_000, t0());
    place(&store, &yesterday, "k1").await?;
    pay(&store, &yesterday, day - TimeDelta::microseconds(1)).await?;
    // Paid at the very start of the day, and later that day (then
    // disputed); placed but not paid.
    let early = gig_order(buyer.id, seller.id, 20_000, day - secs(60));
    place(&store, &early, "k2").await?;
    let early = pay(&store, &early, day).await?;
    let disputed =
        disputed_order(&store, buyer.id, seller.id, "k3", day + TimeDelta::hours(2)).await?;
    let unpaid = gig_order(buyer.id, seller.id, 30_000, day + TimeDelta::hours(3));
    place(&store, &unpaid, "k4").await?;

    // An open report, a resolved one, a claimed dispute and an open gig.
    let target = Target::User { id: seller.id };
    raise(
        &store,
        &report(buyer.id, target, Some(seller.id), "report:1", day),
    )
    .await?;
    let dismissed = report(admin.id, target, Some(seller.id), "report:2", day);
    raise(&store, &dismissed).await?;
    let dismissed = dismissed.resolve(admin.id, "dismissed", day + secs(1))?;
    store
        .update_item(&change(&dismissed, 1, FeedEvent::ItemResolved))
        .await?;
    let dispute = item(
        ItemKind::DisputeOpened,
        Target::Order { id: disputed.id },
        Some(buyer.id),
        "dispute:1",
        day,
    );
    raise(&store, &dispute).await?;
    let claimed = dispute
        .claim(admin.id, day + secs(2))?
        .context("an open item can be claimed")?;
    store
        .update_item(&change(&claimed, 1, FeedEvent::ItemClaimed))
        .await?;
    raise(
        &store,
        &item(ItemKind::GigPublished, gig_target(), None, "gig:1", day),
    )
    .await?;

    let gmv = early.amounts.total.amount_minor + disputed.amounts.total.amount_minor;
    assert_eq!(
        store.totals(day).await?,
        Totals {
            orders_today: 2,
            gmv_today_minor: gmv,
            open_disputes: 1,
            open_reports: 1,
            open_items: 3,
        }
    );
    // The next day: nothing paid yet, the same things open.
    assert_eq!(
        store.totals(day + TimeDelta::days(1)).await?,
        Totals {
            orders_today: 0,
            gmv_today_minor: 0,
            open_disputes: 1,
            open_reports: 1,
            open_items: 3,
        }
    );
    assert_eq!(unpaid.status, OrderStatus::AwaitingPayment);
    Ok(())
}

// ------------------------------------------------------------------- gigs

pub(super) async fn outbox_enqueue_seller_takes_live_gigs(store: SqlStore) -> Result {
    let seller = create(&store, "alice").await?;
    let other = create(&store, "bob").await?;
    let active = gig(seller.id, "Active", GigStatus::Active, t0());
    let paused = gig(seller.id, "Paused", GigStatus::Paused, t0() + secs(1));
    let deleted = Gig {
        deleted_at: Some(t0() + secs(2)),
        ..gig(seller.id, "Deleted", GigStatus::Active, t0() + secs(2))
    };
    let elsewhere = gig(other.id, "Elsewhere", GigStatus::Active, t0() + secs(3));
    for gig in [&active, &paused, &deleted, &elsewhere] {
        store.save_gig(gig, None).await?;
    }
    let written: Vec<i64> = store
        .outbox_pending(100)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    store.outbox_ack(&written).await?;

    assert_eq!(store.outbox_enqueue_seller(seller.id).await?, 2);
    let pending = store.outbox_pending(100).await?;
    let gigs: Vec<GigId> = pending.iter().map(|e| e.gig_id).collect();
    assert_eq!(gigs, [active.id, paused.id]);
    ensure!(
        pending.iter().all(|e| written.iter().all(|w| e.id > *w)),
        "new entries come after the acknowledged ones"
    );
    assert_eq!(store.outbox_enqueue_seller(other.id).await?, 1);
    assert_eq!(store.outbox_enqueue_seller(UserId::new()).await?, 0);
    assert_eq!(store.outbox_pending(100).await?.len(), 3);
    Ok(())
}

pub(super) async fn removed_gigs_remember_their_status(store: SqlStore) -> Result {
    let seller = create(&store, "alice").await?;
    let paused = gig(seller.id, "Paused", GigStatus::Paused, t0());
    store.save_gig(&paused, None).await?;
    let removed = Gig {
        status: GigStatus::Removed,
        removed_from: Some(GigStatus::Paused),
        version: 2,
        updated_at: t0() + secs(1),
        ..paused.clone()
    };
    store.save_gig(&removed, Some(1)).await?;
    assert_eq!(store.gig(paused.id).await?, Some(removed.clone()));
    let restored = Gig {
        status: GigStatus::Paused,
        removed_from: None,
        version: 3,
        updated_at: t0() + secs(2),
        ..removed.clone()
    };
    store.save_gig(&restored, Some(2)).await?;
    assert_eq!(store.gig(paused.id).await?, Some(restored.clone()));

    // A new gig may be stored removed, remembering its status.
    let created_removed = Gig {
        removed_from: Some(GigStatus::Active),
        ..gig(seller.id, "Removed", GigStatus::Removed, t0() + secs(3))
    };
    store.save_gig(&created_removed, None).await?;
    assert_eq!(store.gig(created_removed.id).await?, Some(created_removed));

    // Restoring to 'removed' makes no sense: the schema refuses it.
    let nonsense = Gig {
        removed_from: Some(GigStatus::Removed),
        version: 4,
        updated_at: t0() + secs(4),
        ..restored.clone()
    };
    let result = store.save_gig(&nonsense, Some(3)).await;
    ensure!(
        matches!(result, Err(StoreError::Backend(_))),
        "removed from removed: {result:?}"
    );
    assert_eq!(store.gig(paused.id).await?, Some(restored));
    Ok(())
}
