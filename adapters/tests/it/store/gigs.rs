//! Gig scenarios of the store suite: the seeded taxonomy, versioned gig
//! writes, the search outbox written with them, and the listings.

use std::collections::HashSet;

use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use chrono::{DateTime, TimeDelta, Utc};
use domain::gig::{Faq, Gig, GigContent, GigMedia, GigStatus, Package, PackageTier};
use domain::ids::{GigId, UserId};
use domain::money::{Currency, Money};
use domain::ports::{GigStore, StoreError};
use uuid::Uuid;

use super::{create, is_conflict, is_not_found, secs, t0, Result};

// ---------------------------------------------------------------- fixtures

fn package(tier: PackageTier, amount_minor: i64, delivery_days: u32) -> Package {
    Package {
        tier,
        name: format!("{} plan", tier.as_str()),
        description: "Responsive pages, \"quoted\" and \u{e9}l\u{e9}gant \u{1f680}".into(),
        price: Money {
            amount_minor,
            currency: Currency::Usd,
        },
        delivery_days,
        revisions: 2,
    }
}

/// An active gig in `programming-tech/web-development`, version 1.
fn gig(seller: UserId, created_at: DateTime<Utc>) -> Gig {
    Gig {
        id: GigId::new(),
        seller_id: seller,
        content: GigContent {
            title: "I will build your landing page in Rust".into(),
            description: "A fast, accessible landing page, tested on every browser you name."
                .into(),
            category: "programming-tech".into(),
            subcategory: "web-development".into(),
            tags: vec!["landing page".into(), "rust".into(), "caf\u{e9}".into()],
            faq: vec![
                Faq {
                    question: "Do you host it?".into(),
                    answer: "No, but I help you choose a host.".into(),
                },
                Faq {
                    question: "Line\nbreaks?".into(),
                    answer: "Kept\n\tas typed.".into(),
                },
            ],
            packages: vec![
                package(PackageTier::Basic, 5_000, 3),
                package(PackageTier::Standard, 12_500, 5),
                package(PackageTier::Premium, 5_000_000, 90),
            ],
        },
        media: vec![
            GigMedia {
                key: "gigs/cover.png".into(),
                content_type: "image/png".into(),
                width: 1280,
                height: 720,
                bytes: 123_456,
            },
            GigMedia {
                key: "gigs/huge.webp".into(),
                content_type: "image/webp".into(),
                width: u32::MAX,
                height: 1,
                bytes: u64::MAX,
            },
        ],
        status: GigStatus::Active,
        version: 1,
        created_at,
        updated_at: created_at,
        deleted_at: None,
        removed_from: None,
    }
}

/// `gig` as the next write would make it: version incremented, content changed.
fn edited(gig: &Gig, title: &str, at: DateTime<Utc>) -> Gig {
    let mut next = gig.clone();
    next.content.title = title.into();
    next.version = gig.version + 1;
    next.updated_at = at;
    next
}

async fn fetch_gig(store: &SqlStore, id: GigId) -> anyhow::Result<Gig> {
    store.gig(id).await?.context("gig should exist")
}

/// The gigs in the outbox, oldest entry first.
async fn outbox_gigs(store: &SqlStore) -> anyhow::Result<Vec<GigId>> {
    Ok(store
        .outbox_pending(10_000)
        .await?
        .iter()
        .map(|e| e.gig_id)
        .collect())
}

fn is_version_conflict<T>(result: &std::result::Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::VersionConflict))
}

fn ids(gigs: &[Gig]) -> Vec<GigId> {
    gigs.iter().map(|g| g.id).collect()
}

// ---------------------------------------------------------------- taxonomy

