//! The relational store suite: each scenario is written once and runs on a
//! fresh SQLite file (`store::sqlite::*`) and on a fresh PostgreSQL database
//! (`store::postgres::*`). Times are fixed, never the wall clock. Gig
//! scenarios live in `gigs`, chat and event log scenarios in `chat`, order,
//! ledger and offer scenarios in `orders`, moderation queue, feed, audit log
//! and admin list scenarios in `moderation`, mail outbox scenarios in
//! `mail_outbox` (`store::mail_outbox::{sqlite,postgres}::*`), notification
//! read state in `notifications` (`store::notifications::{sqlite,postgres}::*`),
//! review scenarios, written against the `ReviewStore` port, in `reviews`
//! (`store::reviews::{sqlite,postgres}::*`), favourites and saved searches
//! in `saved` (`store::saved::{sqlite,postgres}::*`).

mod chat;
mod email_preferences;
mod gigs;
mod harness;
mod levels;
mod mail_outbox;
mod moderation;
mod notifications;
mod orders;
mod reviews;
mod saved;

use std::collections::HashSet;
use std::sync::Arc;

use adapters::dynamo::DynamoSessionStore;
use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use chat::{
    attachments_are_filtered, concurrent_appends_have_one_winner,
    concurrent_log_appends_have_no_gaps, concurrent_opens_make_one_conversation,
    contacts_are_distinct, conversations_for_orders_and_pages, duplicate_client_id_writes_nothing,
    event_cursors_have_no_gaps, last_seen_round_trip, mark_read_moves_forward_only,
    messages_are_appended_in_sequence, open_is_find_or_create, prune_keeps_heads, unread_counts,
};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use domain::account::{Country, Email, NewUser, ProfileUpdate, Role, User, Username};
use domain::auth::{NewSession, OneTimeToken, Rotation, Session, TokenPurpose};
use domain::ids::{SessionId, UserId};
use domain::ports::{AccountStore, SessionStore, StoreError};
use domain::seller::{Certificate, Education, Language, LanguageLevel, SellerProfile};
use gigs::{
    concurrent_updates_have_one_winner, duplicate_gig_conflicts, gig_round_trip,
    gigs_after_pages_through_everything, gigs_by_seller_filters_and_orders,
    outbox_is_written_with_each_save, taxonomy_is_seeded_in_order,
    unknown_taxonomy_or_seller_is_rejected, versioned_updates,
};
use moderation::{
    audit_filters_and_pages, audit_log_is_append_only, concurrent_claims_have_one_winner,
    feed_has_no_gaps_under_concurrency, gigs_filters_and_pages,
    one_open_report_per_reporter_and_target, orders_filters_and_pages,
    outbox_enqueue_seller_takes_live_gigs, raise_is_idempotent_by_source_key,
    record_action_is_all_or_nothing, removed_gigs_remember_their_status, totals_count_the_day,
    update_item_checks_the_version, users_filters_and_pages,
};
use orders::{
    checkout_key_reuse_conflicts, concurrent_order_saves_have_one_winner,
    concurrent_withdrawals_never_overspend, deadlines_and_due_work,
    ledger_balances_through_clearance, offer_checks_out_once, offers_are_versioned,
    order_round_trip, orders_for_filters_and_pages, payment_events_apply_once,
    refunds_are_pending_until_answered, versioned_order_saves,
};

type Result = anyhow::Result<()>;

// ---------------------------------------------------------------- fixtures

/// A fixed instant with a fractional second, so precision is exercised.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 12, 0, 0).unwrap() + TimeDelta::microseconds(250_000)
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn new_user(name: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: Email::parse(&format!("{name}@example.com")).unwrap(),
        username: Username::parse(name).unwrap(),
        password_hash: format!("$argon2id$hash-of-{name}"),
        role: Role::User,
        email_verified_at: None,
        created_at: t0(),
    }
}

async fn create(store: &dyn AccountStore, name: &str) -> anyhow::Result<User> {
    Ok(store.create_user(&new_user(name)).await?)
}

async fn fetch(store: &SqlStore, id: UserId) -> anyhow::Result<User> {
    store.user_by_id(id).await?.context("user should exist")
}

fn profile() -> SellerProfile {
    SellerProfile {
        full_name: "Ada Lovelace".into(),
        one_liner: "Analytical engines, programmed".into(),
        description: "I write programs for machines that do not exist yet. \"Quotes\", \u{e9}"
            .into(),
        languages: vec![
            Language {
                language: "English".into(),
                level: LanguageLevel::Native,
            },
            Language {
                language: "French".into(),
                level: LanguageLevel::Conversational,
            },
        ],
        skills: vec!["mathematics".into(), "rust".into()],
        education: vec![
            Education {
                school: "Home".into(),
                degree: "Tutoring".into(),
                field: Some("Mathematics".into()),
                year: Some(1835),
            },
            Education {
                school: "Elsewhere".into(),
                degree: "Course".into(),
                field: None,
                year: None,
            },
        ],
        certificates: vec![Certificate {
            name: "Notes on the Engine".into(),
            issuer: None,
            year: Some(1843),
        }],
        links: vec!["https://example.com/ada".into()],
    }
}

fn token(
    hash: &str,
    user_id: UserId,
    purpose: TokenPurpose,
    expires_at: DateTime<Utc>,
) -> OneTimeToken {
    OneTimeToken {
        token_hash: hash.into(),
        user_id,
        purpose,
        created_at: t0(),
        expires_at,
    }
}

