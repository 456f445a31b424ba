//! The REST API end to end: every scenario starts the real server with
//! `gateway::run` on port 0 and talks HTTP to it, once on SQLite and once on
//! PostgreSQL (`MARKETPLACE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; a fresh database per test).
//!
//! Layout:
//! - `helpers`: the harness (`backend_tests!`, `TestApp`, the manual clock,
//!   reading mails from the outbox).
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
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;

mod account;
mod bad_input;
mod journey;
mod login;
mod ops;
mod password;
mod registration;
mod seller;
mod sessions;
mod verification;
