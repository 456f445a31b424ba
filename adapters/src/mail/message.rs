//! The MIME message both mailers send.

use domain::account::Email;
use domain::mail::AccountMail;
use domain::ports::MailError;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
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
///
/// With an `unsubscribe` link (optional mail), both bodies end with it and
/// the message carries `List-Unsubscribe: <link>` and
/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), so mail
/// clients can offer a one-click unsubscribe that POSTs to the link.
pub(super) fn build(
    from: &Mailbox,
    to: &Email,
    mail: &AccountMail,
    id: uuid::Uuid,
    unsubscribe: Option<&str>,
) -> Result<Message, MailError> {
    let rendered = template::render_with(mail, unsubscribe)?;
    let to_address = to
        .as_str()
        .parse::<Address>()
        .map_err(|e| MailError(format!("invalid recipient address: {e}")))?;
    // Message-IDs are named after the sending domain, not whatever this
    // host happens to be called.
    let message_id = format!("<{id}@{}>", from.email.domain());
    let mut builder = Message::builder()
        .from(from.clone())
        .to(Mailbox::new(None, to_address))
        .subject(rendered.subject)
        .date_now()
        .message_id(Some(message_id));
    if let Some(link) = unsubscribe {
        // Checked as a web link by the template; a header must also be
        // plain ASCII without spaces or angle brackets to stay one value.
        if !link
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
        {
            return Err(MailError("the unsubscribe link must be plain ASCII".into()));
        }
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{link}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    builder
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