fn new_session(user_id: UserId, refresh: &str, created_at: DateTime<Utc>) -> NewSession {
    NewSession {
        id: SessionId::new(),
        user_id,
        refresh_token_hash: refresh.into(),
        created_at,
        expires_at: created_at + TimeDelta::days(30),
        user_agent: Some("Mozilla/5.0 (test)".into()),
        ip: Some("203.0.113.7".into()),
    }
}

async fn fetch_session(store: &dyn SessionStore, id: SessionId) -> anyhow::Result<Session> {
    store.session(id).await?.context("session should exist")
}

fn is_conflict(
    result: &std::result::Result<impl std::fmt::Debug, StoreError>,
    field: &str,
) -> bool {
    matches!(result, Err(StoreError::Conflict(f)) if *f == field)
}

fn is_not_found<T>(result: &std::result::Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::NotFound))
}

// ---------------------------------------------------------------- accounts

async fn migrate_twice_and_ping(store: SqlStore) -> Result {
    store.migrate().await?;
    store.migrate().await?;
    store.ping().await?;
    let user = create(&store, "alice").await?;
    store.migrate().await?;
    ensure!(
        fetch(&store, user.id).await? == user,
        "data survives migrate"
    );
    Ok(())
}

async fn user_round_trip(store: SqlStore) -> Result {
    let mut input = new_user("alice");
    // Nanoseconds are beyond PostgreSQL's precision: both backends keep micros.
    input.created_at = t0() + TimeDelta::nanoseconds(123_456_789);
    input.email_verified_at = Some(t0() - secs(60));
    let created = store.create_user(&input).await?;
    let stored_at = t0() + TimeDelta::microseconds(123_456);
    let expected = User {
        id: input.id,
        email: input.email.clone(),
        username: input.username.clone(),
        password_hash: input.password_hash.clone(),
        role: Role::User,
        display_name: None,
        country: None,
        bio: None,
        email_verified_at: Some(t0() - secs(60)),
        suspended_at: None,
        deleted_at: None,
        created_at: stored_at,
        updated_at: stored_at,
    };
    assert_eq!(created, expected);
    assert_eq!(store.user_by_id(input.id).await?, Some(expected.clone()));
    assert_eq!(
        store.user_by_email(&input.email).await?,
        Some(expected.clone())
    );
    assert_eq!(
        store.user_by_username(&input.username).await?,
        Some(expected.clone())
    );

    let mut admin = new_user("root");
    admin.role = Role::Admin;
    let admin = store.create_user(&admin).await?;
    assert_eq!(fetch(&store, admin.id).await?.role, Role::Admin);

    assert_eq!(store.user_by_id(UserId::new()).await?, None);
    assert_eq!(
        store
            .user_by_email(&Email::parse("nobody@example.com")?)
            .await?,
        None
    );
    assert_eq!(
        store.user_by_username(&Username::parse("nobody")?).await?,
        None
    );
    Ok(())
}

async fn duplicate_email_conflicts(store: SqlStore) -> Result {
    let first = create(&store, "alice").await?;
    let mut second = new_user("alice2");
    second.email = first.email.clone();
    let result = store.create_user(&second).await;
    ensure!(
        is_conflict(&result, "email"),
        "expected Conflict(email), got {result:?}"
    );

    assert_eq!(store.user_by_id(second.id).await?, None);
    assert_eq!(store.user_by_username(&second.username).await?, None);
    assert_eq!(store.user_by_email(&first.email).await?, Some(first));
    Ok(())
}

async fn duplicate_username_conflicts(store: SqlStore) -> Result {
    let first = create(&store, "alice").await?;
    let mut second = new_user("other");
    second.username = first.username.clone();
    let result = store.create_user(&second).await;
    ensure!(
        is_conflict(&result, "username"),
        "expected Conflict(username), got {result:?}"
    );

    assert_eq!(store.user_by_id(second.id).await?, None);
    assert_eq!(store.user_by_email(&second.email).await?, None);
    assert_eq!(store.user_by_username(&first.username).await?, Some(first));
    Ok(())
}