pub(super) async fn taxonomy_is_seeded_in_order(store: SqlStore) -> Result {
    let taxonomy = store.taxonomy().await?;
    let slugs: Vec<&str> = taxonomy
        .categories
        .iter()
        .map(|c| c.slug.as_str())
        .collect();
    assert_eq!(
        slugs,
        [
            "graphics-design",
            "programming-tech",
            "digital-marketing",
            "writing-translation",
            "video-animation",
            "music-audio",
            "business",
            "data-ai",
        ]
    );
    let slug_like = |s: &str| {
        !s.is_empty()
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    for category in &taxonomy.categories {
        ensure!(slug_like(&category.slug), "slug {:?}", category.slug);
        ensure!(!category.name.is_empty(), "{} has no name", category.slug);
        let count = category.subcategories.len();
        ensure!(
            (4..=6).contains(&count),
            "{} has {count} subcategories",
            category.slug
        );
        let mut seen = HashSet::new();
        for sub in &category.subcategories {
            ensure!(slug_like(&sub.slug), "slug {:?}", sub.slug);
            ensure!(!sub.name.is_empty(), "{} has no name", sub.slug);
            ensure!(seen.insert(&sub.slug), "{} listed twice", sub.slug);
        }
    }
    let tech = taxonomy
        .category("programming-tech")
        .context("programming-tech")?;
    assert_eq!(tech.name, "Programming & Tech");
    // Subcategories come in their display order, not alphabetically.
    assert_eq!(tech.subcategories[0].slug, "web-development");
    assert_eq!(tech.subcategories[0].name, "Web Development");
    assert_eq!(tech.subcategories[1].slug, "mobile-apps");
    assert!(taxonomy
        .subcategory("graphics-design", "logo-design")
        .is_some());
    assert!(taxonomy
        .subcategory("graphics-design", "web-development")
        .is_none());
    // Reading it again gives the same answer.
    assert_eq!(store.taxonomy().await?, taxonomy);
    Ok(())
}

// ------------------------------------------------------------------- gigs

pub(super) async fn gig_round_trip(store: SqlStore) -> Result {
    let seller = create(&store, "alice").await?;
    let mut input = gig(seller.id, t0());
    // Nanoseconds are beyond PostgreSQL's precision: both backends keep micros.
    input.updated_at = t0() + TimeDelta::nanoseconds(1_999);
    store.save_gig(&input, None).await?;

    let expected = Gig {
        updated_at: t0() + TimeDelta::microseconds(1),
        ..input.clone()
    };
    let stored = fetch_gig(&store, input.id).await?;
    assert_eq!(stored, expected);
    assert_eq!(stored.content.packages[2].price.amount_minor, 5_000_000);
    assert_eq!(stored.media[1].bytes, u64::MAX);

    // Empty collections, another status and a deletion time round-trip too.
    let mut bare = gig(seller.id, t0() + secs(1));
    bare.content.tags.clear();
    bare.content.faq.clear();
    bare.content.packages.truncate(1);
    bare.media.clear();
    bare.status = GigStatus::Draft;
    store.save_gig(&bare, None).await?;
    assert_eq!(fetch_gig(&store, bare.id).await?, bare);

    let mut deleted = edited(&bare, &bare.content.title, t0() + secs(2));
    deleted.deleted_at = Some(t0() + secs(2));
    deleted.status = GigStatus::Removed;
    store.save_gig(&deleted, Some(bare.version)).await?;
    assert_eq!(
        fetch_gig(&store, bare.id).await?,
        deleted,
        "a deleted gig is still read"
    );

    assert_eq!(store.gig(GigId::new()).await?, None);
    Ok(())
}

pub(super) async fn duplicate_gig_conflicts(store: SqlStore) -> Result {
    let seller = create(&store, "alice").await?;
    let first = gig(seller.id, t0());
    store.save_gig(&first, None).await?;

    let mut again = gig(seller.id, t0() + secs(5));
    again.id = first.id;
    again.content.title = "Another gig with the same id".into();
    let result = store.save_gig(&again, None).await;
    ensure!(is_conflict(&result, "gig"), "second insert: {result:?}");
    assert_eq!(fetch_gig(&store, first.id).await?, first);
    assert_eq!(outbox_gigs(&store).await?, [first.id]);

    // Racing inserts of one new id: one is stored, the others conflict.
    let contested = gig(seller.id, t0() + secs(10));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let mut candidate = contested.clone();
            candidate.content.title = format!("Contender number {i} for this id");
            tokio::spawn(async move { (store.save_gig(&candidate, None).await, candidate) })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (result, candidate) = task.await?;
        match result {
            Ok(()) => winners.push(candidate),
            Err(StoreError::Conflict("gig")) => {}
            Err(e) => anyhow::bail!("a racing insert failed otherwise: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one insert wins");
    assert_eq!(fetch_gig(&store, contested.id).await?, winners[0]);
    assert_eq!(outbox_gigs(&store).await?, [first.id, contested.id]);
    Ok(())
}

pub(super) async fn versioned_updates(store: SqlStore) -> Result {
    let seller = create(&store, "alice").await?;
    let v1 = gig(seller.id, t0());
    store.save_gig(&v1, None).await?;

    let v2 = edited(&v1, "Version two of the landing page gig", t0() + secs(1));
    store.save_gig(&v2, Some(1)).await?;
    assert_eq!(fetch_gig(&store, v1.id).await?, v2);

    // A writer that still holds version 1 loses, and changes nothing.
    let stale = edited(&v1, "A stale writer's landing page gig", t0() + secs(2));
    let result = store.save_gig(&stale, Some(1)).await;
    ensure!(is_version_conflict(&result), "stale write: {result:?}");
    // So does one that names a version from the future.
    let ahead = edited(&v2, "A confused writer's landing page", t0() + secs(2));
    let result = store.save_gig(&ahead, Some(7)).await;
    ensure!(is_version_conflict(&result), "future version: {result:?}");
    assert_eq!(fetch_gig(&store, v1.id).await?, v2);

    // The seller and creation time are the stored ones, whatever is passed.
    let mut v3 = edited(&v2, "Version three of the landing page", t0() + secs(3));
    v3.seller_id = UserId::new();
    v3.created_at = t0() + secs(3);
    store.save_gig(&v3, Some(2)).await?;
    let stored = fetch_gig(&store, v1.id).await?;
    assert_eq!(
        stored,
        Gig {
            seller_id: seller.id,
            created_at: t0(),
            ..v3
        }
    );

    let unknown = gig(seller.id, t0());
    let result = store.save_gig(&unknown, Some(1)).await;
    ensure!(is_not_found(&result), "unknown gig: {result:?}");
    assert_eq!(store.gig(unknown.id).await?, None);

    assert_eq!(outbox_gigs(&store).await?, [v1.id, v1.id, v1.id]);
    Ok(())
}

pub(super) async fn concurrent_updates_have_one_winner(store: SqlStore) -> Result {
    let seller = create(&store, "alice").await?;
    let v1 = gig(seller.id, t0());
    store.save_gig(&v1, None).await?;

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let next = edited(&v1, &format!("Edit number {i} of the gig"), t0() + secs(i));
            tokio::spawn(async move { (store.save_gig(&next, Some(1)).await, next) })
        })
        .collect();
    let (mut winners, mut losers) = (Vec::new(), 0);
    for task in tasks {
        let (result, next) = task.await?;
        match result {
            Ok(()) => winners.push(next),
            Err(StoreError::VersionConflict) => losers += 1,
            Err(e) => anyhow::bail!("a racing update failed otherwise: {e:?}"),
        }
    }
    assert_eq!((winners.len(), losers), (1, 7));
    assert_eq!(fetch_gig(&store, v1.id).await?, winners[0]);
    // The insert and the one winning update, nothing from the losers.
    assert_eq!(outbox_gigs(&store).await?, [v1.id, v1.id]);
    Ok(())
}

