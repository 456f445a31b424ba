//! Chat scenarios of the store suite: conversations found or created once,
//! messages numbered with a sequence check and deduplicated by client id,
//! read pointers, the conversation list, attachments, last-seen times, and
//! the per-user event logs those writes append to.

use std::collections::{BTreeMap, HashSet};

use adapters::sql::SqlStore;
use anyhow::{ensure, Context};
use chrono::{DateTime, TimeDelta, Utc};
use domain::chat::{
    Attachment, ClientMessageId, Conversation, ConversationSummary, Message, NewConversation,
    ReadState, Subject,
};
use domain::ids::{ConversationId, GigId, MessageId, UserId};
use domain::live::{LiveEvent, StoredEvent};
use domain::ports::{Appended, ChatStore, ConversationPage, EventLog, StoreError};

use super::{create, is_conflict, is_not_found, secs, t0, Result};

// ---------------------------------------------------------------- fixtures

fn new_conversation(
    by: UserId,
    with: UserId,
    subject: Option<Subject>,
    now: DateTime<Utc>,
) -> NewConversation {
    NewConversation {
        id: ConversationId::new(),
        started_by: by,
        with,
        subject,
        now,
    }
}

/// Opens the conversation and checks it was created now, with its events.
pub(super) async fn start(
    store: &SqlStore,
    by: UserId,
    with: UserId,
    subject: Option<Subject>,
    now: DateTime<Utc>,
) -> anyhow::Result<Conversation> {
    let (conversation, events) = store
        .open_conversation(&new_conversation(by, with, subject, now))
        .await?;
    ensure!(events.len() == 2, "a new conversation: {events:?}");
    Ok(conversation)
}

fn client_id(raw: &str) -> ClientMessageId {
    ClientMessageId::parse("client_id", raw).unwrap()
}

fn message(
    conversation: ConversationId,
    seq: i64,
    sender: UserId,
    client: &str,
    sent_at: DateTime<Utc>,
) -> Message {
    Message {
        id: MessageId::new(),
        conversation_id: conversation,
        seq,
        sender,
        client_id: client_id(client),
        body: format!("Message {seq}: \"quoted\", caf\u{e9} \u{1f680}\nsecond line"),
        attachments: Vec::new(),
        sent_at,
    }
}

fn attachment(conversation: ConversationId, name: &str, bytes: u64) -> Attachment {
    Attachment {
        key: format!("{}{name}", Attachment::prefix(conversation)),
        name: name.into(),
        content_type: "image/png".into(),
        bytes,
    }
}

/// Stores the next message of the conversation from `sender`.
pub(super) async fn send(
    store: &SqlStore,
    conversation: ConversationId,
    sender: UserId,
    at: DateTime<Utc>,
) -> anyhow::Result<(Message, Vec<StoredEvent>)> {
    let last_seq = store
        .conversation(conversation)
        .await?
        .context("conversation should exist")?
        .last_seq;
    let next = message(
        conversation,
        last_seq + 1,
        sender,
        &format!("c-{}", MessageId::new()),
        at,
    );
    match store.append_message(&next).await? {
        Appended::New { message, events } => Ok((message, events)),
        Appended::Duplicate(m) => anyhow::bail!("a fresh client id was a duplicate of {m:?}"),
    }
}

async fn fetch_conversation(store: &SqlStore, id: ConversationId) -> anyhow::Result<Conversation> {
    store
        .conversation(id)
        .await?
        .context("conversation should exist")
}

fn is_version_conflict<T>(result: &std::result::Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::VersionConflict))
}

/// The ids of two users, lower first.
fn ordered(a: UserId, b: UserId) -> [UserId; 2] {
    if a < b {
        [a, b]
    } else {
        [b, a]
    }
}

fn activity(conversation: &Conversation) -> DateTime<Utc> {
    conversation
        .last_message_at
        .unwrap_or(conversation.created_at)
}

/// The start of a user's conversation list.
fn first_page(limit: u32) -> ConversationPage {
    ConversationPage {
        before: None,
        limit,
    }
}

fn cursors(events: &[StoredEvent]) -> Vec<i64> {
    events.iter().map(|e| e.cursor).collect()
}