async fn profile_update_sets_clears_and_leaves(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    let t1 = t0() + secs(10);
    let updated = store
        .update_profile(
            user.id,
            &ProfileUpdate {
                display_name: Some(Some("Alice A.".into())),
                country: Some(Some(Country::parse("de")?)),
                bio: Some(Some("Hello".into())),
            },
            t1,
        )
        .await?;
    assert_eq!(updated.display_name.as_deref(), Some("Alice A."));
    assert_eq!(updated.country.as_ref().map(Country::as_str), Some("DE"));
    assert_eq!(updated.bio.as_deref(), Some("Hello"));
    assert_eq!(updated.updated_at, t1);
    assert_eq!(updated.created_at, user.created_at);
    assert_eq!(fetch(&store, user.id).await?, updated);

    // Leave the name, clear the country, set the bio.
    let t2 = t0() + secs(20);
    let updated = store
        .update_profile(
            user.id,
            &ProfileUpdate {
                display_name: None,
                country: Some(None),
                bio: Some(Some("Bye".into())),
            },
            t2,
        )
        .await?;
    assert_eq!(updated.display_name.as_deref(), Some("Alice A."));
    assert_eq!(updated.country, None);
    assert_eq!(updated.bio.as_deref(), Some("Bye"));
    assert_eq!(updated.updated_at, t2);
    assert_eq!(fetch(&store, user.id).await?, updated);

    // Clear the name and the bio, leave the (empty) country.
    let updated = store
        .update_profile(
            user.id,
            &ProfileUpdate {
                display_name: Some(None),
                country: None,
                bio: Some(None),
            },
            t0() + secs(30),
        )
        .await?;
    assert_eq!(
        (updated.display_name, updated.country, updated.bio),
        (None, None, None)
    );
    // Everything else is untouched.
    assert_eq!(updated.email, user.email);
    assert_eq!(updated.password_hash, user.password_hash);

    // An empty update changes nothing and returns the account.
    let before = fetch(&store, user.id).await?;
    let same = store
        .update_profile(user.id, &ProfileUpdate::default(), t0() + secs(40))
        .await?;
    assert_eq!(same, before);

    let set_name = ProfileUpdate {
        display_name: Some(Some("x".into())),
        ..ProfileUpdate::default()
    };
    let result = store.update_profile(UserId::new(), &set_name, t0()).await;
    ensure!(is_not_found(&result), "unknown id: {result:?}");
    let result = store
        .update_profile(UserId::new(), &ProfileUpdate::default(), t0())
        .await;
    ensure!(
        is_not_found(&result),
        "unknown id, empty update: {result:?}"
    );

    store.anonymise_user(user.id, t0() + secs(50)).await?;
    let result = store
        .update_profile(user.id, &set_name, t0() + secs(60))
        .await;
    ensure!(is_not_found(&result), "deleted account: {result:?}");
    let result = store
        .update_profile(user.id, &ProfileUpdate::default(), t0() + secs(60))
        .await;
    ensure!(
        is_not_found(&result),
        "deleted account, empty update: {result:?}"
    );
    assert_eq!(fetch(&store, user.id).await?.display_name, None);
    Ok(())
}

async fn mark_verified_keeps_the_first_time(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    assert_eq!(user.email_verified_at, None);
    let t1 = t0() + secs(5);
    store.mark_email_verified(user.id, t1).await?;
    let verified = fetch(&store, user.id).await?;
    assert_eq!(verified.email_verified_at, Some(t1));
    assert_eq!(verified.updated_at, t1);

    store.mark_email_verified(user.id, t0() + secs(50)).await?;
    let again = fetch(&store, user.id).await?;
    assert_eq!(again.email_verified_at, Some(t1));
    assert_eq!(again, verified);

    let result = store.mark_email_verified(UserId::new(), t1).await;
    ensure!(is_not_found(&result), "unknown id: {result:?}");
    Ok(())
}

async fn set_password_hash_replaces_it(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    let t1 = t0() + secs(5);
    store
        .set_password_hash(user.id, "$argon2id$new", t1)
        .await?;
    let changed = fetch(&store, user.id).await?;
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert_eq!(changed.updated_at, t1);
    assert_eq!(
        User {
            password_hash: user.password_hash.clone(),
            updated_at: user.updated_at,
            ..changed
        },
        user
    );

    let result = store.set_password_hash(UserId::new(), "x", t1).await;
    ensure!(is_not_found(&result), "unknown id: {result:?}");
    Ok(())
}

async fn suspend_and_unsuspend(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    let t1 = t0() + secs(5);
    store.set_suspended(user.id, true, t1).await?;
    let suspended = fetch(&store, user.id).await?;
    assert_eq!(suspended.suspended_at, Some(t1));
    assert!(!suspended.can_sign_in());

    // Suspending again keeps the first time.
    store.set_suspended(user.id, true, t0() + secs(10)).await?;
    assert_eq!(fetch(&store, user.id).await?.suspended_at, Some(t1));

    let t3 = t0() + secs(15);
    store.set_suspended(user.id, false, t3).await?;
    let restored = fetch(&store, user.id).await?;
    assert_eq!(restored.suspended_at, None);
    assert_eq!(restored.updated_at, t3);
    assert!(restored.can_sign_in());

    let result = store.set_suspended(UserId::new(), true, t1).await;
    ensure!(is_not_found(&result), "unknown id: {result:?}");
    Ok(())
}

