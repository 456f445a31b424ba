//! The marketplace's model and rules, with no I/O.
//!
//! Everything here is plain data and pure functions: values are parsed once
//! into types that cannot hold an invalid state, and the traits in [`ports`]
//! describe what the outside world must provide. Adapters implement the ports;
//! the gateway converts wire types into these types at the edge.
//!
//! Layout:
//! - [`ids`]: typed identifiers.
//! - [`validation`]: field-level validation errors shared by every parser.
//! - [`account`]: users, roles, e-mail addresses, usernames, passwords, profiles.
//! - [`seller`]: the seller profile a buyer creates to start selling.
//! - [`money`]: integer amounts in a currency.
//! - [`gig`]: gigs, packages, the category taxonomy and the rule for changing a gig.
//! - [`auth`]: sessions, one-time tokens and their lifetimes.
//! - [`chat`]: conversations, messages and read pointers.
//! - [`live`]: live events for a user's sessions, durable or ephemeral.
//! - [`payment`]: payment intents, refunds and provider events.
//! - [`offer`]: custom offers a seller sends in a conversation.
//! - [`order`]: orders and the rule for every change to one.
//! - [`ledger`]: fees, and the double-entry record of every movement of money.
//! - [`review`]: reviews both ways after an order, ratings and seller levels.
//! - [`saved`]: favourites, saved searches and their limits, the digest schedule.
//! - [`moderation`]: the moderation queue, reports, claims and the audit log.
//! - [`flag`]: the automatic checks on chat messages.
//! - [`mail`]: the account e-mails the marketplace sends.
//! - [`error`]: the closed set of error codes clients see.
//! - [`ports`]: traits for stores, mail, rate limiting and time.

pub mod account;
pub mod auth;
pub mod chat;
pub mod error;
pub mod flag;
pub mod gig;
pub mod ids;
pub mod ledger;
pub mod live;
pub mod mail;
pub mod moderation;
pub mod money;
pub mod offer;
pub mod order;
pub mod payment;
pub mod ports;
pub mod review;
pub mod saved;
pub mod seller;
pub mod validation;