// ------------------------------------------------------------------ outbox

pub(super) async fn outbox_is_written_with_each_save(store: SqlStore) -> Result {
    let seller = create(&store, "alice").await?;
    assert_eq!(store.outbox_pending(10).await?, []);

    let a = gig(seller.id, t0());
    let b = gig(seller.id, t0() + secs(1));
    let c = gig(seller.id, t0() + secs(2));
    store.save_gig(&a, None).await?;
    store.save_gig(&b, None).await?;
    let a2 = edited(&a, "The first gig, edited once", t0() + secs(3));
    store.save_gig(&a2, Some(1)).await?;
    store.save_gig(&c, None).await?;

    // Failed saves append nothing.
    ensure!(store.save_gig(&b, None).await.is_err(), "duplicate insert");
    ensure!(store.save_gig(&a2, Some(1)).await.is_err(), "stale update");
    ensure!(
        store
            .save_gig(&gig(seller.id, t0()), Some(1))
            .await
            .is_err(),
        "unknown gig"
    );

    let pending = store.outbox_pending(10).await?;
    let order: Vec<GigId> = pending.iter().map(|e| e.gig_id).collect();
    assert_eq!(order, [a.id, b.id, a.id, c.id], "oldest first");
    ensure!(
        pending.windows(2).all(|w| w[0].id < w[1].id),
        "entry ids increase: {pending:?}"
    );
    let times: Vec<_> = pending.iter().map(|e| e.created_at).collect();
    assert_eq!(
        times,
        [t0(), t0() + secs(1), t0() + secs(3), t0() + secs(2)],
        "each entry carries its write's time"
    );

    assert_eq!(store.outbox_pending(2).await?, pending[..2]);
    assert_eq!(store.outbox_pending(0).await?, []);

    // Acknowledging removes exactly the named entries; unknown or repeated
    // ids and an empty list are fine.
    store.outbox_ack(&[]).await?;
    store
        .outbox_ack(&[pending[0].id, pending[2].id, pending[0].id, 999_999])
        .await?;
    assert_eq!(store.outbox_pending(10).await?, [pending[1], pending[3]]);
    store.outbox_ack(&[pending[0].id]).await?;
    assert_eq!(store.outbox_pending(10).await?.len(), 2);

    // A new write after acknowledgement is pending again, behind the rest.
    let b2 = edited(&b, "The second gig, edited once", t0() + secs(4));
    store.save_gig(&b2, Some(1)).await?;
    let rest = store.outbox_pending(10).await?;
    assert_eq!(
        rest.iter().map(|e| e.gig_id).collect::<Vec<_>>(),
        [b.id, c.id, b.id]
    );
    ensure!(rest[2].id > pending[3].id, "ids are not reused");

    // Many at once (more than one statement's worth).
    for i in 0..600 {
        let mut next = edited(&fetch_gig(&store, c.id).await?, "Edited in a loop", t0());
        next.content.title = format!("Edited in a loop, pass {i}");
        store.save_gig(&next, Some(next.version - 1)).await?;
    }
    let all: Vec<i64> = store
        .outbox_pending(10_000)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(all.len(), 603);
    store.outbox_ack(&all).await?;
    assert_eq!(store.outbox_pending(10).await?, []);
    Ok(())
}