/// Checks the events of one write: the same event, in `users` order, each
/// with the next cursor of its user.
fn ensure_events(
    events: &[StoredEvent],
    users: [UserId; 2],
    event: &LiveEvent,
    heads: [i64; 2],
) -> Result {
    ensure!(events.len() == 2, "two events: {events:?}");
    for (i, stored) in events.iter().enumerate() {
        ensure!(stored.user_id == users[i], "event {i} for {}", users[i]);
        ensure!(stored.cursor == heads[i], "event {i} cursor: {stored:?}");
        ensure!(stored.event == *event, "event {i}: {stored:?}");
    }
    Ok(())
}

// ----------------------------------------------------------- conversations

pub(super) async fn open_is_find_or_create(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let pair = ordered(alice.id, bob.id);

    // Nanoseconds are beyond PostgreSQL's precision: both backends keep micros.
    let new = new_conversation(alice.id, bob.id, None, t0() + TimeDelta::nanoseconds(1_999));
    let (conversation, events) = store.open_conversation(&new).await?;
    let expected = Conversation {
        id: new.id,
        participants: pair,
        subject: None,
        started_by: alice.id,
        created_at: t0() + TimeDelta::microseconds(1),
        last_seq: 0,
        last_message_at: None,
    };
    assert_eq!(conversation, expected);
    ensure_events(
        &events,
        pair,
        &LiveEvent::ConversationStarted(expected.clone()),
        [1, 1],
    )?;
    assert_eq!(events[0].created_at, expected.created_at);
    assert_eq!(
        store.conversation(new.id).await?,
        Some(expected.clone()),
        "reads back equal"
    );

    // Opening again, either way round, finds it and appends nothing.
    let again = new_conversation(alice.id, bob.id, None, t0() + secs(5));
    assert_eq!(
        store.open_conversation(&again).await?,
        (expected.clone(), vec![])
    );
    let reversed = new_conversation(bob.id, alice.id, None, t0() + secs(6));
    assert_eq!(
        store.open_conversation(&reversed).await?,
        (expected.clone(), vec![])
    );
    assert_eq!(store.conversation(again.id).await?, None);
    assert_eq!(store.conversation(reversed.id).await?, None);

    // A subject makes another conversation, found again by the same subject.
    let gig = Subject::Gig(GigId::new());
    let about = new_conversation(bob.id, alice.id, Some(gig), t0() + secs(10));
    let (with_subject, events) = store.open_conversation(&about).await?;
    assert_ne!(with_subject.id, expected.id);
    assert_eq!(with_subject.subject, Some(gig));
    assert_eq!(with_subject.started_by, bob.id);
    assert_eq!(with_subject.participants, pair);
    ensure_events(
        &events,
        pair,
        &LiveEvent::ConversationStarted(with_subject.clone()),
        [2, 2],
    )?;
    let same_subject = new_conversation(alice.id, bob.id, Some(gig), t0() + secs(11));
    assert_eq!(
        store.open_conversation(&same_subject).await?,
        (with_subject.clone(), vec![])
    );
    assert_eq!(
        fetch_conversation(&store, with_subject.id).await?,
        with_subject
    );
    let other_gig = Subject::Gig(GigId::new());
    let other = start(&store, alice.id, bob.id, Some(other_gig), t0() + secs(12)).await?;
    ensure!(
        other.id != with_subject.id && other.id != expected.id,
        "a third conversation"
    );

    // Unknown users: nothing is stored, no event is appended.
    for (by, with) in [(alice.id, UserId::new()), (UserId::new(), bob.id)] {
        let result = store
            .open_conversation(&new_conversation(by, with, None, t0()))
            .await;
        ensure!(is_not_found(&result), "unknown user: {result:?}");
    }
    assert_eq!(store.head(alice.id).await?, 3);
    assert_eq!(store.head(bob.id).await?, 3);
    assert_eq!(store.conversation(ConversationId::new()).await?, None);
    Ok(())
}

