//! Rendering account mails from the embedded templates.

use std::sync::LazyLock;

use domain::mail::{AccountMail, DigestSection};
use domain::ports::MailError;
use minijinja::{context, AutoEscape, Environment, Output, State, UndefinedBehavior, Value};

/// A rendered mail, ready to be put into a MIME message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedMail {
    /// One line, no line breaks.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Every template, by the name the others refer to it with. Names ending in
/// `.html` are HTML-escaped, the others are not.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("layout.txt", include_str!("templates/layout.txt")),
    ("macros.html", include_str!("templates/macros.html")),
    (
        "verify_email.subject.txt",
        include_str!("templates/verify_email.subject.txt"),
    ),
    (
        "verify_email.txt",
        include_str!("templates/verify_email.txt"),
    ),
    (
        "verify_email.html",
        include_str!("templates/verify_email.html"),
    ),
    (
        "reset_password.subject.txt",
        include_str!("templates/reset_password.subject.txt"),
    ),
    (
        "reset_password.txt",
        include_str!("templates/reset_password.txt"),
    ),
    (
        "reset_password.html",
        include_str!("templates/reset_password.html"),
    ),
    (
        "password_changed.subject.txt",
        include_str!("templates/password_changed.subject.txt"),
    ),
    (
        "password_changed.txt",
        include_str!("templates/password_changed.txt"),
    ),
    (
        "password_changed.html",
        include_str!("templates/password_changed.html"),
    ),
    (
        "notice.subject.txt",
        include_str!("templates/notice.subject.txt"),
    ),
    ("notice.txt", include_str!("templates/notice.txt")),
    ("notice.html", include_str!("templates/notice.html")),
    (
        "saved_search_digest.subject.txt",
        include_str!("templates/saved_search_digest.subject.txt"),
    ),
    (
        "saved_search_digest.txt",
        include_str!("templates/saved_search_digest.txt"),
    ),
    (
        "saved_search_digest.html",
        include_str!("templates/saved_search_digest.html"),
    ),
];

static ENVIRONMENT: LazyLock<Result<Environment<'static>, minijinja::Error>> =
    LazyLock::new(environment);

fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    // A misspelt variable is an error, not an empty string in a customer's mail.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_formatter(formatter);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

/// minijinja's HTML escaping also turns `/` into `&#x2f;`, which makes every
/// link in the HTML source unreadable; escaping `& < > " '` is what HTML needs
/// in text and quoted attributes.
fn formatter(
    out: &mut Output<'_>,
    state: &State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if state.auto_escape() == AutoEscape::Html && !value.is_safe() {
        if let Some(text) = value.as_str() {
            out.write_str(&escape_html(text))?;
            return Ok(());
        }
    }
    minijinja::escape_formatter(out, state, value)
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// Renders the subject, text and HTML of an account mail.
pub fn render(mail: &AccountMail) -> Result<RenderedMail, MailError> {
    render_with(mail, None)
}

/// [`render`], with the footer of optional mail when `unsubscribe` is
/// given: what the mail is about (its category) and the link that turns
/// that off, in both bodies.
pub fn render_with(
    mail: &AccountMail,
    unsubscribe: Option<&str>,
) -> Result<RenderedMail, MailError> {
    let env = ENVIRONMENT
        .as_ref()
        .map_err(|e| MailError(format!("mail templates are invalid: {e:#}")))?;
    if let Some(link) = mail.link() {
        check_link(link)?;
    }
    if let Some(link) = unsubscribe {
        check_link(link)?;
    }
    let ctx = match mail {
        AccountMail::VerifyEmail {
            username,
            link,
            valid_hours,
        } => context! { username, link, valid_hours },
        AccountMail::ResetPassword {
            username,
            link,
            valid_minutes,
        } => context! { username, link, valid_minutes },
        AccountMail::PasswordChanged {
            username,
            changed_at,
        } => context! {
            username,
            changed_at => changed_at.format("%-d %B %Y at %H:%M UTC").to_string(),
        },
        AccountMail::Notice {
            username,
            subject,
            body,
            action,
            link,
            ..
        } => context! { username, subject, body, action, link },
        AccountMail::SavedSearchDigest {
            username,
            sections,
            link,
        } => {
            let sections = digest_sections(sections)?;
            let total: u64 = sections
                .iter()
                .map(|s| s.gigs.len() as u64 + u64::from(s.more))
                .sum();
            context! { username, sections, total, link }
        }
    };
    // Every layout reads these: undefined values are errors.
    let ctx = context! {
        unsubscribe,
        category => mail.category().summary(),
        ..ctx
    };
    let kind = mail.kind();
    let render_one = |suffix: &str| -> Result<String, MailError> {
        let name = format!("{kind}.{suffix}");
        env.get_template(&name)
            .and_then(|template| template.render(&ctx))
            .map_err(|e| MailError(format!("rendering {name} failed: {e:#}")))
    };
    let subject = render_one("subject.txt")?.trim().to_owned();
    if subject.is_empty() || subject.contains(['\r', '\n']) {
        return Err(MailError(format!(
            "the subject of {kind} must be one non-empty line"
        )));
    }
    Ok(RenderedMail {
        subject,
        text: render_one("txt")?,
        html: render_one("html")?,
    })
}

/// A digest section as the templates read it: prices as text.
#[derive(serde::Serialize)]
struct SectionView<'a> {
    name: &'a str,
    gigs: Vec<GigView<'a>>,
    more: u32,
}

