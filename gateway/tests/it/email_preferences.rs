//! E-mail preferences and unsubscribe links end to end, with mail going to
//! a real SMTP server (`aiosmtpd`) and read back from what it received:
//!
//! - a user who turned order mail off gets none (the outbox row is settled
//!   as `skipped`) while a password reset still arrives; optional mail
//!   carries an unsubscribe link in both bodies and the RFC 8058 headers,
//!   essential mail neither;
//! - the link taken from a delivered mail works without signing in: the
//!   page changes nothing, its button turns the category off, the next mail
//!   of that category is skipped and another category still arrives; it
//!   can be undone, and a mail client's one-click post works too; forged,
//!   truncated or missing tokens get a 400 page and change nothing;
//! - the choice is read when a mail is sent, not when it was queued: mail
//!   queued while the SMTP server was down follows a choice made before it
//!   goes out, and what does go out arrives once.

use chrono::TimeDelta;
use domain::account::{Email, Password, Role, Username};
use domain::ids::{OrderId, UserId};
use domain::mail::MailCategory;
use domain::ports::{MailStatus, QueuedMail};
use gateway::config::{MailTransport, Settings, SmtpTlsMode};
use reqwest::Method;
use serde_json::{json, Value};
use testkit::Service;

use crate::helpers::{eventually, gig_body, run_scenario_changed, Backend, TestApp, PASSWORD};