pub(super) async fn concurrent_opens_make_one_conversation(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let (by, with) = if i % 2 == 0 {
                (alice.id, bob.id)
            } else {
                (bob.id, alice.id)
            };
            let new = new_conversation(by, with, None, t0() + secs(i));
            tokio::spawn(async move { store.open_conversation(&new).await })
        })
        .collect();
    let mut ids = HashSet::new();
    let mut creators = 0;
    for task in tasks {
        let (conversation, events) = task.await??;
        ids.insert(conversation.id);
        if !events.is_empty() {
            creators += 1;
        }
    }
    assert_eq!(ids.len(), 1, "one conversation: {ids:?}");
    assert_eq!(creators, 1, "one open created it");
    assert_eq!(store.head(alice.id).await?, 1);
    assert_eq!(store.head(bob.id).await?, 1);
    let listed = store.conversations_for(alice.id, first_page(10)).await?;
    assert_eq!(listed.len(), 1);
    Ok(())
}

// ---------------------------------------------------------------- messages

pub(super) async fn messages_are_appended_in_sequence(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let carol = create(&store, "carol").await?;
    let pair = ordered(alice.id, bob.id);
    let conversation = start(&store, alice.id, bob.id, None, t0()).await?;

    let mut first = message(
        conversation.id,
        1,
        alice.id,
        "m-1",
        t0() + secs(1) + TimeDelta::nanoseconds(999),
    );
    first.attachments = vec![
        attachment(conversation.id, "a.png", 1),
        attachment(conversation.id, "b.png", u64::MAX),
    ];
    let Appended::New {
        message: m1,
        events,
    } = store.append_message(&first).await?
    else {
        anyhow::bail!("the first message is new");
    };
    let expected = Message {
        sent_at: t0() + secs(1),
        ..first.clone()
    };
    assert_eq!(m1, expected);
    ensure_events(&events, pair, &LiveEvent::ChatMessage(m1.clone()), [2, 2])?;
    assert_eq!(events[0].created_at, m1.sent_at);
    let stored = fetch_conversation(&store, conversation.id).await?;
    assert_eq!(
        stored,
        Conversation {
            last_seq: 1,
            last_message_at: Some(m1.sent_at),
            ..conversation.clone()
        }
    );

    // Out of sequence: behind, ahead, or zero.
    for seq in [1, 3, 0] {
        let wrong = message(conversation.id, seq, bob.id, &format!("w-{seq}"), t0());
        let result = store.append_message(&wrong).await;
        ensure!(is_version_conflict(&result), "seq {seq}: {result:?}");
    }
    let lost = message(ConversationId::new(), 1, alice.id, "m-x", t0());
    let result = store.append_message(&lost).await;
    ensure!(is_not_found(&result), "unknown conversation: {result:?}");
    let outsider = message(conversation.id, 2, carol.id, "m-c", t0());
    let result = store.append_message(&outsider).await;
    ensure!(is_not_found(&result), "not a participant: {result:?}");

    let second = message(conversation.id, 2, bob.id, "m-2", t0() + secs(2));
    let Appended::New { message: m2, .. } = store.append_message(&second).await? else {
        anyhow::bail!("the second message is new");
    };
    assert_eq!(m2, second);

    assert_eq!(
        store.history(conversation.id, None, 10).await?,
        [m2.clone(), m1.clone()]
    );
    assert_eq!(
        store.history(conversation.id, None, 1).await?,
        vec![m2.clone()]
    );
    assert_eq!(
        store.history(conversation.id, Some(2), 10).await?,
        vec![m1.clone()]
    );
    assert_eq!(store.history(conversation.id, Some(1), 10).await?, []);
    assert_eq!(store.history(conversation.id, None, 0).await?, []);
    assert_eq!(store.history(ConversationId::new(), None, 10).await?, []);
    assert_eq!(
        store.history(conversation.id, None, 10).await?[1].attachments[1].bytes,
        u64::MAX
    );

    // Each sender has read their own message; refused writes appended nothing.
    let reads = store.read_states(conversation.id).await?;
    let by_user: BTreeMap<UserId, i64> =
        reads.iter().map(|r| (r.user_id, r.last_read_seq)).collect();
    assert_eq!(by_user[&alice.id], 1);
    assert_eq!(by_user[&bob.id], 2);
    assert_eq!(
        reads.iter().map(|r| r.user_id).collect::<Vec<_>>(),
        pair,
        "in participant order"
    );
    assert_eq!(store.read_states(ConversationId::new()).await?, []);
    assert_eq!(store.head(alice.id).await?, 3);
    assert_eq!(store.head(bob.id).await?, 3);
    assert_eq!(store.head(carol.id).await?, 0);
    Ok(())
}