async fn anonymise_leaves_a_tombstone(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    let bystander = create(&store, "bob").await?;
    store
        .update_profile(
            user.id,
            &ProfileUpdate {
                display_name: Some(Some("Alice".into())),
                country: Some(Some(Country::parse("FR")?)),
                bio: Some(Some("About me".into())),
            },
            t0() + secs(1),
        )
        .await?;
    store.mark_email_verified(user.id, t0() + secs(2)).await?;
    store
        .create_seller_profile(user.id, &profile(), t0() + secs(3))
        .await?;
    store
        .create_seller_profile(bystander.id, &profile(), t0() + secs(3))
        .await?;
    let expires = t0() + TimeDelta::hours(1);
    store
        .insert_token(&token(
            "verify-a",
            user.id,
            TokenPurpose::VerifyEmail,
            expires,
        ))
        .await?;
    store
        .insert_token(&token(
            "reset-a",
            user.id,
            TokenPurpose::ResetPassword,
            expires,
        ))
        .await?;
    store
        .insert_token(&token(
            "reset-b",
            bystander.id,
            TokenPurpose::ResetPassword,
            expires,
        ))
        .await?;
    let session = store
        .create_session(&new_session(user.id, "refresh-a", t0()))
        .await?;

    let deleted_at = t0() + secs(100);
    store.anonymise_user(user.id, deleted_at).await?;

    let hex = user.id.as_uuid().simple().to_string();
    let tombstone = fetch(&store, user.id).await?;
    assert_eq!(tombstone.id, user.id);
    assert_eq!(
        tombstone.email.as_str(),
        format!("deleted-{hex}@deleted.invalid")
    );
    assert_eq!(tombstone.username.as_str(), format!("deleted-{hex}"));
    assert_eq!(tombstone.password_hash, "");
    assert_eq!(
        (tombstone.display_name, tombstone.country, tombstone.bio),
        (None, None, None)
    );
    assert_eq!(tombstone.deleted_at, Some(deleted_at));
    assert_eq!(tombstone.updated_at, deleted_at);
    assert_eq!(tombstone.created_at, user.created_at);
    assert_eq!(tombstone.role, user.role);

    assert_eq!(store.user_by_email(&user.email).await?, None);
    assert_eq!(store.user_by_username(&user.username).await?, None);
    assert_eq!(store.seller_profile(user.id).await?, None);
    let now = t0() + secs(200);
    assert_eq!(
        store
            .consume_token("verify-a", TokenPurpose::VerifyEmail, now)
            .await?,
        None
    );
    assert_eq!(
        store
            .consume_token("reset-a", TokenPurpose::ResetPassword, now)
            .await?,
        None
    );

    // Sessions stay for the caller to revoke; other accounts are untouched.
    assert_eq!(fetch_session(&store, session.id).await?, session);
    assert!(store.seller_profile(bystander.id).await?.is_some());
    assert_eq!(
        store
            .consume_token("reset-b", TokenPurpose::ResetPassword, now)
            .await?,
        Some(bystander.id)
    );
    assert_eq!(fetch(&store, bystander.id).await?, bystander);

    // The old address and name are free again.
    let mut again = new_user("alice");
    again.created_at = now;
    let again = store.create_user(&again).await?;
    assert_ne!(again.id, user.id);
    assert_eq!(store.user_by_email(&user.email).await?, Some(again));

    let result = store.anonymise_user(UserId::new(), now).await;
    ensure!(is_not_found(&result), "unknown id: {result:?}");
    Ok(())
}

// ---------------------------------------------------------- seller profiles

async fn seller_profiles_round_trip(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    assert_eq!(store.seller_profile(user.id).await?, None);

    let t1 = t0() + secs(1);
    let created = store.create_seller_profile(user.id, &profile(), t1).await?;
    assert_eq!(created.user_id, user.id);
    assert_eq!(created.profile, profile());
    assert_eq!((created.created_at, created.updated_at), (t1, t1));
    assert_eq!(store.seller_profile(user.id).await?, Some(created.clone()));

    let result = store
        .create_seller_profile(user.id, &profile(), t0() + secs(2))
        .await;
    ensure!(
        is_conflict(&result, "seller_profile"),
        "second profile: {result:?}"
    );
    assert_eq!(store.seller_profile(user.id).await?, Some(created.clone()));

    let mut changed = profile();
    changed.one_liner = "Now with more engines".into();
    changed.languages.truncate(1);
    changed.skills = vec![];
    changed.education.clear();
    changed.certificates.push(Certificate {
        name: "Second".into(),
        issuer: Some("Royal Society".into()),
        year: None,
    });
    changed.links.push("http://example.org/x?y=1#z".into());
    let t3 = t0() + secs(3);
    let updated = store.update_seller_profile(user.id, &changed, t3).await?;
    assert_eq!(updated.profile, changed);
    assert_eq!((updated.created_at, updated.updated_at), (t1, t3));
    assert_eq!(store.seller_profile(user.id).await?, Some(updated));

    let other = create(&store, "bob").await?;
    let result = store.update_seller_profile(other.id, &changed, t3).await;
    ensure!(is_not_found(&result), "user without a profile: {result:?}");
    assert_eq!(store.seller_profile(other.id).await?, None);
    let result = store
        .update_seller_profile(UserId::new(), &changed, t3)
        .await;
    ensure!(is_not_found(&result), "unknown user: {result:?}");
    let result = store
        .create_seller_profile(UserId::new(), &changed, t3)
        .await;
    ensure!(
        is_not_found(&result),
        "profile for an unknown user: {result:?}"
    );
    Ok(())
}

// ---------------------------------------------------------- one-time tokens

async fn tokens_are_consumed_once(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    let expires = t0() + TimeDelta::hours(1);
    store
        .insert_token(&token("t1", user.id, TokenPurpose::VerifyEmail, expires))
        .await?;

    let now = t0() + secs(1);
    assert_eq!(
        store
            .consume_token("t1", TokenPurpose::ResetPassword, now)
            .await?,
        None
    );
    assert_eq!(
        store
            .consume_token("t1", TokenPurpose::VerifyEmail, now)
            .await?,
        Some(user.id)
    );
    assert_eq!(
        store
            .consume_token("t1", TokenPurpose::VerifyEmail, now)
            .await?,
        None
    );
    assert_eq!(
        store
            .consume_token("unknown", TokenPurpose::VerifyEmail, now)
            .await?,
        None
    );

    let result = store
        .insert_token(&token(
            "t-orphan",
            UserId::new(),
            TokenPurpose::VerifyEmail,
            expires,
        ))
        .await;
    ensure!(
        is_not_found(&result),
        "token for an unknown user: {result:?}"
    );
    Ok(())
}

