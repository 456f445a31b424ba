//! Account e-mail: templates and the two [`Mailer`](domain::ports::Mailer)s.
//!
//! - [`render`] turns an [`AccountMail`](domain::mail::AccountMail) into a
//!   subject, a plain-text body and an HTML body, from the minijinja templates
//!   in `templates/` (embedded at compile time, HTML autoescaped).
//! - [`FileMailer`]: the embedded default. Writes each mail as a complete
//!   `.eml` file into an outbox directory and logs its link, so a developer
//!   can click it.
//! - [`SmtpMailer`]: production. Delivers through an SMTP server (lettre).
//! - [`UnsubscribeTokens`]: the signed tokens of the links that turn a
//!   category of optional mail off without signing in, and the links
//!   themselves (`UnsubscribeLinks`).
//!
//! Both build the same `multipart/alternative` MIME message; optional mail
//! also carries its unsubscribe link (footer and RFC 8058 headers). Configuration
//! (which mailer, addresses, credentials) belongs to the gateway; this module
//! only takes already-decided values.

mod file;
mod message;
mod smtp;
mod template;
mod unsubscribe;

pub use file::FileMailer;
pub use smtp::{SmtpMailer, SmtpSettings, SmtpTls};
pub use template::{render, render_with, RenderedMail};
pub use unsubscribe::{BadToken, UnsubscribeTokens};