// ---------------------------------------------------------------- listings

pub(super) async fn gigs_by_seller_filters_and_orders(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let with_status = |at: i64, status: GigStatus| {
        let mut g = gig(alice.id, t0() + secs(at));
        g.status = status;
        g
    };
    let active_old = with_status(1, GigStatus::Active);
    let draft = with_status(2, GigStatus::Draft);
    let paused = with_status(3, GigStatus::Paused);
    let active_new = with_status(4, GigStatus::Active);
    let removed = with_status(5, GigStatus::Removed);
    let deleted = with_status(6, GigStatus::Active);
    // Saved out of creation order: the listing orders, not the insertion.
    for g in [
        &paused,
        &active_new,
        &active_old,
        &removed,
        &draft,
        &deleted,
    ] {
        store.save_gig(g, None).await?;
    }
    let mut gone = edited(&deleted, &deleted.content.title, t0() + secs(7));
    gone.deleted_at = Some(t0() + secs(7));
    store.save_gig(&gone, Some(1)).await?;
    let bobs = gig(bob.id, t0() + secs(8));
    store.save_gig(&bobs, None).await?;

    let all = store.gigs_by_seller(alice.id, false).await?;
    assert_eq!(
        ids(&all),
        [
            removed.id,
            active_new.id,
            paused.id,
            draft.id,
            active_old.id
        ],
        "not deleted, newest first"
    );
    assert_eq!(all[1], active_new);
    let public = store.gigs_by_seller(alice.id, true).await?;
    assert_eq!(ids(&public), [active_new.id, active_old.id]);
    ensure!(public.iter().all(Gig::is_public), "only public gigs");

    // Equal creation times come in a stable order (by id, highest first).
    let twin_a = gig(bob.id, t0() + secs(8));
    let twin_b = gig(bob.id, t0() + secs(8));
    store.save_gig(&twin_a, None).await?;
    store.save_gig(&twin_b, None).await?;
    let mut twins = vec![bobs.id, twin_a.id, twin_b.id];
    twins.sort_unstable_by(|x, y| y.cmp(x));
    assert_eq!(ids(&store.gigs_by_seller(bob.id, true).await?), twins);
    assert_eq!(ids(&store.gigs_by_seller(bob.id, false).await?), twins);

    assert_eq!(store.gigs_by_seller(UserId::new(), false).await?, []);
    Ok(())
}