async fn expired_tokens_are_refused(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    let purpose = TokenPurpose::ResetPassword;
    // A whole-second expiry and one with a fraction: on SQLite these compare
    // as text, which must still order like time.
    let whole = Utc.with_ymd_and_hms(2030, 1, 2, 13, 0, 0).unwrap();
    let fraction = whole + TimeDelta::milliseconds(500);
    for (hash, expires) in [
        ("a", whole),
        ("b", whole),
        ("c", whole),
        ("d", fraction),
        ("e", fraction),
    ] {
        store
            .insert_token(&token(hash, user.id, purpose, expires))
            .await?;
    }
    let ms = TimeDelta::milliseconds;
    assert_eq!(
        store.consume_token("a", purpose, whole).await?,
        None,
        "at expiry"
    );
    assert_eq!(
        store.consume_token("b", purpose, whole + ms(1)).await?,
        None
    );
    assert_eq!(
        store.consume_token("c", purpose, whole - ms(1)).await?,
        Some(user.id)
    );
    assert_eq!(
        store.consume_token("d", purpose, whole).await?,
        Some(user.id)
    );
    assert_eq!(
        store.consume_token("e", purpose, fraction + ms(1)).await?,
        None
    );
    assert_eq!(
        store
            .consume_token("a", purpose, whole + TimeDelta::days(1))
            .await?,
        None
    );
    // Refusing an expired token did not consume it.
    assert_eq!(
        store.consume_token("a", purpose, whole - ms(1)).await?,
        Some(user.id)
    );
    Ok(())
}

async fn delete_tokens_invalidates_one_purpose(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let expires = t0() + TimeDelta::hours(1);
    let verify = TokenPurpose::VerifyEmail;
    let reset = TokenPurpose::ResetPassword;
    store
        .insert_token(&token("v1", alice.id, verify, expires))
        .await?;
    store
        .insert_token(&token("v2", alice.id, verify, expires))
        .await?;
    store
        .insert_token(&token("r1", alice.id, reset, expires))
        .await?;
    store
        .insert_token(&token("v-bob", bob.id, verify, expires))
        .await?;

    store.delete_tokens(alice.id, verify).await?;
    let now = t0() + secs(1);
    assert_eq!(store.consume_token("v1", verify, now).await?, None);
    assert_eq!(store.consume_token("v2", verify, now).await?, None);
    assert_eq!(store.consume_token("r1", reset, now).await?, Some(alice.id));
    assert_eq!(
        store.consume_token("v-bob", verify, now).await?,
        Some(bob.id)
    );
    // Nothing left to delete is fine.
    store.delete_tokens(alice.id, verify).await?;
    store.delete_tokens(UserId::new(), reset).await?;
    Ok(())
}