pub(super) async fn duplicate_client_id_writes_nothing(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let conversation = start(&store, alice.id, bob.id, None, t0()).await?;
    let first = message(conversation.id, 1, alice.id, "same", t0() + secs(1));
    let Appended::New { message: m1, .. } = store.append_message(&first).await? else {
        anyhow::bail!("the first message is new");
    };

    // The same send again; a retry with a new id and the next seq; a retry
    // that still carries the old seq: each is the stored message.
    let mut retried = message(conversation.id, 2, alice.id, "same", t0() + secs(9));
    retried.body = "A different text".into();
    let mut stale = retried.clone();
    stale.seq = 1;
    for attempt in [&first, &retried, &stale] {
        assert_eq!(
            store.append_message(attempt).await?,
            Appended::Duplicate(m1.clone())
        );
    }
    assert_eq!(
        store.history(conversation.id, None, 10).await?,
        vec![m1.clone()]
    );
    assert_eq!(
        fetch_conversation(&store, conversation.id).await?.last_seq,
        1
    );
    assert_eq!(store.head(alice.id).await?, 2);
    assert_eq!(store.head(bob.id).await?, 2);

    // Another sender may use the same client id.
    let from_bob = message(conversation.id, 2, bob.id, "same", t0() + secs(3));
    let Appended::New { message: m2, .. } = store.append_message(&from_bob).await? else {
        anyhow::bail!("another sender's message is new");
    };
    assert_eq!(store.history(conversation.id, None, 10).await?, [m2, m1]);
    assert_eq!(store.head(alice.id).await?, 3);
    Ok(())
}

pub(super) async fn concurrent_appends_have_one_winner(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let conversation = start(&store, alice.id, bob.id, None, t0()).await?;
    let mut winners = Vec::new();
    for seq in 1..=5 {
        let tasks: Vec<_> = [alice.id, bob.id]
            .into_iter()
            .map(|sender| {
                let store = store.clone();
                let next = message(
                    conversation.id,
                    seq,
                    sender,
                    &format!("m-{seq}"),
                    t0() + secs(seq),
                );
                tokio::spawn(async move { store.append_message(&next).await })
            })
            .collect();
        let (mut won, mut lost) = (Vec::new(), 0);
        for task in tasks {
            match task.await? {
                Ok(Appended::New { message, .. }) => won.push(message),
                Err(StoreError::VersionConflict) => lost += 1,
                other => anyhow::bail!("a racing append ended otherwise: {other:?}"),
            }
        }
        assert_eq!((won.len(), lost), (1, 1), "seq {seq}");
        winners.extend(won);
    }
    winners.reverse();
    assert_eq!(store.history(conversation.id, None, 10).await?, winners);
    assert_eq!(store.head(alice.id).await?, 6);
    assert_eq!(store.head(bob.id).await?, 6);
    Ok(())
}

// ------------------------------------------------------------- event logs

