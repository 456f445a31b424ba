//! Favourites and saved-search scenarios of the store suite, on SQLite
//! (`store::saved::sqlite::*`) and PostgreSQL (`store::saved::postgres::*`):
//! favourites are kept once, paged newest first and limited; saved searches
//! round-trip, change and go only for their owner, and their limit holds
//! under concurrent adds; a gig's first public time is recorded once;
//! matches are stored once per search and gig, and the alert goes into the
//! user's log with the first new match only; the digest sees what matched
//! since the last one.

use std::collections::HashSet;

use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use chrono::{DateTime, Utc};
use domain::gig::{Gig, GigContent, GigStatus, Package, PackageTier};
use domain::ids::{GigId, UserId};
use domain::live::{LiveEvent, Notification};
use domain::money::{Currency, Money};
use domain::ports::{EventLog, GigStore, MatchWrite, SavedStore};
use domain::saved::{LimitReached, SavedQuery, SavedSearch, SavedSearchId, SearchName};

use super::{create, is_not_found, secs, t0, Result};

/// Each scenario once per backend, as the main suite does.
macro_rules! saved_suite {
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

saved_suite!(
    favourites_are_kept_once_paged_and_limited,
    saved_searches_belong_to_their_owner,
    the_limit_holds_under_concurrent_adds,
    first_public_is_recorded_once,
    matches_are_stored_once_and_alert_once,
    the_digest_sees_matches_since_the_last_one,
);

/// A stored active gig of `seller`.
async fn stored_gig(store: &SqlStore, seller: UserId, at: DateTime<Utc>) -> anyhow::Result<GigId> {
    let gig = Gig {
        id: GigId::new(),
        seller_id: seller,
        content: GigContent {
            title: "I will design a minimalist logo".into(),
            description: "Clean vector logos, with every source file included.".into(),
            category: "graphics-design".into(),
            subcategory: "logo-design".into(),
            tags: vec!["logo".into()],
            faq: Vec::new(),
            packages: vec![Package {
                tier: PackageTier::Basic,
                name: "Basic".into(),
                description: "One concept".into(),
                price: Money {
                    amount_minor: 2_500,
                    currency: Currency::Usd,
                },
                delivery_days: 3,
                revisions: 1,
            }],
        },
        media: Vec::new(),
        status: GigStatus::Active,
        version: 1,
        created_at: at,
        updated_at: at,
        deleted_at: None,
        removed_from: None,
    };
    store.save_gig(&gig, None).await?;
    Ok(gig.id)
}

fn search(user: UserId, name: &str, alerts: bool, digest: bool, at: DateTime<Utc>) -> SavedSearch {
    SavedSearch::new(
        user,
        SearchName::parse(name).unwrap(),
        SavedQuery::from_json(format!(r#"{{"q":"{name}","sort":"relevance"}}"#)),
        alerts,
        digest,
        at,
    )
}

fn alert(gig: GigId) -> LiveEvent {
    LiveEvent::Notification(Notification {
        kind: "saved_search.match".into(),
        title: "New gig for \"logo\"".into(),
        body: "I will design a minimalist logo, from 25.00 USD, by Ada".into(),
        order_id: None,
        offer_id: None,
        conversation_id: None,
        gig_id: Some(gig),
    })
}

/// A match of `gig` for `user`'s `searches`, alerting with `event`.
fn write<'a>(
    user: UserId,
    gig: GigId,
    searches: &'a [SavedSearchId],
    event: &'a LiveEvent,
) -> MatchWrite<'a> {
    MatchWrite {
        user_id: user,
        gig_id: gig,
        searches,
        alert: Some(event),
        now: t0() + secs(1),
    }
}

async fn favourites_are_kept_once_paged_and_limited(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    let seller = create(&store, "sam").await?.id;
    let mut gigs = Vec::new();
    for n in 0..4 {
        gigs.push(stored_gig(&store, seller, t0() + secs(n)).await?);
    }
    let (first, added) = store.add_favourite(ada, gigs[0], t0(), 3).await??;
    ensure!(added && first.gig_id == gigs[0] && first.user_id == ada);
    assert_eq!(first.created_at, t0());
    // Again: found, nothing written, the first time kept.
    let (again, added) = store
        .add_favourite(ada, gigs[0], t0() + secs(9), 3)
        .await??;
    ensure!(!added, "a second add writes nothing");
    assert_eq!(again, first);
    // Two more, one second apart (the third one at the same time as the
    // second, ordered by gig).
    store
        .add_favourite(ada, gigs[1], t0() + secs(1), 3)
        .await??;
    store
        .add_favourite(ada, gigs[2], t0() + secs(1), 3)
        .await??;
    let refused = store.add_favourite(ada, gigs[3], t0() + secs(2), 3).await?;
    assert_eq!(refused, Err(LimitReached { limit: 3 }));

    let page = store.favourites(ada, None, 2).await?;
    let mut same_second = vec![gigs[1], gigs[2]];
    same_second.sort();
    same_second.reverse();
    assert_eq!(
        page.iter().map(|f| f.gig_id).collect::<Vec<_>>(),
        same_second
    );
    let last = page.last().context("a page")?;
    let rest = store
        .favourites(ada, Some((last.created_at, last.gig_id)), 2)
        .await?;
    assert_eq!(rest.iter().map(|f| f.gig_id).collect::<Vec<_>>(), [gigs[0]]);

    // Another user's list is their own.
    let bob = create(&store, "bob").await?.id;
    assert!(store.favourites(bob, None, 10).await?.is_empty());
    ensure!(!store.remove_favourite(bob, gigs[0]).await?);

    ensure!(store.remove_favourite(ada, gigs[0]).await?);
    ensure!(!store.remove_favourite(ada, gigs[0]).await?);
    store
        .add_favourite(ada, gigs[3], t0() + secs(3), 3)
        .await??;
    assert_eq!(store.favourites(ada, None, 10).await?.len(), 3);

    let unknown_gig = store.add_favourite(ada, GigId::new(), t0(), 10).await;
    ensure!(is_not_found(&unknown_gig), "{unknown_gig:?}");
    let unknown_user = store.add_favourite(UserId::new(), gigs[0], t0(), 10).await;
    ensure!(is_not_found(&unknown_user), "{unknown_user:?}");
    Ok(())
}

async fn saved_searches_belong_to_their_owner(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    let bob = create(&store, "bob").await?.id;
    let logos = search(ada, "logo", true, false, t0());
    let apps = search(ada, "react", false, true, t0() + secs(1));
    let quiet = search(ada, "quiet", false, false, t0() + secs(2));
    for s in [&logos, &apps, &quiet] {
        store.create_saved_search(s, 50).await??;
    }
    let bobs = search(bob, "mixing", true, true, t0());
    store.create_saved_search(&bobs, 50).await??;

    assert_eq!(store.saved_search(logos.id).await?, Some(logos.clone()));
    assert_eq!(store.saved_search(SavedSearchId::new()).await?, None);
    assert_eq!(
        store.saved_searches_of(ada).await?,
        [quiet.clone(), apps.clone(), logos.clone()]
    );

    // Changes, by the owner only.
    let mut renamed = logos.clone();
    renamed.name = SearchName::parse("Logos").unwrap();
    renamed.alerts = false;
    renamed.email_digest = true;
    renamed.updated_at = t0() + secs(10);
    renamed.last_digest_at = Some(t0() + secs(10));
    store.update_saved_search(&renamed).await?;
    assert_eq!(store.saved_search(logos.id).await?, Some(renamed.clone()));
    let mut stolen = bobs.clone();
    stolen.user_id = ada;
    let result = store.update_saved_search(&stolen).await;
    ensure!(is_not_found(&result), "{result:?}");
    ensure!(!store.delete_saved_search(ada, bobs.id).await?);
    assert_eq!(store.saved_search(bobs.id).await?, Some(bobs.clone()));

    // Only searches with alerts or the digest are watched, by id.
    let mut watching = Vec::new();
    let mut after = None;
    loop {
        let page = store.watching_searches(after, 2).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        watching.extend(page.into_iter().map(|s| s.id));
    }
    let mut expected = vec![renamed.id, apps.id, bobs.id];
    expected.sort();
    assert_eq!(watching, expected);

    // Deleting takes the matches along.
    let seller = create(&store, "sam").await?.id;
    let gig = stored_gig(&store, seller, t0()).await?;
    store
        .record_matches(&MatchWrite {
            user_id: ada,
            gig_id: gig,
            searches: &[apps.id],
            alert: None,
            now: t0() + secs(20),
        })
        .await?;
    ensure!(store.delete_saved_search(ada, apps.id).await?);
    ensure!(!store.delete_saved_search(ada, apps.id).await?);
    assert_eq!(store.saved_search(apps.id).await?, None);
    assert!(store.digest_pending(ada).await?.is_empty());

    let orphan = search(UserId::new(), "nobody", true, false, t0());
    let result = store.create_saved_search(&orphan, 50).await;
    ensure!(is_not_found(&result), "{result:?}");
    Ok(())
}

async fn the_limit_holds_under_concurrent_adds(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let saved = search(ada, &format!("search{n}"), true, false, t0() + secs(n));
            store.create_saved_search(&saved, 3).await
        }));
    }
    let mut stored = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await?? {
            Ok(()) => stored += 1,
            Err(LimitReached { limit: 3 }) => refused += 1,
            Err(other) => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!((stored, refused), (3, 5));
    assert_eq!(store.saved_searches_of(ada).await?.len(), 3);
    Ok(())
}

