//! Integration tests of the adapters against real servers: the store suite
//! runs once on SQLite and once on PostgreSQL; the SMTP mailer talks to a
//! real SMTP server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mail_outbox;
mod media;
mod payments;
use testkit as service;
mod smtp;
mod store;