pub(super) async fn event_cursors_have_no_gaps(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let carol = create(&store, "carol").await?;
    let mut written: Vec<StoredEvent> = Vec::new();
    let mut keep = |events: Vec<StoredEvent>| written.extend(events);

    let gig = Subject::Gig(GigId::new());
    let (ab, events) = store
        .open_conversation(&new_conversation(bob.id, alice.id, Some(gig), t0()))
        .await?;
    keep(events);
    let (ac, events) = store
        .open_conversation(&new_conversation(alice.id, carol.id, None, t0() + secs(1)))
        .await?;
    keep(events);
    for i in 0..3 {
        let (_, events) = send(&store, ab.id, alice.id, t0() + secs(10 + i)).await?;
        keep(events);
        let (_, events) = send(&store, ac.id, carol.id, t0() + secs(20 + i)).await?;
        keep(events);
    }
    let (_, events) = store
        .mark_read(ac.id, alice.id, 2, t0() + secs(30))
        .await?
        .context("the pointer moves")?;
    keep(events);
    // Straight to the log, in the caller's order of users.
    let extra = LiveEvent::ChatRead {
        conversation_id: ab.id,
        user_id: bob.id,
        last_read_seq: 3,
    };
    let appended = store
        .append(&[carol.id, alice.id], &extra, t0() + secs(40))
        .await?;
    assert_eq!(
        appended.iter().map(|e| e.user_id).collect::<Vec<_>>(),
        [carol.id, alice.id]
    );
    keep(appended);

    for (user, expected_head) in [(alice.id, 10), (bob.id, 4), (carol.id, 6)] {
        let mine: Vec<StoredEvent> = written
            .iter()
            .filter(|e| e.user_id == user)
            .cloned()
            .collect();
        let log = store.events_after(user, 0, 1000).await?;
        assert_eq!(log, mine, "the log holds what the writes returned");
        assert_eq!(
            cursors(&log),
            (1..=expected_head).collect::<Vec<_>>(),
            "no gaps"
        );
        assert_eq!(store.head(user).await?, expected_head);

        // Paging through it, three at a time.
        let mut paged = Vec::new();
        let mut after = 0;
        loop {
            let page = store.events_after(user, after, 3).await?;
            ensure!(page.len() <= 3, "page too long");
            let Some(last) = page.last() else { break };
            after = last.cursor;
            paged.extend(page);
        }
        assert_eq!(paged, log);
        assert_eq!(store.events_after(user, expected_head, 10).await?, []);
        assert_eq!(store.events_after(user, 0, 0).await?, []);
    }
    let alices = store.events_after(alice.id, 0, 1).await?;
    assert_eq!(
        alices[0].event,
        LiveEvent::ConversationStarted(ab.clone()),
        "payloads round-trip"
    );

    // An unknown user fails the whole append.
    let result = store
        .append(&[alice.id, UserId::new()], &extra, t0() + secs(50))
        .await;
    ensure!(is_not_found(&result), "unknown user: {result:?}");
    assert_eq!(store.head(alice.id).await?, 10);
    assert_eq!(store.head(UserId::new()).await?, 0);
    assert_eq!(store.events_after(UserId::new(), 0, 10).await?, []);
    assert_eq!(store.append(&[], &extra, t0()).await?, []);
    Ok(())
}

pub(super) async fn concurrent_log_appends_have_no_gaps(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let tasks: Vec<_> = (0..8_i64)
        .map(|task| {
            let store = store.clone();
            // Half the tasks name the users the other way round.
            let users = if task % 2 == 0 {
                [alice.id, bob.id]
            } else {
                [bob.id, alice.id]
            };
            tokio::spawn(async move {
                let mut stored = Vec::new();
                for i in 0..10 {
                    let event = LiveEvent::ChatRead {
                        conversation_id: ConversationId::new(),
                        user_id: users[0],
                        last_read_seq: task * 100 + i,
                    };
                    stored.extend(store.append(&users, &event, t0() + secs(i)).await?);
                }
                Ok::<_, StoreError>(stored)
            })
        })
        .collect();
    let mut returned: BTreeMap<(UserId, i64), StoredEvent> = BTreeMap::new();
    for task in tasks {
        let stored = task.await??;
        for user in [alice.id, bob.id] {
            let mine = cursors(
                &stored
                    .iter()
                    .filter(|e| e.user_id == user)
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            ensure!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "one task's cursors increase: {mine:?}"
            );
        }
        for event in stored {
            let key = (event.user_id, event.cursor);
            ensure!(
                returned.insert(key, event).is_none(),
                "cursor {key:?} given twice"
            );
        }
    }
    for user in [alice.id, bob.id] {
        let log = store.events_after(user, 0, 1000).await?;
        assert_eq!(cursors(&log), (1..=80).collect::<Vec<_>>());
        assert_eq!(store.head(user).await?, 80);
        for stored in &log {
            assert_eq!(returned.get(&(user, stored.cursor)), Some(stored));
        }
    }
    Ok(())
}

