//! The MIME message both mailers send.

use domain::account::Email;
use domain::mail::AccountMail;
use domain::ports::MailError;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};

use super::template;

/// Parses a sender such as `Marketplace <no-reply@marketplace.example>`.
pub(super) fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse::<Mailbox>()
        .map_err(|e| MailError(format!("invalid sender address {from:?}: {e}")))
}

/// Renders `mail` into a `multipart/alternative` message (text, then HTML)
/// with From, To, Subject, Date and Message-ID. The Message-ID is
/// `<id@sending domain>`: a mail sent again under the same `id` (an outbox
/// retry after a crash) can be recognised as the same message.
pub(super) fn build(
    from: &Mailbox,
    to: &Email,
    mail: &AccountMail,
    id: uuid::Uuid,
) -> Result<Message, MailError> {
    let rendered = template::render(mail)?;
    let to_address = to
        .as_str()
        .parse::<Address>()
        .map_err(|e| MailError(format!("invalid recipient address: {e}")))?;
    // Message-IDs are named after the sending domain, not whatever this
    // host happens to be called.
    let message_id = format!("<{id}@{}>", from.email.domain());
    Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to_address))
        .subject(rendered.subject)
        .date_now()
        .message_id(Some(message_id))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(rendered.text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(rendered.html),
                ),
        )
        .map_err(|e| MailError(format!("building the message failed: {e}")))
}