mod sqlite {
    #[tokio::test]
    async fn optional_mail_follows_preferences_and_unsubscribe_links() {
        super::preferences_and_links(crate::helpers::Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn a_choice_made_during_an_smtp_outage_applies_to_queued_mail() {
        super::choice_during_outage(crate::helpers::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test]
    async fn optional_mail_follows_preferences_and_unsubscribe_links() {
        super::preferences_and_links(crate::helpers::Backend::Postgres).await;
    }

    #[tokio::test]
    async fn a_choice_made_during_an_smtp_outage_applies_to_queued_mail() {
        super::choice_during_outage(crate::helpers::Backend::Postgres).await;
    }
}

const CARD_OK: &str = "4242424242424242";

/// Mail goes to the SMTP server on `port`; the outbox is read every second.
fn smtp_on(settings: &mut Settings, port: u16) {
    settings.mail.transport = MailTransport::Smtp;
    settings.mail.smtp_host = "127.0.0.1".into();
    settings.mail.smtp_port = port;
    settings.mail.smtp_tls = SmtpTlsMode::None;
    settings.mail.smtp_timeout_secs = 5;
    settings.mail.outbox_poll_secs = 1;
}

// ------------------------------------------------------------------ parties

struct Party {
    id: UserId,
    email: String,
    token: String,
}

/// A seller with a verified address (made as the operator makes accounts,
/// since the verification mail goes to the SMTP server) and one gig.
async fn seller_with_gig(app: &TestApp, name: &str) -> (Party, String) {
    let email = format!("{name}@example.com");
    let user = app
        .state
        .create_account(
            Email::parse(&email).unwrap(),
            Username::parse(name).unwrap(),
            &Password::parse("password", PASSWORD).unwrap(),
            Role::User,
            true,
        )
        .await
        .unwrap();
    let token = app.login_ok(name, PASSWORD).await.access;
    app.become_seller(&token).await.expect(201);
    let gig = app
        .create_gig_ok(
            &token,
            &gig_body(
                "I will design a clean logo for your brand",
                "programming-tech",
                "web-development",
            ),
        )
        .await;
    let party = Party {
        id: user.id,
        email,
        token,
    };
    (party, gig["id"].as_str().unwrap().to_string())
}

/// A registered buyer (the verification mail goes out), signed in.
async fn buyer(app: &TestApp, name: &str) -> Party {
    let (user, tokens) = app.signed_up(name).await;
    Party {
        id: user.user_id(),
        email: user.email,
        token: tokens.access,
    }
}

/// Buys the gig with a card that pays at once; the order's id.
async fn paid_order(app: &TestApp, buyer: &Party, gig_id: &str) -> String {
    let placed = app
        .send(
            app.request(Method::POST, "/api/v1/checkout")
                .bearer_auth(&buyer.token)
                .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                .json(&json!({ "gig_id": gig_id, "package": "basic", "payment_method": CARD_OK })),
        )
        .await
        .expect(201);
    assert_eq!(
        placed["order"]["status"], "awaiting_requirements",
        "{placed}"
    );
    placed["order"]["id"].as_str().unwrap().to_string()
}

// -------------------------------------------------------------- the outbox

/// The outbox key of the notice of the order's latest change (`kind`) to
/// `user` (see `actors::orders`).
async fn notice_key(app: &TestApp, order_id: &str, kind: &str, user: UserId) -> String {
    let id = OrderId::from_uuid(order_id.parse().unwrap());
    let order = app.state.orders.store().order(id).await.unwrap().unwrap();
    format!("notice:order:{order_id}:{}:{kind}:{user}", order.version)
}

/// Polls the outbox (bounded) until the mail under `key` is settled as
/// `status`.
async fn settled(app: &TestApp, key: &str, status: MailStatus) -> QueuedMail {
    let outbox = app.state.mail.outbox().clone();
    eventually(&format!("{key} to be {status:?}"), || {
        let outbox = outbox.clone();
        async move {
            match outbox.mail_by_key(key).await {
                Ok(Some(mail)) if mail.status == status => Ok(mail),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}

// ---------------------------------------------------- delivered messages

/// One message as the SMTP server received it.
#[derive(Debug)]
struct Delivered {
    head: String,
    /// The `text/plain` part, transfer encoding undone.
    text: String,
    /// The `text/html` part, transfer encoding undone.
    html: String,
}

impl Delivered {
    fn parse(raw: &str) -> Self {
        let raw = raw.replace("\r\n", "\n");
        let (head, _) = raw.split_once("\n\n").expect("a header block");
        Self {
            head: head.to_string(),
            text: part(&raw, "text/plain").unwrap_or_else(|| panic!("no text part:\n{raw}")),
            html: part(&raw, "text/html").unwrap_or_else(|| panic!("no html part:\n{raw}")),
        }
    }

    fn header(&self, name: &str) -> Option<String> {
        header_value(&self.head, name)
    }

    fn is(&self, to: &str, subject: &str) -> bool {
        self.header("To").is_some_and(|v| v.contains(to))
            && self.header("Subject").as_deref() == Some(subject)
    }

    /// The unsubscribe link in the text body, after the footer's words.
    fn footer_link(&self) -> Option<String> {
        let (_, after) = self.text.split_once("Turn them off here:")?;
        after.split_whitespace().next().map(str::to_string)
    }
}

/// Every message the server received so far, parsed.
fn delivered(smtp: &Service) -> Vec<Delivered> {
    testkit::maildir_messages(smtp)
        .iter()
        .map(|raw| Delivered::parse(raw))
        .collect()
}

/// Waits (bounded) for the message to `to` with `subject`.
async fn arrived(smtp: &Service, to: &str, subject: &str) -> Delivered {
    eventually(&format!("{subject:?} to arrive for {to}"), || async {
        let mut found: Vec<_> = delivered(smtp)
            .into_iter()
            .filter(|m| m.is(to, subject))
            .collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            n => Err(format!("{n} such messages")),
        }
    })
    .await
}

fn header_value(head: &str, name: &str) -> Option<String> {
    let mut lines = head.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = value.trim().to_string();
        while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(next.trim());
            lines.next();
        }
        return Some(value);
    }
    None
}

/// The decoded body of the first part of `content_type` in a message or
/// part, looking inside multiparts.
fn part(entity: &str, content_type: &str) -> Option<String> {
    let (head, body) = entity.split_once("\n\n")?;
    let this = header_value(head, "Content-Type").unwrap_or_default();
    if let Some((_, boundary)) = this.split_once("boundary=") {
        let boundary = boundary.split(';').next()?.trim().trim_matches('"');
        let delimiter = format!("--{boundary}");
        return body
            .split(delimiter.as_str())
            .skip(1)
            .take_while(|p| !p.starts_with("--"))
            .find_map(|p| part(p.strip_prefix('\n').unwrap_or(p), content_type));
    }
    if !this.to_ascii_lowercase().starts_with(content_type) {
        return None;
    }
    let encoding = header_value(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    Some(match encoding.as_str() {
        "quoted-printable" => quoted_printable(body),
        "7bit" | "8bit" | "" => body.to_string(),
        other => panic!("unexpected transfer encoding {other}"),
    })
}

fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The optional mail's link: in the `List-Unsubscribe` header (with its
/// one-click companion), the same in the text footer and in the HTML.
fn unsubscribe_link(mail: &Delivered, app: &TestApp) -> String {
    let header = mail
        .header("List-Unsubscribe")
        .unwrap_or_else(|| panic!("no List-Unsubscribe in {mail:#?}"));
    let link = header
        .strip_prefix('<')
        .and_then(|h| h.strip_suffix('>'))
        .unwrap_or_else(|| panic!("not <url>: {header}"))
        .to_string();
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        link.starts_with(&format!("{}/unsubscribe?token=", app.address)),
        "{link}"
    );
    assert_eq!(
        mail.footer_link().as_deref(),
        Some(link.as_str()),
        "{}",
        mail.text
    );
    assert!(
        mail.html.contains(&format!("href=\"{link}\"")),
        "{}",
        mail.html
    );
    link
}

/// Essential mail says nothing of unsubscribing.
fn has_no_unsubscribe(mail: &Delivered) {
    assert_eq!(mail.header("List-Unsubscribe"), None, "{mail:#?}");
    assert_eq!(mail.header("List-Unsubscribe-Post"), None);
    assert!(!mail.text.contains("Turn them off"), "{}", mail.text);
    assert!(!mail.html.to_lowercase().contains("unsubscribe"));
}

// -------------------------------------------------------------- the pages

/// A request to an unsubscribe address, with no credentials at all.
async fn page(app: &TestApp, method: Method, link: &str) -> (u16, String) {
    let reply = app.send_raw(app.client.request(method, link)).await;
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    (reply.status, String::from_utf8(reply.bytes).unwrap())
}

/// The path and query of `link` on this server.
fn path_of<'a>(link: &'a str, app: &TestApp) -> &'a str {
    link.strip_prefix(&app.address).unwrap()
}

// ------------------------------------------------------ the preference API

async fn preferences(app: &TestApp, party: &Party) -> Value {
    app.get_json_as(&party.token, "/api/v1/me/email-preferences")
        .await
        .expect(200)
}

/// The categories that are off, by name.
fn off(preferences: &Value) -> Vec<String> {
    preferences["categories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["enabled"] == false)
        .map(|c| c["category"].as_str().unwrap().to_string())
        .collect()
}

async fn put_preferences(app: &TestApp, party: &Party, changes: Value) -> crate::helpers::Reply {
    app.send(
        app.request(Method::PUT, "/api/v1/me/email-preferences")
            .bearer_auth(&party.token)
            .json(&json!({ "categories": changes })),
    )
    .await
}

// -------------------------------------------------------------- scenarios

async fn preferences_and_links(backend: Backend) {
    let smtp = testkit::aiosmtpd(None);
    let port = smtp.port();
    run_scenario_changed(backend, move |s| smtp_on(s, port), move |app| async move {
        let (sam, gig) = seller_with_gig(&app, "sam").await;
        let bea = buyer(&app, "bea").await;
        let verify = arrived(&smtp, &bea.email, "Confirm your e-mail address for Marketplace").await;
        has_no_unsubscribe(&verify);

        // Every category is listed, all on; essential ones say so.
        let listed = preferences(&app, &bea).await;
        let categories: Vec<(String, bool, bool)> = listed["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert!(c["summary"].as_str().is_some_and(|s| !s.is_empty()));
                (
                    c["category"].as_str().unwrap().to_string(),
                    c["essential"].as_bool().unwrap(),
                    c["enabled"].as_bool().unwrap(),
                )
            })
            .collect();
        let expected: Vec<(String, bool, bool)> = MailCategory::ALL
            .iter()
            .map(|c| (c.as_str().to_string(), c.is_essential(), true))
            .collect();
        assert_eq!(categories, expected);
        assert_eq!(
            app.get_json("/api/v1/me/email-preferences").await.status,
            401
        );

        // Refused changes change nothing, not even the valid ones beside them.
        for (changes, field, code) in [
            (json!([{ "category": "orders", "enabled": false }, { "category": "account", "enabled": false }]), "categories[1].category", "essential"),
            (json!([{ "category": "moderation", "enabled": false }]), "categories[0].category", "essential"),
            (json!([{ "category": "newsletters", "enabled": false }]), "categories[0].category", "unknown"),
            (json!([{ "category": "orders", "enabled": false }, { "category": "orders", "enabled": true }]), "categories[1].category", "duplicate"),
        ] {
            let reply = put_preferences(&app, &bea, changes).await;
            reply.expect_error(422, "validation_failed");
            assert_eq!(reply.body["fields"][0]["field"], field, "{}", reply.body);
            assert_eq!(reply.body["fields"][0]["code"], code, "{}", reply.body);
        }
        assert!(off(&preferences(&app, &bea).await).is_empty());
        // Essential mail may be "turned on": it always is.
        put_preferences(&app, &bea, json!([{ "category": "account", "enabled": true }]))
            .await
            .expect(200);

        // Bea turns order mail off.
        let answered = put_preferences(&app, &bea, json!([{ "category": "orders", "enabled": false }]))
            .await
            .expect(200);
        assert_eq!(off(&answered), ["orders"]);
        assert_eq!(off(&preferences(&app, &bea).await), ["orders"]);

        // An order: the seller hears of it, the buyer's notice is skipped.
        let order = paid_order(&app, &bea, &gig).await;
        let to_bea = notice_key(&app, &order, "order.paid", bea.id).await;
        let to_sam = notice_key(&app, &order, "order.paid", sam.id).await;
        let skipped = settled(&app, &to_bea, MailStatus::Skipped).await;
        assert_eq!(skipped.user_id, Some(bea.id));
        assert!(skipped.sent_at.is_none());
        settled(&app, &to_sam, MailStatus::Sent).await;
        let new_order = arrived(&smtp, &sam.email, "New order").await;
        let orders_link = unsubscribe_link(&new_order, &app);

        // A password reset still reaches Bea, without an unsubscribe link.
        app.forgot_password(&bea.email).await.expect(202);
        let reset = arrived(&smtp, &bea.email, "Reset your Marketplace password").await;
        has_no_unsubscribe(&reset);

        // The link's page, without signing in: it says what stops, and
        // changes nothing.
        let (status, body) = page(&app, Method::GET, &orders_link).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("e-mails about your orders"), "{body}");
        let token = orders_link.split_once("?token=").unwrap().1.to_string();
        assert!(
            body.contains(&format!("method=\"post\" action=\"/unsubscribe?token={token}\"")),
            "{body}"
        );
        assert!(off(&preferences(&app, &sam).await).is_empty());

        // Forged, truncated, damaged or missing tokens: a 400 page, nothing
        // changes for anyone.
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let (_, category) = signed.split_once('.').unwrap();
        // Bea's id as tokens spell it, under Sam's signature.
        let bea_orders = app.state.unsubscribe.token(bea.id, MailCategory::Orders);
        let bea_b64 = bea_orders.split_once('.').unwrap().0;
        let unsubscribe = format!("{}/unsubscribe", app.address);
        let bad = [
            format!("{unsubscribe}?token={}", &token[..token.len() - 1]),
            format!("{unsubscribe}?token={}", &token[..token.len() / 2]),
            format!("{unsubscribe}?token={bea_b64}.{category}.{signature}"),
            format!("{unsubscribe}?token={signed}.offers"),
            format!("{unsubscribe}?token={}", signed.replace(".orders", ".account")),
            format!("{unsubscribe}?token="),
            unsubscribe.clone(),
            format!("{unsubscribe}/undo?token={bea_b64}.orders.{signature}"),
        ];
        for link in &bad {
            for method in [Method::GET, Method::POST] {
                if link.contains("/undo") && method == Method::GET {
                    continue;
                }
                let (status, body) = page(&app, method.clone(), link).await;
                assert_eq!(status, 400, "{method} {link}: {body}");
                assert!(body.contains("not valid"), "{body}");
            }
        }
        assert!(off(&preferences(&app, &sam).await).is_empty());
        assert_eq!(off(&preferences(&app, &bea).await), ["orders"]);

        // The page's button: Sam's order mail is off.
        let (status, body) = page(&app, Method::POST, &orders_link).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("You will no longer receive e-mails about your orders"), "{body}");
        assert!(body.contains(&format!("action=\"/unsubscribe/undo?token={token}\"")), "{body}");
        assert_eq!(off(&preferences(&app, &sam).await), ["orders"]);
        // Visiting the link again says so.
        let (status, body) = page(&app, Method::GET, &orders_link).await;
        assert_eq!(status, 200);
        assert!(body.contains("You are unsubscribed"), "{body}");

        // Sam's next order mail is skipped...
        app.post_json_as(
            &bea.token,
            &format!("/api/v1/orders/{order}/requirements"),
            &json!({ "text": "A round logo, blue and white." }),
        )
        .await
        .expect(200);
        let requirements = notice_key(&app, &order, "order.requirements_submitted", sam.id).await;
        settled(&app, &requirements, MailStatus::Skipped).await;

        // ...while offer mail still reaches both, each with its own link.
        let opened = app
            .post_json_as(&bea.token, "/api/v1/conversations", &json!({ "username": "sam" }))
            .await
            .expect(201);
        let conversation = opened["conversation"]["id"].as_str().unwrap().to_string();
        let offer = app
            .post_json_as(
                &sam.token,
                &format!("/api/v1/conversations/{conversation}/offers"),
                &json!({
                    "title": "A logo with three concepts",
                    "description": "Three concepts, then the one you like refined.",
                    "price_minor": 9000,
                    "delivery_days": 5,
                }),
            )
            .await
            .expect(201);
        let received = arrived(&smtp, &bea.email, "New offer").await;
        let bea_offers = unsubscribe_link(&received, &app);
        let bea_token = bea_offers.split_once("?token=").unwrap().1;
        assert_eq!(
            app.state.unsubscribe.verify(bea_token),
            Ok((bea.id, MailCategory::Offers))
        );
        let offer_id = offer["id"].as_str().unwrap();
        app.post_as(&bea.token, &format!("/api/v1/offers/{offer_id}/decline"))
            .await
            .expect(200);
        let declined = arrived(&smtp, &sam.email, "Offer declined").await;
        assert!(unsubscribe_link(&declined, &app).contains(".offers."));

        // Undo, then a mail client's one-click post.
        let undo = format!("{}/unsubscribe/undo?token={token}", app.address);
        let (status, body) = page(&app, Method::POST, &undo).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("You will receive e-mails about your orders again"), "{body}");
        assert!(off(&preferences(&app, &sam).await).is_empty());
        let one_click = app
            .send_raw(
                app.client
                    .post(&orders_link)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("List-Unsubscribe=One-Click"),
            )
            .await;
        assert_eq!(one_click.status, 200);
        assert_eq!(off(&preferences(&app, &sam).await), ["orders"]);
        assert_eq!(path_of(&orders_link, &app), format!("/unsubscribe?token={token}"));

        // Nothing the preferences held back was ever delivered.
        let all = delivered(&smtp);
        assert!(!all.iter().any(|m| m.is(&bea.email, "Order placed")), "{all:#?}");
        assert!(!all.iter().any(|m| m.is(&sam.email, "Requirements submitted")));
        drop(smtp);
    })
    .await;
}