pub(super) async fn prune_keeps_heads(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let event = LiveEvent::ChatRead {
        conversation_id: ConversationId::new(),
        user_id: alice.id,
        last_read_seq: 1,
    };
    store.append(&[alice.id, bob.id], &event, t0()).await?;
    store.append(&[alice.id], &event, t0() + secs(10)).await?;
    store.append(&[alice.id], &event, t0() + secs(20)).await?;

    assert_eq!(store.prune(t0()).await?, 0, "strictly before");
    assert_eq!(store.prune(t0() + secs(10)).await?, 2);
    assert_eq!(cursors(&store.events_after(alice.id, 0, 10).await?), [2, 3]);
    assert_eq!(store.events_after(bob.id, 0, 10).await?, []);
    assert_eq!(store.head(alice.id).await?, 3);
    assert_eq!(store.head(bob.id).await?, 1);
    assert_eq!(store.prune(t0() + secs(10)).await?, 0);

    // Cursors continue after the heads, never repeat.
    let next = store
        .append(&[bob.id, alice.id], &event, t0() + secs(30))
        .await?;
    assert_eq!(cursors(&next), [2, 4]);
    assert_eq!(cursors(&store.events_after(bob.id, 0, 10).await?), [2]);
    assert_eq!(store.prune(t0() + secs(60)).await?, 4);
    assert_eq!(store.head(alice.id).await?, 4);
    Ok(())
}

// ----------------------------------------------------------- read pointers

pub(super) async fn mark_read_moves_forward_only(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let carol = create(&store, "carol").await?;
    let pair = ordered(alice.id, bob.id);
    let conversation = start(&store, alice.id, bob.id, None, t0()).await?;
    for i in 1..=3 {
        send(&store, conversation.id, alice.id, t0() + secs(i)).await?;
    }
    let heads = [store.head(pair[0]).await?, store.head(pair[1]).await?];
    assert_eq!(heads, [4, 4]);

    let (state, events) = store
        .mark_read(conversation.id, bob.id, 2, t0() + secs(10))
        .await?
        .context("bob's pointer moves to 2")?;
    assert_eq!(
        state,
        ReadState {
            user_id: bob.id,
            last_read_seq: 2
        }
    );
    let read = |seq| LiveEvent::ChatRead {
        conversation_id: conversation.id,
        user_id: bob.id,
        last_read_seq: seq,
    };
    ensure_events(&events, pair, &read(2), [5, 5])?;
    assert_eq!(events[0].created_at, t0() + secs(10));

    // Never backwards, never to where it is.
    for seq in [1, 2, 0, -5] {
        assert_eq!(
            store.mark_read(conversation.id, bob.id, seq, t0()).await?,
            None,
            "seq {seq}"
        );
    }
    // Never past the newest message.
    let (state, events) = store
        .mark_read(conversation.id, bob.id, 99, t0() + secs(11))
        .await?
        .context("bob's pointer moves to the end")?;
    assert_eq!(state.last_read_seq, 3);
    ensure_events(&events, pair, &read(3), [6, 6])?;
    assert_eq!(
        store.mark_read(conversation.id, bob.id, 4, t0()).await?,
        None
    );
    // The sender has read their own messages already.
    assert_eq!(
        store.mark_read(conversation.id, alice.id, 3, t0()).await?,
        None
    );

    let reads = store.read_states(conversation.id).await?;
    let expected: Vec<ReadState> = pair
        .iter()
        .map(|&user_id| ReadState {
            user_id,
            last_read_seq: 3,
        })
        .collect();
    assert_eq!(reads, expected);

    let result = store.mark_read(conversation.id, carol.id, 1, t0()).await;
    ensure!(is_not_found(&result), "not a participant: {result:?}");
    let result = store
        .mark_read(ConversationId::new(), bob.id, 1, t0())
        .await;
    ensure!(is_not_found(&result), "unknown conversation: {result:?}");
    assert_eq!(store.head(alice.id).await?, 6);
    assert_eq!(store.head(bob.id).await?, 6);
    assert_eq!(store.head(carol.id).await?, 0);
    Ok(())
}

