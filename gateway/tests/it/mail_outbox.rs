//! Account mail goes through the durable outbox: a verification mail
//! queued while the SMTP server is down survives a restart of the server
//! and arrives exactly once when SMTP comes up (a real `aiosmtpd`, started
//! on the port the settings pointed at all along).

use chrono::TimeDelta;
use domain::ports::{MailStatus, QueuedMail};
use gateway::config::{MailTransport, SmtpTlsMode};

use crate::helpers::{eventually, run_scenario_changed, Backend, TestApp};

mod sqlite {
    #[tokio::test]
    async fn verification_mail_survives_smtp_outage_and_restart() {
        super::outage_and_restart(crate::helpers::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test]
    async fn verification_mail_survives_smtp_outage_and_restart() {
        super::outage_and_restart(crate::helpers::Backend::Postgres).await;
    }
}

/// The pending verification mail in the outbox, once it matches `done`.
async fn outbox_mail(app: &TestApp, what: &str, done: impl Fn(&QueuedMail) -> bool) -> QueuedMail {
    let outbox = app.state.mail.outbox().clone();
    eventually(what, || {
        let outbox = outbox.clone();
        let done = &done;
        async move {
            // Far in the future: every pending, unleased mail is due.
            let far = chrono::Utc::now() + TimeDelta::days(3650);
            let due = outbox.due(far, 10).await.map_err(|e| e.to_string())?;
            match due.into_iter().find(|m| m.mail.kind() == "verify_email") {
                Some(m) if done(&m) => Ok(m),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}

async fn outage_and_restart(backend: Backend) {
    // Nothing listens on this port until the test starts the server.
    let port = testkit::free_port();
    run_scenario_changed(
        backend,
        move |settings| {
            settings.mail.transport = MailTransport::Smtp;
            settings.mail.smtp_host = "127.0.0.1".into();
            settings.mail.smtp_port = port;
            settings.mail.smtp_tls = SmtpTlsMode::None;
            settings.mail.smtp_timeout_secs = 5;
            settings.mail.outbox_poll_secs = 1;
        },
        move |app| async move {
            app.register("ada", "ada@example.com", "correct horse battery")
                .await
                .expect(201);
            let failed = outbox_mail(&app, "a failed attempt", |m| {
                m.attempts >= 1 && m.last_error.is_some()
            })
            .await;
            assert_eq!(failed.status, MailStatus::Pending);
            assert_eq!(failed.to.as_str(), "ada@example.com");

            let app = app.restart(|_| {}).await;
            let smtp = testkit::aiosmtpd(Some(port));
            // The retry is due by the (manual) clock; wake the new worker.
            app.clock.advance(TimeDelta::hours(2));
            app.state.mail.wake();
            let key = failed.key.clone();
            let outbox = app.state.mail.outbox().clone();
            let sent = eventually("the mail to be sent", || {
                let outbox = outbox.clone();
                let key = key.clone();
                async move {
                    match outbox.mail_by_key(&key).await {
                        Ok(Some(m)) if m.status == MailStatus::Sent => Ok(m),
                        other => Err(format!("{other:?}")),
                    }
                }
            })
            .await;
            assert!(sent.attempts >= 2, "{sent:?}");
            let mails = testkit::maildir_messages(&smtp);
            assert_eq!(mails.len(), 1, "exactly once: {mails:#?}");
            assert!(mails[0].contains("ada@example.com"));
            assert!(mails[0].contains(&format!("<{}@", sent.id)));
        },
    )
    .await;
}