async fn concurrent_consume_has_one_winner(store: SqlStore) -> Result {
    let user = create(&store, "alice").await?;
    let expires = t0() + TimeDelta::hours(1);
    for round in 0..3 {
        let hash = format!("race-{round}");
        store
            .insert_token(&token(&hash, user.id, TokenPurpose::ResetPassword, expires))
            .await?;
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let hash = hash.clone();
                tokio::spawn(async move {
                    store
                        .consume_token(&hash, TokenPurpose::ResetPassword, t0() + secs(1))
                        .await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            if let Some(owner) = task.await?? {
                winners.push(owner);
            }
        }
        assert_eq!(winners, vec![user.id], "round {round}");
    }
    Ok(())
}

// ----------------------------------------------------------------- sessions

/// What a session scenario needs: an account store to create users in and
/// the session store under test, both through their ports. On SQL both are
/// the same `SqlStore`; on DynamoDB the users live in SQLite.
#[derive(Clone)]
struct SessionFixture {
    accounts: Arc<dyn AccountStore>,
    sessions: Arc<dyn SessionStore>,
}

impl SessionFixture {
    fn sql(store: SqlStore) -> Self {
        SessionFixture {
            accounts: Arc::new(store.clone()),
            sessions: Arc::new(store),
        }
    }

    fn dynamodb(users: SqlStore, sessions: DynamoSessionStore) -> Self {
        let accounts: Arc<dyn AccountStore> = Arc::new(users);
        SessionFixture {
            sessions: Arc::new(sessions.with_accounts(accounts.clone())),
            accounts,
        }
    }
}

async fn sessions_are_created_and_read(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let user = create(&*accounts, "alice").await?;
    let mut input = new_session(user.id, "refresh-1", t0());
    input.created_at = t0() + TimeDelta::nanoseconds(999);
    let created = store.create_session(&input).await?;
    let expected = Session {
        id: input.id,
        user_id: user.id,
        created_at: t0(),
        last_used_at: t0(),
        expires_at: input.expires_at,
        revoked_at: None,
        user_agent: input.user_agent.clone(),
        ip: input.ip.clone(),
    };
    assert_eq!(created, expected);
    assert_eq!(store.session(input.id).await?, Some(expected));

    let mut bare = new_session(user.id, "refresh-2", t0());
    bare.user_agent = None;
    bare.ip = None;
    let bare_session = store.create_session(&bare).await?;
    assert_eq!((bare_session.user_agent, bare_session.ip), (None, None));

    assert_eq!(store.session(SessionId::new()).await?, None);
    let result = store
        .create_session(&new_session(UserId::new(), "refresh-3", t0()))
        .await;
    ensure!(
        is_not_found(&result),
        "session for an unknown user: {result:?}"
    );
    assert_eq!(
        store
            .rotate("refresh-3", "x", t0(), t0() + TimeDelta::days(1))
            .await?,
        Rotation::Invalid,
        "the failed session left no token behind"
    );
    Ok(())
}

async fn rotation_and_reuse(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let user = create(&*accounts, "alice").await?;
    let session = store
        .create_session(&new_session(user.id, "a", t0()))
        .await?;

    let t1 = t0() + secs(60);
    let e1 = t1 + TimeDelta::days(30);
    let Rotation::Rotated(rotated) = store.rotate("a", "b", t1, e1).await? else {
        anyhow::bail!("the current token should rotate");
    };
    assert_eq!(
        rotated,
        Session {
            last_used_at: t1,
            expires_at: e1,
            ..session.clone()
        }
    );
    assert_eq!(fetch_session(&*store, session.id).await?, rotated);

    let t2 = t1 + secs(60);
    let Rotation::Rotated(rotated) = store.rotate("b", "c", t2, t2 + TimeDelta::days(30)).await?
    else {
        anyhow::bail!("the next token should rotate");
    };
    assert_eq!(rotated.last_used_at, t2);

    // "a" was consumed: presenting it again revokes the whole session.
    let t3 = t2 + secs(60);
    assert_eq!(
        store.rotate("a", "x", t3, t3 + TimeDelta::days(30)).await?,
        Rotation::Reused {
            session_id: session.id,
            user_id: user.id
        }
    );
    let revoked = fetch_session(&*store, session.id).await?;
    assert_eq!(revoked.revoked_at, Some(t3));
    assert_eq!(
        revoked.last_used_at, t2,
        "reuse does not extend the session"
    );

    // The newest token died with its session, and no "x" was stored.
    let t4 = t3 + secs(60);
    assert_eq!(
        store.rotate("c", "d", t4, t4 + TimeDelta::days(30)).await?,
        Rotation::Invalid
    );
    assert_eq!(
        store.rotate("x", "y", t4, t4 + TimeDelta::days(30)).await?,
        Rotation::Invalid
    );
    // Presenting a consumed token again still reports reuse; the first
    // revocation time stays.
    assert_eq!(
        store.rotate("b", "z", t4, t4 + TimeDelta::days(30)).await?,
        Rotation::Reused {
            session_id: session.id,
            user_id: user.id
        }
    );
    assert_eq!(fetch_session(&*store, session.id).await?, revoked);
    Ok(())
}

async fn rotation_of_an_expired_session_changes_nothing(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let user = create(&*accounts, "alice").await?;
    let session = store
        .create_session(&new_session(user.id, "a", t0()))
        .await?;
    let expiry = session.expires_at;

    for now in [expiry, expiry + secs(1)] {
        assert_eq!(
            store
                .rotate("a", "b", now, now + TimeDelta::days(30))
                .await?,
            Rotation::Invalid
        );
        assert_eq!(fetch_session(&*store, session.id).await?, session);
    }
    // "b" was never stored...
    let before = expiry - secs(1);
    assert_eq!(
        store.rotate("b", "c", before, expiry).await?,
        Rotation::Invalid
    );
    assert_eq!(fetch_session(&*store, session.id).await?, session);
    // ...and "a" was not consumed: before expiry it still rotates.
    let Rotation::Rotated(rotated) = store
        .rotate("a", "d", before, expiry + TimeDelta::days(1))
        .await?
    else {
        anyhow::bail!("an unexpired session should rotate");
    };
    assert_eq!(rotated.revoked_at, None);
    assert_eq!(rotated.expires_at, expiry + TimeDelta::days(1));
    Ok(())
}

async fn rotation_of_a_revoked_session_changes_nothing(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let user = create(&*accounts, "alice").await?;
    let session = store
        .create_session(&new_session(user.id, "a", t0()))
        .await?;
    let t1 = t0() + secs(10);
    store.revoke(session.id, t1).await?;
    let revoked = fetch_session(&*store, session.id).await?;
    assert_eq!(revoked.revoked_at, Some(t1));

    let t2 = t0() + secs(20);
    assert_eq!(
        store.rotate("a", "b", t2, t2 + TimeDelta::days(1)).await?,
        Rotation::Invalid
    );
    assert_eq!(fetch_session(&*store, session.id).await?, revoked);
    // "a" was not consumed, so it is not reported as reused either.
    assert_eq!(
        store.rotate("a", "b", t2, t2 + TimeDelta::days(1)).await?,
        Rotation::Invalid
    );
    assert_eq!(
        store.rotate("b", "c", t2, t2 + TimeDelta::days(1)).await?,
        Rotation::Invalid
    );
    Ok(())
}

async fn unknown_tokens_are_invalid(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let user = create(&*accounts, "alice").await?;
    let session = store
        .create_session(&new_session(user.id, "a", t0()))
        .await?;
    assert_eq!(
        store
            .rotate("nope", "b", t0(), t0() + TimeDelta::days(1))
            .await?,
        Rotation::Invalid
    );
    assert_eq!(fetch_session(&*store, session.id).await?, session);
    assert_eq!(store.revoke_by_token("nope", t0()).await?, None);
    Ok(())
}

async fn concurrent_rotation_has_one_winner(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let user = create(&*accounts, "alice").await?;
    let session = store
        .create_session(&new_session(user.id, "a", t0()))
        .await?;
    let now = t0() + secs(30);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate("a", &format!("next-{i}"), now, now + TimeDelta::days(30))
                    .await
            })
        })
        .collect();
    let (mut rotated, mut reused) = (0, 0);
    for task in tasks {
        match task.await?? {
            Rotation::Rotated(s) => {
                assert_eq!(s.id, session.id);
                rotated += 1;
            }
            Rotation::Reused {
                session_id,
                user_id,
            } => {
                assert_eq!((session_id, user_id), (session.id, user.id));
                reused += 1;
            }
            Rotation::Invalid => anyhow::bail!("a racing rotation saw Invalid"),
        }
    }
    assert_eq!((rotated, reused), (1, 5));
    // The losers presented a consumed token: the session is revoked.
    assert_eq!(
        fetch_session(&*store, session.id).await?.revoked_at,
        Some(now)
    );
    Ok(())
}