pub(super) async fn unread_counts(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let carol = create(&store, "carol").await?;
    let ab = start(&store, alice.id, bob.id, None, t0()).await?;
    let ac = start(&store, carol.id, alice.id, None, t0()).await?;
    assert_eq!(store.total_unread(alice.id).await?, 0);
    for i in 1..=3 {
        send(&store, ab.id, bob.id, t0() + secs(i)).await?;
    }
    for i in 1..=2 {
        send(&store, ac.id, carol.id, t0() + secs(10 + i)).await?;
    }
    assert_eq!(store.total_unread(alice.id).await?, 5);
    assert_eq!(store.total_unread(bob.id).await?, 0);
    assert_eq!(store.total_unread(carol.id).await?, 0);

    store
        .mark_read(ab.id, alice.id, 2, t0() + secs(20))
        .await?
        .context("moves")?;
    assert_eq!(store.total_unread(alice.id).await?, 3);
    let unread = |summaries: &[ConversationSummary], id| {
        summaries
            .iter()
            .find(|s| s.conversation.id == id)
            .map(ConversationSummary::unread)
    };
    let page = first_page(10);
    let listed = store.conversations_for(alice.id, page).await?;
    assert_eq!(unread(&listed, ab.id), Some(1));
    assert_eq!(unread(&listed, ac.id), Some(2));

    // Answering reads everything before it.
    send(&store, ab.id, alice.id, t0() + secs(30)).await?;
    assert_eq!(store.total_unread(alice.id).await?, 2);
    assert_eq!(store.total_unread(bob.id).await?, 1);
    let listed = store.conversations_for(alice.id, page).await?;
    assert_eq!(unread(&listed, ab.id), Some(0));
    assert_eq!(store.total_unread(UserId::new()).await?, 0);
    Ok(())
}

// ------------------------------------------------------- conversation list

pub(super) async fn conversations_for_orders_and_pages(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let carol = create(&store, "carol").await?;
    let dave = create(&store, "dave").await?;
    let erin = create(&store, "erin").await?;
    let frank = create(&store, "frank").await?;
    let ab = start(&store, alice.id, bob.id, None, t0()).await?.id;
    let ac = start(&store, carol.id, alice.id, None, t0() + secs(1))
        .await?
        .id;
    let ad = start(&store, alice.id, dave.id, None, t0() + secs(2))
        .await?
        .id;
    // Two with the same activity time: the higher id comes first.
    let ae = start(&store, alice.id, erin.id, None, t0() + secs(3))
        .await?
        .id;
    let af = start(&store, frank.id, alice.id, None, t0() + secs(3))
        .await?
        .id;
    let (to_bob, _) = send(&store, ab, alice.id, t0() + secs(10)).await?;
    let (from_dave, _) = send(&store, ad, dave.id, t0() + secs(5)).await?;
    store
        .mark_read(ab, bob.id, 1, t0() + secs(11))
        .await?
        .context("bob reads")?;

    let (tie_high, tie_low) = if ae > af { (ae, af) } else { (af, ae) };
    let expected_order = [ab, ad, tie_high, tie_low, ac];
    let all = store.conversations_for(alice.id, first_page(100)).await?;
    assert_eq!(
        all.iter().map(|s| s.conversation.id).collect::<Vec<_>>(),
        expected_order
    );
    for summary in &all {
        assert_eq!(
            summary.conversation,
            fetch_conversation(&store, summary.conversation.id).await?
        );
    }
    // The newest message and both read pointers.
    assert_eq!(all[0].last_message, Some(to_bob));
    assert_eq!((all[0].last_read_seq, all[0].other_read_seq), (1, 1));
    assert_eq!(all[1].last_message, Some(from_dave));
    assert_eq!((all[1].last_read_seq, all[1].other_read_seq), (0, 1));
    assert_eq!(all[4].last_message, None);
    assert_eq!((all[4].last_read_seq, all[4].other_read_seq), (0, 0));

    // Two at a time, each page before the last line of the previous one.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .conversations_for(alice.id, ConversationPage { before, limit: 2 })
            .await?;
        ensure!(page.len() <= 2, "page too long");
        let Some(last) = page.last() else { break };
        before = Some((activity(&last.conversation), last.conversation.id));
        paged.extend(page);
    }
    assert_eq!(paged, all);

    // Other viewers see their own side.
    let bobs = store.conversations_for(bob.id, first_page(10)).await?;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].conversation.id, ab);
    assert_eq!((bobs[0].last_read_seq, bobs[0].other_read_seq), (1, 1));
    assert_eq!(store.conversations_for(alice.id, first_page(0)).await?, []);
    assert_eq!(
        store
            .conversations_for(UserId::new(), first_page(10))
            .await?,
        []
    );
    Ok(())
}

