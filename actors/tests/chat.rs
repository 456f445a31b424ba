//! The conversation actors against a real store (an SQLite file): two
//! activations of one conversation (as during a membership change) never
//! number two messages alike, idle actors leave memory, and an unknown
//! conversation keeps no actor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actors::chat::{ChatConfig, ChatService};
use actors::conversation::ChatFailure;
use actors::live::LiveEvents;
use adapters::sql::SqlStore;
use chrono::{TimeZone, Utc};
use cluster::{LocalBus, LocalPresence};
use domain::account::{Email, NewUser, Role, Username};
use domain::chat::{ChatError, MessageDraft};
use domain::ids::{ConversationId, UserId};
use domain::ports::{AccountStore, ChatStore, StoreError};

async fn store(dir: &tempfile::TempDir) -> SqlStore {
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = SqlStore::connect(&url, 4).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn user(store: &SqlStore, name: &str) -> UserId {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    store
        .create_user(&NewUser {
            id: UserId::new(),
            email: Email::parse(&format!("{name}@example.com")).unwrap(),
            username: Username::parse(name).unwrap(),
            password_hash: String::new(),
            role: Role::User,
            email_verified_at: Some(now),
            created_at: now,
        })
        .await
        .unwrap()
        .id
}

async fn service(store: &SqlStore, idle: Duration) -> ChatService {
    ChatService::start(
        ChatConfig {
            shards: 2,
            idle,
            ..ChatConfig::default()
        },
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        LiveEvents::new(Arc::new(store.clone()), Arc::new(LocalBus::default())),
        Arc::new(LocalPresence::new()),
    )
    .await
    .unwrap()
}

fn draft(id: ConversationId, client_id: &str) -> MessageDraft {
    MessageDraft::parse(id, client_id, "hello", vec![]).unwrap()
}

async fn eventually_active(chat: &ChatService, expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let active = chat.active_conversations().await;
        if active == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{active} conversation actors, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn two_activations_never_number_two_messages_alike() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    // Two nodes that both believe they own the conversation.
    let first = service(&store, Duration::from_secs(60)).await;
    let second = service(&store, Duration::from_secs(60)).await;
    let (conversation, created) = first.open(alice, bob, None, Utc::now()).await.unwrap();
    assert!(created);
    let id = conversation.id;

    let send_all = |chat: ChatService, sender: UserId, prefix: &'static str| async move {
        for n in 0..15 {
            let client_id = format!("{prefix}-{n}");
            // A client retries with the same id until it is acknowledged.
            loop {
                match chat
                    .send(id, sender, draft(id, &client_id), Utc::now())
                    .await
                {
                    Ok(_) => break,
                    Err(ChatFailure::Store(StoreError::VersionConflict)) => continue,
                    Err(other) => panic!("send failed: {other}"),
                }
            }
        }
    };
    tokio::join!(
        send_all(first.clone(), alice, "a"),
        send_all(second.clone(), bob, "b")
    );

    let history = store.history(id, None, 100).await.unwrap();
    assert_eq!(history.len(), 30);
    let mut seqs: Vec<i64> = history.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
    let stored = store.conversation(id).await.unwrap().unwrap();
    assert_eq!(stored.last_seq, 30);
}

#[tokio::test]
async fn idle_and_unknown_conversations_leave_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    let chat = service(&store, Duration::from_millis(300)).await;
    let (conversation, _) = chat.open(alice, bob, None, Utc::now()).await.unwrap();
    chat.send(
        conversation.id,
        alice,
        draft(conversation.id, "m"),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(chat.active_conversations().await, 1);
    eventually_active(&chat, 0).await;
    // A later message starts it again, from the store.
    let sent = chat
        .send(
            conversation.id,
            bob,
            draft(conversation.id, "n"),
            Utc::now(),
        )
        .await
        .unwrap();
    assert_eq!(sent.message.seq, 2);

    let made_up = ConversationId::new();
    let refused = chat
        .send(made_up, alice, draft(made_up, "x"), Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(refused, ChatFailure::Rule(ChatError::NotFound)));
    // An outsider is refused too, and nothing is stored.
    let carol = user(&store, "carol").await;
    let refused = chat
        .send(
            conversation.id,
            carol,
            draft(conversation.id, "y"),
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, ChatFailure::Rule(ChatError::NotFound)));
    assert_eq!(
        store
            .history(conversation.id, None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    eventually_active(&chat, 0).await;
}
