//! The gig actors against a real store (an SQLite file) and a real tantivy
//! index: writes go through shards, the indexer follows the outbox, a
//! rebuild restores a lost index, and a stale version is retried once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use actors::gig_shard::GigWriteError;
use actors::gigs::{GigActors, GigActorsConfig};
use actors::indexer::IndexerExtras;
use adapters::media::LocalMediaStore;
use adapters::sql::SqlStore;
use chrono::{TimeZone, Utc};
use domain::account::{Email, NewUser, Role, Username};
use domain::gig::{decide, GigCommand, GigError, GigInput, GigStatus, PackageInput};
use domain::ids::{GigId, UserId};
use domain::ports::{AccountStore, GigStore};
use search::{SearchBackend, SearchQuery, SearchTier, TantivyIndex};

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqlStore,
    search: Arc<SearchTier>,
    actors: GigActors,
    seller: UserId,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = SqlStore::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let seller = store
        .create_user(&NewUser {
            id: UserId::new(),
            email: Email::parse("ada@example.com").unwrap(),
            username: Username::parse("ada").unwrap(),
            password_hash: String::new(),
            role: Role::User,
            email_verified_at: Some(now),
            created_at: now,
        })
        .await
        .unwrap()
        .id;
    let search = Arc::new(SearchTier::new(
        Arc::new(TantivyIndex::in_memory().unwrap()),
        None,
    ));
    let media = Arc::new(LocalMediaStore::new(dir.path().join("media")).unwrap());
    let actors = GigActors::start(
        GigActorsConfig {
            shards: 4,
            ..GigActorsConfig::default()
        },
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        media,
        search.clone(),
        IndexerExtras::default(),
    )
    .await
    .unwrap();
    Fixture {
        _dir: dir,
        store,
        search,
        actors,
        seller,
    }
}

fn input(title: &str) -> GigInput {
    GigInput {
        title: title.into(),
        description: "A careful, complete piece of work delivered on time with clear communication throughout.".into(),
        category: "programming-tech".into(),
        subcategory: "web-development".into(),
        tags: vec!["rust".into()],
        faq: vec![],
        packages: vec![PackageInput {
            tier: "basic".into(),
            name: "Basic".into(),
            description: "One page".into(),
            price_minor: 5_000,
            currency: "USD".into(),
            delivery_days: 3,
            revisions: 1,
        }],
    }
}

async fn create(f: &Fixture, title: &str) -> GigId {
    let taxonomy = f.store.taxonomy().await.unwrap();
    let content = input(title).validate(&taxonomy).unwrap();
    let id = GigId::new();
    f.actors
        .execute(
            id,
            GigCommand::Create {
                id,
                content,
                publish: true,
            },
            f.seller,
            Utc::now(),
        )
        .await
        .unwrap();
    id
}

async fn titles(f: &Fixture, text: &str) -> Vec<String> {
    let query = SearchQuery {
        text: Some(text.into()),
        ..SearchQuery::default()
    };
    f.search
        .search(&query)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.title)
        .collect()
}

#[tokio::test]
async fn writes_reach_the_index_through_the_outbox() {
    let f = fixture().await;
    let id = create(&f, "I will build your Rust web service").await;
    f.actors.flush_index().await.unwrap();
    assert_eq!(
        titles(&f, "rust").await,
        ["I will build your Rust web service"]
    );
    assert!(f.store.outbox_pending(10).await.unwrap().is_empty());

    f.actors
        .execute(id, GigCommand::Pause, f.seller, Utc::now())
        .await
        .unwrap();
    f.actors.flush_index().await.unwrap();
    assert!(titles(&f, "rust").await.is_empty());

    let stranger = UserId::new();
    let refused = f
        .actors
        .execute(id, GigCommand::Resume, stranger, Utc::now())
        .await;
    assert!(matches!(
        refused,
        Err(GigWriteError::Rule(GigError::NotFound))
    ));
    assert_eq!(
        f.store.gig(id).await.unwrap().unwrap().status,
        GigStatus::Paused
    );
    f.actors.stop();
}

#[tokio::test]
async fn a_lost_index_is_rebuilt_from_the_database() {
    let f = fixture().await;
    create(&f, "I will build your Rust web service").await;
    let draft_id = GigId::new();
    let taxonomy = f.store.taxonomy().await.unwrap();
    let content = input("I will write your Rust command line tool")
        .validate(&taxonomy)
        .unwrap();
    f.actors
        .execute(
            draft_id,
            GigCommand::Create {
                id: draft_id,
                content,
                publish: false,
            },
            f.seller,
            Utc::now(),
        )
        .await
        .unwrap();
    f.actors.flush_index().await.unwrap();
    f.search.local().clear().await.unwrap();
    assert!(titles(&f, "rust").await.is_empty());

    assert_eq!(f.actors.rebuild_index().await.unwrap().unwrap(), 1);
    assert_eq!(
        titles(&f, "rust").await,
        ["I will build your Rust web service"]
    );
    f.actors.stop();
}

#[tokio::test]
async fn a_write_made_behind_the_shards_back_is_retried_from_the_store() {
    let f = fixture().await;
    let id = create(&f, "I will build your Rust web service").await;
    // The shard has the gig cached at version 1; another writer (a second
    // activation during a membership change) moves the stored gig to 2.
    let stored = f.store.gig(id).await.unwrap().unwrap();
    let change = decide(Some(&stored), GigCommand::Pause, f.seller, Utc::now()).unwrap();
    f.store
        .save_gig(&change.gig, change.expected_version)
        .await
        .unwrap();

    let resumed = f
        .actors
        .execute(id, GigCommand::Resume, f.seller, Utc::now())
        .await
        .unwrap();
    assert_eq!((resumed.status, resumed.version), (GigStatus::Active, 3));
    assert_eq!(f.store.gig(id).await.unwrap().unwrap().version, 3);
    f.actors.stop();
}

#[tokio::test]
async fn a_stale_cached_version_is_caught_by_the_store_and_retried() {
    let f = fixture().await;
    let id = create(&f, "I will build your Rust web service").await;
    // Another writer edits the gig; the shard's cached copy is now one
    // version behind, but the pause it is asked for is still legal.
    let stored = f.store.gig(id).await.unwrap().unwrap();
    let mut content = stored.content.clone();
    content.title = "I will build your fast Rust web service".into();
    let change = decide(
        Some(&stored),
        GigCommand::Update { content },
        f.seller,
        Utc::now(),
    )
    .unwrap();
    f.store
        .save_gig(&change.gig, change.expected_version)
        .await
        .unwrap();

    let paused = f
        .actors
        .execute(id, GigCommand::Pause, f.seller, Utc::now())
        .await
        .unwrap();
    assert_eq!((paused.status, paused.version), (GigStatus::Paused, 3));
    // The other writer's edit survived.
    assert_eq!(
        paused.content.title,
        "I will build your fast Rust web service"
    );
    let conflicts: u64 = f
        .actors
        .shard_snapshots()
        .await
        .into_iter()
        .map(|s| s.unwrap().version_conflicts)
        .sum();
    assert_eq!(conflicts, 1);
    f.actors.stop();
}
