//! The outside world, behind the ports that `domain` defines.
//!
//! Layout:
//! - [`sql`]: the relational store, one implementation of `AccountStore`,
//!   `SessionStore`, `GigStore`, `ChatStore`, `EventLog`, `OrderStore` and
//!   `MailOutbox` over SQLite (embedded default) and PostgreSQL.
//! - [`dynamo`]: `SessionStore` in a DynamoDB table, for sessions kept out of
//!   the relational database.
//! - [`aws`]: the client setup the AWS adapters share (region, endpoint,
//!   credentials).
//! - [`mail`]: account e-mail templates and the mailers that deliver them
//!   (`.eml` files in an outbox directory, or SMTP).
//! - [`media`]: gig images: checking uploads (type from the bytes, size and
//!   pixel limits, a full decode) and the stores (a local directory, or S3).
//! - [`password`]: argon2id hashing, off the async runtime.
//! - [`payments`]: the payment providers: an embedded development one
//!   (Stripe's test cards, events delivered at once) and Stripe (events by
//!   signed webhook).
//! - [`ratelimit`]: the in-process failed-login limiter.
//! - [`token`]: opaque secret tokens and their stored hashes.
//! - [`clock`]: the system clock.

pub mod aws;
pub mod clock;
pub mod dynamo;
pub mod mail;
pub mod media;
pub mod password;
pub mod payments;
pub mod ratelimit;
pub mod sql;
pub mod token;