async fn first_public_is_recorded_once(store: SqlStore) -> Result {
    let seller = create(&store, "sam").await?.id;
    let a = stored_gig(&store, seller, t0()).await?;
    let b = stored_gig(&store, seller, t0()).await?;
    let first = store.first_public(&[a], t0() + secs(5)).await?;
    assert_eq!(first, [(a, t0() + secs(5))]);
    let both = store.first_public(&[b, a], t0() + secs(9)).await?;
    assert_eq!(both, [(b, t0() + secs(9)), (a, t0() + secs(5))]);
    assert!(store.first_public(&[], t0()).await?.is_empty());
    let unknown = store.first_public(&[GigId::new()], t0()).await;
    ensure!(is_not_found(&unknown), "{unknown:?}");
    Ok(())
}

async fn matches_are_stored_once_and_alert_once(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    let bob = create(&store, "bob").await?.id;
    let seller = create(&store, "sam").await?.id;
    let gig = stored_gig(&store, seller, t0()).await?;
    let logos = search(ada, "logo", true, false, t0());
    let vectors = search(ada, "vector", true, true, t0());
    let bobs = search(bob, "logo", true, false, t0());
    for s in [&logos, &vectors, &bobs] {
        store.create_saved_search(s, 50).await??;
    }
    let event = alert(gig);
    let first = [logos.id];
    let stored = store
        .record_matches(&write(ada, gig, &first, &event))
        .await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].user_id, ada);
    assert_eq!(stored[0].event, event);
    let logged = store.events_after(ada, 0, 10).await?;
    assert_eq!(logged.len(), 1);
    assert_eq!(logged[0].cursor, stored[0].cursor);

    // The same match again (an edit, a re-index): nothing.
    ensure!(store
        .record_matches(&write(ada, gig, &first, &event))
        .await?
        .is_empty());
    // Another of the user's searches matches it too: stored for the digest,
    // but the user heard of the gig already.
    let both = [logos.id, vectors.id];
    ensure!(store
        .record_matches(&write(ada, gig, &both, &event))
        .await?
        .is_empty());
    assert_eq!(store.events_after(ada, 0, 10).await?.len(), 1);
    let pending = store.digest_pending(ada).await?;
    assert_eq!(pending.len(), 1, "only the search with the digest on");
    assert_eq!(pending[0].search.id, vectors.id);

    // Another user's search under Ada's name stores nothing.
    let foreign = [bobs.id];
    ensure!(store
        .record_matches(&write(ada, gig, &foreign, &event))
        .await?
        .is_empty());
    let stored = store
        .record_matches(&write(bob, gig, &foreign, &event))
        .await?;
    assert_eq!(stored.len(), 1, "Bob's own first match alerts him");
    assert_eq!(store.events_after(bob, 0, 10).await?.len(), 1);

    // Without an alert (alerts off), matches are stored silently.
    let carol = create(&store, "carol").await?.id;
    let digest_only = search(carol, "logo", false, true, t0());
    store.create_saved_search(&digest_only, 50).await??;
    let ids = [digest_only.id];
    let stored = store
        .record_matches(&MatchWrite {
            user_id: carol,
            gig_id: gig,
            searches: &ids,
            alert: None,
            now: t0() + secs(1),
        })
        .await?;
    ensure!(stored.is_empty());
    assert_eq!(store.digest_pending(carol).await?.len(), 1);
    Ok(())
}