async fn revoke_is_idempotent(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let user = create(&*accounts, "alice").await?;
    let session = store
        .create_session(&new_session(user.id, "a", t0()))
        .await?;
    let other = store
        .create_session(&new_session(user.id, "b", t0()))
        .await?;
    let t1 = t0() + secs(1);
    store.revoke(session.id, t1).await?;
    store.revoke(session.id, t0() + secs(2)).await?;
    let revoked = fetch_session(&*store, session.id).await?;
    assert_eq!(
        revoked,
        Session {
            revoked_at: Some(t1),
            ..session
        }
    );
    assert!(!revoked.is_active(t1));
    assert_eq!(fetch_session(&*store, other.id).await?, other);
    store.revoke(SessionId::new(), t1).await?;
    Ok(())
}

async fn revoke_by_token_finds_the_session(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let user = create(&*accounts, "alice").await?;
    let session = store
        .create_session(&new_session(user.id, "a", t0()))
        .await?;
    let t1 = t0() + secs(1);
    let Rotation::Rotated(_) = store.rotate("a", "b", t1, t1 + TimeDelta::days(1)).await? else {
        anyhow::bail!("rotation failed");
    };
    let t2 = t0() + secs(2);
    assert_eq!(store.revoke_by_token("b", t2).await?, Some(session.id));
    assert_eq!(
        fetch_session(&*store, session.id).await?.revoked_at,
        Some(t2)
    );
    // A consumed token still names its session; the first time stays.
    assert_eq!(
        store.revoke_by_token("a", t0() + secs(3)).await?,
        Some(session.id)
    );
    assert_eq!(
        fetch_session(&*store, session.id).await?.revoked_at,
        Some(t2)
    );
    assert_eq!(store.revoke_by_token("c", t2).await?, None);
    Ok(())
}

async fn revoke_all_for_user_spares_the_exception(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let alice = create(&*accounts, "alice").await?;
    let bob = create(&*accounts, "bob").await?;
    let keep = store
        .create_session(&new_session(alice.id, "a1", t0()))
        .await?;
    let s2 = store
        .create_session(&new_session(alice.id, "a2", t0()))
        .await?;
    let s3 = store
        .create_session(&new_session(alice.id, "a3", t0()))
        .await?;
    let already = store
        .create_session(&new_session(alice.id, "a4", t0()))
        .await?;
    let mut short = new_session(alice.id, "a5", t0());
    short.expires_at = t0() + secs(5);
    let expired = store.create_session(&short).await?;
    let bobs = store
        .create_session(&new_session(bob.id, "b1", t0()))
        .await?;
    let t_already = t0() + secs(1);
    store.revoke(already.id, t_already).await?;

    let t1 = t0() + secs(10);
    assert_eq!(
        store
            .revoke_all_for_user(alice.id, Some(keep.id), t1)
            .await?,
        2
    );
    assert_eq!(fetch_session(&*store, keep.id).await?, keep);
    assert_eq!(fetch_session(&*store, s2.id).await?.revoked_at, Some(t1));
    assert_eq!(fetch_session(&*store, s3.id).await?.revoked_at, Some(t1));
    assert_eq!(
        fetch_session(&*store, already.id).await?.revoked_at,
        Some(t_already)
    );
    assert!(!fetch_session(&*store, expired.id).await?.is_active(t1));
    assert_eq!(fetch_session(&*store, bobs.id).await?, bobs);

    let t2 = t0() + secs(20);
    assert_eq!(store.revoke_all_for_user(alice.id, None, t2).await?, 1);
    assert_eq!(fetch_session(&*store, keep.id).await?.revoked_at, Some(t2));
    assert_eq!(store.revoke_all_for_user(alice.id, None, t2).await?, 0);
    assert_eq!(fetch_session(&*store, bobs.id).await?, bobs);
    assert_eq!(store.revoke_all_for_user(UserId::new(), None, t2).await?, 0);
    Ok(())
}

async fn sessions_for_user_newest_first(fixture: SessionFixture) -> Result {
    let SessionFixture {
        accounts,
        sessions: store,
    } = fixture;
    let alice = create(&*accounts, "alice").await?;
    let bob = create(&*accounts, "bob").await?;
    let oldest = store
        .create_session(&new_session(alice.id, "a1", t0()))
        .await?;
    let newest = store
        .create_session(&new_session(alice.id, "a2", t0() + secs(120)))
        .await?;
    let middle = store
        .create_session(&new_session(alice.id, "a3", t0() + secs(60)))
        .await?;
    store.revoke(middle.id, t0() + secs(200)).await?;
    let bobs = store
        .create_session(&new_session(bob.id, "b1", t0() + secs(30)))
        .await?;

    let listed = store.sessions_for_user(alice.id).await?;
    let ids: Vec<SessionId> = listed.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![newest.id, middle.id, oldest.id]);
    assert_eq!(listed[0], newest);
    assert_eq!(
        listed[1].revoked_at,
        Some(t0() + secs(200)),
        "revoked ones are listed too"
    );
    assert_eq!(store.sessions_for_user(bob.id).await?, vec![bobs]);
    assert_eq!(store.sessions_for_user(UserId::new()).await?, vec![]);

    // Rotation does not reorder: the order is by creation.
    let t = t0() + secs(300);
    let Rotation::Rotated(_) = store
        .rotate("a1", "a1-next", t, t + TimeDelta::days(1))
        .await?
    else {
        anyhow::bail!("rotation failed");
    };
    let ids: HashSet<SessionId> = store
        .sessions_for_user(alice.id)
        .await?
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(
        store
            .sessions_for_user(alice.id)
            .await?
            .last()
            .map(|s| s.id),
        Some(oldest.id)
    );
    Ok(())
}