#[derive(serde::Serialize)]
struct GigView<'a> {
    title: &'a str,
    price: String,
    link: &'a str,
}

/// The digest's sections, with every gig link checked.
fn digest_sections(sections: &[DigestSection]) -> Result<Vec<SectionView<'_>>, MailError> {
    sections
        .iter()
        .map(|section| {
            let gigs = section
                .gigs
                .iter()
                .map(|gig| {
                    check_link(&gig.link)?;
                    Ok(GigView {
                        title: &gig.title,
                        price: gig.price.to_string(),
                        link: &gig.link,
                    })
                })
                .collect::<Result<Vec<_>, MailError>>()?;
            Ok(SectionView {
                name: &section.name,
                gigs,
                more: section.more,
            })
        })
        .collect()
}

/// Links go into `href` attributes, so only web links are accepted.
fn check_link(link: &str) -> Result<(), MailError> {
    let url = url::Url::parse(link).map_err(|e| MailError(format!("invalid mail link: {e}")))?;
    if matches!(url.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(MailError(format!(
            "mail links must be http or https, not {}",
            url.scheme()
        )))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const LINK: &str = "https://marketplace.example/verify?token=abc_123-XYZ&from=mail";

    fn all_mails(username: &str) -> Vec<AccountMail> {
        vec![
            AccountMail::VerifyEmail {
                username: username.into(),
                link: LINK.into(),
                valid_hours: 24,
            },
            AccountMail::ResetPassword {
                username: username.into(),
                link: LINK.into(),
                valid_minutes: 30,
            },
            AccountMail::PasswordChanged {
                username: username.into(),
                changed_at: chrono::Utc.with_ymd_and_hms(2025, 3, 7, 9, 5, 0).unwrap(),
            },
            AccountMail::Notice {
                username: username.into(),
                kind: "order.delivered".into(),
                subject: "Your order was delivered".into(),
                body: "ada delivered \"Logo\". Accept it or ask for a revision.".into(),
                action: "View the order".into(),
                link: LINK.into(),
            },
        ]
    }

    #[test]
    fn every_template_compiles() {
        let env = ENVIRONMENT.as_ref().unwrap();
        for (name, _) in TEMPLATES {
            env.get_template(name).unwrap();
        }
    }

    #[test]
    fn link_is_in_both_bodies_as_button_and_as_text() {
        for mail in all_mails("ada").iter().filter(|m| m.link().is_some()) {
            let rendered = render(mail).unwrap();
            assert!(rendered.text.contains(LINK), "{}", rendered.text);
            let in_html = LINK.replace('&', "&amp;");
            assert!(
                rendered.html.contains(&format!("href=\"{in_html}\"")),
                "{}",
                rendered.html
            );
            assert!(
                rendered.html.contains(&format!(">{in_html}</a>")),
                "{}",
                rendered.html
            );
            // Two hrefs: the button and the plain link.
            assert_eq!(rendered.html.matches("href=").count(), 2);
        }
    }

    #[test]
    fn every_mail_greets_the_user_and_has_a_subject() {
        for mail in all_mails("ada") {
            let rendered = render(&mail).unwrap();
            assert!(!rendered.subject.is_empty());
            assert!(!rendered.subject.contains('\n'));
            assert!(rendered.text.starts_with("Hi ada,\n"), "{}", rendered.text);
            assert!(rendered.html.contains("Hi ada,"));
            assert!(rendered.html.starts_with("<!DOCTYPE html>"));
        }
    }

    #[test]
    fn hostile_username_is_escaped_in_html_only() {
        let hostile = "<script>alert(\"x\")</script>&'";
        for mail in all_mails(hostile) {
            let rendered = render(&mail).unwrap();
            assert!(!rendered.html.contains("<script>"), "{}", rendered.html);
            assert!(rendered
                .html
                .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"));
            // Plain text is not HTML: it shows the name as it is.
            assert!(rendered.text.contains(hostile));
        }
    }

    #[test]
    fn validity_is_stated_with_the_right_unit() {
        let verify = render(&AccountMail::VerifyEmail {
            username: "ada".into(),
            link: LINK.into(),
            valid_hours: 48,
        })
        .unwrap();
        assert!(verify.text.contains("expires in 48 hours"));
        assert!(verify.html.contains("expires in 48 hours"));
        assert!(verify.text.contains("nothing will change"));

        let one_hour = render(&AccountMail::VerifyEmail {
            username: "ada".into(),
            link: LINK.into(),
            valid_hours: 1,
        })
        .unwrap();
        assert!(one_hour.text.contains("expires in 1 hour."));

        let reset = render(&AccountMail::ResetPassword {
            username: "ada".into(),
            link: LINK.into(),
            valid_minutes: 30,
        })
        .unwrap();
        assert!(reset.text.contains("expires in 30 minutes"));
        assert!(reset.html.contains("expires in 30 minutes"));
        assert!(reset.text.contains("your password stays as it is"));
    }

    #[test]
    fn password_changed_says_when_and_what_to_do() {
        let rendered = render(&all_mails("ada")[2]).unwrap();
        assert!(rendered.text.contains("on 7 March 2025 at 09:05 UTC."));
        assert!(rendered.html.contains("7 March 2025 at 09:05 UTC"));
        assert!(rendered.text.contains("If it was not you"));
        assert!(rendered.text.contains("Forgot password?"));
    }

    #[test]
    fn optional_mail_says_how_to_unsubscribe_in_both_bodies() {
        const OFF: &str = "https://marketplace.example/unsubscribe?token=AbC-_1.orders.xYz";
        let notice = AccountMail::Notice {
            username: "ada".into(),
            kind: "order.delivered".into(),
            subject: "Your order was delivered".into(),
            body: "Accept it or ask for a revision.".into(),
            action: "View the order".into(),
            link: LINK.into(),
        };
        let with = render_with(&notice, Some(OFF)).unwrap();
        assert!(
            with.text.contains(&format!(
                "Don't want e-mails about your orders? Turn them off here:\n{OFF}"
            )),
            "{}",
            with.text
        );
        assert!(
            with.html.contains(&format!("href=\"{OFF}\"")),
            "{}",
            with.html
        );
        assert!(with
            .html
            .contains("Don&rsquo;t want e-mails about your orders?"));
        // The button, the plain link and the unsubscribe link.
        assert_eq!(with.html.matches("href=").count(), 3);

        // Without a link (essential mail), no footer at all.
        let without = render(&notice).unwrap();
        assert!(!without.text.contains("Turn them off"), "{}", without.text);
        assert!(!without.html.to_lowercase().contains("unsubscribe"));
        assert_eq!(without.subject, with.subject);

        let err = render_with(&notice, Some("mailto:off@marketplace.example")).unwrap_err();
        assert!(err.0.contains("http"), "{err}");
    }

    fn digest(username: &str, gig_link: &str) -> AccountMail {
        use domain::mail::DigestGig;
        use domain::money::{Currency, Money};
        let gig = |title: &str, amount_minor| DigestGig {
            title: title.into(),
            price: Money {
                amount_minor,
                currency: Currency::Usd,
            },
            link: gig_link.into(),
        };
        AccountMail::SavedSearchDigest {
            username: username.into(),
            sections: vec![
                DigestSection {
                    name: "Logos <cheap>".into(),
                    gigs: vec![gig("I will design a \"minimalist\" logo", 2500)],
                    more: 0,
                },
                DigestSection {
                    name: "Web apps".into(),
                    gigs: vec![gig("I will build your React app", 15000)],
                    more: 3,
                },
            ],
            link: LINK.into(),
        }
    }

    #[test]
    fn the_digest_lists_each_search_with_its_gigs() {
        const GIG: &str = "https://marketplace.example/gigs/0190-a";
        let rendered = render(&digest("ada", GIG)).unwrap();
        assert_eq!(rendered.subject, "5 new gigs for your saved searches");
        let text = &rendered.text;
        assert!(text.starts_with("Hi ada,\n"), "{text}");
        assert!(text.contains("Logos <cheap>:\n- I will design a \"minimalist\" logo, from 25.00 USD\n  https://marketplace.example/gigs/0190-a\n"), "{text}");
        assert!(
            text.contains("Web apps:\n- I will build your React app, from 150.00 USD\n"),
            "{text}"
        );
        assert!(text.contains("- and 3 more"), "{text}");
        assert!(
            text.contains(&format!("Manage your saved searches: {LINK}")),
            "{text}"
        );
        let html = &rendered.html;
        assert!(html.contains("Logos &lt;cheap&gt;"), "{html}");
        assert!(html.contains(&format!("<a href=\"{GIG}\"")), "{html}");
        assert!(
            html.contains("I will design a &quot;minimalist&quot; logo</a>, from 25.00 USD"),
            "{html}"
        );
        // Two gigs, the button and the plain link.
        assert_eq!(html.matches("href=").count(), 4);

        let one = AccountMail::SavedSearchDigest {
            username: "ada".into(),
            sections: vec![DigestSection {
                name: "Logos".into(),
                gigs: Vec::new(),
                more: 1,
            }],
            link: LINK.into(),
        };
        assert_eq!(
            render(&one).unwrap().subject,
            "1 new gig for your saved searches"
        );
        // A gig link that is not a web link is refused like any other.
        let err = render(&digest("ada", "javascript:alert(1)")).unwrap_err();
        assert!(err.0.contains("http"), "{err}");
    }

    #[test]
    fn non_web_links_are_refused() {
        let err = render(&AccountMail::VerifyEmail {
            username: "ada".into(),
            link: "javascript:alert(1)".into(),
            valid_hours: 24,
        })
        .unwrap_err();
        assert!(err.0.contains("http"), "{err}");
    }
}