async fn the_digest_sees_matches_since_the_last_one(store: SqlStore) -> Result {
    let ada = create(&store, "ada").await?.id;
    let bob = create(&store, "bob").await?.id;
    let seller = create(&store, "sam").await?.id;
    let gigs = [
        stored_gig(&store, seller, t0()).await?,
        stored_gig(&store, seller, t0()).await?,
        stored_gig(&store, seller, t0()).await?,
    ];
    let older = search(ada, "logo", false, true, t0());
    let newer = search(ada, "vector", true, true, t0() + secs(1));
    let alerts_only = search(ada, "brand", true, false, t0());
    let bobs = search(bob, "logo", false, true, t0());
    for s in [&older, &newer, &alerts_only, &bobs] {
        store.create_saved_search(s, 50).await??;
    }
    let matched = |search: SavedSearchId, user, gig, at| {
        let store = store.clone();
        async move {
            store
                .record_matches(&MatchWrite {
                    user_id: user,
                    gig_id: gig,
                    searches: &[search],
                    alert: None,
                    now: at,
                })
                .await
        }
    };
    matched(newer.id, ada, gigs[1], t0() + secs(20)).await?;
    matched(older.id, ada, gigs[0], t0() + secs(10)).await?;
    matched(older.id, ada, gigs[1], t0() + secs(20)).await?;
    matched(alerts_only.id, ada, gigs[2], t0() + secs(20)).await?;
    let mut users: Vec<UserId> = store.digest_users(None, 10).await?;
    assert_eq!(users, [ada]);
    matched(bobs.id, bob, gigs[0], t0() + secs(30)).await?;
    users = store.digest_users(None, 10).await?;
    let mut both = vec![ada, bob];
    both.sort();
    assert_eq!(users, both);
    assert_eq!(store.digest_users(Some(both[0]), 10).await?, [both[1]]);

    let pending = store.digest_pending(ada).await?;
    let got: Vec<(SavedSearchId, Vec<GigId>)> = pending
        .iter()
        .map(|p| (p.search.id, p.gigs.iter().map(|(g, _)| *g).collect()))
        .collect();
    assert_eq!(
        got,
        [
            (older.id, vec![gigs[0], gigs[1]]),
            (newer.id, vec![gigs[1]])
        ],
        "oldest search first, its gigs in match order"
    );
    assert_eq!(pending[0].gigs[0].1, t0() + secs(10));

    store.mark_digested(ada, t0() + secs(20)).await?;
    assert!(store.digest_pending(ada).await?.is_empty());
    assert_eq!(store.digest_users(None, 10).await?, [bob]);
    let marked: HashSet<Option<DateTime<Utc>>> = store
        .saved_searches_of(ada)
        .await?
        .into_iter()
        .filter(|s| s.email_digest)
        .map(|s| s.last_digest_at)
        .collect();
    assert_eq!(marked, HashSet::from([Some(t0() + secs(20))]));
    // The mark never moves back.
    store.mark_digested(ada, t0() + secs(5)).await?;
    assert_eq!(
        store
            .saved_search(older.id)
            .await?
            .context("stored")?
            .last_digest_at,
        Some(t0() + secs(20))
    );

    // A later match is news again, alone.
    matched(older.id, ada, gigs[2], t0() + secs(40)).await?;
    let pending = store.digest_pending(ada).await?;
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].gigs, [(gigs[2], t0() + secs(40))]);
    Ok(())
}
