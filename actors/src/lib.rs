//! The marketplace's actors. Each is a thin shell: it loads state, applies a
//! pure rule from `domain`, persists with a version check, and tells whoever
//! must know. The database stays the source of truth; an actor's state is a
//! cache that can be dropped at any time.
//!
//! Layout:
//! - [`gig_shard`]: serialises every write to the gigs of one shard.
//! - [`indexer`]: drains the search outbox into the search tier; rebuilds the
//!   index from the database on demand.
//! - [`gigs`]: starting the shards and the indexer, and the handle the
//!   gateway calls.
//! - [`live`]: publishing live events (event log, then bus).
//! - [`entity`]: shards that start one actor per active entity on demand
//!   and drain it when quiet.
//! - [`conversation`]: one actor per active conversation.
//! - [`order`]: one actor per active order: the state machine, its
//!   versioned writes and its live updates.
//! - [`orders`]: offers, checkout, payments, earnings, and the order clock
//!   and refunder.
//! - [`moderation`]: the admins' feed: raising moderation items and
//!   publishing queue changes to admin sockets.
//! - [`notices`]: what each side is told when an order or offer changes.
//! - [`mail`]: e-mail through the durable outbox: the queue handle and the
//!   worker that sends, retries with backoff and gives up.
//! - [`chat`]: starting the conversation shards, and the chat handle the
//!   gateway calls.
//! - [`saved`]: saved-search alerts for newly published gigs (fed by the
//!   indexer) and the daily digest e-mail.

pub mod chat;
pub mod conversation;
pub mod entity;
pub mod gig_shard;
pub mod gigs;
pub mod indexer;
pub mod live;
pub mod mail;
pub mod moderation;
pub mod notices;
pub mod order;
pub mod orders;
pub mod reviews;
pub mod saved;