// ------------------------------------------------------------ connecting

/// `sqlite::memory:` keeps its data for the life of the store, across
/// concurrent callers; unsupported URLs are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_sqlite_and_bad_urls() -> Result {
    let store = SqlStore::connect("sqlite::memory:", 8).await?;
    assert_eq!(store.backend(), "sqlite");
    store.migrate().await?;
    let user = create(&store, "alice").await?;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.user_by_id(user.id).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await??, Some(user.clone()));
    }
    store.close().await;

    for url in ["mysql://localhost/db", "", "file.db"] {
        let result = SqlStore::connect(url, 1).await;
        ensure!(
            matches!(result, Err(StoreError::Backend(_))),
            "{url:?} should be refused"
        );
    }
    Ok(())
}

// -------------------------------------------------------------- the suite

/// Instantiates each scenario once per backend: store scenarios on SQLite
/// and PostgreSQL, session scenarios also on DynamoDB (`moto_server`).
macro_rules! store_suite {
    (
        store: [$($scenario:ident),* $(,)?],
        sessions: [$($session:ident),* $(,)?] $(,)?
    ) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::harness::run_sqlite(super::$scenario).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $session() {
                    super::harness::run_sqlite(|store| {
                        super::$session(super::SessionFixture::sql(store))
                    })
                    .await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::harness::run_postgres(super::$scenario).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $session() {
                    super::harness::run_postgres(|store| {
                        super::$session(super::SessionFixture::sql(store))
                    })
                    .await;
                }
            )*
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $session() {
                    super::harness::run_dynamodb(|users, sessions| {
                        super::$session(super::SessionFixture::dynamodb(users, sessions))
                    })
                    .await;
                }
            )*
        }
    };
}

store_suite!(
    store: [
        migrate_twice_and_ping,
        user_round_trip,
        duplicate_email_conflicts,
        duplicate_username_conflicts,
        profile_update_sets_clears_and_leaves,
        mark_verified_keeps_the_first_time,
        set_password_hash_replaces_it,
        suspend_and_unsuspend,
        anonymise_leaves_a_tombstone,
        seller_profiles_round_trip,
        tokens_are_consumed_once,
        expired_tokens_are_refused,
        delete_tokens_invalidates_one_purpose,
        concurrent_consume_has_one_winner,
        taxonomy_is_seeded_in_order,
        gig_round_trip,
        duplicate_gig_conflicts,
        versioned_updates,
        concurrent_updates_have_one_winner,
        outbox_is_written_with_each_save,
        gigs_by_seller_filters_and_orders,
        gigs_after_pages_through_everything,
        unknown_taxonomy_or_seller_is_rejected,
        open_is_find_or_create,
        concurrent_opens_make_one_conversation,
        messages_are_appended_in_sequence,
        duplicate_client_id_writes_nothing,
        concurrent_appends_have_one_winner,
        event_cursors_have_no_gaps,
        concurrent_log_appends_have_no_gaps,
        prune_keeps_heads,
        mark_read_moves_forward_only,
        unread_counts,
        conversations_for_orders_and_pages,
        contacts_are_distinct,
        attachments_are_filtered,
        last_seen_round_trip,
        order_round_trip,
        checkout_key_reuse_conflicts,
        offer_checks_out_once,
        versioned_order_saves,
        payment_events_apply_once,
        ledger_balances_through_clearance,
        concurrent_order_saves_have_one_winner,
        concurrent_withdrawals_never_overspend,
        orders_for_filters_and_pages,
        deadlines_and_due_work,
        refunds_are_pending_until_answered,
        offers_are_versioned,
        raise_is_idempotent_by_source_key,
        one_open_report_per_reporter_and_target,
        update_item_checks_the_version,
        concurrent_claims_have_one_winner,
        record_action_is_all_or_nothing,
        feed_has_no_gaps_under_concurrency,
        audit_filters_and_pages,
        audit_log_is_append_only,
        users_filters_and_pages,
        gigs_filters_and_pages,
        orders_filters_and_pages,
        totals_count_the_day,
        outbox_enqueue_seller_takes_live_gigs,
        removed_gigs_remember_their_status,
    ],
    sessions: [
        sessions_are_created_and_read,
        rotation_and_reuse,
        rotation_of_an_expired_session_changes_nothing,
        rotation_of_a_revoked_session_changes_nothing,
        unknown_tokens_are_invalid,
        concurrent_rotation_has_one_winner,
        revoke_is_idempotent,
        revoke_by_token_finds_the_session,
        revoke_all_for_user_spares_the_exception,
        sessions_for_user_newest_first,
    ],
);
