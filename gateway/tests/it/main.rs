//! The REST API end to end: every scenario starts the real server with
//! `gateway::run` on port 0 and talks HTTP to it, once on SQLite and once on
//! PostgreSQL (`MARKETPLACE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database per test).
//!
//! Layout:
//! - `helpers`: the harness (`backend_tests!`, `TestApp`, the manual clock,
//!   reading mails from the outbox, restarting on the same database, a
//!   `moto_server` for S3 media, gig, image and search helpers).
//! - `journey`: register, verify, sign in, become a seller, be found.
//! - `registration`: field validation and duplicates.
//! - `bad_input`: malformed requests and unknown routes.
//! - `login`: credentials and the failed-login limits.
//! - `sessions`: refresh rotation, reuse detection, logout, expiry.
//! - `password`: forgotten and changed passwords.
//! - `account`: suspension, profile edits, deletion, export.
//! - `seller`: creating and editing seller profiles.
//! - `verification`: resent verification links and the per-account mail limit.
//! - `ops`: probes, the OpenAPI document, request ids, shutdown.
//! - `gigs`: the category taxonomy, who creates and sees gigs, refused
//!   input that changes nothing, editing, pausing, resuming, deleting.
//! - `media`: gig images on the local store and on S3 (`moto_server`,
//!   installed by `scripts/test.sh`; `MARKETPLACE_MOTO_SERVER` overrides).
//! - `search`: text, typos, filters, sorts, category counts, cursors,
//!   refused parameters, suggestions, similar gigs, rebuilding the index.
//! - `socket`: a live-socket client (`/ws`) with bounded waits.
//! - `chat`: chat over the socket and REST, receipts, presence, outsiders.
//! - `live`: the socket under stress: resuming after a cut, retried sends,
//!   slow readers, malformed and flooding clients, hello and heartbeat
//!   rules, search over the socket, attachments.
//! - `orders`: offers, checkout, the order lifecycle and its money over
//!   REST and the socket, the order clock, cancellations, disputes,
//!   idempotency and races, and Stripe against localstripe (installed by
//!   `scripts/test.sh`; `MARKETPLACE_LOCALSTRIPE` overrides).
//! - `order_timers`: the order clock across restarts (each deadline applied
//!   once, also one reached while the server was down), offers that expire
//!   or are answered, an admin's cancellation, extensions and lateness,
//!   paying and listing over the socket, and delivery files.
//! - `admin`: moderation: who may use the admin routes and socket, the
//!   live feed admins share (claims, resuming), what raises queue items,
//!   suspensions, gig removal, dispute resolutions and their money, the
//!   append-only audit log, lists and live statistics.
//! - `mail_outbox`: a verification mail queued while SMTP is down survives
//!   a restart and arrives once (a real `aiosmtpd`).
//! - `email_preferences`: preferences and unsubscribe links against a real
//!   `aiosmtpd`: skipped order mail, the link from a delivered mail, the
//!   one-click post, refused tokens, and a choice made during an outage.
//! - `notifications`: the notification list and its read state, shared
//!   live by every session of the user.
//! - `load_users`: load-test accounts and their long-lived sessions
//!   (`seed --load-users`).
//! - `saved`: favourites and saved searches, the live alert for a newly
//!   published matching gig, and the daily digest (and, ignored, the
//!   publish→alert latency measurement).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;

mod account;
mod admin;
mod bad_input;
mod chat;
mod email_preferences;
mod gigs;
mod journey;
mod live;
mod load_users;
mod login;
mod mail_outbox;
mod media;
mod notifications;
mod ops;
mod order_timers;
mod orders;
mod password;
mod registration;
mod reviews;
mod saved;
mod search;
mod seller;
mod sessions;
mod socket;
mod verification;