async fn choice_during_outage(backend: Backend) {
    // Up while the accounts are made, down when the order comes.
    let port = testkit::free_port();
    let first = testkit::aiosmtpd(Some(port));
    run_scenario_changed(
        backend,
        move |s| smtp_on(s, port),
        move |app| async move {
            let (sam, gig) = seller_with_gig(&app, "sam").await;
            let bea = buyer(&app, "bea").await;
            arrived(
                &first,
                &bea.email,
                "Confirm your e-mail address for Marketplace",
            )
            .await;
            drop(first);

            let order = paid_order(&app, &bea, &gig).await;
            let to_sam = notice_key(&app, &order, "order.paid", sam.id).await;
            let to_bea = notice_key(&app, &order, "order.paid", bea.id).await;
            let outbox = app.state.mail.outbox().clone();
            for key in [&to_sam, &to_bea] {
                eventually("a failed attempt", || {
                    let outbox = outbox.clone();
                    async move {
                        match outbox.mail_by_key(key).await {
                            Ok(Some(m)) if m.attempts >= 1 && m.last_error.is_some() => Ok(()),
                            other => Err(format!("{other:?}")),
                        }
                    }
                })
                .await;
            }
            // While it waits for its retry, Sam turns order mail off.
            put_preferences(
                &app,
                &sam,
                json!([{ "category": "orders", "enabled": false }]),
            )
            .await
            .expect(200);

            let second = testkit::aiosmtpd(Some(port));
            app.clock.advance(TimeDelta::hours(2));
            app.state.mail.wake();
            let skipped = settled(&app, &to_sam, MailStatus::Skipped).await;
            assert!(
                skipped.attempts >= 2,
                "decided on the attempt after: {skipped:?}"
            );
            let sent = settled(&app, &to_bea, MailStatus::Sent).await;
            assert!(sent.attempts >= 2, "{sent:?}");

            // Bea's arrives once, as the same message every attempt was.
            let placed = arrived(&second, &bea.email, "Order placed").await;
            assert_eq!(
                placed
                    .header("Message-ID")
                    .as_deref()
                    .map(|id| id.starts_with(&format!("<{}@", sent.id))),
                Some(true),
                "{placed:#?}"
            );
            let link = unsubscribe_link(&placed, &app);
            let token = link.split_once("?token=").unwrap().1;
            assert_eq!(
                app.state.unsubscribe.verify(token),
                Ok((bea.id, MailCategory::Orders))
            );
            let all = delivered(&second);
            assert_eq!(all.len(), 1, "{all:#?}");
            drop(second);
        },
    )
    .await;
}