pub(super) async fn gigs_after_pages_through_everything(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    assert_eq!(store.gigs_after(None, 10).await?, []);

    let mut expected = Vec::new();
    for i in 0..7 {
        let seller = if i % 2 == 0 { alice.id } else { bob.id };
        let mut g = gig(seller, t0() + secs(i));
        // Random ids, so the backends' id order is checked against Rust's.
        g.id = GigId::from_uuid(Uuid::new_v4());
        if i == 3 {
            g.status = GigStatus::Draft;
        }
        store.save_gig(&g, None).await?;
        if i == 5 {
            let mut gone = edited(&g, &g.content.title, t0() + secs(20));
            gone.deleted_at = Some(t0() + secs(20));
            store.save_gig(&gone, Some(1)).await?;
            g = gone;
        }
        expected.push(g);
    }
    expected.sort_by_key(|g| g.id);

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store.gigs_after(after, 3).await?;
        ensure!(page.len() <= 3, "page of {}", page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page);
        pages += 1;
        ensure!(pages <= 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected, "every gig once, by id, deleted included");

    let last = expected.last().context("gigs")?.id;
    assert_eq!(store.gigs_after(Some(last), 3).await?, []);
    assert_eq!(store.gigs_after(None, 0).await?, []);
    assert_eq!(
        ids(&store.gigs_after(Some(expected[1].id), 2).await?),
        [expected[2].id, expected[3].id]
    );
    // An id that is not stored still works as a position.
    let before_all = GigId::from_uuid(Uuid::nil());
    assert_eq!(store.gigs_after(Some(before_all), 100).await?, expected);
    Ok(())
}

// --------------------------------------------------------- referential rules

pub(super) async fn unknown_taxonomy_or_seller_is_rejected(store: SqlStore) -> Result {
    let seller = create(&store, "alice").await?;

    let mut unknown_sub = gig(seller.id, t0());
    unknown_sub.content.subcategory = "underwater-basket-weaving".into();
    let mut unknown_cat = gig(seller.id, t0());
    unknown_cat.content.category = "cooking".into();
    // Both exist, but not as a pair.
    let mut mismatched = gig(seller.id, t0());
    mismatched.content.category = "graphics-design".into();
    let unknown_seller = gig(UserId::new(), t0());
    for (what, g) in [
        ("unknown subcategory", &unknown_sub),
        ("unknown category", &unknown_cat),
        ("mismatched pair", &mismatched),
        ("unknown seller", &unknown_seller),
    ] {
        let result = store.save_gig(g, None).await;
        ensure!(is_not_found(&result), "{what}: {result:?}");
        assert_eq!(store.gig(g.id).await?, None, "{what}");
    }

    // Moving a stored gig out of the taxonomy fails the same way.
    let good = gig(seller.id, t0());
    store.save_gig(&good, None).await?;
    let mut moved = edited(&good, &good.content.title, t0() + secs(1));
    moved.content.subcategory = "logo-design".into();
    let result = store.save_gig(&moved, Some(1)).await;
    ensure!(is_not_found(&result), "moved out: {result:?}");
    assert_eq!(fetch_gig(&store, good.id).await?, good);
    moved.content.category = "graphics-design".into();
    store.save_gig(&moved, Some(1)).await?;
    assert_eq!(fetch_gig(&store, good.id).await?, moved);

    assert_eq!(outbox_gigs(&store).await?, [good.id, good.id]);
    Ok(())
}
