//! Account e-mail: templates and the two [`Mailer`](domain::ports::Mailer)s.
//!
//! - [`render`] turns an [`AccountMail`](domain::mail::AccountMail) into a
//!   subject, a plain-text body and an HTML body, from the minijinja templates
//!   in `templates/` (embedded at compile time, HTML autoescaped).
//! - [`FileMailer`]: the embedded default. Writes each mail as a complete
//!   `.eml` file into an outbox directory and logs its link, so a developer
//!   can click it.
//! - [`SmtpMailer`]: production. Delivers through an SMTP server (lettre).
//!
//! Both build the same `multipart/alternative` MIME message. Configuration
//! (which mailer, addresses, credentials) belongs to the gateway; this module
//! only takes already-decided values.

mod file;
mod message;
mod smtp;
mod template;

pub use file::FileMailer;
pub use smtp::{SmtpMailer, SmtpSettings, SmtpTls};
pub use template::{render, RenderedMail};