pub(super) async fn contacts_are_distinct(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let carol = create(&store, "carol").await?;
    let dave = create(&store, "dave").await?;
    start(&store, alice.id, bob.id, None, t0()).await?;
    let gig = Subject::Gig(GigId::new());
    start(&store, bob.id, alice.id, Some(gig), t0()).await?;
    start(&store, carol.id, alice.id, None, t0()).await?;

    let mut contacts = store.contacts(alice.id).await?;
    contacts.sort();
    let mut expected = vec![bob.id, carol.id];
    expected.sort();
    assert_eq!(contacts, expected);
    assert_eq!(store.contacts(bob.id).await?, [alice.id]);
    assert_eq!(store.contacts(dave.id).await?, []);
    Ok(())
}

// ---------------------------------------------------- attachments, presence

pub(super) async fn attachments_are_filtered(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let carol = create(&store, "carol").await?;
    let ab = start(&store, alice.id, bob.id, None, t0()).await?.id;
    let ac = start(&store, alice.id, carol.id, None, t0()).await?.id;
    let a1 = attachment(ab, "one.png", 1_234);
    let a2 = attachment(ab, "two \u{e9}.pdf", i64::MAX as u64);
    let b1 = attachment(ab, "bobs.png", 0);
    let c1 = attachment(ac, "three.png", 7);
    store.add_attachment(ab, alice.id, &a1, t0()).await?;
    store.add_attachment(ab, alice.id, &a2, t0()).await?;
    store.add_attachment(ab, bob.id, &b1, t0()).await?;
    store.add_attachment(ac, alice.id, &c1, t0()).await?;

    let keys = |list: &[&Attachment]| list.iter().map(|a| a.key.clone()).collect::<Vec<_>>();
    let missing = attachment(ab, "missing.png", 1);
    assert_eq!(
        store
            .attachments(ab, alice.id, &keys(&[&a2, &b1, &c1, &missing, &a1]))
            .await?,
        [a2.clone(), a1.clone()],
        "the uploader's, in the order asked"
    );
    assert_eq!(
        store.attachments(ab, bob.id, &keys(&[&a1, &b1])).await?,
        vec![b1.clone()]
    );
    assert_eq!(
        store.attachments(ac, alice.id, &keys(&[&c1, &a1])).await?,
        vec![c1.clone()]
    );
    assert_eq!(store.attachments(ab, alice.id, &[]).await?, []);

    let result = store.add_attachment(ab, alice.id, &a1, t0()).await;
    ensure!(is_conflict(&result, "attachment"), "same key: {result:?}");
    let result = store
        .add_attachment(ab, carol.id, &attachment(ab, "x.png", 1), t0())
        .await;
    ensure!(is_not_found(&result), "not a participant: {result:?}");
    let result = store
        .add_attachment(ConversationId::new(), alice.id, &missing, t0())
        .await;
    ensure!(is_not_found(&result), "unknown conversation: {result:?}");
    let result = store
        .add_attachment(ab, alice.id, &attachment(ab, "huge.bin", u64::MAX), t0())
        .await;
    ensure!(
        matches!(result, Err(StoreError::Backend(_))),
        "too large for the column: {result:?}"
    );
    Ok(())
}

pub(super) async fn last_seen_round_trip(store: SqlStore) -> Result {
    let alice = create(&store, "alice").await?;
    let bob = create(&store, "bob").await?;
    let carol = create(&store, "carol").await?;
    assert_eq!(store.last_seen(&[alice.id, bob.id]).await?, []);

    store
        .set_last_seen(alice.id, t0() + TimeDelta::nanoseconds(1_999))
        .await?;
    store.set_last_seen(carol.id, t0() + secs(1)).await?;
    assert_eq!(
        store.last_seen(&[carol.id, bob.id, alice.id]).await?,
        [
            (carol.id, t0() + secs(1)),
            (alice.id, t0() + TimeDelta::microseconds(1))
        ],
        "in the order asked, the never seen left out"
    );
    store.set_last_seen(alice.id, t0() + secs(60)).await?;
    assert_eq!(
        store.last_seen(&[alice.id, alice.id]).await?,
        [(alice.id, t0() + secs(60))],
        "replaced, and each user once"
    );
    assert_eq!(store.last_seen(&[]).await?, []);
    let result = store.set_last_seen(UserId::new(), t0()).await;
    ensure!(is_not_found(&result), "unknown user: {result:?}");
    Ok(())
}
